"""Serializers of functions."""
from functions.models import Function
from records.api.serializers import RecordSerializer


class FunctionSerializer(RecordSerializer):
    class Meta(RecordSerializer.Meta):
        model = Function
        exclude = ["id"]
        fields = None
        # A deployment's shape changes only by redeploying; its descriptive fields stay editable.
        read_only_fields = [
            "function_executor_uri", "function_policy_data", "function_status", "function_message",
            "policy_rule_parameters", "policy_rule_settings", "replicas", "autoscaling", "resources",
            "node_selector", "policy_retired",
        ]
