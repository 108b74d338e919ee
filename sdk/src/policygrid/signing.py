"""Signed releases (docs/governance.md §5): the canonical release statement and its Ed25519 verification.

The portal signs, when a version becomes approved, the canonical JSON of its behaviour-relevant fields, its
URI and its `code_digest`. Every loader (the SDK, the executor service, the job runner, the function server)
verifies the signature and the package digest before loading when verification is on; any failure is an
`IntegrityError` (`error_type: "integrity"`). This module is the one implementation of both halves of the
statement, so the portal and the data plane can't disagree on what was signed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import IntegrityError, NotFound

STATEMENT_VERSION = 1
ALGORITHM = "ed25519"
# The behaviour-relevant fields of a policy version (its `frozen_fields` in the portal).
POLICY_SIGNED_FIELDS = (
    "code",
    "code_digest",
    "code_type",
    "type",
    "policy_input_schema",
    "policy_output_schema",
    "policy_settings_schema",
    "policy_parameters_schema",
    "policy_settings",
    "policy_parameters",
    "management_commands_schema",
    "policy_network",
)
# Signed fields a record of an earlier portal may lack, and the value they stand for then (no network).
SIGNED_FIELD_DEFAULTS = {"policy_network": {}}
VERIFY_ENV = "POLICYGRID_VERIFY_SIGNATURES"


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def release_statement(kind: str, uri: str, code_digest: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The statement a release signature covers."""
    return {
        "statement_version": STATEMENT_VERSION,
        "kind": kind,
        "uri": uri,
        "code_digest": code_digest or "",
        "fields": dict(fields),
    }


def policy_statement(record: Mapping[str, Any]) -> dict[str, Any]:
    """The release statement of a policy record as `GET /policy/<uri>` returns it."""
    missing = [name for name in ("policy_rule_uri", *POLICY_SIGNED_FIELDS)
               if name not in record and name not in SIGNED_FIELD_DEFAULTS]
    if missing:
        raise IntegrityError(
            f"the policy record lacks signed fields: {', '.join(missing)}",
            errors={name: ["missing"] for name in missing},
        )
    return release_statement(
        "policy",
        record["policy_rule_uri"],
        record.get("code_digest") or "",
        {name: record.get(name, SIGNED_FIELD_DEFAULTS.get(name)) for name in POLICY_SIGNED_FIELDS},
    )


GRANT_KIND = "execution_grant"


def grant_statement(*, uri: str, code_digest: str, dry_run: bool, expires_at: int,
                    purpose: str = "call", caller: str = "") -> dict[str, Any]:
    """What the portal signs to authorise one use of a version on an executor (a short-lived grant). ``purpose``
    binds it to that use: ``call`` (Type 2), ``job:<job_id>`` or ``function:<name>``, so a grant for one call
    can't start a job, nor one job's grant another job. ``caller`` names who asked (``user:<id>``): an executor
    runs each caller's calls in processes no other caller's call shares."""
    return {"statement_version": STATEMENT_VERSION, "kind": GRANT_KIND, "uri": uri, "code_digest": code_digest,
            "dry_run": bool(dry_run), "expires_at": int(expires_at), "purpose": purpose, "caller": caller}


def check_grant(grant: Mapping[str, Any] | None, record: Mapping[str, Any], dry_run: bool, keys: Any,
                now: float, purpose: str = "call") -> dict[str, Any]:
    """Verify an execution grant (``{"statement", "key_id", "signature"}``) for this call; return its statement.

    The grant must be signed by a known, unrevoked key, name this record's URI and package digest, say whether
    the call is a dry run exactly as the call does, be for this ``purpose``, and not have expired. Raises
    IntegrityError naming the fault.
    """
    uri = record.get("policy_rule_uri", "?")
    if not isinstance(grant, Mapping) or not isinstance(grant.get("statement"), Mapping):
        raise IntegrityError(f"the call of {uri} carries no execution grant: only the portal authorises calls",
                             errors={"grant": ["required"]})
    statement = dict(grant["statement"])
    verify_statement(statement, grant, keys)
    expected = {"kind": GRANT_KIND, "uri": uri, "code_digest": record.get("code_digest") or "",
                "dry_run": bool(dry_run), "purpose": purpose}
    for name, value in expected.items():
        if statement.get(name) != value:
            raise IntegrityError(f"the execution grant is for {name} {statement.get(name)!r}, not {value!r}",
                                 errors={f"grant.{name}": ["does not match the call"]})
    expires_at = statement.get("expires_at")
    if not isinstance(expires_at, int) or isinstance(expires_at, bool) or expires_at < now:
        raise IntegrityError(f"the execution grant for {uri} has expired", errors={"grant.expires_at": ["expired"]})
    return statement


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise IntegrityError(f"the {what} is not valid base64") from None


