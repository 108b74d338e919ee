"""The base admin: machine-written fields read-only, the creating user recorded."""
from django.contrib import admin


class RecordAdmin(admin.ModelAdmin):
    """Admin of a ``RecordModel``: validation comes from the model's ``clean()`` like the API's."""

    machine_fields: tuple[str, ...] = ()
    list_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        fields = ("created_at", "updated_at", "created_by", *self.machine_fields)
        if obj is not None:
            fields += tuple(name for name in obj.identity_fields if name not in fields)
        return fields

    def save_model(self, request, obj, form, change):
        from django.db import transaction

        from audit.services import audit_object

        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            # The audit trail covers admin edits too (governance.md §3).
            changed = sorted(form.changed_data) if change else []
            data = ({"changed": changed, "before": {k: form.initial.get(k) for k in changed},
                     "after": {k: form.cleaned_data.get(k) for k in changed}} if change
                    else {"after": {k: v for k, v in form.cleaned_data.items()}})
            audit_object(request.user, "update" if change else "create", obj, {**data, "via": "admin"})

    def delete_model(self, request, obj):
        from django.db import transaction

        from audit.services import audit_object

        key = obj.key
        with transaction.atomic():
            super().delete_model(request, obj)
            audit_object(request.user, "delete", obj, {"via": "admin"}, target_key=key)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: the admin shows them and can't add, change or delete them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
