"""Release signing on the portal side (governance.md §5): the key store, signing on approval, rotation.

Private keys are PKCS#8 PEM files of mode 0600 in ``settings.SIGNING_KEY_DIR`` (a folder of mode 0700 under
the state folder by default) and are only ever read here; the database holds the public halves and their
status, which ``GET /keys`` publishes. The statement format and verification live in the SDK
(``policygrid.signing``) so that the signer and every verifier share one definition.
"""
from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone
from policygrid.errors import IntegrityError
from policygrid.signing import canonical_json, grant_statement, release_statement, verify_statement

from audit.services import write_audit
from governance.models import KeyStatus, SigningKey

_cache_lock = threading.Lock()
_private_cache: dict[tuple[str, str], Ed25519PrivateKey] = {}


class KeyStoreError(Exception):
    """The key store is missing a key, or a key can't be used (revoked, unknown)."""


def key_dir() -> Path:
    return Path(settings.SIGNING_KEY_DIR)


def _key_path(key_id: str) -> Path:
    return key_dir() / f"{key_id}.pem"


def _key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _write_private_key(key_id: str, private_key: Ed25519PrivateKey) -> Path:
    folder = key_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = _key_path(key_id)
    # O_EXCL + mode 0600 at creation: the key is never readable by others, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def create_signing_key(actor=None) -> SigningKey:
    """Create a key pair; the new key signs from now on and the previously active one is retired.

    Retired keys keep verifying the signatures they made until they are revoked.
    """
    private_key = Ed25519PrivateKey.generate()
    public_raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = _key_id(public_raw)
    path = _write_private_key(key_id, private_key)
    try:
        with transaction.atomic():
            now = timezone.now()
            retired = list(
                SigningKey.objects.select_for_update().filter(status=KeyStatus.ACTIVE).values_list("key_id", flat=True)
            )
            SigningKey.objects.filter(key_id__in=retired).update(status=KeyStatus.RETIRED, retired_at=now)
            key = SigningKey.objects.create(
                key_id=key_id, public_key=base64.b64encode(public_raw).decode(), status=KeyStatus.ACTIVE
            )
            write_audit(actor, "signing_key.create", "portal.signingkey", key_id, {"retired": retired})
            _forget_active_key()
    except Exception:
        path.unlink(missing_ok=True)
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
        _forget_active_key()
        write_audit(actor, "signing_key.revoke", "portal.signingkey", key_id, {"previous_status": previous})
        transaction.on_commit(lambda: _key_path(key_id).unlink(missing_ok=True))
    with _cache_lock:
        for cache_key in [k for k in _private_cache if k[1] == key_id]:
            del _private_cache[cache_key]
    return key


def _load_private_key(key_id: str) -> Ed25519PrivateKey:
    cache_key = (str(key_dir()), key_id)
    with _cache_lock:
        cached = _private_cache.get(cache_key)
    if cached is not None:
        return cached
    path = _key_path(key_id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyStoreError(
            f"the private half of signing key {key_id} is not in the key store {key_dir()}: "
            "rotate to a new key with `manage.py rotate_signing_key`"
        ) from None
    private_key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise KeyStoreError(f"{path} is not an Ed25519 private key")
    with _cache_lock:
        _private_cache[cache_key] = private_key
    return private_key


ACTIVE_KEY_CACHE_KEY = "signing:active-key-id"


def _forget_active_key() -> None:
    # create/rotate/revoke are the only writers of keys: each forgets the cached id once it has committed.
    transaction.on_commit(lambda: caches[settings.RECORD_CACHE].delete(ACTIVE_KEY_CACHE_KEY))


def active_key(actor=None) -> SigningKey:
    """The key that signs new approvals; the first approval of a fresh deployment creates one."""
    key = SigningKey.objects.filter(status=KeyStatus.ACTIVE).first()
    if key is None or not _key_path(key.key_id).exists():
        key = create_signing_key(actor)
    return key


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
    signature = _load_private_key(key.key_id).sign(canonical_json(statement))
    return key.key_id, base64.b64encode(signature).decode()


def sign_grant(uri: str, code_digest: str, *, dry_run: bool) -> dict:
    """A short-lived execution grant for one call (``policygrid.signing.grant_statement``), signed with the
    active key: the executor runs a version only with the portal's grant for exactly that call."""
    statement = grant_statement(uri=uri, code_digest=code_digest, dry_run=dry_run,
                                expires_at=int(timezone.now().timestamp()) + settings.EXECUTION_GRANT_SECONDS)
    cache = caches[settings.RECORD_CACHE]
    key_id = cache.get(ACTIVE_KEY_CACHE_KEY)
    if key_id is None or not _key_path(key_id).exists():
        key_id = active_key().key_id
        cache.set(ACTIVE_KEY_CACHE_KEY, key_id, settings.RECORD_CACHE_SECONDS)
    signature = _load_private_key(key_id).sign(canonical_json(statement))
    return {"statement": statement, "key_id": key_id, "signature": base64.b64encode(signature).decode()}


def published_keys() -> list[dict]:
    """Every public key with its status, as ``GET /keys`` publishes them."""
    return [
        {
            "key_id": key.key_id,
            "algorithm": key.algorithm,
            "public_key": key.public_key,
            "status": key.status,
            "created_at": key.created_at.isoformat(),
            "retired_at": key.retired_at.isoformat() if key.retired_at else None,
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        }
        for key in SigningKey.objects.all()
    ]


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
