"""Portal pages of policies and assets (under /portal/)."""
from django.urls import path

from policies import views

urlpatterns = [
    path("policies/", views.PolicyListView.as_view(), name="portal-policy-list"),
    path("assets/", views.AssetListView.as_view(), name="portal-asset-list"),
    path("assets/<str:key>/", views.asset_detail, name="portal-asset"),
]
