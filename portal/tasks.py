"""Background tasks of the portal itself: the worker's heartbeat, which proves that its pool still runs tasks."""
import os
import time

from celery import shared_task
from celery.signals import task_postrun, task_prerun
from django.conf import settings

from portal.heartbeat import BUSY_FOLDER


@shared_task(name="portal.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Stamp ``<state>/worker-heartbeat`` (portal/heartbeat.py reads it): a pool that takes no task never does."""
    path = settings.STATE_DIR / "worker-heartbeat"
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(f"{time.time()}\n")
    os.replace(partial, path)


def _busy_mark():
    return settings.STATE_DIR / BUSY_FOLDER / str(os.getpid())


@task_prerun.connect(dispatch_uid="portal-busy")
def mark_busy(**_):
    """While a pool process runs a task, ``<state>/worker-busy/<pid>`` exists: a worker whose processes are all
    busy with long tasks (a slow deployment, a long graph node) runs no heartbeat, yet is not stalled."""
    try:
        _busy_mark().parent.mkdir(exist_ok=True)
        _busy_mark().touch()
    except OSError:
        pass  # no writable state folder (a worker in a cluster): only the heartbeat file counts there


@task_postrun.connect(dispatch_uid="portal-idle")
def mark_idle(**_):
    try:
        _busy_mark().unlink(missing_ok=True)
    except OSError:
        pass


@shared_task(name="portal.mark", ignore_result=True)
def mark(name: str) -> None:
    """Create ``<state>/marks/<name>``: proof, end to end, that a task sent was run (bench/soak.py counts them to
    find lost tasks; an operator can send one to check the worker). ``name`` is 32 hex digits."""
    if not (len(name) == 32 and all(c in "0123456789abcdef" for c in name)):
        raise ValueError("a mark's name is 32 hexadecimal digits")
    folder = settings.STATE_DIR / "marks"
    folder.mkdir(exist_ok=True)
    (folder / name).touch()
