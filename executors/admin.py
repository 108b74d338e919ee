"""Admin of executors."""
from django.contrib import admin

from executors.models import PolicyExecutor
from records.admin import RecordAdmin


@admin.register(PolicyExecutor)
class PolicyExecutorAdmin(RecordAdmin):
    list_display = ("executor_id", "executor_host_uri", "executor_status", "executor_runtime", "infra_status", "last_seen")
    list_filter = ("executor_status", "executor_runtime", "infra_status")
    search_fields = ("executor_id", "executor_host_uri")
    machine_fields = ("infra_status", "infra_message", "infra_config", "last_seen", "latency_ms", "health_data")
