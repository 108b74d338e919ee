"""Filters of the executor list."""
from executors.models import PolicyExecutor
from records.api.filtersets import RecordFilterSet


class PolicyExecutorFilterSet(RecordFilterSet):
    search_fields = ("executor_id", "executor_host_uri")

    class Meta:
        model = PolicyExecutor
        fields = ["executor_id", "executor_status", "executor_runtime", "infra_status"]
