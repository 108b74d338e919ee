"""Side effects on policies and assets: storing uploaded packages, reading them back."""
import hashlib
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.db import IntegrityError, transaction

from policies.models import Asset


def asset_storage():
    return storages["assets"]


def parse_asset_metadata(raw: str | None) -> dict:
    """The ``asset_metadata`` form field of ``/upload_asset`` (api.md §4.2), checked for shape."""
    if raw is None or raw == "":
        raise ValidationError({"asset_metadata": ["is required: a JSON object with asset_name and asset_version"]})
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError({"asset_metadata": [f"is not valid JSON: {exc.msg} at position {exc.pos}"]}) from None
    if not isinstance(meta, dict):
        raise ValidationError({"asset_metadata": ["must be a JSON object"]})
    unknown = sorted(set(meta) - {"asset_name", "asset_version", "asset_metadata", "asset_tags"})
    if unknown:
        raise ValidationError({f"asset_metadata.{name}": ["unknown field"] for name in unknown})
    if "asset_name" not in meta or "asset_version" not in meta:
        raise ValidationError({"asset_metadata": ["needs asset_name and asset_version {\"version\", \"tag\"}"]})
    return meta


def store_asset(*, actor, upload, metadata: dict) -> Asset:
    """Store ``upload`` in the configured storage and record it. Nothing is kept if any step fails."""
    asset = Asset(
        asset_name=metadata["asset_name"],
        asset_version=metadata["asset_version"],
        asset_metadata=metadata.get("asset_metadata", {}),
        asset_tags=metadata.get("asset_tags", []),
        file_name=(upload.name or "asset")[:255],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    asset.compute_derived_fields()
    asset.full_clean(validate_unique=False, validate_constraints=False)
    if Asset.objects.filter(asset_uri=asset.asset_uri).exists():
        raise AssetConflict(asset.asset_uri)

    hasher = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():
        hasher.update(chunk)
        size += len(chunk)
    upload.seek(0)
    asset.digest = "sha256:" + hasher.hexdigest()
    asset.size = size
    storage = asset_storage()
    asset.storage_key = storage.save(f"{asset.asset_id}/{_safe_name(asset.file_name)}", upload)
    asset.public_url = f"{settings.PUBLIC_BASE_URL}/asset-object/{asset.asset_id}"
    try:
        with transaction.atomic():
            asset.save()
    except IntegrityError:
        storage.delete(asset.storage_key)
        raise AssetConflict(asset.asset_uri) from None
    except Exception:
        storage.delete(asset.storage_key)
        raise
    return asset


def read_asset_bytes(asset: Asset) -> bytes:
    with asset_storage().open(asset.storage_key, "rb") as handle:
        return handle.read()


def delete_asset(asset: Asset) -> None:
    key = asset.storage_key
    with transaction.atomic():
        asset.delete()
        # The bytes go only once the row is gone for good.
        transaction.on_commit(lambda: asset_storage().delete(key) if key else None)


class AssetConflict(Exception):
    def __init__(self, uri: str):
        super().__init__(f"an asset with asset_uri '{uri}' already exists")
        self.uri = uri


def _safe_name(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name.rsplit("/", 1)[-1])
    return keep.lstrip(".") or "asset"
