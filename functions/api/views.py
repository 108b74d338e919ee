"""API views of functions (docs/api.md §4.5): the records, deployment, calls, management, logs and removal."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action

from functions import services
from functions.api.serializers import FunctionSerializer
from functions.filtersets import FunctionFilterSet
from functions.models import Function
from records.api.viewsets import MAX_TAIL, RecordViewSet, ok, tail_parameter

CreateRequest = {"application/json": services.CREATE_SCHEMA}
ManagementRequest = {"application/json": services.MANAGEMENT_SCHEMA}
FAILURES = {400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT, 502: OpenApiTypes.OBJECT}
# What a route that asks the function's executor may answer besides: 502 (unreachable, or no valid answer), 504.
EXECUTOR_FAILURES = {502: OpenApiTypes.OBJECT, 504: OpenApiTypes.OBJECT}


class FunctionViewSet(RecordViewSet):
    queryset = Function.objects.all()
    serializer_class = FunctionSerializer
    filterset_class = FunctionFilterSet
    ordering_fields = ["function_id", "created_at", "function_status"]
    allow_create = False
    action_permissions = {"create_on": "functions.add_function", "create_placed": "functions.add_function",
                          "remove": "functions.delete_function", "management": "functions.change_function",
                          "call": "policies.execute_policyrule", "get_logs": "functions.view_function",
                          "replicas": "functions.view_function"}
    read_actions = (*RecordViewSet.read_actions, "get_logs", "replicas")

    def _created(self, function):
        return ok(self.get_serializer(function).data, status.HTTP_202_ACCEPTED, function_id=function.function_id)

    @extend_schema(request=CreateRequest, responses={202: FunctionSerializer, **FAILURES, 503: OpenApiTypes.OBJECT},
                   operation_id="function_create_on_executor",
                   description="Deploy a policy as a function on this executor: the policy is checked first, then "
                               "202 with the record (`deploying`); a background task makes it `ready` or `failed` "
                               "(`function_message` says why).")
    @action(detail=False, methods=["post"], url_path=r"deployments/create/(?P<executor_id>[^/]+)")
    def create_on(self, request, executor_id=None):
        return self._created(services.create_function(request.user, request.data, executor_id))

    @extend_schema(request=CreateRequest, responses={202: FunctionSerializer, **FAILURES, 503: OpenApiTypes.OBJECT},
                   operation_id="function_create_placed",
                   description="Deploy a function where the resource allocator places it (`alloc` names the "
                               "allocator policy; else the deployment's default).")
    @action(detail=False, methods=["post"], url_path="deployments/create")
    def create_placed(self, request):
        return self._created(services.create_function(request.user, request.data, None))

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, **FAILURES}, operation_id="function_remove",
                   description="Stop the function's replicas and delete its record; 409 while a graph uses it "
                               "(naming the graphs).")
    @action(detail=False, methods=["delete"], url_path=r"deployments/remove/(?P<name>[^/]+)")
    def remove(self, request, name=None):
        return ok(services.remove_function(request.user, name))

    @extend_schema(request=OpenApiTypes.ANY, responses={200: OpenApiTypes.OBJECT, **FAILURES,
                                                        504: OpenApiTypes.OBJECT}, operation_id="function_call",
                   description="Call the function: the body is the policy's `input_data`; 200 with its output. "
                               "409 while the function is not `ready`; the error types of execute_policy. Needs the "
                               "permission to execute policies (operator, admin).")
    @action(detail=False, methods=["post"], url_path=r"call_function/(?P<name>[^/]+)")
    def call(self, request, name=None):
        return ok(services.call_function(request.user, name, request.data))

    @extend_schema(request=ManagementRequest, responses={200: OpenApiTypes.OBJECT, **FAILURES, **EXECUTOR_FAILURES},
                   operation_id="function_management",
                   description="Run the policy's `management(action, data)` on every ready replica (`target: "
                               "\"all\"`, the default) or one, checked against its management_commands_schema; "
                               "one result per replica.")
    @action(detail=False, methods=["post"], url_path=r"(?P<name>[^/]+)/management")
    def management(self, request, name=None):
        return ok(services.manage_function(request.user, name, request.data))

    @extend_schema(parameters=[OpenApiParameter("tail", {"type": "integer", "minimum": 0, "maximum": MAX_TAIL},
                                                description="only the last N lines")],
                   responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT, **EXECUTOR_FAILURES},
                   operation_id="function_logs",
                   description="The function's log: every replica's lines (what the policy printed, the server's "
                               "and the runtime's notes), by time; `logs` repeats `data` for earlier clients.")
    @action(detail=False, methods=["get"], url_path=r"get_logs/(?P<name>[^/]+)")
    def get_logs(self, request, name=None):
        tail = tail_parameter(request)
        text = services.function_logs(name, tail)
        return ok(text, logs=text)

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT, **EXECUTOR_FAILURES},
                   operation_id="function_replicas",
                   description="What the runtime sees of the function now: its state and each replica's.")
    @action(detail=False, methods=["get"], url_path=r"(?P<name>[^/]+)/replicas")
    def replicas(self, request, name=None):
        return ok(services.function_replicas(name))
