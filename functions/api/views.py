"""API views of functions (records; deployment and calls come with the function runtime)."""
from functions.api.serializers import FunctionSerializer
from functions.filtersets import FunctionFilterSet
from functions.models import Function
from records.api.viewsets import RecordViewSet


class FunctionViewSet(RecordViewSet):
    queryset = Function.objects.all()
    serializer_class = FunctionSerializer
    filterset_class = FunctionFilterSet
    ordering_fields = ["function_id", "created_at", "function_status"]
    allow_create = False
