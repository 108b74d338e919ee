"""Background tasks of executors: thin wrappers around the service functions."""
from celery import shared_task

from executors import services
from executors.cluster import infra


@shared_task(name="executors.probe_executors", ignore_result=False)
def probe_executors() -> dict[str, str]:
    """Probe every executor's /health and record its status (beat runs this every POLICYGRID_EXECUTOR_PROBE_INTERVAL)."""
    return services.probe_executors()


@shared_task(name="executors.provision_infra", ignore_result=False)
def provision_infra(executor_id: str, actor_id: int | None = None) -> str:
    """create-infra's background half (executors.cluster.infra)."""
    return infra.provision_infra(executor_id, actor_id)


@shared_task(name="executors.remove_infra", ignore_result=False)
def remove_infra(executor_id: str, actor_id: int | None = None) -> str:
    """remove-infra's background half (executors.cluster.infra)."""
    return infra.remove_infra(executor_id, actor_id)
