"""Admin of the portal's own models: API tokens (keys are never shown; revoke instead of edit)."""
from django.contrib import admin

from portal.models import ApiToken, AuditEntry, SigningKey


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("user", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        # A key must be shown to its owner exactly once: use the API or `manage.py create_api_token`.
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from portal.services import revoke_token

        for token in queryset:
            revoke_token(token, actor=request.user)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: the admin shows them and can't add, change or delete them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail: append-only and hash-chained; `manage.py verify_audit` checks it."""

    list_display = ("seq", "timestamp", "actor_username", "action", "target_type", "target_key")
    list_filter = ("action", "target_type")
    search_fields = ("target_key", "actor_username", "action", "request_id")
    ordering = ("-seq",)

    def get_actions(self, request):
        return {}  # not even the bulk "delete selected"


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    """Public halves of the release-signing keys; create, rotate and revoke them with manage.py commands."""

    list_display = ("key_id", "status", "algorithm", "created_at", "retired_at", "revoked_at")
    list_filter = ("status",)
