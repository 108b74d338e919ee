"""Admin of jobs: read-only records of runs."""
from django.contrib import admin

from jobs.models import Job
from records.admin import RecordAdmin


@admin.register(Job)
class JobAdmin(RecordAdmin):
    list_display = ("job_id", "job_name", "job_status", "job_policy_rule_uri", "job_executor_id", "created_at", "finished_at")
    list_filter = ("job_status", "job_executor_id")
    search_fields = ("job_id", "job_name", "job_policy_rule_uri")
    machine_fields = ("job_id", "job_status", "job_output_data", "job_error", "node_id", "started_at", "finished_at")

    def has_add_permission(self, request):
        return False  # jobs exist only by submission
