"""Hostile and malformed input answers 400 naming the problem (or the query's time budget answers 504), never a
500 nor a worker held until the server kills it (issue 13: linear-time regexes, no 500 for bad input)."""
import time

import pytest
from django.db import connection

from records.budget import QueryTimeout, query_budget
from tests.api.resources import RESOURCES

pytestmark = pytest.mark.django_db

QUERY_ROUTES = [f"{resource.path}/query" for resource in RESOURCES]


# --- $regex in linear time -------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|aa)+$", "(a*)*b", "^(a|a?)+$"])
def test_catastrophic_backtracking_patterns_answer_within_a_second(pattern, clients, users):
    from executors.models import PolicyExecutor

    PolicyExecutor.objects.create(executor_id="victim", executor_host_uri="http://127.0.0.1:9",
                                  executor_metadata={"x": "a" * 40 + "!"})
    started = time.monotonic()
    response = clients["viewer"].post("/executor/query", {"executor_metadata.x": {"$regex": pattern}},
                                      format="json")
    assert time.monotonic() - started < 1, pattern
    assert response.status_code == 200, response.json()
    assert response.json()["data"] == []
    # The same pattern still matches what it should, on the column path as in the search index.
    PolicyExecutor.objects.filter(executor_id="victim").update(executor_host_uri="http://aaaa")
    matching = clients["viewer"].post("/executor/query", {"executor_metadata.x": {"$regex": pattern.replace("$", "!$")}},
                                      format="json")
    assert matching.status_code == 200


@pytest.mark.parametrize("pattern", ["(?=a)a", "(?!a)b", "(?<=a)b", "(?<!a)b", "(a)\\1"])
def test_a_pattern_that_needs_backtracking_is_a_400_naming_it(pattern, api):
    response = api.post("/policy/query", {"description": {"$regex": pattern}}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "description.$regex" in body["errors"], body
    assert "backtracking" in body["message"], body


def test_a_pattern_too_large_for_the_engine_is_a_400(api):
    response = api.post("/policy/query", {"description": {"$regex": "(?:(?:a{200}){200}){200}"}}, format="json")
    assert response.status_code == 400
    assert "description.$regex" in response.json()["errors"]


# --- the query time budget ----------------------------------------------------------------------------------------

def slow_statement() -> str:
    if connection.vendor == "postgresql":
        return "SELECT pg_sleep(5)"
    return ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) "
            "SELECT count(*) FROM c")


def test_a_statement_past_the_budget_is_stopped_and_raises_query_timeout():
    started = time.monotonic()
    with pytest.raises(QueryTimeout), query_budget(0.3), connection.cursor() as cursor:
        cursor.execute(slow_statement())
    assert time.monotonic() - started < 2
    with connection.cursor() as cursor:  # the connection is still usable, and unbounded again
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.parametrize("route", ["/policy/query", "/policy?q=x"])
def test_a_query_out_of_time_answers_504_in_the_envelope(route, api, settings):
    settings.QUERY_TIME_BUDGET = 0
    response = api.post(route, {}, format="json") if route.endswith("query") else api.get(route)
    assert response.status_code == 504
    body = response.json()
    assert body["success"] is False and body["error_type"] == "timeout"
    assert "time budget" in body["message"]


# --- no 500 for bad input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["[", "1:2]", "::1]x", "[::1", "http://x", "1.2.3.4:80", "a" * 64])
def test_a_malformed_cluster_public_ip_is_a_400_naming_it(address, clients):
    response = clients["operator"].post("/executor", {"executor_id": "bad-ip", "cluster_public_ip": address},
                                        format="json")
    assert response.status_code == 400, response.content
    assert "cluster_public_ip" in response.json()["errors"]


@pytest.mark.parametrize("route", QUERY_ROUTES)
@pytest.mark.parametrize("param", ["skip", "limit"])
@pytest.mark.parametrize("value", [2**63, 2**63 - 1, 2**64, 10**40, "²", "-1", "1e3"])
def test_skip_and_limit_beyond_64_bits_are_a_400_naming_them(route, param, value, api):
    response = api.post(f"{route}?{param}={value}", {}, format="json")
    assert response.status_code == 400, response.content
    assert param in response.json()["errors"]


