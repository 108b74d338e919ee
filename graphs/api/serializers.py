"""Serializers of graphs."""
from governance.api.serializers import GovernedSerializerMixin
from graphs.models import Graph
from records.api.serializers import RecordSerializer


class GraphSerializer(GovernedSerializerMixin, RecordSerializer):
    class Meta(RecordSerializer.Meta):
        model = Graph
        exclude = ["id"]
        fields = None
        read_only_fields = ["graph_uri", "status", "uses_retired_policy"]
