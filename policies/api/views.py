"""API views of policies and assets."""
from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from policygrid.archive import detect_format
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api.views import LifecycleViewSetMixin
from policies import services
from policies.api.serializers import AssetSerializer, PolicyRuleSerializer
from policies.filtersets import AssetFilterSet, PolicyRuleFilterSet
from policies.models import Asset, PolicyRule
from policies.registration import register_package
from policies.storage import asset_storage
from records.api.errors import Conflict, PayloadTooLarge
from records.api.viewsets import RecordViewSet


class PolicyRuleViewSet(LifecycleViewSetMixin, RecordViewSet):
    queryset = PolicyRule.objects.all()
    serializer_class = PolicyRuleSerializer
    filterset_class = PolicyRuleFilterSet
    ordering_fields = ["name", "version", "release_tag", "created_at", "updated_at", "status"]

    def prepare_save(self, instance) -> None:
        # Fetch and check the package, pin its digest (docs/api.md §4.1); a refused package answers 400 on `code`.
        register_package(instance)


class AssetViewSet(RecordViewSet):
    queryset = Asset.objects.all()
    serializer_class = AssetSerializer
    filterset_class = AssetFilterSet
    ordering_fields = ["asset_name", "created_at"]
    # Assets are created by uploading a file (POST /upload_asset), not as bare records.
    allow_create = False


class UploadAssetView(APIView):
    """``POST /upload_asset`` (multipart): file field ``asset``, form field ``asset_metadata`` (JSON)."""

    parser_classes = [MultiPartParser]
    queryset = Asset.objects.all()  # for the permission check: needs policies.add_asset

    @extend_schema(
        request={"multipart/form-data": {"type": "object", "properties": {
            "asset": {"type": "string", "format": "binary"},
            "asset_metadata": {"type": "string", "description": 'JSON {"asset_name", "asset_version": {"version", "tag"}, "asset_metadata"?, "asset_tags"?}'},
        }, "required": ["asset", "asset_metadata"]}},
        responses={201: AssetSerializer},
    )
    def post(self, request):
        upload = request.FILES.get("asset")
        if upload is None:
            raise ValidationError({"asset": ["is required: the file to store (multipart field 'asset')"]})
        if upload.size > settings.API_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(f"the file is {upload.size} bytes; the limit is {settings.API_MAX_UPLOAD_BYTES}")
        metadata = services.parse_asset_metadata(request.data.get("asset_metadata"))
        try:
            asset = services.store_asset(actor=request.user, upload=upload, metadata=metadata)
        except services.AssetConflict as exc:
            raise Conflict(str(exc)) from None
        data = AssetSerializer(asset).data
        return Response(
            {"success": True, "asset_uri": asset.asset_uri, "asset_id": str(asset.asset_id),
             "public_url": asset.public_url, "digest": asset.digest, "data": data},
            status=status.HTTP_201_CREATED,
        )


ARCHIVE_CONTENT_TYPES = {"zip": "application/zip", "tar": "application/x-tar", "tar.gz": "application/gzip",
                         "tar.xz": "application/x-xz", "tar.bz2": "application/x-bzip2"}


class AssetObjectView(APIView):
    """``GET /asset-object/<asset_id>``: the stored bytes (the URL a policy's ``code`` points at)."""

    queryset = Asset.objects.all()

    @extend_schema(responses={(200, content_type): OpenApiTypes.BINARY
                               for content_type in (*ARCHIVE_CONTENT_TYPES.values(), "application/octet-stream")})
    def get(self, request, asset_id):
        asset = Asset.objects.filter(asset_id=asset_id).first()
        if asset is None:
            raise NotFound(f"no asset with asset_id '{asset_id}'")
        handle = asset_storage().open(asset.storage_key, "rb")
        # The type of what the bytes are (an archive format, told by content as the package loader tells it),
        # not a guess from the uploaded file's name.
        content_type = ARCHIVE_CONTENT_TYPES.get(detect_format(handle.read(512)), "application/octet-stream")
        handle.seek(0)
        response = FileResponse(handle, as_attachment=True, filename=asset.file_name or "asset",
                                content_type=content_type)
        response["X-Content-Digest"] = asset.digest
        return response
