"""Admin of API tokens: keys are never shown; revoke instead of edit."""
from django.contrib import admin

from accounts.models import ApiToken


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
        from accounts.services import revoke_token

        for token in queryset:
            revoke_token(token, actor=request.user)
