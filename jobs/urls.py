"""Portal pages of jobs (under /portal/)."""
from django.urls import path

from jobs import views

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="portal-job-list"),
    path("jobs/<str:key>/", views.job_detail, name="portal-job"),
    path("jobs/<str:key>/cancel/", views.job_cancel, name="portal-job-cancel"),
]
