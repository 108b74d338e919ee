"""Filters of the function list."""
from functions.models import Function
from records.api.filtersets import RecordFilterSet


class FunctionFilterSet(RecordFilterSet):
    search_fields = ("function_id", "function_policy_rule_uri")

    class Meta:
        model = Function
        fields = ["function_id", "function_executor_id", "function_policy_rule_uri", "function_status"]
