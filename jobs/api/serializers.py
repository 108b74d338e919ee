"""Serializers of jobs."""
from jobs.models import Job
from records.api.serializers import RecordSerializer


class JobSerializer(RecordSerializer):
    class Meta(RecordSerializer.Meta):
        model = Job
        exclude = ["id"]
        fields = None
        # Every field of a job is written by the job services; clients read them.
        read_only_fields = [
            "job_name", "job_status", "job_policy_rule_uri", "job_executor_id", "job_inputs",
            "job_parameters", "job_settings", "job_output_data", "job_error", "node_id", "node_selector",
            "resources", "timeout_seconds", "dry_run", "started_at", "finished_at", "deadline_at",
        ]
