"""The API checks shared by every resource (envelope, auth, 404s, create), applied to each.

Each resource is described once by a ``Resource`` (tests/api/resources.py); every test runs for every resource
that supports the operation, as NetBox's APIViewTestCases do.
"""
import json

import pytest

from tests.api.resources import (
    CREATABLE,
    RESOURCES,
    UPDATABLE,
    assert_error,
    ids,
    key_of,
)

pytestmark = pytest.mark.django_db


# --- create -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_create_answers_201_with_the_record(resource, clients, ctx):
    body = resource.payload(1, ctx)
    response = clients[resource.write_role].post(resource.path, body, format="json")
    assert response.status_code == 201, response.content
    payload = response.json()
    assert payload["success"] is True
    record = payload["data"]
    assert record[resource.key_field]
    assert record["created_by"] == f"{resource.write_role}-user"
    assert record["created_at"] and record["updated_at"]
    fetched = clients["viewer"].get(f"{resource.path}/{record[resource.key_field]}")
    assert fetched.status_code == 200
    shown_once = record.pop("executor_token", None)  # an executor's credential is in its registration's answer only
    assert (shown_once is not None) == (resource.name == "executor")
    assert fetched.json()["data"] == record


@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_second_create_with_same_key_conflicts(resource, clients, ctx):
    client = clients[resource.write_role]
    assert client.post(resource.path, resource.payload(1, ctx), format="json").status_code == 201
    body = assert_error(client.post(resource.path, resource.payload(1, ctx), format="json"), 409)
    assert "already exists" in body["message"]


@pytest.mark.parametrize(
    "resource,field_name,value",
    [(r, f, v) for r in CREATABLE for f, v in r.invalid_identity],
    ids=[f"{r.name}-{f}-{v[:12]}" for r in CREATABLE for f, v in r.invalid_identity],
)
def test_create_with_invalid_identity_field_is_400_naming_it(resource, field_name, value, clients, ctx):
    body = resource.payload(1, ctx)
    body[field_name] = value
    response = clients[resource.write_role].post(resource.path, body, format="json")
    payload = assert_error(response, 400)
    assert field_name in payload["errors"], payload
    assert clients["admin"].get(resource.path).json()["pagination"]["count"] == 0


@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_create_with_unknown_field_is_400(resource, clients, ctx):
    body = resource.payload(1, ctx)
    body["no_such_field"] = 1
    payload = assert_error(clients[resource.write_role].post(resource.path, body, format="json"), 400)
    assert "no_such_field" in payload["errors"]


@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_create_by_a_role_without_write_permission_is_403(resource, clients, ctx):
    assert_error(clients["viewer"].post(resource.path, resource.payload(1, ctx), format="json"), 403)
    assert_error(clients["norole"].post(resource.path, resource.payload(1, ctx), format="json"), 403)


@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_create_without_token_is_401(resource, anon, ctx):
    assert_error(anon.post(resource.path, resource.payload(1, ctx), format="json"), 401)


@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_create_with_wrong_content_type_is_415(resource, api, ctx):
    body = json.dumps(resource.payload(1, ctx))
    assert_error(api.post(resource.path, body, content_type="text/plain"), 415)


@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_create_with_malformed_json_is_400(resource, api):
    payload = assert_error(api.post(resource.path, '{"name": ', content_type="application/json"), 400)
    assert "JSON" in payload["message"]


@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_create_with_a_non_object_body_is_400(resource, api):
    assert_error(api.post(resource.path, "[1, 2]", content_type="application/json"), 400)


@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_oversized_body_is_413(resource, api, settings, ctx):
    body = resource.payload(1, ctx)
    body["description" if "description" in body else "executor_metadata"] = "x" * (settings.API_MAX_BODY_BYTES + 10)
    assert_error(api.post(resource.path, body, format="json"), 413)


NUL_REASON = "text may not contain the NUL character (\\u0000)"


def nul_bodies(body: dict) -> list[tuple[dict, str]]:
    """``body`` with NUL put into a text field, a JSON value and a JSON key, each with the path named."""
    text_field = next(k for k, v in body.items() if isinstance(v, str))
    json_field = next(k for k, v in body.items() if isinstance(v, dict))
    return [
        ({**body, text_field: body[text_field] + "\x00x"}, text_field),
        ({**body, json_field: {**body[json_field], "deep": ["ok", {"k": "v\x00"}]}}, f"{json_field}.deep.1.k"),
        ({**body, json_field: {"bad\x00key": 1}}, f"{json_field}.bad\\u0000key"),
    ]


@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_create_with_nul_in_text_is_400_naming_where_and_writes_nothing(resource, api, ctx):
    # PostgreSQL refuses NUL in text and jsonb (it was a 500 there); SQLite would keep it: both answer 400.
    from django.apps import apps

    model = apps.get_model(*{"policy": "policies.PolicyRule", "executor": "executors.PolicyExecutor",
                             "graph": "graphs.Graph"}[resource.name].split("."))
    before = model.objects.count()
    for body, path in nul_bodies(resource.payload(1, ctx)):
        payload = assert_error(api.post(resource.path, body, format="json"), 400)
        assert payload["errors"] == {path: [NUL_REASON]}, payload
        assert path in payload["message"]
    assert model.objects.count() == before
    # The six characters backslash-u-0-0-0-0 are text like any other.
    field, value = {"policy": ("description", "\\u0000"), "graph": ("graph_description", "\\u0000"),
                    "executor": ("executor_metadata", {"note": "\\u0000"})}[resource.name]
    created = api.post(resource.path, {**resource.payload(1, ctx), field: value}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["data"][field] == value


@pytest.mark.parametrize("resource", UPDATABLE, ids=ids(UPDATABLE))
def test_update_with_nul_in_text_is_400_and_changes_nothing(resource, clients, ctx):
    record = resource.make(0, ctx)
    url = f"{resource.path}/{key_of(resource, record)}"
    client = clients["admin"]
    before = client.get(url).json()["data"]
    value = resource.update_value
    poisoned = value + "\x00" if isinstance(value, str) else {"x\x00": 1} if isinstance(value, dict) else ["a\x00"]
    body = assert_error(client.patch(url, {"$set": {resource.update_field: poisoned}}, format="json"), 400)
    assert list(body["errors"]) and all(path.startswith(f"$set.{resource.update_field}") for path in body["errors"])
    assert client.get(url).json()["data"] == before


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_query_with_nul_is_400_naming_where(resource, api, ctx):
    resource.make(0, ctx)
    for document, path in [({resource.key_field: "a\x00"}, resource.key_field),
                           ({resource.key_field: {"$in": ["x", "y\x00"]}}, f"{resource.key_field}.$in.1"),
                           ({"meta\x00": 1}, "meta\\u0000")]:
        body = assert_error(api.post(f"{resource.path}/query", document, format="json"), 400)
        assert body["errors"] == {path: [NUL_REASON]}


@pytest.mark.parametrize("resource", [r for r in RESOURCES if not r.payload], ids=ids([r for r in RESOURCES if not r.payload]))
def test_resources_created_by_their_own_route_refuse_plain_create(resource, api):
    response = api.post(resource.path, {}, format="json")
    assert response.status_code == 405
    assert response.json()["success"] is False
