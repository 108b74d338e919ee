"""Function deployment statuses."""
from typing import ClassVar

from django.db import models


class FunctionStatus(models.TextChoices):
    """The deployment status of a function::

        deploying ──▶ ready ──▶ removing ──▶ (deleted)
            └───────▶ failed ──────┘

    ``ACTIVE``: the runtime is working on the function (deploying it or tearing it down).
    ``TERMINAL``: the deployment has an outcome; only a removal moves the function on.
    ``EXECUTABLE``: the function can be called.
    """

    DEPLOYING = "deploying", "Deploying"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    REMOVING = "removing", "Removing"

    ACTIVE: ClassVar[frozenset[str]]
    TERMINAL: ClassVar[frozenset[str]]
    EXECUTABLE: ClassVar[frozenset[str]]


# Groups are set after the class: inside an enum's body every assignment would become a member.
FunctionStatus.ACTIVE = frozenset({FunctionStatus.DEPLOYING, FunctionStatus.REMOVING})
FunctionStatus.TERMINAL = frozenset({FunctionStatus.READY, FunctionStatus.FAILED})
FunctionStatus.EXECUTABLE = frozenset({FunctionStatus.READY})
