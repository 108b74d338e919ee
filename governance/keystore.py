"""The Ed25519 key store: private halves in a folder, public halves in the database; imports no audit code.

Release signing (``governance.signing``) and the audit trail's checkpoints (``audit.checkpoints``) both sign
with it, which is why it writes no audit entry itself: callers that change keys audit the change, and the
audit app can use it without an import cycle (audit → governance.keystore, governance.signing → audit).
Private keys are PKCS#8 PEM files of mode 0600 in ``settings.SIGNING_KEY_DIR`` (a folder of mode 0700) and
are only ever read here; the database holds the public halves and their status (``GET /keys``).
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
from django.db import transaction
from django.utils import timezone
from policygrid.signing import canonical_json

from governance.models import KeyStatus, SigningKey

_cache_lock = threading.Lock()
_private_cache: dict[tuple[str, str], Ed25519PrivateKey] = {}


class KeyStoreError(Exception):
    """The key store is missing a key, or a key can't be used (revoked, unknown)."""


def key_dir() -> Path:
    return Path(settings.SIGNING_KEY_DIR)


def key_path(key_id: str) -> Path:
    return key_dir() / f"{key_id}.pem"


def _write_private_key(key_id: str, private_key: Ed25519PrivateKey) -> Path:
    folder = key_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = key_path(key_id)
    # O_EXCL + mode 0600 at creation: the key is never readable by others, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def new_key() -> tuple[SigningKey, list[str]]:
    """Create a key pair that signs from now on; returns it and the ids of the keys it retired.

    Runs in the caller's transaction (the caller audits it); the private file goes if the transaction fails.
    """
    private_key = Ed25519PrivateKey.generate()
    public_raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(public_raw).hexdigest()[:16]
    path = _write_private_key(key_id, private_key)
    try:
        with transaction.atomic():
            retired = list(
                SigningKey.objects.select_for_update().filter(status=KeyStatus.ACTIVE).values_list("key_id", flat=True)
            )
            SigningKey.objects.filter(key_id__in=retired).update(status=KeyStatus.RETIRED, retired_at=timezone.now())
            key = SigningKey.objects.create(
                key_id=key_id, public_key=base64.b64encode(public_raw).decode(), status=KeyStatus.ACTIVE
            )
    except Exception:
        path.unlink(missing_ok=True)
        raise
    return key, retired


def forget(key_id: str) -> None:
    """Drop a revoked key's private half from the cache (its file is deleted when the revocation commits)."""
    transaction.on_commit(lambda: key_path(key_id).unlink(missing_ok=True))
    with _cache_lock:
        for cache_key in [k for k in _private_cache if k[1] == key_id]:
            del _private_cache[cache_key]


def _load_private_key(key_id: str) -> Ed25519PrivateKey:
    cache_key = (str(key_dir()), key_id)
    with _cache_lock:
        cached = _private_cache.get(cache_key)
    if cached is not None:
        return cached
    path = key_path(key_id)
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


def usable_active_key() -> SigningKey | None:
    """The active key if its private half is in the key store, else None."""
    key = SigningKey.objects.filter(status=KeyStatus.ACTIVE).first()
    return key if key is not None and key_path(key.key_id).exists() else None


def sign(statement: dict, key_id: str) -> str:
    """The base64 Ed25519 signature of ``statement``'s canonical JSON by the key ``key_id``."""
    return base64.b64encode(_load_private_key(key_id).sign(canonical_json(statement))).decode()


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
