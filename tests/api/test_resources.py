"""The API checks shared by every resource (envelope, auth, 404s, CRUD, query, update), applied to each.

Each resource is described once by a ``Resource``; every test below runs for every resource that
supports the operation, as NetBox's APIViewTestCases do.
"""
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


@dataclass
class Resource:
    name: str
    path: str
    key_field: str
    # Builds the n-th record through the ORM (for resources the API does not create directly).
    make: Callable
    # Builds the n-th create body, or None when POST /<path> is not how this resource is created.
    payload: Callable | None = None
    update_field: str = ""
    update_value: object = None
    invalid_identity: list = field(default_factory=list)
    write_role: str = "author"
    updatable: bool = True


def _policy(n, ctx):
    from policies.models import PolicyRule

    return PolicyRule.objects.create(
        name=f"pol{n}", version="1.0", release_tag="beta", code=ctx["package_url"],
        metadata={"n": n, "team": "net" if n % 2 else "ops"}, tags="network,security",
    )


def _executor(n, ctx):
    from executors.models import PolicyExecutor

    return PolicyExecutor.objects.create(
        executor_id=f"exec-{n}", executor_host_uri=f"http://127.0.0.1:{9000 + n}",
        executor_hardware_info={"vcpus": {"count": 8 * (n + 1)}}, executor_metadata={"tags": ["amd_64"]},
    )


def _function(n, ctx):
    from functions.models import Function

    return Function.objects.create(
        function_id=f"fn-{n}", function_executor_id="exec-0", function_policy_rule_uri="pol0:1.0-beta",
        function_tags=["network", f"t{n}"],
    )


def _graph(n, ctx):
    from graphs.models import Graph

    for fid in ("fa", "fb"):
        _function_named(fid)
    return Graph.objects.create(
        graph_name=f"g{n}", graph_version="1.0", graph_release_tag="stable",
        graph_function_ids=["fa", "fb"], graph_connection_data={"fa": ["fb"]}, graph_search_tags=["ip"],
    )


def _function_named(fid):
    from functions.models import Function

    Function.objects.get_or_create(
        function_id=fid, defaults={"function_executor_id": "exec-0", "function_policy_rule_uri": "pol0:1.0-beta"}
    )


def _job(n, ctx):
    from jobs.models import Job

    return Job.objects.create(job_name=f"job-{n}", job_policy_rule_uri="pol0:1.0-beta",
                              job_executor_id="exec-0", job_inputs={"ip": f"10.0.0.{n}"}, job_status="completed")


def _asset(n, ctx):
    from policies.models import Asset

    return Asset.objects.create(asset_name=f"asset{n}", asset_version={"version": "1.0", "tag": "beta"},
                                asset_tags=["policy"], public_url=f"http://127.0.0.1/asset-object/{n}")


def _policy_payload(n, ctx):
    return ctx["policy_payload"](name=f"new{n}", version="2.0", release_tag="rc")


def _executor_payload(n, ctx):
    return {"executor_id": f"new-exec-{n}", "executor_host_uri": "http://127.0.0.1:9999",
            "executor_hardware_info": {"vcpus": {"count": 4}}}


def _graph_payload(n, ctx):
    for fid in ("fa", "fb", "fc"):
        _function_named(fid)
    return {"graph_name": f"newg{n}", "graph_version": "1.0", "graph_release_tag": "stable",
            "graph_function_ids": ["fa", "fb", "fc"], "graph_connection_data": {"fa": ["fb", "fc"]}}


RESOURCES = [
    Resource("policy", "/policy", "policy_rule_uri", _policy, _policy_payload, "description", "changed",
             [("name", "bad name"), ("name", ""), ("version", "1-0"), ("version", "1:0"),
              ("release_tag", "-beta"), ("release_tag", "x" * 101)]),
    Resource("executor", "/executor", "executor_id", _executor, _executor_payload,
             "executor_metadata", {"tags": ["x"]},
             [("executor_id", "Exec_1"), ("executor_id", "-exec"), ("executor_id", "a" * 64)], write_role="operator"),
    Resource("graph", "/graphs", "graph_uri", _graph, _graph_payload, "graph_description", "changed",
             [("graph_name", "bad/name"), ("graph_version", "1-0"), ("graph_release_tag", "")]),
    Resource("function", "/function", "function_id", _function, None, "function_tags", ["changed"],
             write_role="operator"),
    Resource("job", "/jobs", "job_id", _job, None, write_role="operator", updatable=False),
    Resource("asset", "/asset", "asset_uri", _asset, None, "asset_tags", ["changed"]),
]
CREATABLE = [r for r in RESOURCES if r.payload]
UPDATABLE = [r for r in RESOURCES if r.updatable]


