"""URL map: the API at the root (as in the description), pages under /portal/, admin under /admin/."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal import dashboard, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # The API's apps, the execution routes' first: Django tries the patterns in order, and each app's paths
    # begin with a segment of its own (executor/, function/, graph/runs, graphs/, jobs/, policy/, …).
    *[path("", include(f"{app}.api.urls")) for app in ("executors", "functions", "graphs", "jobs", "policies",
                                                       "governance", "audit", "accounts")],
    # Pages: each app's own, then the governed versions' review pages (whose <kind>/<key>/ comes last).
    path("portal/dashboard/", dashboard.dashboard, name="portal-dashboard"),
    *[path("portal/", include(f"{app}.urls")) for app in ("policies", "executors", "jobs", "functions", "graphs",
                                                          "audit", "governance")],
]

handler400 = "portal.views.bad_request"
handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
