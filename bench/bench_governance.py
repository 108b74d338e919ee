"""Benchmark of governance (issue 5's figures): approving a version (with signing and audit) and
`verify_audit` over 100,000 entries.

Run:  .venv/bin/python bench/bench_governance.py [--without-search-index]
      BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_governance .venv/bin/python bench/bench_governance.py

It works in a throw-away state folder (SQLite by default); with BENCH_DATABASE_URL it uses that database,
whose tables it migrates and whose audit log it replaces — never point it at a database you care about.
Targets: approve ≤ 50 ms server time; verify_audit over 100,000 entries ≤ 10 s.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STATE = Path(tempfile.mkdtemp(prefix="bench-governance-"))
os.environ["POLICYGRID_STATE_DIR"] = str(STATE)
os.environ["POLICYGRID_ALLOW_PRIVATE_NETWORKS"] = "true"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
if os.environ.get("BENCH_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
else:
    os.environ.pop("DATABASE_URL", None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from policygrid.samples import sample_archive, sample_record  # noqa: E402

from tests.fileserver import FileServer  # noqa: E402

VERSIONS = 60
AUDIT_ENTRIES = 100_000


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[int(len(values) * 0.95) - 1]
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {values[-1] * 1000:.1f} ms"


def bench_approve() -> None:
    from rest_framework.test import APIClient

    from governance import lifecycle
    from governance.signing import create_signing_key
    from policies.models import PolicyRule
    from policies.registration import register_package

    author = User.objects.create_user("bench-author")
    author.groups.add(Group.objects.get(name="author"))
    reviewer = User.objects.create_user("bench-reviewer")
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    create_signing_key()
    url = FileServer().serve("ip_allowlist.zip", sample_archive("ip_allowlist"))
    record = {k: v for k, v in sample_record("ip_allowlist").items() if k != "policy_rule_uri"}

    def version(i: int) -> PolicyRule:
        policy = PolicyRule(**{**record, "version": f"{i}.0", "code": url}, created_by=author)
        policy.full_clean()
        register_package(policy)  # fetch the package and pin its digest, as registration does
        policy.save()
        return lifecycle.submit(policy, author, "bench")

    service, api = [], []
    client = APIClient()
    client.force_authenticate(reviewer)
    for i in range(VERSIONS):
        policy = version(i)
        started = time.perf_counter()
        lifecycle.approve(policy, reviewer, "ok")
        service.append(time.perf_counter() - started)
    for i in range(VERSIONS, 2 * VERSIONS):
        policy = version(i)
        started = time.perf_counter()
        response = client.post(f"/policy/{policy.policy_rule_uri}/approve", {"comment": "ok"}, format="json")
        api.append(time.perf_counter() - started)
        assert response.status_code == 200 and response.json()["data"]["signature"], response.content
    print(f"approve, service function (lock, review, sign, release, audit): {ms(service)}")
    print(f"approve, whole API request in-process (auth, view, service, response): {ms(api)}")
    print(f"  target ≤ 50 ms: {'met' if statistics.median(api) <= 0.05 else 'MISSED'} ({connection.vendor})")


def bench_verify() -> None:
    from audit.models import AuditChainHead, AuditEntry
    from audit.services import GENESIS_HASH, entry_hash_of

    with connection.cursor() as cursor:  # a fresh log of exactly AUDIT_ENTRIES entries
        cursor.execute(f"DELETE FROM {AuditEntry._meta.db_table}")
        cursor.execute(f"DELETE FROM {AuditChainHead._meta.db_table}")
    started = time.perf_counter()
    prev = GENESIS_HASH
    batch = []
    now = timezone.now()
    for seq in range(1, AUDIT_ENTRIES + 1):
        content = dict(timestamp=now, actor_id=1, actor_username="bench-reviewer", action="approve",
                       target_type="policies.policyrule", target_key=f"p:{seq}-x", request_id="r" * 32,
                       data={"comment": "ok", "approvals": 1, "required": 1, "from": "in_review", "to": "approved"},
                       prev_hash=prev)
        entry_hash = entry_hash_of(**content)
        batch.append(AuditEntry(seq=seq, entry_hash=entry_hash, **content))
        prev = entry_hash
        if len(batch) == 5000:
            AuditEntry.objects.bulk_create(batch)
            batch = []
    AuditEntry.objects.bulk_create(batch)
    AuditChainHead.objects.create(pk=1, last_seq=AUDIT_ENTRIES, last_hash=prev)
    print(f"wrote {AUDIT_ENTRIES} chained entries in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    call_command("verify_audit")
    elapsed = time.perf_counter() - started
    print(f"verify_audit over {AUDIT_ENTRIES} entries: {elapsed:.2f} s (target ≤ 10 s: {'met' if elapsed <= 10 else 'MISSED'})")


def main() -> None:
    print(f"database: {connection.vendor} · state folder {STATE} · key store {settings.SIGNING_KEY_DIR}")
    call_command("migrate", verbosity=0)
    if "--without-search-index" in sys.argv:
        # Governance's own share: the query language's index rebuild on each save is not counted.
        from django.db.models.signals import post_save

        from policies.models import PolicyRule

        post_save.disconnect(sender=PolicyRule, dispatch_uid="search-index-save-policies.policyrule")
        print("(search-index maintenance on save switched off for this run)")
    bench_approve()
    bench_verify()


if __name__ == "__main__":
    main()
