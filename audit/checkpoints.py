"""Signed checkpoints of the audit chain's head: written, exported outside the database, verified (docs/governance.md §3).

The hash chain alone can't stop someone who can write the table: they rewrite an entry and recompute every
later hash and the head. A checkpoint signs ``{seq, entry_hash, at}`` of the chain head with the key store's
active Ed25519 key (its private half lives in the key store folder, not in the database); each is stored in
the database and appended to ``settings.AUDIT_CHECKPOINT_FILE`` outside it. A rewrite of any entry at or
before a checkpoint changes the hash at that checkpoint's seq, which the signature pins. This module writes
no audit entry and doesn't import ``audit.services`` (which calls it while appending).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from policygrid.errors import IntegrityError
from policygrid.signing import normalise_keys, verify_statement

from audit.models import AuditCheckpoint, AuditEntry, utc_text
from governance.keystore import KeyStoreError, published_keys, sign, usable_active_key

logger = logging.getLogger(__name__)
FIELDS = ("seq", "entry_hash", "at", "key_id", "signature")


def statement(record: dict) -> dict:
    """What a checkpoint's signature covers (``uri`` names it in the SDK verifier's messages)."""
    seq = record["seq"]
    return {"kind": "audit-checkpoint", "uri": f"audit checkpoint #{seq}", "seq": seq,
            "entry_hash": record["entry_hash"], "at": record["at"]}


def as_record(checkpoint: AuditCheckpoint) -> dict:
    """A checkpoint as ``GET /audit/checkpoints`` and the export file show it."""
    return {"seq": checkpoint.seq, "entry_hash": checkpoint.entry_hash, "at": utc_text(checkpoint.at),
            "key_id": checkpoint.key_id, "signature": checkpoint.signature}


def checkpoint_file() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_FILE)


def sign_head(seq: int, entry_hash: str) -> AuditCheckpoint | None:
    """Sign entry ``seq`` as the chain head; the caller holds the head's lock. None when no key can sign yet.

    The file line is appended once the transaction commits, so a rolled-back entry leaves no checkpoint there.
    """
    key = usable_active_key()
    if key is None:
        logger.warning("audit checkpoint #%s skipped: no active signing key in the key store", seq)
        return None
    at = timezone.now()
    record = {"seq": seq, "entry_hash": entry_hash, "at": utc_text(at)}
    try:
        signature = sign(statement(record), key.key_id)
    except (KeyStoreError, ValueError):
        # An unreadable key must not stop the trail itself: the next checkpoint (or the beat's) covers this one.
        logger.exception("audit checkpoint #%s skipped: key %s can't sign", seq, key.key_id)
        return None
    checkpoint = AuditCheckpoint.objects.create(seq=seq, entry_hash=entry_hash, at=at, key_id=key.key_id,
                                                signature=signature)
    line = {**record, "key_id": key.key_id, "signature": signature}
    transaction.on_commit(lambda: append(line))
    return checkpoint


def append(record: dict, path: Path | None = None) -> None:
    """Append one checkpoint line to the export file (O_APPEND: concurrent writers don't interleave lines)."""
    path = path or checkpoint_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        # The entry is committed already; `manage.py export_audit_checkpoints` rewrites the file from the DB.
        logger.exception("audit checkpoint #%s was not appended to %s", record.get("seq"), path)


def export(path: Path) -> int:
    """Write every checkpoint of the database to ``path`` (replaced atomically); returns how many."""
    records = [as_record(c) for c in AuditCheckpoint.objects.order_by("seq").iterator()]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")
    os.replace(temporary, path)
    return len(records)


def read(path: Path) -> list[dict]:
    """The checkpoints of an export file; raises ``ValueError`` naming a malformed line."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records.append({name: record[name] for name in FIELDS})
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}:{number} is not a checkpoint line") from None
    return records


def problems(exported: list[dict] | None = None, keys: Iterable[dict] | dict | None = None) -> tuple[int, tuple | None]:
    """Check every checkpoint (the database's, then ``exported``'s) against ``keys`` (default: the published
    ones) and the log; returns how many were checked and the first problem as ``(kind, seq, message)``.

    A checkpoint must carry a valid signature by a known key and the entry at its seq must still have its hash.
    Checkpoints by a revoked key prove nothing and are skipped, but the newest must verify (after a
    revocation, ``manage.py audit_checkpoint`` signs the head with the new key). An exported checkpoint
    missing from the database means checkpoint rows were deleted.
    """
    known = normalise_keys(published_keys() if keys is None else keys)
    stored = [as_record(c) for c in AuditCheckpoint.objects.order_by("seq").iterator()]
    in_db = {record["seq"] for record in stored}
    candidates = [("the database", r) for r in stored] + [("the export file", r) for r in exported or ()]
    hashes = _entry_hashes({record["seq"] for _, record in candidates})
    newest, newest_trusted = None, False
    for source, record in candidates:
        seq = record["seq"]
        trusted = known.get(str(record["key_id"]), {}).get("status") != "revoked"
        if trusted:
            try:
                verify_statement(statement(record), record, known)
            except IntegrityError as exc:
                return len(candidates), ("checkpoint", seq, f"audit checkpoint #{seq} in {source} does not verify: {exc}")
            if hashes.get(seq) != record["entry_hash"]:
                now = "is missing" if seq not in hashes else "no longer has the hash it signed"
                return len(candidates), ("rewritten", seq, f"audit entry #{seq} {now} (checkpoint of {record['at']} in "
                                         f"{source}): the log was rewritten at or before entry #{seq}")
        if source == "the export file" and seq not in in_db:
            return len(candidates), ("checkpoint", seq, f"audit checkpoint #{seq} of the export file is missing from "
                                     "the database: checkpoint rows were deleted")
        if newest is None or seq > newest:
            newest, newest_trusted = seq, trusted
        elif seq == newest:
            newest_trusted = newest_trusted or trusted
    if newest is not None and not newest_trusted:
        return len(candidates), ("checkpoint", newest, f"the newest audit checkpoint #{newest} is signed by a revoked "
                                 "key: sign the head again with `manage.py audit_checkpoint`")
    return len(candidates), None


def _entry_hashes(seqs: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    ordered = sorted(seqs)
    for start in range(0, len(ordered), 500):
        found.update(AuditEntry.objects.filter(seq__in=ordered[start:start + 500]).values_list("seq", "entry_hash"))
    return found
