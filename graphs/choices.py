"""Graph enums: merge modes, and the statuses of runs and of their nodes."""
from typing import ClassVar

from django.db import models


class MergeMode(models.TextChoices):
    """How a node with several parents receives their outputs (docs/runtime.md §7)."""

    LIST = "list", "List, in graph_function_ids order"
    KEYED = "keyed", "Object keyed by parent id"


class RunStatus(models.TextChoices):
    """The status of a graph run, written by the engine (graphs.engine), never by clients::

        pending ──▶ running ──▶ completed
           │           ├──────▶ failed      (a node failed, a schema refused, the run timed out, its worker was lost)
           └───────────┴──────▶ cancelled
        failed / cancelled ──retry──▶ running   (a new attempt: completed nodes keep their outputs)
    """

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"

    ACTIVE: ClassVar[frozenset[str]]
    TERMINAL: ClassVar[frozenset[str]]


class NodeStatus(models.TextChoices):
    """The status of one node of a run::

        pending ──claim──▶ running ──▶ completed
           ▲                  ├──────▶ failed
           └──(retries left)──┘
        pending ──(the run ended first)──▶ skipped
    """

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


# Groups are set after the class: inside an enum's body every assignment would become a member.
RunStatus.ACTIVE = frozenset({RunStatus.PENDING, RunStatus.RUNNING})
RunStatus.TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
