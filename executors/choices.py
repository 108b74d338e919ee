"""Enums of executors: health status, runtime, infrastructure status."""
from typing import ClassVar

from django.db import models


class ExecutorStatus(models.TextChoices):
    """The health of an executor: ``unknown`` until it has an address; from then on each probe of its
    ``/health`` sets it to whichever of these fits, whatever it was::

        unknown ──address──▶ healthy ◀──probe──▶ degraded ◀──probe──▶ unreachable ◀──probe──▶ healthy

    There is no terminal state: an unreachable executor is probed (and called) again.
    """

    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    UNREACHABLE = "unreachable", "Unreachable"
    UNKNOWN = "unknown", "Unknown"


class ExecutorRuntime(models.TextChoices):
    LOCAL = "local", "Local processes"
    KUBERNETES = "kubernetes", "Kubernetes"


class InfraStatus(models.TextChoices):
    """create-infra progress (``executors.cluster.infra``)::

        none ──▶ pending ──▶ provisioning ──▶ ready ──▶ removing ──▶ none   (remove-infra)
                                 └──────────▶ failed ──────┘

    ``ACTIVE``: provisioning or removal is under way. ``TERMINAL``: the request has its outcome.
    """

    NONE = "none", "None"
    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    REMOVING = "removing", "Removing"

    ACTIVE: ClassVar[frozenset[str]]
    TERMINAL: ClassVar[frozenset[str]]


# Groups are set after the classes: inside an enum's body every assignment would become a member.
InfraStatus.ACTIVE = frozenset({InfraStatus.PENDING, InfraStatus.PROVISIONING, InfraStatus.REMOVING})
InfraStatus.TERMINAL = frozenset({InfraStatus.READY, InfraStatus.FAILED})
