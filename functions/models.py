"""Function: a Type 4 deployment of a policy on an executor, addressed by its DNS-1123 name."""
from django.core.exceptions import ValidationError
from django.db import models

from functions.choices import FunctionStatus
from records.models import RecordModel
from records.validators import validate_dns_label


class Function(RecordModel):
    """A deployed, stateful policy instance set. ``function_id`` is the name given at deployment."""

    lookup_field = "function_id"
    identity_fields = ("function_id", "function_executor_id", "function_policy_rule_uri")
    references = {"policy": "function_policy_rule_uri", "executor": "function_executor_id"}
    internal_fields = ("policy", "executor")

    function_id = models.CharField(max_length=63, unique=True, validators=[validate_dns_label])
    function_executor_id = models.CharField(max_length=63, db_index=True)
    function_executor_uri = models.CharField(max_length=2048, blank=True, default="")
    function_metadata = models.JSONField(default=dict, blank=True)
    function_tags = models.JSONField(default=list, blank=True)
    function_policy_rule_uri = models.CharField(max_length=255, db_index=True)
    function_policy_data = models.JSONField(default=dict, blank=True)
    function_status = models.CharField(
        max_length=20, choices=FunctionStatus.choices, default=FunctionStatus.DEPLOYING, db_index=True
    )
    function_message = models.TextField(blank=True, default="")
    policy_rule_parameters = models.JSONField(default=dict, blank=True)
    policy_rule_settings = models.JSONField(default=dict, blank=True)
    replicas = models.PositiveIntegerField(default=1)
    autoscaling = models.JSONField(default=dict, blank=True)
    resources = models.JSONField(default=dict, blank=True)
    node_selector = models.JSONField(default=dict, blank=True)
    # Set when the policy version this function runs is retired (docs/governance.md §2): it keeps running, flagged.
    policy_retired = models.BooleanField(default=False)
    # The records the two keys above name, kept by save() (RecordModel.references): a used policy version or
    # executor can't be deleted (PROTECT → 409 naming this function).
    policy = models.ForeignKey("policies.PolicyRule", null=True, blank=True, editable=False,
                               on_delete=models.PROTECT, related_name="functions")
    executor = models.ForeignKey("executors.PolicyExecutor", null=True, blank=True, editable=False,
                                 on_delete=models.PROTECT, related_name="functions")

    class Meta:
        ordering = ["function_id"]

    def clean(self):
        errors = self.reference_errors()
        if not isinstance(self.function_tags, list) or not all(isinstance(t, str) for t in self.function_tags):
            errors["function_tags"] = ["must be a JSON array of strings"]
        for field in ("function_metadata", "function_policy_data", "policy_rule_parameters",
                      "policy_rule_settings", "autoscaling", "resources", "node_selector"):
            if not isinstance(getattr(self, field), dict):
                errors[field] = ["must be a JSON object"]
        if errors:
            raise ValidationError(errors)
