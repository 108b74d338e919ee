"""Enums shared by several apps: roles and the governed lifecycle's states."""
from django.db import models


class Role(models.TextChoices):
    """The five roles of governance.md §1, each a Django group created by a migration."""

    VIEWER = "viewer", "Viewer"
    AUTHOR = "author", "Author"
    REVIEWER = "reviewer", "Reviewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


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
