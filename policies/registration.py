"""Registration checks of a policy's package (docs/api.md §4.1), done through the SDK's one loader.

The portal fetches the package once, verifies a client-sent digest, unpacks it safely into the package
cache and checks the layout and the class contract by parsing the source — it never imports policy code.
Every writer of a policy calls ``register_package`` before saving (the API's create and update, the
lifecycle's submit and new-version through ``governance.signals.checking_version``, the admin's form and
the demo data): the model's ``clean()`` only checks the record itself and does no network I/O.
"""
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from policygrid.errors import PolicyGridError
from policygrid.fetch import fetch_bytes
from policygrid.package import check_package_dir, digest_of, verify_digest

from policies.models import Asset, PolicyRule
from policies.storage import fetch_options, package_cache, read_asset_bytes

ASSET_PATH = re.compile(r"/asset-object/(?P<asset_id>[0-9a-fA-F-]{36})/?$")


def own_asset_id(code: str) -> str | None:
    """The asset id when ``code`` is this portal's own asset URL (read from storage, not over HTTP)."""
    if not code.startswith(settings.PUBLIC_BASE_URL + "/"):
        return None
    match = ASSET_PATH.search(code)
    return match["asset_id"] if match else None


def read_package(code: str) -> bytes:
    asset_id = own_asset_id(code)
    if asset_id is not None:
        asset = Asset.objects.filter(asset_id=asset_id).first()
        if asset is None:
            raise ValidationError({"code": [f"no uploaded asset with id {asset_id}"]})
        return read_asset_bytes(asset)
    return fetch_bytes(code, fetch_options())


def inspect_package(code: str, expected_digest: str = "") -> str:
    """Fetch, verify and check the package at ``code``; return its pinned ``sha256:`` digest.

    Raises ``ValidationError`` on ``code`` (or ``code_digest``) with the reason, so that the API answers
    400 and nothing is saved.
    """
    try:
        data = read_package(code)
        digest = verify_digest(data, expected_digest, code) if expected_digest else digest_of(data)
        package_cache().get_or_unpack(digest, lambda: data, check=check_package_dir)
    except PolicyGridError as exc:
        field = "code_digest" if exc.error_type == "integrity" else "code"
        raise ValidationError({field: [f"the package was refused: {exc.message}"]}) from None
    return digest


def register_package(policy: PolicyRule, *, again: bool = False) -> None:
    """Check ``policy``'s package and pin its digest, unless that package was checked already (a stored
    version whose code and digest are unchanged); ``again`` checks it anyway (submission)."""
    if not again and (policy.code, policy.code_digest) == policy.checked_package:
        return
    policy.code_digest = inspect_package(policy.code, policy.code_digest)
    policy.checked_package = (policy.code, policy.code_digest)
