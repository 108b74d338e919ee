"""Background tasks of graph runs: thin wrappers around the service functions (each step is idempotent)."""
from celery import shared_task

from graphs import services


@shared_task(name="graphs.advance_run", ignore_result=True)
def advance_run(run_pk: int) -> None:
    """Advance one run: start it, end it, or queue its ready nodes and run one of them (``graphs.engine``)."""
    services.run_node_and_advance(services.advance_and_dispatch(run_pk, keep_one=True))


@shared_task(name="graphs.run_node", ignore_result=True)
def run_node(node_pk: int) -> None:
    """Claim and run one node, then advance its run (a node another worker claimed is left alone)."""
    services.run_node_and_advance(node_pk)


@shared_task(name="graphs.reconcile_runs", ignore_result=False)
def reconcile_runs() -> dict[str, int]:
    """Fail or retry nodes whose worker died, advance active runs (beat: POLICYGRID_GRAPH_RECONCILE_INTERVAL)."""
    return services.reconcile_runs()
