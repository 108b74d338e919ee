"""The lifecycle in the Django admin: the transitions as admin actions, the audit history on each object,
and behaviour-relevant fields read-only once a version leaves draft (docs/governance.md §4)."""
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from governance import lifecycle
from governance.models import SigningKey
from records.admin import ReadOnlyAdmin


def _run_transition(modeladmin, request, queryset, name: str, func) -> None:
    done, refused = [], []
    for obj in queryset:
        try:
            func(obj, request.user)
        except lifecycle.TransitionRefused as exc:
            refused.append(f"{obj.key}: {exc.message}")
        else:
            done.append(obj.key)
    if done:
        modeladmin.message_user(request, f"{name}: {', '.join(done)}", messages.SUCCESS)
    for message in refused:
        modeladmin.message_user(request, message, messages.ERROR)


COMMENT = "via the admin"


@admin.action(description="Submit the selected drafts for review")
def submit_action(modeladmin, request, queryset):
    _run_transition(modeladmin, request, queryset, "submitted", lambda o, u: lifecycle.submit(o, u, COMMENT))


@admin.action(description="Approve the selected versions in review")
def approve_action(modeladmin, request, queryset):
    _run_transition(modeladmin, request, queryset, "approved", lambda o, u: lifecycle.approve(o, u, COMMENT))


@admin.action(description="Reject the selected versions in review (back to draft)")
def reject_action(modeladmin, request, queryset):
    _run_transition(modeladmin, request, queryset, "rejected", lambda o, u: lifecycle.reject(o, u, COMMENT))


@admin.action(description="Deprecate the selected approved versions")
def deprecate_action(modeladmin, request, queryset):
    _run_transition(modeladmin, request, queryset, "deprecated", lambda o, u: lifecycle.deprecate(o, u, COMMENT))


@admin.action(description="Retire the selected versions")
def retire_action(modeladmin, request, queryset):
    _run_transition(modeladmin, request, queryset, "retired", lambda o, u: lifecycle.retire(o, u, COMMENT))


class GovernedAdminMixin:
    """Mix into the ``RecordAdmin`` of a ``GovernedModel``."""

    actions = [submit_action, approve_action, reject_action, deprecate_action, retire_action]

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj)) + ("audit_history",)
        if obj is not None and obj.is_frozen:
            fields += tuple(name for name in obj.frozen_fields if name not in fields)
        return fields

    def has_change_permission(self, request, obj=None):
        # The API's ownership rule holds here too: staff who aren't admins edit only their own versions.
        if obj is not None and obj.edit_refusal(request.user) is not None:
            return False
        return super().has_change_permission(request, obj)

    @admin.display(description="History (audit trail)")
    def audit_history(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        entries = lifecycle.history(obj).order_by("-seq")[:50]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.seq, e.timestamp.strftime("%Y-%m-%d %H:%M:%S"), e.actor_username or "system", e.action,
                 e.data.get("comment") or e.data.get("reason") or ", ".join(e.data.get("changed", [])))
                for e in entries
            ),
        )
        return format_html(
            '<table><thead><tr><th>#</th><th>When</th><th>Who</th><th>Action</th><th>Comment</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            rows,
        )


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    """Public halves of the release-signing keys; create, rotate and revoke them with manage.py commands."""

    list_display = ("key_id", "status", "algorithm", "created_at", "retired_at", "revoked_at")
    list_filter = ("status",)
