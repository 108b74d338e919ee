"""Job statuses."""
from django.db import models


class JobStatus(models.TextChoices):
    """pending → running → completed | failed; cancelled from pending/running; lost past its deadline."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    LOST = "lost", "Lost"
