"""The one audit writer and the chain verifier (docs/governance.md §3).

``write_audit`` is called by every service function (API, admin, pages, commands, background tasks) with
an explicit actor; it works inside and outside requests. The request id comes from ``RequestIdMiddleware``
when there is a request, or is passed explicitly by tasks that carry it along.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import router, transaction
from django.utils import timezone

from audit import checkpoints
from audit.chain import ENTRY_COLUMNS, append, locked_head, writers_turn
from audit.middleware import current_request_id
from audit.models import AuditChainHead, AuditCheckpoint, AuditEntry, utc_text

GENESIS_HASH = "0" * 64

class _AuditEncoder(DjangoJSONEncoder):
    def default(self, o):
        try:
            return super().default(o)
        except TypeError:
            return str(o)  # model instances, files: their readable form


def _json_safe(data: Any) -> Any:
    """Round-trip through JSON so that what is stored is exactly what was hashed (dates, UUIDs, decimals).

    Data already made of JSON's own types (as an execution's entry is) comes back as it is, unchanged by the
    round trip, without one."""
    if _plain_json(data, 0):
        return data
    return json.loads(json.dumps(data, cls=_AuditEncoder))


_SCALARS = (str, int, float, bool, type(None))


def _plain_json(value: Any, depth: int) -> bool:
    """True when ``value`` is a tree of dicts with text keys, lists and finite JSON scalars (exact types)."""
    kind = type(value)
    if kind is float:
        return value == value and value not in (float("inf"), float("-inf"))  # NaN and infinities aren't JSON
    if kind in _SCALARS:
        return True
    if depth > 16:
        return False
    if kind is dict:
        return all(type(key) is str and _plain_json(item, depth + 1) for key, item in value.items())
    if kind is list:
        return all(_plain_json(item, depth + 1) for item in value)
    return False


def canonical_content(
    *,
    timestamp: datetime,
    actor_id: int | None,
    actor_username: str,
    action: str,
    target_type: str,
    target_key: str,
    request_id: str,
    data: Any,
    prev_hash: str,
) -> bytes:
    """The bytes an entry's hash covers: sorted-key compact JSON of every column but ``seq`` and the hash."""
    return json.dumps(
        {
            "timestamp": utc_text(timestamp),
            "actor_id": actor_id,
            "actor_username": actor_username,
            "action": action,
            "target_type": target_type,
            "target_key": target_key,
            "request_id": request_id,
            "data": data,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def entry_hash_of(**content) -> str:
    return hashlib.sha256(canonical_content(**content)).hexdigest()


def write_audit(
    actor,
    action: str,
    target_type: str,
    target_key: str,
    data: dict | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    """Append one entry to the chain and return it.

    ``actor`` is a user or ``None`` (the system). Runs in its own atomic block (joining the caller's
    transaction if there is one, so a rolled-back change leaves no entry). The chain head is locked first:
    on PostgreSQL ``select_for_update`` serialises concurrent appenders; SQLite's IMMEDIATE transactions
    already do.
    """
    actor_id = getattr(actor, "pk", None) if actor is not None else None
    actor_username = actor.get_username() if actor_id is not None else ""
    if request_id is None:
        request_id = current_request_id() or ""
    data = _json_safe(data or {})
    target_key = str(target_key)[:512]
    using = router.db_for_write(AuditEntry)
    with writers_turn(), transaction.atomic(using=using):
        last_seq, last_hash = locked_head(using)
        timestamp = timezone.now()
        content = dict(timestamp=timestamp, actor_id=actor_id, actor_username=actor_username, action=action,
                       target_type=target_type, target_key=target_key, request_id=request_id, data=data,
                       prev_hash=last_hash or GENESIS_HASH)
        entry = AuditEntry(seq=last_seq + 1, entry_hash=entry_hash_of(**content), **content)
        append(entry, using)
        every = settings.AUDIT_CHECKPOINT_EVERY
        if every > 0 and entry.seq % every == 0:
            checkpoints.sign_head(entry.seq, entry.entry_hash)  # under the head's lock: no entry slips past it
    return entry


def checkpoint_head() -> AuditCheckpoint | None:
    """Sign the chain head now (the beat task, ``manage.py audit_checkpoint``); returns its checkpoint, which
    may be an earlier one when nothing was appended since, or None (empty log, no signing key).

    No audit entry records it: the entry would move the head past what was just signed, and the checkpoint
    row (and its line in the export file) is the record."""
    using = router.db_for_write(AuditEntry)
    with transaction.atomic(using=using):
        last_seq, last_hash = locked_head(using)
        if not last_seq:
            return None
        return AuditCheckpoint.objects.filter(seq=last_seq).first() or checkpoints.sign_head(last_seq, last_hash)


_VERIFY_FIELDS = ("id", *ENTRY_COLUMNS)


def model_label(obj_or_model) -> str:
    """The ``target_type`` of a model: ``app_label.model_name`` (``policies.policyrule``)."""
    return obj_or_model._meta.label_lower


def audit_object(
    actor, action: str, obj, data: dict | None = None, request_id: str | None = None, target_key: str | None = None
) -> AuditEntry:
    """Shortcut for entries about a registry record (``target_key`` defaults to its URL key)."""
    key = target_key if target_key is not None else getattr(obj, "key", str(obj.pk))
    return write_audit(actor, action, model_label(obj), key, data, request_id)


@contextlib.contextmanager
def audited_execution(actor, action: str, obj, data: dict[str, Any]) -> Iterator[None]:
    """Audit one execution (docs/governance.md §3: who, what, when, outcome, duration): the entry is written
    when the block ends, successful or not; any exception is a failure, with its ``error_type`` (an
    unexpected one is ``internal_error``), and goes on."""
    started = time.monotonic()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        audit_object(actor, action, obj, {
            **data, "success": error is None,
            "error_type": None if error is None else getattr(error, "error_type", "internal_error"),
            "duration_ms": round((time.monotonic() - started) * 1000, 2)})


# ---------------------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True)
class ChainProblem:
    """The first break found in the chain: what happened and to which entry."""

    kind: str  # "altered", "removed", "inserted", "broken"; against checkpoints "rewritten", "checkpoint"
    seq: int | None
    entry_id: int | None
    message: str

    def __str__(self) -> str:
        return self.message




def _rows(chunk_size: int = 5000) -> Iterator[tuple]:
    return AuditEntry.objects.order_by("seq").values_list(*_VERIFY_FIELDS).iterator(chunk_size=chunk_size)


def _content_hash(row: tuple) -> str:
    _id, _seq, ts, actor_id, username, action, ttype, tkey, rid, data, prev, _h = row
    return entry_hash_of(
        timestamp=ts,
        actor_id=actor_id,
        actor_username=username,
        action=action,
        target_type=ttype,
        target_key=tkey,
        request_id=rid,
        data=data,
        prev_hash=prev,
    )


def verify_chain(exported: list[dict] | None = None, keys=None) -> tuple[int, ChainProblem | None]:
    """Walk the whole chain, then check the signed checkpoints (``audit.checkpoints.problems``: the database's
    and ``exported``'s, against ``keys`` or the published keys); return the number of entries checked and the
    first problem (or ``None``). A rewrite that recomputed every later hash passes the walk, not the checkpoints.
    """
    count, problem = walk_chain()
    if problem is not None:
        return count, problem
    _checked, found = checkpoints.problems(exported, keys)
    if found is None:
        return count, None
    kind, seq, message = found
    entry_id = AuditEntry.objects.filter(seq=seq).values_list("id", flat=True).first()
    return count, ChainProblem(kind, seq, entry_id, message)


def walk_chain() -> tuple[int, ChainProblem | None]:
    """The chain walk alone (no checkpoints): the number of entries read and the first break (or ``None``).

    * an entry whose content no longer hashes to its ``entry_hash`` was **altered**;
    * an entry whose ``prev_hash`` skips the entry before it, while the entry after it links to the one
      before, was **inserted** (likewise an entry appended behind the chain head's back);
    * an entry whose ``prev_hash`` doesn't match the entry before it otherwise follows **removed** entries
      (or an altered entry whose hash was recomputed — either way the link is named);
    * the last entry must be the one the chain head recorded, or entries were removed from the end.
    """
    count = 0
    prev_row: tuple | None = None  # last entry accepted into the chain
    before_prev: tuple | None = None  # the one accepted before it
    pending: tuple | None = None  # an entry that doesn't link to prev_row, awaiting the next one
    for row in _rows():
        count += 1
        seq, entry_id = row[1], row[0]
        if _content_hash(row) != row[11]:
            return count, ChainProblem(
                "altered", seq, entry_id, f"audit entry #{seq} (id {entry_id}) was altered: its content no longer matches its hash"
            )
        expected_prev = prev_row[11] if prev_row else GENESIS_HASH
        if pending is not None:
            if row[10] == expected_prev:
                # The entry after `pending` links past it: `pending` was slipped in.
                return count, _inserted(pending)
            return count, _removed_before(pending, prev_row)
        if row[10] != expected_prev:
            if prev_row is not None and row[10] == (before_prev[11] if before_prev else GENESIS_HASH):
                # This entry links to the one before prev_row: prev_row, though well formed, was slipped in.
                return count, _inserted(prev_row)
            pending = row
            continue
        before_prev, prev_row = prev_row, row
    if pending is not None:
        # The last entry doesn't link to the one before it.
        head = AuditChainHead.objects.filter(pk=1).first()
        if head is not None and prev_row is not None and head.last_hash == prev_row[11]:
            return count, ChainProblem(
                "inserted", pending[1], pending[0], f"audit entry #{pending[1]} (id {pending[0]}) was inserted after the chain's last entry"
            )
        return count, _removed_before(pending, prev_row)
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None or not head.last_hash:
        return count, None
    last_seq, last_hash = (prev_row[1], prev_row[11]) if prev_row else (0, "")
    if head.last_hash == last_hash:
        return count, None
    if head.last_seq < last_seq:
        # Appended with a well-formed link, but never recorded by the head: an insertion.
        return count, _appended_after_head(head)
    if AuditEntry.objects.filter(seq=head.last_seq, entry_hash=head.last_hash).exists():
        return count, None  # appended concurrently, after this walk read the log
    where = f"after audit entry #{last_seq} (id {prev_row[0]})" if prev_row else "(the log is empty)"
    return count, ChainProblem(
        "removed",
        last_seq or None,
        prev_row[0] if prev_row else None,
        f"audit entries were removed from the end of the log {where}: the chain head records entry #{head.last_seq}",
    )


def _inserted(row: tuple) -> ChainProblem:
    return ChainProblem(
        "inserted", row[1], row[0], f"audit entry #{row[1]} (id {row[0]}) was inserted: the entry after it links past it"
    )


def _removed_before(row: tuple, prev_row: tuple | None) -> ChainProblem:
    after = f" (after entry #{prev_row[1]})" if prev_row else " (at the start of the log)"
    return ChainProblem(
        "removed",
        row[1],
        row[0],
        f"audit entries were removed before entry #{row[1]} (id {row[0]}){after}: "
        "its link doesn't match the entry before it (or that entry was rewritten with a new hash)",
    )


def _appended_after_head(head: AuditChainHead) -> ChainProblem:
    first = (
        AuditEntry.objects.filter(seq__gt=head.last_seq).order_by("seq").values_list("id", "seq").first()
    )
    entry_id, seq = first if first else (None, None)
    return ChainProblem(
        "inserted", seq, entry_id, f"audit entry #{seq} (id {entry_id}) was inserted after the chain's recorded end"
    )
