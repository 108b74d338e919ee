"""Background tasks of executors: thin wrappers around the service functions."""
from celery import shared_task

from executors import services


@shared_task(name="executors.probe_executors", ignore_result=False)
def probe_executors() -> dict[str, str]:
    """Probe every executor's /health and record its status (beat runs this every POLICYGRID_EXECUTOR_PROBE_INTERVAL)."""
    return services.probe_executors()
