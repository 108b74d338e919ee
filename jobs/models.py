"""Job: the record of one Type 3 run, created at submission and advanced by the runtime."""
import uuid

from django.core.exceptions import ValidationError
from django.db import models

from jobs.choices import JobStatus
from records.models import RecordModel
from records.validators import validate_dns_label


class Job(RecordModel):
    """A one-shot run of a policy on an executor's runtime (``executors.runtime``); its ``job_status`` is
    written by the job services only (``jobs.choices.JobStatus`` draws the transitions): ``running`` when the
    runtime took it, ``completed``/``failed`` from its runner's post (``result_token_hash``: only the holder of
    the job's token may post, once) or from the reason the runtime saw, ``cancelled``, or ``lost`` past
    ``deadline_at`` without a sign of life (the periodic reconciliation, ``jobs.tasks``)."""

    lookup_field = "job_id"
    identity_fields = ("job_id", "job_name", "job_policy_rule_uri", "job_executor_id")
    references = {"policy": "job_policy_rule_uri", "executor": "job_executor_id"}
    internal_fields = ("policy", "executor", "result_token_hash")
    # The description's job query names the submission's keys: {"policy_rule_uri": …, "inputs.ip": …}.
    query_aliases = {"policy_rule_uri": "job_policy_rule_uri", "inputs": "job_inputs", "name": "job_name",
                     "executor_id": "job_executor_id", "status": "job_status"}

    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    job_name = models.CharField(max_length=63, validators=[validate_dns_label])
    job_status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    job_policy_rule_uri = models.CharField(max_length=255, db_index=True)
    job_executor_id = models.CharField(max_length=63, db_index=True)
    job_inputs = models.JSONField(default=dict, blank=True)
    job_parameters = models.JSONField(default=dict, blank=True)
    job_settings = models.JSONField(default=dict, blank=True)
    job_output_data = models.JSONField(null=True, blank=True)
    job_error = models.TextField(blank=True, default="")
    node_id = models.CharField(max_length=255, blank=True, default="")
    node_selector = models.JSONField(default=dict, blank=True)
    resources = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Past this moment, a job still unfinished with no runtime that knows it is ``lost``.
    deadline_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # SHA-256 of the job's own result token: shown to its runtime once, never stored or answered in clear.
    result_token_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    # The records the two keys above name, kept by save() (RecordModel.references): a policy version or
    # executor with jobs can't be deleted (PROTECT → 409 naming the jobs).
    policy = models.ForeignKey("policies.PolicyRule", null=True, blank=True, editable=False,
                               on_delete=models.PROTECT, related_name="jobs")
    executor = models.ForeignKey("executors.PolicyExecutor", null=True, blank=True, editable=False,
                                 on_delete=models.PROTECT, related_name="jobs")

    class Meta:
        ordering = ["-created_at"]

    def clean(self):
        errors = self.reference_errors()
        for field in ("node_selector", "resources", "job_parameters", "job_settings"):
            if not isinstance(getattr(self, field), dict):
                errors[field] = ["must be a JSON object"]
        if errors:
            raise ValidationError(errors)
