"""Admin of jobs: read-only records of runs (every field is written by the job services); cancel as an action."""
from django.contrib import admin, messages

from jobs import services
from jobs.models import Job
from records.admin import RecordAdmin
from records.api.errors import Conflict


@admin.register(Job)
class JobAdmin(RecordAdmin):
    list_display = ("job_id", "job_name", "job_status", "job_policy_rule_uri", "job_executor_id", "created_at", "finished_at")
    list_filter = ("job_status", "job_executor_id")
    search_fields = ("job_id", "job_name", "job_policy_rule_uri")
    machine_fields = ("job_id", "job_name", "job_status", "job_policy_rule_uri", "job_executor_id", "job_inputs",
                      "job_parameters", "job_settings", "job_output_data", "job_error", "node_id", "node_selector",
                      "resources", "timeout_seconds", "dry_run", "started_at", "finished_at", "deadline_at")
    actions = ["cancel_jobs"]

    def has_add_permission(self, request):
        return False  # jobs exist only by submission

    @admin.action(description="Cancel the selected pending or running jobs", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        for job in queryset:
            try:
                services.cancel_job(request.user, job)
            except Conflict as exc:
                self.message_user(request, f"job {job.job_id}: {exc.detail}", messages.WARNING)
