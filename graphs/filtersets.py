"""Filters of the graph list."""
from graphs.models import Graph
from records.api.filtersets import RecordFilterSet


class GraphFilterSet(RecordFilterSet):
    search_fields = ("graph_name", "graph_description")

    class Meta:
        model = Graph
        fields = ["graph_name", "graph_version", "graph_release_tag", "status", "graph_merge_mode"]
