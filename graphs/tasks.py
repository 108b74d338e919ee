"""Background tasks of graph runs: thin wrappers around the service functions (each step is idempotent)."""
from celery import shared_task

from graphs import services


@shared_task(name="graphs.advance_run", ignore_result=True)
def advance_run(run_pk: int) -> None:
    """Advance one run: start it, end it, or run its ready nodes in this worker, each in a thread, until nothing
    of it runs here (``graphs.services.drive``). Delivered again after a worker died: the steps are idempotent."""
    services.drive(run_pk, to_the_end=False)


@shared_task(name="graphs.reconcile_runs", ignore_result=False)
def reconcile_runs() -> dict[str, int]:
    """Fail or retry nodes whose worker died, advance stalled runs (beat: POLICYGRID_GRAPH_RECONCILE_INTERVAL)."""
    return services.reconcile_runs()
