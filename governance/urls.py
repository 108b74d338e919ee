"""Routes of the portal pages (docs/api.md: human pages live under /portal/)."""
from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from governance import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal-review-queue"), name="portal-home"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="portal/login.html", redirect_authenticated_user=True),
        name="portal-login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="portal-logout"),
    path("review/", views.review_queue, name="portal-review-queue"),
    path("<str:kind>/compare/", views.version_compare, name="portal-compare"),
    path("<str:kind>/<str:key>/", views.version_detail, name="portal-version"),
    path("<str:kind>/<str:key>/<str:transition>/", views.version_transition, name="portal-transition"),
]
