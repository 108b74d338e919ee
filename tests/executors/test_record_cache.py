"""The execute_policy route reads its executor, policy and permissions from the record cache, and a change is
seen by the next call, whichever process wrote it."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.executors.scripted import ScriptedExecutor, body_for, call


def test_a_warm_call_reads_neither_the_executor_the_policy_nor_the_permissions_from_the_database(setup, clients):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    operator = clients["operator"]
    assert call(operator, body_for()).status_code == 200  # fills the cache (and the token's last_used_at)
    with CaptureQueriesContext(connection) as queries:
        response = call(operator, body_for())
    assert response.status_code == 200, response.json()
    sql = [query["sql"] for query in queries.captured_queries]
    # Only the audit entry (chain head locked, entry, head moved), inside the test's transaction, hence the
    # savepoint and its release. The token with its user and the permissions come from the cache too.
    assert len(sql) == 5, "\n".join(sql)
    assert all("audit_" in q or "SAVEPOINT" in q for q in sql), "\n".join(sql)
    assert not any(table in q for q in sql for table in ("executors_policyexecutor", "policies_policyrule",
                                                          "auth_permission", "accounts_apitoken")), "\n".join(sql)


def test_a_saved_change_is_seen_by_the_next_call(setup, api, clients, scripted):
    from policies.models import PolicyRule

    assert call(api, body_for()).status_code == 200  # both records cached
    # The executor moves (PATCH: save()): the next call goes to its new address.
    moved = ScriptedExecutor()
    moved.token = scripted.token
    try:
        response = api.patch("/executor/scripted", {"$set": {"executor_host_uri": moved.url}}, format="json")
        assert response.status_code == 200, response.json()
        before = len(scripted.received)
        assert call(api, body_for()).status_code == 200
        assert len(moved.received) == 1 and len(scripted.received) == before
    finally:
        moved.close()
    # The policy is retired (the lifecycle's save()): the next call may not run it.
    policy = PolicyRule.objects.get(policy_rule_uri="ip_allowlist:1.0-beta")
    policy.status = "retired"
    policy.save(update_fields=["status", "updated_at"])
    response = call(api, body_for())
    assert response.status_code == 409 and response.json()["error_type"] == "not_executable"
    # Deleted: 404, not the cached columns.
    assert api.delete("/executor/scripted").status_code == 200
    assert call(api, body_for()).status_code == 404


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_a_change_written_by_another_process_is_seen_by_the_next_call(setup, api, settings, tmp_path, backend):
    """Two processes share the cache (settings.py's file cache, or Redis): the writer's invalidation reaches
    the reader. The other process invalidates exactly as its post_save receiver does after its save()."""
    import os
    import uuid
    from pathlib import Path

    from executors.models import PolicyExecutor

    if backend == "redis":
        import redis

        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        except redis.RedisError:
            pytest.skip(f"SKIPPED LOUDLY: no Redis at {url}, the shared Redis cache is not tested")
        prefix = f"test-{uuid.uuid4().hex}"
        settings.CACHES = {"default": {"BACKEND": "records.cache_backends.SharedRedisCache", "LOCATION": url,
                                       "KEY_PREFIX": prefix}}
        env = {"POLICYGRID_CACHE_URL": url, "POLICYGRID_CACHE_PREFIX": prefix}
    else:
        folder = tmp_path / "shared-cache"
        settings.CACHES = {"default": {"BACKEND": "records.cache_backends.FileCache",
                                       "LOCATION": str(folder)}}
        env = {"POLICYGRID_CACHE_URL": f"file://{folder}"}
    assert call(api, body_for()).status_code == 200  # cached in this process
    moved = ScriptedExecutor()
    moved.token = setup.credential
    try:
        # The database is shared by every process; the change is the other process's, so no signal here.
        PolicyExecutor.objects.filter(executor_id="scripted").update(executor_host_uri=moved.url)
        assert call(api, body_for()).status_code == 200 and moved.received == []  # still cached: not seen yet
        writer = textwrap.dedent(f"""
            import django
            django.setup()
            from executors.models import PolicyExecutor
            from records.cache import forget_record
            forget_record(PolicyExecutor, PolicyExecutor(executor_id="scripted", executor_host_uri={moved.url!r}))
        """)
        (tmp_path / "other").mkdir()  # the other process's state folder (settings no longer make one)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("POLICYGRID_", "DATABASE_URL"))},
               **env, "DJANGO_SETTINGS_MODULE": "portal.settings", "POLICYGRID_STATE_DIR": str(tmp_path / "other")}
        done = subprocess.run([sys.executable, "-c", writer], env=env, cwd=Path(__file__).resolve().parents[2],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert call(api, body_for()).status_code == 200
        assert len(moved.received) == 1
    finally:
        moved.close()
        if backend == "redis":  # this test's keys only: the database may be another test's broker
            client = redis.Redis.from_url(url)
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)


class CountingLoad:
    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def test_a_hit_reads_only_the_stamp_from_the_shared_cache_and_gives_each_caller_its_own_value(db, monkeypatch):
    from django.core.cache import caches

    from records import cache as record_cache

    load = CountingLoad({"fields": ["a"]})
    assert record_cache.cached_value("t:stamp", "t:entry", "shape", load) == {"fields": ["a"]}
    shared = caches["default"]
    read: list[str] = []
    monkeypatch.setattr(shared, "get", lambda key, *a, **k: read.append(key) or type(shared).get(shared, key, *a, **k))
    monkeypatch.setattr(shared, "get_many", lambda keys, *a, **k: read.extend(keys) or
                        type(shared).get_many(shared, keys, *a, **k))
    first = record_cache.cached_value("t:stamp", "t:entry", "shape", load)
    second = record_cache.cached_value("t:stamp", "t:entry", "shape", load)
    assert load.calls == 1 and read == ["t:stamp", "t:stamp"]
    first["fields"].append("changed by a caller")
    assert second == {"fields": ["a"]} and first is not second


def test_the_process_copy_is_not_served_once_another_process_restamps_or_the_entry_expires(db, settings,
                                                                                            monkeypatch):
    import time

    from django.core.cache import caches

    from records import cache as record_cache

    settings.RECORD_CACHE_SECONDS = 60
    load = CountingLoad(("v",))
    record_cache.cached_value("u:stamp", "u:entry", "shape", load)
    record_cache.cached_value("u:stamp", "u:entry", "shape", load)
    assert load.calls == 1
    caches["default"].set("u:stamp", "another process's stamp", timeout=None)  # its forget_record
    assert record_cache.cached_value("u:stamp", "u:entry", "shape", load) == ("v",) and load.calls == 2
    record_cache.cached_value("u:stamp", "u:entry", "shape", load)
    assert load.calls == 2
    later = time.time() + 61
    monkeypatch.setattr(record_cache.time, "time", lambda: later)
    assert record_cache.cached_value("u:stamp", "u:entry", "shape", load) == ("v",) and load.calls == 3
    assert record_cache.cached_value("u:stamp", "u:entry", "other shape", load) == ("v",) and load.calls == 4


def test_the_cache_backends_take_any_key_without_a_memcached_warning(tmp_path):
    import warnings

    from records.cache_backends import FileCache

    cache = FileCache(str(tmp_path), {})
    key = "a key with spaces and\x01 control characters, " + "long " * 60
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.set(key, 1)
        assert cache.get(key) == 1
