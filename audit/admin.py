"""Admin of the audit trail: read-only."""
from django.contrib import admin

from audit.models import AuditEntry
from records.admin import ReadOnlyAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail: append-only and hash-chained; `manage.py verify_audit` checks it."""

    list_display = ("seq", "timestamp", "actor_username", "action", "target_type", "target_key")
    list_filter = ("action", "target_type")
    search_fields = ("target_key", "actor_username", "action", "request_id")
    ordering = ("-seq",)

    def get_actions(self, request):
        return {}  # not even the bulk "delete selected"
