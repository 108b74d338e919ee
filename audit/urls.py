"""The audit trail's portal page (under /portal/)."""
from django.urls import path

from audit import views

urlpatterns = [
    path("audit/", views.AuditListView.as_view(), name="portal-audit-list"),
]
