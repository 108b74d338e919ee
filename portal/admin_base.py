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
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
