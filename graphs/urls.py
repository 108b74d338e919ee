"""Portal pages of graphs (under /portal/): the list and the editor."""
from django.urls import path

from graphs import views

urlpatterns = [
    path("graphs/", views.GraphListView.as_view(), name="portal-graph-list"),
    path("graphs/editor/", views.graph_editor, name="portal-graph-editor"),
    path("graphs/editor/<str:key>/", views.graph_editor, name="portal-graph-editor-version"),
]
