"""The audit trail (docs/governance.md §3): append-only, hash-chained, verified by `manage.py verify_audit`,
which names the first altered, removed or inserted entry; no route or admin page edits or deletes it."""
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AuditEntry
from audit.services import entry_hash_of, verify_chain, write_audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(users):
    """Ten fresh entries (after the fixtures' own), returned oldest first."""
    for i in range(10):
        write_audit(users["admin"], "test.action", "tests.thing", f"thing-{i}", {"i": i, "note": "é ✓"})
    return list(AuditEntry.objects.order_by("seq"))


def verify_fails_naming(entry_or_text) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit")
    message = str(caught.value)
    expected = f"#{entry_or_text.seq}" if isinstance(entry_or_text, AuditEntry) else entry_or_text
    assert expected in message, message
    return message


def sql(statement: str, params=()):
    table = AuditEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(statement.format(table=table), params)


def test_a_clean_chain_verifies(chain, capsys):
    assert verify_chain() == (len(chain), None)
    call_command("verify_audit")
    assert f"{len(chain)} entries verified" in capsys.readouterr().out


def test_each_entry_links_to_the_one_before(chain):
    for previous, entry in zip(chain, chain[1:], strict=False):
        assert entry.prev_hash == previous.entry_hash
        assert entry.seq == previous.seq + 1


def test_an_altered_entry_is_named(chain):
    victim = chain[4]
    sql("UPDATE {table} SET data = %s WHERE id = %s", ('{"i": 999, "note": "forged"}', victim.pk))
    message = verify_fails_naming(victim)
    assert "altered" in message


def test_an_altered_actor_is_named(chain, users):
    victim = chain[6]
    sql("UPDATE {table} SET actor_username = %s WHERE id = %s", ("someone-else", victim.pk))
    assert "altered" in verify_fails_naming(victim)


def test_a_removed_entry_is_named(chain):
    victim, after = chain[5], chain[6]
    sql("DELETE FROM {table} WHERE id = %s", (victim.pk,))
    message = verify_fails_naming(after)
    assert "removed" in message


def test_a_removed_last_entry_is_noticed(chain):
    sql("DELETE FROM {table} WHERE id = %s", (chain[-1].pk,))
    message = verify_fails_naming(chain[-2])
    assert "removed" in message


def _forge(seq, prev_hash, ts, key="forged"):
    content = dict(timestamp=ts, actor_id=None, actor_username="mallory", action="test.action",
                   target_type="tests.thing", target_key=key, request_id="", data={}, prev_hash=prev_hash)
    sql(
        "INSERT INTO {table} (seq, timestamp, actor_id, actor_username, action, target_type, target_key, "
        "request_id, data, prev_hash, entry_hash) VALUES (%s, %s, NULL, %s, %s, %s, %s, %s, %s, %s, %s)",
        (seq, ts, "mallory", "test.action", "tests.thing", key, "", "{}", prev_hash, entry_hash_of(**content)),
    )
    return AuditEntry.objects.get(seq=seq)


def test_an_entry_inserted_in_the_middle_is_named(chain):
    # Make room after entry 3 and insert a well-formed entry that links to it (the best a forger can do).
    after = chain[3]
    for entry in reversed(chain[4:]):
        sql("UPDATE {table} SET seq = %s WHERE id = %s", (entry.seq + 1, entry.pk))
    forged = _forge(after.seq + 1, after.entry_hash, after.timestamp)
    message = verify_fails_naming(forged)
    assert "inserted" in message


def test_an_entry_appended_behind_the_writers_back_is_named(chain):
    last = chain[-1]
    forged = _forge(last.seq + 1, last.entry_hash, last.timestamp)
    message = verify_fails_naming(forged)
    assert "inserted" in message


def test_entries_refuse_updates_and_deletes_through_the_orm(chain):
    entry = chain[0]
    entry.action = "changed"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    assert verify_chain()[1] is None


def test_the_api_reads_but_never_writes_the_audit(chain, clients):
    listing = clients["viewer"].get("/audit?action=test.action&target_key=thing-3")
    assert listing.status_code == 200
    assert [e["target_key"] for e in listing.json()["data"]] == ["thing-3"]
    seq = listing.json()["data"][0]["seq"]
    assert clients["viewer"].get(f"/audit/{seq}").json()["data"]["seq"] == seq
    for method in ("post", "put", "patch", "delete"):
        target = "/audit" if method == "post" else f"/audit/{seq}"
        response = getattr(clients["admin"], method)(target, {"action": "x"}, format="json")
        assert response.status_code == 405, (method, response.status_code)
    assert clients["norole"].get("/audit").status_code == 403
    assert verify_chain()[1] is None


