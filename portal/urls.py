"""URL map: the API at the root (as in the description), pages under /portal/, admin under /admin/."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal import views
from portal.api.audit import AuditEntryViewSet
from portal.api.keys import keys
from portal.api.routers import ApiRouter
from portal.api.tokens import ApiTokenViewSet

token_router = ApiRouter()
token_router.register("tokens", ApiTokenViewSet, basename="tokens")
token_router.register("audit", AuditEntryViewSet, basename="audit")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("keys", keys, name="keys"),
    path("portal/", include("portal.pages.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # The resources' routes have no common prefix, so Django tries them in this order: the executors' first,
    # for the route every Type 2 call takes (execute_policy was the 126th pattern tried, ~0.1 ms a request).
    path("", include("executors.api.urls")),
    path("", include(token_router.urls)),
    path("", include("policies.api.urls")),
    path("", include("jobs.api.urls")),
    path("", include("functions.api.urls")),
    path("", include("graphs.api.urls")),
]

handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
