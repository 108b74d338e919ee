"""API routes of graphs and their runs (docs/api.md §4.6)."""
from django.urls import re_path

from graphs.api import views
from records.api.routers import ApiRouter

router = ApiRouter()
router.register("graphs", views.GraphViewSet, basename="graphs")
router.register("graph/runs", views.GraphRunViewSet, basename="graph-runs")
urlpatterns = [
    re_path(r"^graph/execute_graph/?$", views.GraphRunViewSet.as_view({"post": "execute"}), name="graph-execute"),
    *router.urls,
]
