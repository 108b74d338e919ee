"""The Redis context store as hostile policy code meets it: reachable only through its warm worker, confined to
its own namespace; the Redis server itself is out of reach. Skipped, with the reason, without Redis."""
from __future__ import annotations

import os
import uuid

import pytest

from tests.executors.conftest import start_service, stop_service

REDIS_BASE = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0]

CONTEXT_USER = """
    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters):
            pass
        def eval(self, parameters, input_data, context):
            if "set" in input_data:
                context.set(input_data["key"], input_data["set"], ttl=input_data.get("ttl"))
            if input_data.get("delete"):
                context.delete(input_data["key"])
            return {"value": context.get(input_data["key"]), "present": input_data["key"] in context}
"""
ATTACKER = """
    import socket

    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters):
            pass
        def eval(self, parameters, input_data, context):
            what = input_data["try"]
            if what == "connect":
                try:
                    connection = socket.create_connection(("127.0.0.1", input_data["port"]), timeout=2)
                except OSError as exc:
                    return {"connected": False, "error": type(exc).__name__}
                connection.sendall(b"PING\\r\\n")
                return {"connected": True, "answer": connection.recv(100).decode()}
            if what == "flood":
                from policygrid.workers import child
                import os
                os.write(child.CONTEXT_FDS[0], (2 ** 31).to_bytes(4, "big") + b"x" * 100)
                return {"wrote": True}
            if what == "not-json":
                context.set("k", {1, 2})
            if what == "other-namespace":
                return {"value": context.get(input_data["key"])}
            return {}
"""


@pytest.fixture(scope="module")
def redis_service(tmp_path_factory, fake_portal):
    import redis

    url = REDIS_BASE + "/11"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    started = start_service(tmp_path_factory.mktemp("context-service"), fake_portal.base, workers=2,
                            extra_env={"POLICYGRID_REDIS_URL": url})
    yield started
    stop_service(started)


def test_context_persists_across_stateless_calls_and_honours_ttl_and_delete(redis_service, fake_portal):
    uri = fake_portal.publish(f"ctx-{uuid.uuid4().hex[:8]}", CONTEXT_USER)
    assert redis_service.execute(uri, {"key": "a", "set": {"n": 1}})[1]["data"] == {"value": {"n": 1}, "present": True}
    assert redis_service.execute(uri, {"key": "a"})[1]["data"] == {"value": {"n": 1}, "present": True}
    assert redis_service.execute(uri, {"key": "a", "delete": True})[1]["data"] == {"value": None, "present": False}
    assert redis_service.health()["context_store"] == "redis"


def test_a_policy_cant_reach_redis_itself_nor_another_policys_namespace(redis_service, fake_portal):
    owner = fake_portal.publish(f"owner-{uuid.uuid4().hex[:8]}", CONTEXT_USER)
    attacker = fake_portal.publish(f"attacker-{uuid.uuid4().hex[:8]}", ATTACKER)
    redis_service.execute(owner, {"key": "secret", "set": "owner's data"})
    code, body = redis_service.execute(attacker, {"try": "connect", "port": 6379})
    assert code == 200 and body["data"]["connected"] is False, body
    code, body = redis_service.execute(attacker, {"try": "other-namespace", "key": "secret"})
    assert body["data"] == {"value": None}
    for key in (f"../{owner}:secret", f"{owner}:secret", "*"):
        assert redis_service.execute(attacker, {"try": "other-namespace", "key": key})[1]["data"] == {"value": None}
    assert redis_service.execute(owner, {"key": "secret"})[1]["data"]["value"] == "owner's data"


def test_abusing_the_context_channel_fails_that_call_alone(redis_service, fake_portal):
    attacker = fake_portal.publish(f"flooder-{uuid.uuid4().hex[:8]}", ATTACKER)
    code, body = redis_service.execute(attacker, {"try": "flood"})
    assert code == 500 and body["error_type"] == "policy_error" and "context store" in body["message"], body
    code, body = redis_service.execute(attacker, {"try": "not-json"})
    assert code == 500 and "not JSON-serialisable" in body["message"], body
    assert redis_service.execute(attacker, {"try": "nothing"}) == (200, {"success": True, "data": {}})
