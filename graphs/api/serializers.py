"""Serializers of graphs and of their runs."""
from rest_framework import serializers

from governance.api.serializers import GovernedSerializerMixin
from graphs.models import Graph, GraphRun, NodeRun
from records.api.serializers import RecordSerializer


class GraphSerializer(GovernedSerializerMixin, RecordSerializer):
    class Meta(RecordSerializer.Meta):
        model = Graph
        exclude = ["id"]
        fields = None
        read_only_fields = ["graph_uri", "status", "uses_retired_policy"]


class NodeRunSerializer(serializers.ModelSerializer):
    """One node of a run: its output when it completed, its error when it failed (read only)."""

    class Meta:
        model = NodeRun
        fields = ["node_id", "status", "attempt", "run_attempt", "started_at", "finished_at", "duration_ms",
                  "input", "output", "error", "error_type", "worker"]
        read_only_fields = fields


class GraphRunSerializer(serializers.ModelSerializer):
    """A graph run as GET /graph/runs/<run_id> answers it (docs/api.md §4.6); written by the engine only."""

    actor = serializers.SlugRelatedField(source="created_by", slug_field="username", read_only=True)
    duration_ms = serializers.SerializerMethodField()
    nodes = NodeRunSerializer(many=True, read_only=True)

    class Meta:
        model = GraphRun
        fields = ["run_id", "graph_uri", "status", "attempt", "dry_run", "input_data", "output", "error",
                  "error_type", "failed_node", "uses_retired_policy", "warnings", "timeout_seconds", "actor",
                  "created_at", "started_at", "finished_at", "duration_ms", "nodes"]
        read_only_fields = fields

    def get_duration_ms(self, run) -> float | None:
        return run.duration_ms


class GraphRunSummarySerializer(GraphRunSerializer):
    """A run in a list: without its nodes."""

    class Meta(GraphRunSerializer.Meta):
        fields = [f for f in GraphRunSerializer.Meta.fields if f not in ("nodes", "input_data")]
        read_only_fields = fields
