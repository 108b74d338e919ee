"""Function deployment statuses."""
from django.db import models


class FunctionStatus(models.TextChoices):
    """deploying → ready | failed; removing while torn down."""

    DEPLOYING = "deploying", "Deploying"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    REMOVING = "removing", "Removing"
