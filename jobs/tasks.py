"""Background tasks of jobs: thin wrappers around the service functions."""
from celery import shared_task

from jobs import services


@shared_task(name="jobs.reconcile_jobs", ignore_result=False)
def reconcile_jobs() -> dict[str, int]:
    """Reconcile every unfinished job with its runtime (beat runs this every POLICYGRID_JOB_RECONCILE_INTERVAL):
    nothing stays ``running`` forever."""
    return services.reconcile_jobs()
