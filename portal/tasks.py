"""Background tasks of the portal itself: the worker's heartbeat, which proves that its pool still runs tasks."""
import os
import time

from celery import shared_task
from django.conf import settings


@shared_task(name="portal.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Stamp ``<state>/worker-heartbeat`` (portal/heartbeat.py reads it): a pool that takes no task never does."""
    path = settings.STATE_DIR / "worker-heartbeat"
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(f"{time.time()}\n")
    os.replace(partial, path)
