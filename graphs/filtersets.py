"""Filters of the graph and graph run lists."""
from graphs.models import Graph, GraphRun
from records.api.filtersets import RecordFilterSet


class GraphFilterSet(RecordFilterSet):
    search_fields = ("graph_name", "graph_description")

    class Meta:
        model = Graph
        fields = ["graph_name", "graph_version", "graph_release_tag", "status", "graph_merge_mode"]


class GraphRunFilterSet(RecordFilterSet):
    search_fields = ("graph_uri", "failed_node")

    class Meta:
        model = GraphRun
        fields = ["graph_uri", "status", "dry_run"]
