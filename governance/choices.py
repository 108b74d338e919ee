"""States of a governed version and of its reviews, releases and signing keys."""
from django.db import models


class LifecycleStatus(models.TextChoices):
    """States of a governed version (governance.md §2).

    draft ──submit──▶ in_review ──approve──▶ approved ──deprecate──▶ deprecated ──retire──▶ retired
      ▲                  │                       └──────────────retire─────────────────────▲
      └─────reject───────┘
    """

    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"

    @classmethod
    def executable(cls) -> frozenset[str]:
        return frozenset({cls.APPROVED, cls.DEPRECATED})
