"""Background tasks for rows a request writes: sent once the rows are committed (a worker must find them), and
never lost without a word. When the broker refuses a task (Redis down, the file broker's folder unwritable), the
caller's ``refused(reason)`` records it on those rows (a function ``failed``, a run ``failed``, an executor's
infrastructure ``failed``, each with the reason) and the request answers 503 ``unavailable`` naming the broker,
instead of a 500 after the commit and a record that waits for a task nobody will run."""
from __future__ import annotations

from collections.abc import Callable

from celery import current_app
from django.db import transaction
from kombu.exceptions import ChannelError, KombuError
from kombu.exceptions import ConnectionError as BrokerConnectionError

from records.api.errors import ApiError

# What sending may raise when the broker can't take a task: kombu's own errors (a refused connection is its
# OperationalError), the channel and connection errors it re-exports from amqp (the file broker's folder errors
# are ChannelError), and the OS's.
BROKER_ERRORS = (KombuError, ChannelError, BrokerConnectionError, OSError)


def send_after_commit(task, args: list, refused: Callable[[str], None], **options) -> None:
    """Send ``task`` (a task, or a task's name when its module can't be imported here) with ``args`` once the
    current transaction commits (at once outside one). A task object is sent with ``apply_async``, which honours
    Celery's eager mode (``task_always_eager``); a name with ``send_task``."""
    name = getattr(task, "name", task)

    def send() -> None:
        try:
            if isinstance(task, str):
                current_app.send_task(task, args=args, **options)
            else:
                task.apply_async(args=args, **options)
        except BROKER_ERRORS as exc:
            reason = f"the task queue refused {name} ({type(exc).__name__}: {exc})"
            refused(reason)
            raise ApiError(f"{reason}: nothing was started; try again once the broker is back", 503,
                           error_type="unavailable") from exc

    transaction.on_commit(send)
