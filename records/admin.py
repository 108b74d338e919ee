"""The base admin: machine-written fields read-only, the creating user recorded, changes audited."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from records.documents import search_document
from records.services import DeleteRefused, RecordInUse, delete_record, save_record

VIA_ADMIN = {"via": "admin"}


class RecordAdmin(admin.ModelAdmin):
    """Admin of a ``RecordModel``: validation comes from the model's ``clean()`` like the API's, and saves
    and deletes go through ``records.services`` like the API's (audited, same delete rules and cleanup)."""

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
        # The form has already written its values into obj: the stored row is the "before".
        before = search_document(type(obj).objects.get(pk=obj.pk)) if change else None
        save_record(obj, request.user, action="update" if change else "create", before=before, extra=VIA_ADMIN)

    def delete_model(self, request, obj):
        try:
            delete_record(obj, request.user, extra=VIA_ADMIN)
        except (DeleteRefused, RecordInUse) as exc:
            # The delete view checked permissions and PROTECTed dependents already; this is a race or a
            # rule the view doesn't know: refuse rather than report a delete that did not happen.
            raise PermissionDenied(exc.message) from None

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            try:
                delete_record(obj, request.user, extra=VIA_ADMIN)
            except (DeleteRefused, RecordInUse) as exc:
                self.message_user(request, exc.message, messages.ERROR)

    def has_delete_permission(self, request, obj=None):
        # The record's own rule (a governed version past draft: admins only), as in the API.
        if obj is not None and obj.delete_refusal(request.user) is not None:
            return False
        return super().has_delete_permission(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: the admin shows them and can't add, change or delete them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
