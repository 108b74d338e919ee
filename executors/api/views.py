"""API views of executors."""
from executors.api.serializers import PolicyExecutorSerializer
from executors.filtersets import PolicyExecutorFilterSet
from executors.models import PolicyExecutor
from portal.api.viewsets import RecordViewSet


class PolicyExecutorViewSet(RecordViewSet):
    queryset = PolicyExecutor.objects.all()
    serializer_class = PolicyExecutorSerializer
    filterset_class = PolicyExecutorFilterSet
    ordering_fields = ["executor_id", "created_at", "executor_status", "last_seen"]
