"""Serializers of executors."""
from executors.models import PolicyExecutor
from records.api.serializers import RecordSerializer


class PolicyExecutorSerializer(RecordSerializer):
    class Meta(RecordSerializer.Meta):
        model = PolicyExecutor
        exclude = ["id"]
        fields = None
        read_only_fields = ["infra_status", "infra_message", "infra_config", "last_seen", "latency_ms", "health_data"]
