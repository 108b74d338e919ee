"""Job statuses."""
from typing import ClassVar

from django.db import models


class JobStatus(models.TextChoices):
    """The status of a job, written by the job services, never by clients::

        pending ──▶ running ──▶ completed
           │           ├──────▶ failed
           │           ├──────▶ lost        (past its deadline without an answer)
           └───────────┴──────▶ cancelled

    ``ACTIVE``: a job in these states still holds its policy and executor (they can't be deleted under it).
    ``TERMINAL``: a job in these states never changes again.
    """

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    LOST = "lost", "Lost"

    ACTIVE: ClassVar[frozenset[str]]
    TERMINAL: ClassVar[frozenset[str]]


# Groups are set after the class: inside an enum's body every assignment would become a member.
JobStatus.ACTIVE = frozenset({JobStatus.PENDING, JobStatus.RUNNING})
JobStatus.TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.LOST})
