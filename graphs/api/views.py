"""API views of graphs."""
from governance.api.views import LifecycleViewSetMixin
from graphs.api.serializers import GraphSerializer
from graphs.filtersets import GraphFilterSet
from graphs.models import Graph
from records.api.viewsets import RecordViewSet


class GraphViewSet(LifecycleViewSetMixin, RecordViewSet):
    queryset = Graph.objects.all()
    serializer_class = GraphSerializer
    filterset_class = GraphFilterSet
    ordering_fields = ["graph_name", "graph_version", "created_at", "status"]
