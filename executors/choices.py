"""Enums of executors: health status, runtime, infrastructure status."""
from django.db import models


class ExecutorStatus(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    UNREACHABLE = "unreachable", "Unreachable"
    UNKNOWN = "unknown", "Unknown"


class ExecutorRuntime(models.TextChoices):
    LOCAL = "local", "Local processes"
    KUBERNETES = "kubernetes", "Kubernetes"


class InfraStatus(models.TextChoices):
    """create-infra progress: pending → provisioning → ready | failed ("none" before any request)."""

    NONE = "none", "None"
    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
