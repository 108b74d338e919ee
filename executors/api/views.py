"""API views of executors: CRUD + query (the base viewset), the Type 2 proxy and the last health probe."""
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from policygrid.wire import PUBLIC_FIELDS, execute_request_schema
from rest_framework import serializers
from rest_framework.decorators import action

from executors import services, tasks
from executors.api.serializers import PolicyExecutorSerializer
from executors.cluster import infra
from executors.filtersets import PolicyExecutorFilterSet
from executors.models import PolicyExecutor
from portal.queueing import send_after_commit
from records.api.viewsets import RecordViewSet, ok

# The body is documented by the schema that validates it (policygrid.wire): one definition, no copy.
ExecutePolicyRequest = {"application/json": execute_request_schema(fields=PUBLIC_FIELDS)}
ExecutePolicyResponse = inline_serializer("ExecutePolicyResponse", {
    "success": serializers.BooleanField(), "data": serializers.JSONField(help_text="the policy's eval output"),
})


class PolicyExecutorViewSet(RecordViewSet):
    queryset = PolicyExecutor.objects.all()
    serializer_class = PolicyExecutorSerializer
    filterset_class = PolicyExecutorFilterSet
    ordering_fields = ["executor_id", "created_at", "executor_status", "last_seen"]
    # Who may execute depends on the policy too (dry runs by its author/reviewers): the service decides.
    action_permissions = {"execute_policy": "authenticated", "health": "executors.view_policyexecutor",
                          "rotate_credential": "executors.change_policyexecutor",
                          "create_infra": "executors.change_policyexecutor",
                          "remove_infra": "executors.change_policyexecutor"}
    read_actions = (*RecordViewSet.read_actions, "health")

    @extend_schema(
        request=ExecutePolicyRequest,
        responses={200: ExecutePolicyResponse, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT,
                   409: OpenApiTypes.OBJECT, 500: OpenApiTypes.OBJECT, 502: OpenApiTypes.OBJECT,
                   504: OpenApiTypes.OBJECT},
        description="Type 2: run a policy on this executor (docs/api.md §4.3). Failures answer "
                    "`success: false` with `error_type` (and the policy's `exception_type`).",
        examples=[OpenApiExample("ip_allowlist", request_only=True, value={
            "policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {"ip": "10.0.0.1"},
            "parameters": {"local_allowlist": ["10.0.0.1"]}})],
    )
    @action(detail=True, methods=["post"], url_path="execute_policy")
    def execute_policy(self, request, executor_id=None):
        # Not get_object(): the executor's few columns come from the record cache (records/cache.py), which
        # its saves and deletes invalidate; the object permissions are checked as get_object() would.
        executor = services.executor_for_execution(executor_id)
        if executor is None:
            raise Http404(f"no {PolicyExecutor._meta.verbose_name} with executor_id '{executor_id}'")
        self.check_object_permissions(request, executor)
        execution = services.execute_policy(request.user, executor, request.data)
        return ok(execution.data, **({"output": execution.printed} if execution.printed is not None else {}))

    def prepare_save(self, instance) -> None:
        if instance._state.adding and not instance.credential:
            instance.credential = services.new_credential()  # shown once, in the answer to the registration

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        executor = PolicyExecutor.objects.only("credential").get(executor_id=response.data["data"]["executor_id"])
        response.data["data"]["executor_token"] = executor.credential
        return response

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT},
                   description="Issue a new credential for this executor and show it once; the previous one stops "
                               "working at the portal at once (set the new one on the service as "
                               "POLICYGRID_EXECUTOR_TOKEN).")
    @action(detail=True, methods=["post"], url_path="rotate-credential")
    def rotate_credential(self, request, executor_id=None):
        executor = self.get_object()
        return ok({"executor_id": executor.executor_id,
                   "executor_token": services.issue_credential(executor, request.user)})

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT},
                   description="The last health probe: executor_status, last_seen, latency_ms, capacity and load.")
    @action(detail=True, methods=["get"], url_path="health")
    def health(self, request, executor_id=None):
        return ok(services.health_report(self.get_object()))

    @extend_schema(
        request={"application/json": {"type": "object", "required": ["cluster_config"], "properties": {
            "cluster_config": {"description": "the cluster's kubeconfig, an object or a YAML string; stored "
                                              "encrypted, never answered"},
            "namespace": {"type": "string"}, "replicas": {"type": "integer", "minimum": 1},
            "max_processes": {"type": "integer", "minimum": 1}, "image": {"type": "string"},
            "resources": {"type": "object"}, "portal_url": {"type": "string"},
            "ready_timeout": {"type": "integer", "minimum": 1}}}},
        responses={202: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT,
                   503: OpenApiTypes.OBJECT},
        description="Provision this executor's service into a Kubernetes cluster (docs/kubernetes.md): 202, then "
                    "infra_status pending → provisioning → ready | failed with infra_message.")
    @action(detail=True, methods=["post"], url_path="create-infra")
    def create_infra(self, request, executor_id=None):
        executor = infra.request_infra(request.user, self.get_object(), request.data)
        return self._accepted(executor, tasks.provision_infra)

    @extend_schema(request={"application/json": {"type": "object", "properties": {"cascade": {"type": "boolean"}}}},
                   responses={202: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT},
                   description="Tear down what create-infra made: 202; 409 naming the jobs and functions on the "
                               "executor unless {\"cascade\": true}.")
    @action(detail=True, methods=["delete"], url_path="remove-infra")
    def remove_infra(self, request, executor_id=None):
        executor = infra.request_removal(request.user, self.get_object(), request.data)
        return self._accepted(executor, tasks.remove_infra)

    def _accepted(self, executor, task):
        """202 with the executor; ``task`` (its background half) is queued once the request's writes are in."""
        send_after_commit(task, [executor.executor_id, self.request.user.pk],
                          lambda reason: infra.task_refused(executor.executor_id, reason))
        return ok(self.get_serializer(executor).data, status_code=202)