@pytest.mark.parametrize("route", ["/policy/query", "/executor", "/tokens"])
@pytest.mark.parametrize("depth", [5000, 900, 65])
def test_a_body_nested_thousands_deep_is_a_400(route, depth, api):
    body = "[" * depth + "]" * depth if route == "/executor" else '{"a":' * depth + "1" + "}" * depth
    response = api.post(route, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "nested" in response.json()["message"]


def test_a_lone_surrogate_is_a_400_not_a_500(api):
    body = '{"executor_id": "sur", "executor_metadata": {"k": "\\ud800"}}'
    response = api.post("/executor", body, content_type="application/json")
    assert response.status_code == 400, response.content
    regex = api.post("/executor/query", '{"executor_id": {"$regex": "\\ud800"}}', content_type="application/json")
    assert regex.status_code == 400, regex.content


def test_huge_integers_compare_and_store_and_infinite_numbers_are_a_400(api):
    from executors.models import PolicyExecutor

    PolicyExecutor.objects.create(executor_id="big", executor_host_uri="http://127.0.0.1:9",
                                  executor_metadata={"n": 10**400})
    response = api.post("/executor/query", {"executor_metadata.n": {"$gt": 10**300}}, format="json")
    assert response.status_code == 200, response.content
    assert [r["executor_id"] for r in response.json()["data"]] == ["big"]
    assert api.post("/executor/query", {"executor_metadata.n": {"$gt": -(10**400)}}, format="json").status_code == 200
    for body in ('{"executor_metadata.n": 1e999}', '{"executor_metadata.n": NaN}',
                 '{"executor_id": "inf", "executor_metadata": {"n": -1e999}}'):
        route = "/executor" if "executor_id" in body else "/executor/query"
        response = api.post(route, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert "JSON" in response.json()["message"]


# --- what the OpenAPI document calls invalid is refused (schemathesis's negative checks) -----------------------

@pytest.mark.parametrize(("route", "body", "field"), [
    ("/executor", {"executor_id": 5}, "executor_id"),
    ("/executor", {"executor_id": "typed", "executor_host_uri": ["http://127.0.0.1:9"]}, "executor_host_uri"),
    ("/tokens", {"name": 0}, "name"),
])
def test_a_value_of_another_json_type_is_refused_not_coerced(route, body, field, api):
    response = api.post(route, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


@pytest.mark.parametrize("query", ["page=", "page=0", "page=1&page=1", "page_size=0", "page_size=", "page_size=x",
                                   "page_size=5&page_size=6"])
def test_page_and_page_size_are_positive_integers_given_once(query, api):
    response = api.get(f"/executor?{query}")
    assert response.status_code in (400, 404), response.content  # page=0 is a page that does not exist
    assert response.json()["success"] is False


@pytest.mark.parametrize("param", ["skip", "limit"])
def test_skip_and_limit_given_twice_are_a_400(param, api):
    response = api.post(f"/policy/query?{param}=1&{param}=2", {}, format="json")
    assert response.status_code == 400
    assert param in response.json()["errors"]


@pytest.mark.django_db
def test_merged_update_and_paging_rules_refuse_what_the_document_refuses(client_for, users):
    """Found by schemathesis after the plain-PUT and the every-match query landed together: a PUT without a
    body, ``{"$set": null}``, and ``page`` beside ``skip`` were answered 200."""
    admin = client_for(users["admin"])
    assert admin.post("/executor", {"executor_id": "merge-x", "executor_host_uri": "http://127.0.0.1:9"},
                      format="json").status_code == 201
    no_body = admin.put("/executor/merge-x")
    assert no_body.status_code == 400 and "request body is required" in no_body.json()["message"]
    null_set = admin.patch("/executor/merge-x", {"$set": None}, format="json")
    assert null_set.status_code == 400, null_set.json()
    both = admin.post("/executor/query?skip=1&page=2", {}, format="json")
    assert both.status_code == 400 and "not both" in both.json()["message"]
    assert admin.get("/executor/merge-x").json()["data"]["executor_host_uri"] == "http://127.0.0.1:9"
