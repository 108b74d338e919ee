"""Portal pages of executors and the policy playground (under /portal/)."""
from django.urls import path

from executors import views

urlpatterns = [
    path("executors/", views.ExecutorListView.as_view(), name="portal-executor-list"),
    path("executors/<str:key>/", views.executor_detail, name="portal-executor"),
    path("executors/<str:key>/probe/", views.executor_probe, name="portal-executor-probe"),
    path("playground/<str:key>/", views.playground, name="portal-playground"),
]
