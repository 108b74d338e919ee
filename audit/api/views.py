"""``GET /audit`` (the trail, filterable) and ``GET /audit/checkpoints`` (its signed checkpoints); read-only,
viewer role (docs/governance.md §3)."""
import django_filters
from rest_framework import viewsets

from audit.api.serializers import AuditCheckpointSerializer, AuditEntrySerializer
from audit.models import AuditCheckpoint, AuditEntry
from records.api.viewsets import ok


class AuditEntryFilterSet(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_username")
    action = django_filters.CharFilter()
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    target_type = django_filters.CharFilter()
    target_key = django_filters.CharFilter()
    request_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = ["actor", "action", "target_type", "target_key", "request_id"]


class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """Entries can only be read: no route creates, edits or deletes them (the services write them)."""

    queryset = AuditEntry.objects.all().order_by("-seq")
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet
    ordering_fields = ["seq", "timestamp"]
    lookup_field = "seq"
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "head", "options"]

    def retrieve(self, request, *args, **kwargs):
        return ok(self.get_serializer(self.get_object()).data)


class AuditCheckpointViewSet(viewsets.ReadOnlyModelViewSet):
    """The signed checkpoints, newest first, for verifiers outside the portal (``?since_seq=`` skips older)."""

    queryset = AuditCheckpoint.objects.all().order_by("-seq")
    serializer_class = AuditCheckpointSerializer
    lookup_field = "seq"
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        since = self.request.query_params.get("since_seq", "")
        return self.queryset.filter(seq__gt=int(since)) if since.isdigit() else self.queryset

    def retrieve(self, request, *args, **kwargs):
        return ok(self.get_serializer(self.get_object()).data)
