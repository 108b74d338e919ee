"""Signed checkpoints of the audit chain (docs/governance.md §3): a rewrite that recomputes every hash passes the
plain chain walk but not the checkpoints, in the database or in the exported file."""
import base64
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit import checkpoints
from audit.models import AuditChainHead, AuditCheckpoint, AuditEntry
from audit.services import checkpoint_head, entry_hash_of, verify_chain, walk_chain, write_audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged(settings, users, django_capture_on_commit_callbacks):
    """Twelve entries with a checkpoint every five, the file lines appended as on commit."""
    settings.AUDIT_CHECKPOINT_EVERY = 5
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(12):
            write_audit(users["admin"], "test.action", "tests.thing", f"thing-{i}", {"i": i})
    return list(AuditEntry.objects.order_by("seq"))


def sql(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement.format(entries=AuditEntry._meta.db_table, head=AuditChainHead._meta.db_table,
                                        checkpoints=AuditCheckpoint._meta.db_table), params)


def rewrite(seq: int, data: dict) -> None:
    """What an insider with database access does: change an entry, recompute its hash, every later one, the head."""
    columns = ("id", "timestamp", "actor_id", "actor_username", "action", "target_type", "target_key",
               "request_id", "data", "prev_hash")
    prev = None
    for row in AuditEntry.objects.filter(seq__gte=seq).order_by("seq").values(*columns):
        content = {k: row[k] for k in columns if k != "id"}
        if prev is None:
            content["data"] = data
        else:
            content["prev_hash"] = prev
        prev = entry_hash_of(**content)
        sql("UPDATE {entries} SET data = %s, prev_hash = %s, entry_hash = %s WHERE id = %s",
            (json.dumps(content["data"]), content["prev_hash"], prev, row["id"]))
    sql("UPDATE {head} SET last_hash = %s", (prev,))


