"""Admin of graphs."""
from django.contrib import admin

from governance.admin import GovernedAdminMixin
from graphs.models import Graph
from records.admin import RecordAdmin


@admin.register(Graph)
class GraphAdmin(GovernedAdminMixin, RecordAdmin):
    list_display = ("graph_uri", "status", "graph_merge_mode", "updated_at")
    list_filter = ("status", "graph_merge_mode")
    search_fields = ("graph_uri", "graph_name", "graph_description")
    machine_fields = ("graph_uri", "status")
