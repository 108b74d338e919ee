"""Side effects on policies and assets: storing uploaded packages; the demo's release."""
import hashlib
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.services import audit_object
from policies.models import Asset
from policies.storage import asset_storage


def parse_asset_metadata(raw: str | None) -> dict:
    """The ``asset_metadata`` form field of ``/upload_asset`` (docs/api.md §4.2), checked for shape."""
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
            # Every change to a registry object is audited (docs/governance.md §3), in the change's transaction.
            audit_object(actor if getattr(actor, "is_authenticated", False) else None, "create", asset,
                         {"digest": asset.digest, "size": asset.size, "file_name": asset.file_name})
    except IntegrityError:
        storage.delete(asset.storage_key)
        raise AssetConflict(asset.asset_uri) from None
    except Exception:
        storage.delete(asset.storage_key)
        raise
    return asset


class AssetConflict(Exception):
    def __init__(self, uri: str):
        super().__init__(f"an asset with asset_uri '{uri}' already exists")
        self.uri = uri


def _safe_name(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name.rsplit("/", 1)[-1])
    return keep.lstrip(".") or "asset"


# --- the demo release ------------------------------------------------------------------------------------


def install_sample(name: str, actor, *, asset_name: str, description: str, tags: list[str]):
    """Register the SDK's sample policy ``name`` (``policygrid.samples``) as a draft created by ``actor``, its
    package stored as an asset; returns (the version, whether it was created now). Idempotent by URI."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from policygrid.samples import sample_archive, sample_record

    from policies.models import Asset, PolicyRule
    from policies.registration import register_package
    from records.services import save_record

    record = sample_record(name)
    uri = f"{record['name']}:{record['version']}-{record['release_tag']}"
    existing = PolicyRule.objects.filter(policy_rule_uri=uri).first()
    if existing is not None:
        return existing, False
    asset = Asset.objects.filter(asset_name=asset_name).first()
    if asset is None:
        upload = SimpleUploadedFile(f"{asset_name}.zip", sample_archive(name), "application/zip")
        asset = store_asset(actor=actor, upload=upload, metadata={
            "asset_name": asset_name, "asset_version": {"version": record["version"], "tag": record["release_tag"]},
            "asset_metadata": {"description": description}, "asset_tags": tags})
    policy = PolicyRule(**{k: v for k, v in record.items() if k not in ("policy_rule_uri", "code")},
                        code=asset.public_url, created_by=actor)
    policy.full_clean()
    register_package(policy)
    save_record(policy, actor, action="create", extra={"source": f"the SDK's sample {name}"})
    return policy, True


def release_for_demo(policy, admin):
    """Take the demo's sample policy through the real lifecycle to ``approved`` (signed and audited).

    ``admin`` submits it; demo reviewer accounts approve it, as many as the configured number of approvals,
    so that no one approves their own submission.
    """
    from django.contrib.auth.models import Group, User

    from accounts.choices import Role
    from governance import lifecycle
    from governance.choices import LifecycleStatus

    if policy.status == LifecycleStatus.DRAFT:
        policy = lifecycle.submit(policy, admin, "demo data: the sample policy")
    reviewers = list(User.objects.filter(groups__name=Role.REVIEWER).exclude(pk=admin.pk).order_by("pk"))
    needed = lifecycle.approvals_required()
    index = 2
    while len(reviewers) < needed:
        name = f"demo-reviewer-{index}"
        user, created = User.objects.get_or_create(username=name)
        if created:
            user.set_unusable_password()
            user.save()
        user.groups.add(Group.objects.get(name=Role.REVIEWER))
        if user not in reviewers:
            reviewers.append(user)
        index += 1
    for reviewer in reviewers[:needed]:
        policy.refresh_from_db()
        if policy.status != LifecycleStatus.IN_REVIEW:
            break
        policy = lifecycle.approve(policy, reviewer, "demo data: released for the embedded setup")
    return policy