def fails(*args, naming: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit", *args)
    assert naming in str(caught.value), str(caught.value)
    return str(caught.value)


def test_every_nth_entry_is_signed_in_the_database_and_the_file(logged, settings):
    seqs = [e.seq for e in logged if e.seq % 5 == 0]
    assert list(AuditCheckpoint.objects.values_list("seq", flat=True)) == seqs
    exported = checkpoints.read(settings.AUDIT_CHECKPOINT_FILE)
    assert [r["seq"] for r in exported] == seqs
    assert exported == [checkpoints.as_record(c) for c in AuditCheckpoint.objects.all()]
    assert verify_chain(exported) == (len(logged), None)
    call_command("verify_audit", "--checkpoints", str(settings.AUDIT_CHECKPOINT_FILE))


def test_a_rewrite_with_recomputed_hashes_passes_the_walk_but_not_the_checkpoints(logged):
    rewrite(logged[2].seq, {"i": 999, "note": "forged"})
    assert walk_chain() == (len(logged), None)  # the chain alone can't tell
    _count, problem = verify_chain()
    assert problem is not None and problem.kind == "rewritten", problem
    fails(naming=f"audit entry #{AuditCheckpoint.objects.first().seq} no longer has the hash it signed")


def test_checkpoints_rewritten_without_the_key_fail_their_signature(logged):
    rewrite(logged[2].seq, {"i": 999})
    for checkpoint in AuditCheckpoint.objects.all():
        new_hash = AuditEntry.objects.get(seq=checkpoint.seq).entry_hash
        forged = base64.b64encode(b"\x00" * 64).decode()
        sql("UPDATE {checkpoints} SET entry_hash = %s, signature = %s WHERE id = %s", (new_hash, forged, checkpoint.pk))
    assert verify_chain()[1].kind == "checkpoint"
    fails(naming="does not verify")


def test_a_key_added_to_the_database_is_caught_by_pinned_keys(logged, tmp_path, settings):
    from governance.keystore import published_keys

    pinned = tmp_path / "keys.json"
    pinned.write_text(json.dumps({"success": True, "data": published_keys()}))
    rewrite(logged[2].seq, {"i": 999})
    # The insider makes their own key (as if they had written its row), and signs the rewritten heads with it.
    from governance.signing import create_signing_key

    settings.SIGNING_KEY_DIR = tmp_path / "insider-keys"
    insider = create_signing_key()
    for checkpoint in AuditCheckpoint.objects.all():
        record = {**checkpoints.as_record(checkpoint), "entry_hash": AuditEntry.objects.get(seq=checkpoint.seq).entry_hash}
        signature = checkpoints.sign(checkpoints.statement(record), insider.key_id)
        sql("UPDATE {checkpoints} SET entry_hash = %s, signature = %s, key_id = %s WHERE id = %s",
            (record["entry_hash"], signature, insider.key_id, checkpoint.pk))
    fails("--keys", str(pinned), naming="not a known signing key")


def test_deleted_checkpoint_rows_are_caught_by_the_exported_file(logged, settings, tmp_path):
    exported = tmp_path / "kept-elsewhere.jsonl"
    call_command("export_audit_checkpoints", str(exported))
    rewrite(logged[2].seq, {"i": 999})
    sql("DELETE FROM {checkpoints}")
    assert verify_chain() == (len(logged), None)  # nothing in the database to compare with
    fails("--checkpoints", str(exported), naming="no longer has the hash it signed")


def test_deleted_checkpoint_rows_alone_are_named(logged, settings):
    sql("DELETE FROM {checkpoints} WHERE seq = %s", (5,))
    fails("--checkpoints", str(settings.AUDIT_CHECKPOINT_FILE), naming="#5 of the export file is missing")


def test_naive_tampering_is_still_caught_with_checkpoints(logged):
    sql("UPDATE {entries} SET data = %s WHERE seq = %s", ('{"i": 999}', logged[3].seq))
    assert verify_chain()[1].kind == "altered"
    fails(naming=f"#{logged[3].seq}")


def test_checkpoint_rows_are_append_only(logged):
    checkpoint = AuditCheckpoint.objects.first()
    with pytest.raises(PermissionError):
        checkpoint.save()
    with pytest.raises(PermissionError):
        AuditCheckpoint.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditCheckpoint.objects.update(signature="")


def test_the_command_and_the_beat_task_sign_the_head(users, settings, django_capture_on_commit_callbacks, capsys):
    from audit.tasks import checkpoint

    settings.AUDIT_CHECKPOINT_EVERY = 0
    write_audit(users["admin"], "test.action", "tests.thing", "a")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("audit_checkpoint")
    head = AuditChainHead.objects.get()
    assert AuditCheckpoint.objects.get().seq == head.last_seq
    assert f"audit checkpoint #{head.last_seq}" in capsys.readouterr().out
    assert checkpoint() == head.last_seq and AuditCheckpoint.objects.count() == 1  # nothing new: no new one
    write_audit(users["admin"], "test.action", "tests.thing", "b")
    assert checkpoint() == head.last_seq + 1
    assert "audit-checkpoint" in settings.CELERY_BEAT_SCHEDULE
    assert [r["seq"] for r in checkpoints.read(settings.AUDIT_CHECKPOINT_FILE)] == [head.last_seq]


def test_a_revoked_key_needs_a_fresh_checkpoint(logged, users, settings):
    from governance.signing import revoke_signing_key, rotate_signing_key

    settings.AUDIT_CHECKPOINT_EVERY = 0  # only the command signs from here on
    old = AuditCheckpoint.objects.first().key_id
    rotate_signing_key(users["admin"])
    revoke_signing_key(old, users["admin"])
    fails(naming="signed by a revoked key")
    checkpoint_head()
    call_command("verify_audit")


def test_the_api_publishes_checkpoints_to_viewers(logged, clients, anon):
    response = clients["viewer"].get("/audit/checkpoints")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    newest_first = list(AuditCheckpoint.objects.order_by("-seq"))
    assert len(newest_first) >= 2 and [r["seq"] for r in body["data"]] == [c.seq for c in newest_first]
    assert body["data"][0] == checkpoints.as_record(newest_first[0])
    assert body["pagination"]["count"] == len(newest_first)
    assert clients["norole"].get("/audit/checkpoints").status_code == 403
    assert anon.get("/audit/checkpoints").status_code == 401
    assert clients["viewer"].get("/audit/checkpoints?page=999").status_code == 404
    assert clients["admin"].post("/audit/checkpoints", {}, format="json").status_code == 405
