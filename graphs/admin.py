"""Admin of graphs, and their runs (read-only)."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from governance.admin import GovernedAdminMixin
from graphs import services
from graphs.models import Graph, GraphRun, NodeRun
from records.admin import RecordAdmin
from records.api.errors import Conflict


@admin.register(Graph)
class GraphAdmin(GovernedAdminMixin, RecordAdmin):
    list_display = ("graph_uri", "status", "graph_merge_mode", "updated_at")
    list_filter = ("status", "graph_merge_mode")
    search_fields = ("graph_uri", "graph_name", "graph_description")
    machine_fields = ("graph_uri", "status")


class NodeRunInline(admin.TabularInline):
    model = NodeRun
    extra = 0
    can_delete = False
    fields = ("node_id", "status", "attempt", "run_attempt", "started_at", "finished_at", "duration_ms", "error_type",
              "error", "worker")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(GraphRun)
class GraphRunAdmin(admin.ModelAdmin):
    """Read-only: every field of a run is written by the engine (graphs.engine); cancel as an action."""

    list_display = ("run_id", "graph_uri", "status", "attempt", "failed_node", "created_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("run_id", "graph_uri", "failed_node")
    readonly_fields = [f.name for f in GraphRun._meta.fields]
    inlines = [NodeRunInline]
    actions = ["cancel_runs"]

    def has_add_permission(self, request):
        return False  # runs exist only by execution

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected pending or running runs", permissions=["view"])
    def cancel_runs(self, request, queryset):
        for run in queryset.select_related("graph"):
            try:
                services.cancel_run(request.user, run)
            except (Conflict, PermissionDenied) as exc:
                self.message_user(request, f"run {run.run_id}: {exc}", messages.WARNING)
