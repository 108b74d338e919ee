"""The roles of docs/governance.md §1: each a Django group whose permissions accounts.roles keeps in sync."""
from django.db import models


class Role(models.TextChoices):
    """The five roles of docs/governance.md §1, each a Django group created by a migration."""

    VIEWER = "viewer", "Viewer"
    AUTHOR = "author", "Author"
    REVIEWER = "reviewer", "Reviewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"
