"""Portal pages of graphs (under /portal/): the list, the editor, and the runs."""
from django.urls import path

from graphs import run_views, views

urlpatterns = [
    path("graphs/", views.GraphListView.as_view(), name="portal-graph-list"),
    path("graphs/editor/", views.graph_editor, name="portal-graph-editor"),
    path("graphs/editor/<str:key>/", views.graph_editor, name="portal-graph-editor-version"),
    path("graphs/runs/", run_views.GraphRunListView.as_view(), name="portal-graph-runs"),
    path("graphs/runs/<str:key>/", run_views.run_detail, name="portal-graph-run"),
    path("graphs/runs/<str:key>/cancel/", run_views.run_cancel, name="portal-graph-run-cancel"),
    path("graphs/runs/<str:key>/retry/", run_views.run_retry, name="portal-graph-run-retry"),
    path("graphs/run/<str:key>/", run_views.run_start, name="portal-graph-run-start"),
]
