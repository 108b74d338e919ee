"""States of a governed version and of its reviews, releases and signing keys."""
from typing import ClassVar

from django.db import models


class LifecycleStatus(models.TextChoices):
    """States of a governed version (docs/governance.md §2).

    draft ──submit──▶ in_review ──approve──▶ approved ──deprecate──▶ deprecated ──retire──▶ retired
      ▲                  │                       └──────────────retire─────────────────────▲
      └─────reject───────┘

    ``EXECUTABLE``: versions that run for anyone allowed to execute (governance.gate); drafts and versions
    in review run only as dry runs. ``TERMINAL``: a retired version never changes or runs again.
    """

    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"

    EXECUTABLE: ClassVar[frozenset[str]]
    TERMINAL: ClassVar[frozenset[str]]


# Groups are set after the class: inside an enum's body every assignment would become a member.
LifecycleStatus.EXECUTABLE = frozenset({LifecycleStatus.APPROVED, LifecycleStatus.DEPRECATED})
LifecycleStatus.TERMINAL = frozenset({LifecycleStatus.RETIRED})
