"""API views of graphs: the records (CRUD, query, lifecycle) and their runs (execute, read, cancel, retry)."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action

from governance.api.views import LifecycleViewSetMixin
from graphs import services
from graphs.api.serializers import GraphRunSerializer, GraphRunSummarySerializer, GraphSerializer
from graphs.filtersets import GraphFilterSet, GraphRunFilterSet
from graphs.models import Graph, GraphRun
from records.api.viewsets import RecordViewSet, ok

FAILURES = {code: OpenApiTypes.OBJECT for code in (400, 403, 404, 409, 500, 502, 504)}


class GraphViewSet(LifecycleViewSetMixin, RecordViewSet):
    queryset = Graph.objects.all()
    serializer_class = GraphSerializer
    filterset_class = GraphFilterSet
    ordering_fields = ["graph_name", "graph_version", "created_at", "status"]


class GraphRunViewSet(RecordViewSet):
    """Runs are created by ``POST /graph/execute_graph`` and written by the engine; clients read them."""

    queryset = GraphRun.objects.select_related("created_by").prefetch_related("nodes")
    serializer_class = GraphRunSerializer
    filterset_class = GraphRunFilterSet
    ordering_fields = ["created_at", "status", "finished_at"]
    allow_create = False
    http_method_names = ["get", "post", "head", "options"]
    # Who may execute depends on the graph too (dry runs by its author/reviewers): the services decide.
    action_permissions = {"list": "graphs.view_graph", "retrieve": "graphs.view_graph",
                          "execute": "authenticated", "cancel": "authenticated", "retry": "authenticated"}

    def get_serializer_class(self):
        return GraphRunSummarySerializer if self.action == "list" else GraphRunSerializer

    def get_object(self):
        run = services.find_run(self.kwargs.get(self.lookup_field))
        self.check_object_permissions(self.request, run)
        return run

    def query(self, request):  # not a route: runs are listed and filtered with ?graph_uri=… &status=…
        raise NotImplementedError

    @extend_schema(request={"application/json": services.EXECUTE_SCHEMA},
                   responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT, **FAILURES, 503: OpenApiTypes.OBJECT},
                   operation_id="graph_execute",
                   description="Run an approved (or deprecated) graph version; authors and reviewers may dry-run a "
                               "draft. Synchronous: 200 with the graph's output as `data` and `run_id`; a failed "
                               "run answers its failure (`error_type`, `failed_node`, `run_id`). With `async: "
                               "true`: 202 with `run_id` at once; read the run at GET /graph/runs/<run_id>.")
    def execute(self, request):
        run = services.execute_graph(request.user, request.data)
        return self._answer(run, bool(isinstance(request.data, dict) and request.data.get("async")))

    def _answer(self, run, queued: bool):
        if queued:
            return ok({"run_id": str(run.run_id), "status": run.status, "attempt": run.attempt},
                      status.HTTP_202_ACCEPTED, run_id=str(run.run_id))
        return ok(services.sync_outcome(run), run_id=str(run.run_id), attempt=run.attempt)

    @extend_schema(request=None, responses={200: GraphRunSerializer, **FAILURES}, operation_id="graph_run_cancel",
                   description="Cancel a pending or running run: nodes not started never start, running ones "
                               "finish; 409 once it has ended.")
    @action(detail=True, methods=["post"], url_path="cancel")
    def cancel(self, request, run_id=None):
        return ok(GraphRunSerializer(services.cancel_run(request.user, self.get_object())).data)

    @extend_schema(request={"application/json": services.RETRY_SCHEMA},
                   responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT, **FAILURES, 503: OpenApiTypes.OBJECT},
                   operation_id="graph_run_retry",
                   description="A new attempt of a failed or cancelled run: the failed node and what follows it "
                               "run again, completed nodes keep their outputs. Answers like execute_graph.")
    @action(detail=True, methods=["post"], url_path="retry")
    def retry(self, request, run_id=None):
        run = services.retry_run(request.user, self.get_object(), request.data)
        return self._answer(run, bool(isinstance(request.data, dict) and request.data.get("async")))