def test_the_admin_shows_entries_read_only(chain, client, users):
    admin = users["admin"]
    admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    entry = chain[2]
    assert client.get("/admin/audit/auditentry/").status_code == 200
    assert client.get(f"/admin/audit/auditentry/{entry.pk}/change/").status_code == 200
    assert client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"action": "x"}).status_code == 403
    assert client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    assert verify_chain()[1] is None


def test_token_events_are_audited(clients, users):
    created = clients["author"].post("/tokens", {"name": "ci"}, format="json").json()["data"]
    clients["author"].delete(f"/tokens/{created['id']}")
    entries = AuditEntry.objects.filter(target_type="portal.apitoken", target_key=str(created["id"]))
    assert [e.action for e in entries.order_by("seq")] == ["token.create", "token.revoke"]
    assert "key" not in entries.first().data  # the key itself is never recorded


def test_requests_carry_their_request_id_into_the_entry(clients, policy_payload):
    response = clients["author"].post("/policy", policy_payload(version="7.0"), format="json",
                                      HTTP_X_REQUEST_ID="req-12345")
    assert response["X-Request-ID"] == "req-12345"
    entry = AuditEntry.objects.get(action="create", target_key="ip_allowlist:7.0-beta")
    assert entry.request_id == "req-12345"


WRITER = """
import sys
import django

django.setup()
from audit.services import write_audit

n = sys.argv[1]
print("ready", flush=True)
sys.stdin.readline()  # every writer starts appending at the same moment
for i in range(15):
    write_audit(None, "test.concurrent", "tests.thing", f"w{n}-{i}")
"""

CHECK = """
import json
import django

django.setup()
from audit.models import AuditEntry
from audit.services import verify_chain

print(json.dumps({"count": AuditEntry.objects.filter(action="test.concurrent").count(),
                  "problem": str(verify_chain()[1] or "")}))
"""


def database_url_for_writers(tmp_path) -> str:
    """A DATABASE_URL that other processes can open and that holds the test database's tables and rows.

    PostgreSQL's test database is that; SQLite's is in memory, private to this process, so it is copied to a
    file (the sqlite3 backup API), which the writers then share as the portal's processes share theirs.
    """
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        import sqlite3

        path = tmp_path / "audit.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(path)
        connection.connection.backup(target)
        target.close()
        return f"sqlite:///{path}"
    assert connection.vendor == "postgresql", connection.vendor
    user = settings_dict["USER"] + (f":{settings_dict['PASSWORD']}" if settings_dict["PASSWORD"] else "")
    return f"postgres://{user}@{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}/" \
           f"{settings_dict['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_chain(users, tmp_path):
    """Four processes append at once (as web, worker and beat do); the chain stays one, on either database."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DATABASE_URL": database_url_for_writers(tmp_path),
           "DJANGO_SETTINGS_MODULE": "portal.settings"}
    root = Path(__file__).resolve().parents[2]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(n)], cwd=root, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for n in range(4)]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready", writer.communicate()[1]
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
    check = subprocess.run([sys.executable, "-c", CHECK], cwd=root, env=env, capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout.strip().splitlines()[-1]) == {"count": 60, "problem": ""}


@pytest.mark.parametrize("data", [
    {"executor_id": "local", "success": True, "error_type": None, "duration_ms": 3.25, "n": 7},
    {"nested": {"list": [1, "two", {"three": [None, False]}]}},
    {"when": datetime(2026, 12, 2, 5, 0, tzinfo=UTC), "id": uuid.UUID(int=5), "amount": Decimal("1.50")},
    {"tuple": (1, 2), 3: "int key", "set_like": frozenset()},
    {"bool_key": {True: 1}}, [1.0, 2], "text", 42,
])
def test_json_safe_stores_what_a_json_round_trip_would(data):
    """The fast path for data already made of JSON's types must give what the round trip gives."""
    from audit.services import _AuditEncoder, _json_safe

    expected = json.loads(json.dumps(data, cls=_AuditEncoder))
    assert _json_safe(data) == expected
    assert json.dumps(_json_safe(data), sort_keys=True) == json.dumps(expected, sort_keys=True)
