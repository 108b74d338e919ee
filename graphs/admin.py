"""Admin of graphs."""
from django.contrib import admin

from graphs.models import Graph
from portal.admin_base import RecordAdmin
from portal.admin_lifecycle import GovernedAdminMixin


@admin.register(Graph)
class GraphAdmin(GovernedAdminMixin, RecordAdmin):
    list_display = ("graph_uri", "status", "graph_merge_mode", "updated_at")
    list_filter = ("status", "graph_merge_mode")
    search_fields = ("graph_uri", "graph_name", "graph_description")
    machine_fields = ("graph_uri", "status")
