"""The context store: the in-memory one of local runs and the Redis one of remote runs (a real Redis)."""

from __future__ import annotations

import time
import uuid

import pytest
from policygrid.context import MemoryContext, RedisContext

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"redis not reachable at {REDIS_URL}")
    yield client
    client.close()


@pytest.fixture
def redis_context(redis_client):
    context = RedisContext(redis_client, f"test-{uuid.uuid4().hex}:1.0-beta")
    yield context
    context.clear()


@pytest.fixture(params=["memory", "redis"])
def context(request):
    if request.param == "memory":
        return MemoryContext()
    return request.getfixturevalue("redis_context")


def test_get_set_delete_and_item_access(context):
    assert context.get("missing") is None
    assert context.get("missing", 7) == 7
    context.set("k", {"a": [1, 2]})
    assert context.get("k") == {"a": [1, 2]}
    context["n"] = 3
    assert context["n"] == 3
    assert "n" in context and "zz" not in context
    del context["n"]
    assert "n" not in context
    with pytest.raises(KeyError):
        context["n"]
    with pytest.raises(KeyError):
        del context["n"]
    context.delete("k")
    context.delete("k")  # deleting twice is fine
    assert context.get("k") is None


def test_a_stored_none_is_distinct_from_a_missing_key(context):
    context["nothing"] = None
    assert "nothing" in context
    assert context["nothing"] is None


def test_ttl_expires_keys(context):
    context.set("short", 1, ttl=0.2)
    context.set("long", 2, ttl=30)
    assert context.get("short") == 1
    time.sleep(0.35)
    assert context.get("short") is None
    assert context.get("long") == 2


def test_ttl_must_be_positive(context):
    for ttl in (0, -1, "5", True):
        with pytest.raises(ValueError):
            context.set("k", 1, ttl=ttl)


@pytest.mark.redis
def test_redis_keys_are_namespaced_and_values_json(redis_client, redis_context):
    redis_context.set("state", {"count": 1}, ttl=60)
    raw_key = f"policygrid:ctx:{redis_context.namespace}:state"
    assert redis_client.get(raw_key) == b'{"count": 1}'
    assert 0 < redis_client.ttl(raw_key) <= 60
    other = RedisContext(redis_client, redis_context.namespace + "-other")
    assert other.get("state") is None


@pytest.mark.redis
def test_redis_refuses_values_that_are_not_json(redis_context):
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        redis_context.set("k", {1, 2})


@pytest.mark.redis
def test_redis_clear_removes_only_its_namespace(redis_client, redis_context):
    neighbour = RedisContext(redis_client, redis_context.namespace + "x")
    neighbour.set("keep", 1)
    redis_context.set("a", 1)
    redis_context.set("b", 2)
    redis_context.clear()
    assert redis_context.get("a") is None and redis_context.get("b") is None
    assert neighbour.get("keep") == 1
    neighbour.clear()