def normalise_keys(keys: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Accept `GET /keys`'s list (or a `{key_id: entry}` mapping) and index it by key id."""
    if isinstance(keys, Mapping):
        if "data" in keys and isinstance(keys["data"], list):  # a whole `GET /keys` envelope
            keys = keys["data"]
        else:
            return {str(k): dict(v) for k, v in keys.items()}
    return {str(entry["key_id"]): dict(entry) for entry in keys}


def verify_statement(statement: Mapping[str, Any], signature: Mapping[str, Any] | None, keys: Any) -> str:
    """Verify `signature` (`{"key_id", "signature"}`) over `statement`; return the key id. Raises IntegrityError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    uri = statement.get("uri", "?")
    if not signature or not signature.get("signature") or not signature.get("key_id"):
        raise IntegrityError(f"{uri} has no release signature: only signed, approved versions may load",
                             errors={"signature": ["missing"]})
    key_id = str(signature["key_id"])
    entry = normalise_keys(keys).get(key_id)
    if entry is None:
        raise IntegrityError(f"{uri} is signed by key {key_id}, which is not a known signing key",
                             errors={"signature.key_id": ["unknown key"]})
    if entry.get("status") == "revoked":
        raise IntegrityError(f"{uri} is signed by key {key_id}, which has been revoked",
                             errors={"signature.key_id": ["revoked key"]})
    if entry.get("algorithm", ALGORITHM) != ALGORITHM:
        raise IntegrityError(f"key {key_id} is not an Ed25519 key", errors={"signature.key_id": ["wrong algorithm"]})
    message = canonical_json(statement)
    verified = (entry.get("public_key"), signature["signature"], message)
    remembered = all(isinstance(part, str) for part in verified[:2])  # a hostile list or dict is not hashable
    if remembered and verified in _verified:  # the key's status was checked above, on every call
        return key_id
    try:
        public_key = Ed25519PublicKey.from_public_bytes(_b64decode(entry["public_key"], f"public key {key_id}"))
    except (KeyError, ValueError):
        raise IntegrityError(f"key {key_id} has no usable public key") from None
    try:
        public_key.verify(_b64decode(signature["signature"], "release signature"), message)
    except InvalidSignature:
        raise IntegrityError(
            f"the release signature of {uri} does not match its record: the record or the signature was altered",
            errors={"signature": ["does not verify"]},
        ) from None
    if remembered:
        if len(_verified) >= _MAX_VERIFIED:
            _verified.clear()
        _verified.add(verified)
    return key_id


# Signatures already verified, as (public key, signature, signed bytes): a pure fact, so a repeat (an execution
# grant the portal reuses for its calls of one version, a release checked at each load) skips the Ed25519
# arithmetic. Only the verification is remembered; the key's status and the statement's fields are checked
# every time.
_MAX_VERIFIED = 4096
_verified: set[tuple[Any, str, bytes]] = set()


def verify_release(record: Mapping[str, Any], digest: str | None, keys: Any) -> str:
    """Check a policy record before its package loads; return the verifying key id.

    * `digest` is the `sha256:` digest of the package bytes actually loaded: it must equal the record's
      pinned `code_digest` (a tampered package);
    * the record's `signature` must verify, with a known, unrevoked key, over the statement rebuilt from the
      record (an edited record, an unknown or revoked key).
    """
    pinned = record.get("code_digest") or ""
    if not pinned:
        raise IntegrityError(f"{record.get('policy_rule_uri', '?')} has no pinned code_digest",
                             errors={"code_digest": ["missing"]})
    if digest is not None and not hmac.compare_digest(str(digest), str(pinned)):
        raise IntegrityError(
            f"the package of {record.get('policy_rule_uri', '?')} has digest {digest}, but the release pins {pinned}",
            errors={"code_digest": [f"the package's digest is {digest}"]},
        )
    return verify_statement(policy_statement(record), record.get("signature"), keys)


def verification_enabled(explicit: bool | None = None) -> bool:
    """`explicit` if given, else the `POLICYGRID_VERIFY_SIGNATURES` environment variable (default off)."""
    if explicit is not None:
        return explicit
    return os.environ.get(VERIFY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def type1_verification(explicit: bool | None, keys: Any, client: Any) -> tuple[bool, Any]:
    """``(verify, keys)`` for a run in the caller's process: as asked (``explicit``, else
    ``POLICYGRID_VERIFY_SIGNATURES`` when it is set), else on whenever the portal publishes keys (``GET /keys``)."""
    if explicit is not None or os.environ.get(VERIFY_ENV, "").strip():
        return verification_enabled(explicit), keys
    if keys is not None:
        return True, keys
    if client is None:
        return False, None
    try:
        published = client.request("GET", "/keys").get("data", [])
    except NotFound:  # a portal that signs nothing (the earlier system) has no /keys
        return False, None
    return bool(published), published or None


def verify_loaded_release(record: Mapping[str, Any], digest: str | None, client: Any, keys: Any = None) -> str:
    """The loader's hook: fetch the published keys from the portal (`GET /keys`) unless given, then verify."""
    if keys is None:
        if client is None:
            raise IntegrityError("signature verification is on, but there are no keys and no portal to ask for them")
        keys = client.request("GET", "/keys").get("data", [])
    return verify_release(record, digest, keys)
