"""Serializers of graphs."""
from graphs.models import Graph
from portal.api.lifecycle import GovernedSerializerMixin
from portal.api.serializers import RecordSerializer


class GraphSerializer(GovernedSerializerMixin, RecordSerializer):
    class Meta(RecordSerializer.Meta):
        model = Graph
        exclude = ["id"]
        fields = None
        read_only_fields = ["graph_uri", "status", "uses_retired_policy"]