def ids(resources):
    return [r.name for r in resources]


@pytest.fixture
def ctx(sample_package, policy_payload):
    return {"package_url": sample_package[0], "policy_payload": policy_payload}


def key_of(resource, record):
    return str(getattr(record, resource.key_field))


def assert_error(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert isinstance(body["message"], str) and body["message"]
    return body


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


# --- read and list --------------------------------------------------------------------------------------
@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_read_answers_the_record_in_the_envelope(resource, clients, ctx):
    record = resource.make(0, ctx)
    response = clients["viewer"].get(f"{resource.path}/{key_of(resource, record)}")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"][resource.key_field] == key_of(resource, record)
    assert "id" not in body["data"]


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_read_of_unknown_key_is_json_404_naming_it(resource, api):
    body = assert_error(api.get(f"{resource.path}/no-such-thing"), 404)
    assert "no-such-thing" in body["message"]


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_list_is_paginated_in_the_envelope(resource, clients, ctx):
    for n in range(3):
        resource.make(n, ctx)
    first = clients["viewer"].get(f"{resource.path}?page_size=2").json()
    assert first["success"] is True
    assert len(first["data"]) == 2
    assert first["pagination"]["count"] == 3
    assert first["pagination"]["previous"] is None and first["pagination"]["next"]
    second = clients["viewer"].get(f"{resource.path}?page_size=2&page=2").json()
    assert len(second["data"]) == 1
    keys = {r[resource.key_field] for r in first["data"] + second["data"]}
    assert len(keys) == 3


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_page_size_is_capped(resource, api, settings, ctx):
    settings.API_MAX_PAGE_SIZE = 2
    for n in range(3):
        resource.make(n, ctx)
    assert len(api.get(f"{resource.path}?page_size=100").json()["data"]) == 2


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_page_past_the_end_is_404(resource, api, ctx):
    resource.make(0, ctx)
    assert_error(api.get(f"{resource.path}?page=99"), 404)


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_reads_need_a_token(resource, anon, ctx):
    record = resource.make(0, ctx)
    assert_error(anon.get(resource.path), 401)
    assert_error(anon.get(f"{resource.path}/{key_of(resource, record)}"), 401)
    assert_error(anon.post(f"{resource.path}/query", {}, format="json"), 401)


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_anonymous_read_when_the_deployment_allows_it(resource, anon, settings, ctx):
    settings.ANONYMOUS_READ = True
    record = resource.make(0, ctx)
    assert anon.get(f"{resource.path}/{key_of(resource, record)}").status_code == 200
    assert anon.post(f"{resource.path}/query", {}, format="json").status_code == 200
    # ... but never writes.
    assert_error(anon.delete(f"{resource.path}/{key_of(resource, record)}"), 401)


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_a_user_without_a_role_cannot_read(resource, clients, ctx):
    resource.make(0, ctx)
    assert_error(clients["norole"].get(resource.path), 403)


def test_a_revoked_or_wrong_token_is_401(api, users, client_for, anon):
    from accounts.models import ApiToken

    client = client_for(users["viewer"])
    assert client.get("/policy").status_code == 200
    ApiToken.objects.filter(user=users["viewer"]).update(revoked_at="2026-01-01T00:00:00Z")
    assert_error(client.get("/policy"), 401)
    anon.credentials(HTTP_AUTHORIZATION="Token pg_not-a-real-token")
    assert_error(anon.get("/policy"), 401)
    anon.credentials(HTTP_AUTHORIZATION="Bearer")
    assert_error(anon.get("/policy"), 401)


def test_bearer_scheme_is_accepted(users, token_for, anon):
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(users['viewer'])}")
    assert anon.get("/policy").status_code == 200


