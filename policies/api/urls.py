"""API routes of policies and assets."""
from django.urls import path, re_path

from policies.api import views
from records.api.routers import ApiRouter

router = ApiRouter()
router.register("policy", views.PolicyRuleViewSet, basename="policy")
router.register("asset", views.AssetViewSet, basename="asset")
urlpatterns = [
    path("upload_asset", views.UploadAssetView.as_view(), name="upload-asset"),
    re_path(r"^upload_asset/$", views.UploadAssetView.as_view()),
    path("asset-object/<uuid:asset_id>", views.AssetObjectView.as_view(), name="asset-object"),
    *router.urls,
]
