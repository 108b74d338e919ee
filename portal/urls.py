"""URL map: the API at the root (as in the description), pages under /portal/, admin under /admin/."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal import dashboard, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    # Pages: each app's own, then the governed versions' review pages (whose <kind>/<key>/ comes last).
    path("portal/dashboard/", dashboard.dashboard, name="portal-dashboard"),
    *[path("portal/", include(f"{app}.urls")) for app in ("policies", "executors", "jobs", "functions", "graphs",
                                                          "audit", "governance")],
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("accounts.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("policies.api.urls")),
    path("", include("executors.api.urls")),
    path("", include("jobs.api.urls")),
    path("", include("functions.api.urls")),
    path("", include("graphs.api.urls")),
]

handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
