"""Release signing on the portal side (docs/governance.md §5): signing on approval, key creation, rotation, revocation.

The key store itself (private halves in ``settings.SIGNING_KEY_DIR``, public halves in the database, ``GET
/keys``) is ``governance.keystore``; this module audits the changes to it. The statement format and
verification live in the SDK (``policygrid.signing``) so that the signer and every verifier share one definition.
"""
from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone
from policygrid.errors import IntegrityError
from policygrid.signing import grant_statement, release_statement, verify_statement

from audit.services import write_audit
from governance.keystore import (
    KeyStoreError,
    forget,
    key_dir,
    key_path,
    new_key,
    published_keys,
    sign,
    usable_active_key,
)
from governance.models import KeyStatus, SigningKey

__all__ = ["KeyStoreError", "key_dir", "published_keys"]  # the key store's names the commands import from here


def create_signing_key(actor=None) -> SigningKey:
    """Create a key pair; the new key signs from now on and the previously active one is retired.

    Retired keys keep verifying the signatures they made until they are revoked.
    """
    key = None
    try:
        with transaction.atomic():
            key, retired = new_key()
            write_audit(actor, "signing_key.create", "portal.signingkey", key.key_id, {"retired": retired})
            _forget_active_key()
    except Exception:
        if key is not None:
            key_path(key.key_id).unlink(missing_ok=True)  # no row publishes it: its private half goes too
        raise
    return key


def rotate_signing_key(actor=None) -> SigningKey:
    """A new key signs new approvals; old signatures stay verifiable until their key is revoked."""
    return create_signing_key(actor)


def revoke_signing_key(key_id: str, actor=None) -> SigningKey:
    """Revoke a key: signatures it made no longer verify, and its private half is destroyed."""
    with transaction.atomic():
        key = SigningKey.objects.select_for_update().filter(key_id=key_id).first()
        if key is None:
            raise KeyStoreError(f"no signing key with id {key_id}")
        if key.status == KeyStatus.REVOKED:
            raise KeyStoreError(f"signing key {key_id} is already revoked")
        previous = key.status
        key.status = KeyStatus.REVOKED
        key.revoked_at = timezone.now()
        key.save(update_fields=["status", "revoked_at"])
        write_audit(actor, "signing_key.revoke", "portal.signingkey", key_id, {"previous_status": previous})
        forget(key_id)
        _forget_active_key()
    return key


ACTIVE_KEY_CACHE_KEY = "signing:active-key-id"


def _forget_active_key() -> None:
    # create/rotate/revoke are the only writers of keys: each forgets the cached id once it has committed.
    transaction.on_commit(lambda: caches[settings.RECORD_CACHE].delete(ACTIVE_KEY_CACHE_KEY))


# A grant serves the same use (caller, version, digest, dry run, purpose) for up to GRANT_REUSE_SECONDS of its
# life in this process: an Ed25519 signature per call was ~4 % of the execution route's CPU. A reused grant is
# the same statement the next call would get but for an expiry up to that much earlier; the key's id is part of
# the memo's key, so a rotation or revocation (a new active key) signs afresh at once.
GRANT_REUSE_SECONDS = 10
_MAX_GRANTS = 4096
_grants: dict[tuple, dict] = {}


def sign_grant(uri: str, code_digest: str, *, dry_run: bool, purpose: str = "call", caller: str = "") -> dict:
    """A short-lived execution grant for one use (``policygrid.signing.grant_statement``: a call, ``job:<id>``,
    ``function:<name>``), signed with the active key: the executor runs a version only with the portal's grant
    for exactly that use."""
    cache = caches[settings.RECORD_CACHE]
    key_id = cache.get(ACTIVE_KEY_CACHE_KEY)
    if key_id is None or not key_path(key_id).exists():
        key_id = active_key().key_id
        cache.set(ACTIVE_KEY_CACHE_KEY, key_id, settings.RECORD_CACHE_SECONDS)
    now = int(timezone.now().timestamp())
    memo = (key_id, uri, code_digest, dry_run, purpose, caller)
    grant = _grants.get(memo)
    lifetime = settings.EXECUTION_GRANT_SECONDS
    if grant is not None and grant["statement"]["expires_at"] - now >= lifetime - min(GRANT_REUSE_SECONDS, lifetime // 2):
        return grant
    statement = grant_statement(uri=uri, code_digest=code_digest, dry_run=dry_run, purpose=purpose, caller=caller,
                                expires_at=now + lifetime)
    grant = {"statement": statement, "key_id": key_id, "signature": sign(statement, key_id)}
    if len(_grants) >= _MAX_GRANTS:
        _grants.clear()
    _grants[memo] = grant
    return grant


def active_key(actor=None) -> SigningKey:
    """The key that signs new approvals; the first approval of a fresh deployment creates one."""
    return usable_active_key() or create_signing_key(actor)


def statement_for(obj) -> dict:
    """The release statement of a governed version: URI, code digest and every behaviour-relevant field."""
    from audit.services import _json_safe

    fields = {name: getattr(obj, name) for name in obj.frozen_fields}
    return release_statement(
        str(obj._meta.verbose_name), obj.key, getattr(obj, "code_digest", "") or "", _json_safe(fields)
    )


def sign_statement(statement: dict, actor=None) -> tuple[str, str]:
    """Sign ``statement`` with the active key; returns (key_id, base64 signature)."""
    key = active_key(actor)
    return key.key_id, sign(statement, key.key_id)


def verify_object(obj) -> str:
    """Verify a version's stored release against its current fields and the published keys (portal side).

    Raises ``policygrid.errors.IntegrityError``; returns the key id.
    """
    release = obj.releases.first()
    if release is None or not release.signature:
        raise IntegrityError(f"{obj.key} has no signed release")
    return verify_statement(
        statement_for(obj), {"key_id": release.key_id, "signature": release.signature}, published_keys()
    )
