"""API tokens: created by their owner (shown once), listed without the key, revoked; stored hashed."""
import hashlib

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def test_create_api_token_command_prints_a_working_token_on_its_own_line(users, anon, capsys):
    call_command("create_api_token", "viewer-user")
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1
    key = out.strip()
    anon.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert anon.get("/policy").status_code == 200


def test_create_api_token_for_unknown_user_fails(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("create_api_token", "ghost")


def test_tokens_are_stored_hashed_never_in_clear(clients, users):
    created = clients["author"].post("/tokens", {"name": "ci"}, format="json")
    assert created.status_code == 201
    key = created.json()["data"]["key"]
    row = ApiToken.objects.get(pk=created.json()["data"]["id"])
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {row.key_hash, row.prefix, row.name}
    assert row.prefix == key[:10]


def test_owner_lists_own_tokens_without_keys(clients):
    clients["author"].post("/tokens", {"name": "one"}, format="json")
    listed = clients["author"].get("/tokens").json()["data"]
    assert {t["name"] for t in listed} == {"tests", "one"}
    assert all("key" not in t for t in listed)
    others = clients["viewer"].get("/tokens").json()["data"]
    assert {t["name"] for t in others} == {"tests"}


def test_owner_revokes_a_token_and_it_stops_working(clients, anon):
    created = clients["author"].post("/tokens", {"name": "short-lived"}, format="json").json()["data"]
    anon.credentials(HTTP_AUTHORIZATION=f"Token {created['key']}")
    assert anon.get("/policy").status_code == 200
    revoked = clients["author"].delete(f"/tokens/{created['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["data"]["revoked_at"]
    assert anon.get("/policy").status_code == 401


def test_a_user_cannot_revoke_someone_elses_token(clients):
    created = clients["author"].post("/tokens", {}, format="json").json()["data"]
    response = clients["viewer"].delete(f"/tokens/{created['id']}")
    assert response.status_code == 404
    assert ApiToken.objects.get(pk=created["id"]).revoked_at is None


def test_token_routes_need_authentication_and_valid_bodies(anon, clients):
    assert anon.get("/tokens").status_code == 401
    assert anon.post("/tokens", {}, format="json").status_code == 401
    bad = clients["author"].post("/tokens", {"name": "x" * 101}, format="json")
    assert bad.status_code == 400 and "name" in bad.json()["errors"]


def test_a_known_token_is_checked_without_a_query_until_a_token_or_user_changes(clients, users, anon):
    created = clients["author"].post("/tokens", {"name": "hot"}, format="json").json()["data"]
    anon.credentials(HTTP_AUTHORIZATION=f"Token {created['key']}")
    assert anon.get("/tokens").status_code == 200  # fills the cache (and records the use)

    def token_queries():
        with CaptureQueriesContext(connection) as queries:
            assert anon.get("/tokens").status_code == 200
        return [q["sql"] for q in queries if "accounts_apitoken" in q["sql"] and "auth_user" in q["sql"]]

    assert token_queries() == []
    ApiToken.objects.get(pk=created["id"]).save()  # any save of a token replaces the stamp
    assert len(token_queries()) == 1
    assert token_queries() == []


def test_a_deactivated_user_s_cached_token_stops_working_at_once(users, token_for, anon):
    anon.credentials(HTTP_AUTHORIZATION=f"Token {token_for(users['viewer'])}")
    assert anon.get("/policy").status_code == 200
    assert anon.get("/policy").status_code == 200  # served from the cache
    users["viewer"].is_active = False
    users["viewer"].save()
    assert anon.get("/policy").status_code == 401


def test_last_use_is_recorded_once_a_minute_even_from_the_cache(clients, anon):
    from datetime import timedelta

    created = clients["author"].post("/tokens", {"name": "used"}, format="json").json()["data"]
    anon.credentials(HTTP_AUTHORIZATION=f"Token {created['key']}")
    assert anon.get("/policy").status_code == 200
    first = ApiToken.objects.get(pk=created["id"]).last_used_at
    assert first is not None
    assert anon.get("/policy").status_code == 200
    assert ApiToken.objects.get(pk=created["id"]).last_used_at == first  # within the minute: no write
    ApiToken.objects.filter(pk=created["id"]).update(last_used_at=first - timedelta(minutes=5))
    from django.core.cache import cache
    cache.delete(f"accounts:token-used:{created['id']}")  # the minute has passed
    assert anon.get("/policy").status_code == 200
    assert ApiToken.objects.get(pk=created["id"]).last_used_at > first
