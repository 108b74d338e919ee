"""Graph enums."""
from django.db import models


class MergeMode(models.TextChoices):
    """How a node with several parents receives their outputs (docs/runtime.md §7)."""

    LIST = "list", "List, in graph_function_ids order"
    KEYED = "keyed", "Object keyed by parent id"
