"""Background tasks of functions: thin wrappers around the service functions."""
from celery import shared_task

from functions import services


@shared_task(name="functions.deploy_function", ignore_result=False)
def deploy_function(function_pk: int) -> str:
    """Deploy one function on its runtime and wait until it is ready or failed (``functions.services.deploy``)."""
    return services.deploy(function_pk)


@shared_task(name="functions.reconcile_functions", ignore_result=False)
def reconcile_functions() -> dict[str, int]:
    """Compare deployed functions with their runtimes (beat: every POLICYGRID_FUNCTION_RECONCILE_INTERVAL)."""
    return services.reconcile_functions()