# --- update -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resource", [r for r in UPDATABLE if r.update_field], ids=ids([r for r in UPDATABLE if r.update_field]))
def test_set_updates_a_field_and_answers_the_record(resource, clients, ctx):
    record = resource.make(0, ctx)
    url = f"{resource.path}/{key_of(resource, record)}"
    role = "admin" if resource.name == "asset" else resource.write_role
    response = clients[role].put(url, {"$set": {resource.update_field: resource.update_value}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"][resource.update_field] == resource.update_value
    assert clients["viewer"].get(url).json()["data"][resource.update_field] == resource.update_value
    patched = clients[role].patch(url, {"$set": {resource.update_field: resource.update_value}}, format="json")
    assert patched.status_code == 200


@pytest.mark.parametrize("resource", UPDATABLE, ids=ids(UPDATABLE))
def test_identity_fields_cannot_change(resource, api, ctx):
    from django.apps import apps

    record = resource.make(0, ctx)
    url = f"{resource.path}/{key_of(resource, record)}"
    model = type(record)
    for name in model.identity_fields:
        body = assert_error(api.patch(url, {"$set": {name: "changed"}}, format="json"), 400)
        assert name in body["errors"]
    assert apps.get_model(model._meta.label).objects.get(pk=record.pk).key == record.key


@pytest.mark.parametrize("resource", UPDATABLE, ids=ids(UPDATABLE))
def test_update_of_unknown_key_is_404(resource, api):
    assert_error(api.patch(f"{resource.path}/nope", {"$set": {"x": 1}}, format="json"), 404)


def test_updates_need_write_role(clients, ctx):
    record = _policy(0, ctx)
    url = f"/policy/{record.policy_rule_uri}"
    assert_error(clients["viewer"].patch(url, {"$set": {"description": "x"}}, format="json"), 403)
    assert_error(clients["operator"].patch(url, {"$set": {"description": "x"}}, format="json"), 403)
    assert clients["author"].patch(url, {"$set": {"description": "x"}}, format="json").status_code == 200


def test_jobs_are_not_updatable(api, ctx):
    job = _job(0, ctx)
    response = api.patch(f"/jobs/{job.job_id}", {"$set": {"job_status": "failed"}}, format="json")
    assert response.status_code == 405
    assert response.json()["success"] is False


# --- delete -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_delete_removes_the_record(resource, clients, ctx):
    record = resource.make(7, ctx)
    url = f"{resource.path}/{key_of(resource, record)}"
    role = "admin" if resource.name == "asset" else resource.write_role
    assert_error(clients["viewer"].delete(url), 403)
    response = clients[role].delete(url)
    assert response.status_code == 200, response.content
    assert response.json()["data"][resource.key_field] == key_of(resource, record)
    assert_error(clients["viewer"].get(url), 404)
    assert_error(clients[role].delete(url), 404)


def test_delete_of_a_policy_in_use_is_409_naming_the_user(api, ctx):
    from functions.models import Function

    policy = _policy(0, ctx)
    Function.objects.create(function_id="uses-it", function_executor_id="exec-0",
                            function_policy_rule_uri=policy.policy_rule_uri)
    body = assert_error(api.delete(f"/policy/{policy.policy_rule_uri}"), 409)
    assert "uses-it" in body["message"]


def test_delete_of_a_function_used_by_a_graph_is_409_naming_it(api, ctx):
    graph = _graph(0, ctx)
    body = assert_error(api.delete("/function/fa"), 409)
    assert graph.graph_uri in body["message"]


def test_delete_of_an_executor_with_functions_is_409(api, ctx):
    _executor(0, ctx)
    _function(0, ctx)
    body = assert_error(api.delete("/executor/exec-0"), 409)
    assert "fn-0" in body["message"]


# --- query ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_query_returns_matching_records_in_get_shape(resource, clients, ctx):
    records = [resource.make(n, ctx) for n in range(3)]
    target = key_of(resource, records[1])
    response = clients["viewer"].post(f"{resource.path}/query", {resource.key_field: target}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [r[resource.key_field] for r in body["data"]] == [target]
    assert body["data"][0] == clients["viewer"].get(f"{resource.path}/{target}").json()["data"]
    everything = clients["viewer"].post(f"{resource.path}/query", {}, format="json").json()
    assert everything["pagination"]["count"] == 3


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_query_rejects_unknown_operators_with_400_naming_them(resource, api, ctx):
    resource.make(0, ctx)
    body = assert_error(api.post(f"{resource.path}/query", {resource.key_field: {"$where": "1"}}, format="json"), 400)
    assert "$where" in body["message"]
    assert_error(api.post(f"{resource.path}/query", [1], format="json"), 400)


def test_query_limit_skip_sort(api, ctx):
    for n in range(5):
        _policy(n, ctx)
    names = [r["name"] for r in api.post("/policy/query?sort=-name&skip=1&limit=2", {}, format="json").json()["data"]]
    assert names == ["pol3", "pol2"]
    assert_error(api.post("/policy/query?sort=nope", {}, format="json"), 400)
    assert_error(api.post("/policy/query?limit=-1", {}, format="json"), 400)


def test_query_of_the_description_examples(api, ctx):
    _executor(1, ctx)  # 16 vcpus
    _executor(2, ctx)  # 24 vcpus
    _executor(0, ctx)  # 8 vcpus
    found = api.post("/executor/query", {"executor_metadata.tags": {"$in": ["amd_64"]},
                                         "executor_hardware_info.vcpus.count": {"$gte": 16}}, format="json")
    assert sorted(r["executor_id"] for r in found.json()["data"]) == ["exec-1", "exec-2"]
    _function(0, ctx)
    _function(1, ctx)
    found = api.post("/function/query", {"function_tags": {"$in": ["t1"]},
                                         "function_policy_rule_uri": "pol0:1.0-beta"}, format="json")
    assert [r["function_id"] for r in found.json()["data"]] == ["fn-1"]


def test_the_descriptions_job_query_uses_the_submission_names(api, ctx):
    _job(1, ctx)
    _job(2, ctx)
    found = api.post("/jobs/query", {"policy_rule_uri": "pol0:1.0-beta", "inputs.ip": "10.0.0.2"}, format="json")
    assert found.status_code == 200, found.content
    assert [r["job_name"] for r in found.json()["data"]] == ["job-2"]


# --- envelope for unknown routes and methods ------------------------------------------------------------
def test_unknown_path_is_json_404(api):
    body = assert_error(api.get("/no/such/route"), 404)
    assert "/no/such/route" in body["message"]


def test_wrong_method_is_json_405(api):
    assert_error(api.put("/policy", {}, format="json"), 405)
    assert_error(api.delete("/policy/query"), 405)


def test_list_filters_of_policies(api, ctx):
    for n in range(3):
        _policy(n, ctx)
    assert [r["name"] for r in api.get("/policy?name=pol1").json()["data"]] == ["pol1"]
    assert api.get("/policy?tags=security").json()["pagination"]["count"] == 3
    assert api.get("/policy?q=pol2").json()["pagination"]["count"] == 1
    assert [r["name"] for r in api.get("/policy?ordering=-name").json()["data"]] == ["pol2", "pol1", "pol0"]


# --- concurrency (PostgreSQL: real concurrent transactions) ---------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("resource", CREATABLE, ids=ids(CREATABLE))
def test_concurrent_creates_of_one_key_give_one_201_and_the_rest_409(resource, users, client_for, ctx):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises them (covered by the duplicate test)")
    body = resource.payload(1, ctx)
    clients = [client_for(users[resource.write_role]) for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    statuses = []

    def create(client):
        from django.db import connections

        barrier.wait()
        try:
            statuses.append(client.post(resource.path, body, format="json").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * (len(clients) - 1)


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_records_serialise_exactly_as_drf_would(resource, ctx):
    """RecordSerializer reads plain values straight from the instance: DRF's own path is the oracle."""
    from rest_framework import serializers

    import portal.urls  # noqa: F401 - imports every resource's serializer
    from records.api.serializers import RecordSerializer

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    record = resource.make(0, ctx)
    record.refresh_from_db()
    serializer_class = next(s for s in subclasses(RecordSerializer) if s.Meta.model is type(record))
    serializer = serializer_class(record)
    expected = serializers.ModelSerializer.to_representation(serializer, record)
    found = serializer.data
    assert found == expected
    assert list(found)[0] == resource.key_field and list(found)[-1] == "created_by"
    # Values of other types than the model's own (assigned, not yet saved) still go through DRF.
    for name, drf_field, passes in serializer._representation_plan:
        if passes in (str, int):
            setattr(record, name, 7 if passes is str else "7")
            assert serializer_class(record).data[name] == drf_field.to_representation(getattr(record, name))
            break


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_a_key_with_a_nul_byte_is_404_not_500(resource, api):
    response = api.get(f"{resource.path}/ab%00cd")
    assert response.status_code == 404 and "no " in response.json()["message"], response.content


def test_execute_on_an_executor_key_with_a_nul_byte_is_404(api):
    response = api.post("/executor/ab%00cd/execute_policy", {"policy_rule_uri": "x:1.0-a", "input_data": {}},
                        format="json")
    assert response.status_code == 404
