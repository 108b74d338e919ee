"""The API checks shared by every resource (read, list, update, delete, query, unknown routes, concurrency)."""
import threading

import pytest
from django.db import connection

from tests.api.resources import (
    CREATABLE,
    RESOURCES,
    UPDATABLE,
    _executor,
    _function,
    _graph,
    _job,
    _policy,
    assert_error,
    ids,
    key_of,
)

pytestmark = pytest.mark.django_db


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
    for token in ApiToken.objects.filter(user=users["viewer"]):
        token.revoke()
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
