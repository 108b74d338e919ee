"""Filters of the job list."""
from jobs.models import Job
from records.api.filtersets import RecordFilterSet


class JobFilterSet(RecordFilterSet):
    search_fields = ("job_name", "job_policy_rule_uri")

    class Meta:
        model = Job
        fields = ["job_name", "job_status", "job_policy_rule_uri", "job_executor_id", "node_id"]
