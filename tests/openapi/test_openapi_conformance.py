"""The OpenAPI document tells the truth about the API (issue 13, deliverable 5).

The document itself (cheap, through the test client): the envelope, the error statuses, nullable fields, the
content types, no route that isn't served. Then the live check: schemathesis with every check on and every
phase, stateful included, against the web server ``run_embedded`` starts, in a network namespace of its own
(tests/openapi/run_schemathesis.py), bounded to a few minutes.
"""
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest

from tests.api.conftest import ctx  # noqa: F401  (the records of tests/api/resources.py need it)
from tests.api.resources import RESOURCES, ids, key_of

ROOT = Path(__file__).resolve().parents[2]
FUZZ_SECONDS = 100


@pytest.fixture
def schema(api):
    return api.get("/api/schema/?format=json").json()


def test_every_json_answer_is_documented_in_its_envelope(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path == "/health":
                continue
            for status_code, response in operation["responses"].items():
                body = response.get("content", {}).get("application/json", {}).get("schema")
                if body is None:
                    continue
                if status_code.startswith("2"):
                    ref = body.get("$ref", "")
                    target = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else body
                    assert "success" in target["properties"], (method, path, status_code)
                else:
                    assert body == {"$ref": "#/components/schemas/Error"}, (method, path, status_code)


def test_errors_are_documented_where_they_can_happen(schema):
    executor = schema["paths"]["/executor/{executor_id}"]
    assert {"401", "403", "404", "409", "415"} <= set(executor["put"]["responses"])
    assert "200" in executor["delete"]["responses"] and "204" not in executor["delete"]["responses"]
    query = schema["paths"]["/policy/query"]["post"]["responses"]
    assert {"400", "504"} <= set(query)
    assert query["200"]["content"]["application/json"]["schema"]["properties"]["data"]["type"] == "array"


def test_routes_that_are_not_served_are_not_documented(schema, api):
    for resource in ("asset", "function", "jobs"):
        assert "post" not in schema["paths"][f"/{resource}"]
        response = api.post(f"/{resource}", {}, format="json")
        assert response.status_code == 405
        assert "POST" not in response["Allow"]


def test_nullable_fields_and_content_types_are_as_served(schema):
    executor = schema["components"]["schemas"]["PolicyExecutor"]["properties"]
    assert "null" in executor["created_by"]["type"]
    asset_bytes = schema["paths"]["/asset-object/{asset_id}"]["get"]["responses"]["200"]["content"]
    assert {"application/zip", "application/gzip", "application/octet-stream"} <= set(asset_bytes)


def test_patch_takes_only_the_update_operators(schema):
    body = schema["paths"]["/policy/{policy_rule_uri}"]["patch"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/UpdateOperators"}


def documented(schema: dict, path: str, method: str, status_code: int) -> jsonschema.Draft202012Validator:
    response = schema["paths"][path][method]["responses"][str(status_code)]
    body = response["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**body, "components": schema["components"]})


@pytest.mark.parametrize("resource", RESOURCES, ids=ids(RESOURCES))
def test_every_resource_answers_as_documented(resource, schema, api, ctx):  # noqa: F811
    """Each resource's record, list, query and delete validate against the document, with a record the
    fuzzer could not create itself (jobs, functions, assets come from their own routes)."""
    record = resource.make(0, ctx)
    key = quote(key_of(resource, record), safe=":")
    detail = "/".join([resource.path, "{" + resource.key_field + "}"])
    checks = [
        (api.get(f"{resource.path}/{key}"), detail, "get", 200),
        (api.get(resource.path), resource.path, "get", 200),
        (api.post(f"{resource.path}/query", {}, format="json"), f"{resource.path}/query", "post", 200),
        (api.post(f"{resource.path}/query?limit=5", {}, format="json"), f"{resource.path}/query", "post", 200),
        (api.get(f"{resource.path}/{key}-missing"), detail, "get", 404),
        (api.post(f"{resource.path}/query", {"$where": "1"}, format="json"), f"{resource.path}/query", "post", 400),
        (api.delete(f"{resource.path}/{key}"), detail, "delete", 200),
    ]
    for response, path, method, status_code in checks:
        assert response.status_code == status_code, (method, path, response.content)
        errors = [e.message for e in documented(schema, path, method, status_code).iter_errors(response.json())]
        assert errors == [], (method, path, status_code, errors)


def test_the_other_routes_answer_as_documented(schema, api, ctx):  # noqa: F811
    policy = RESOURCES[0].make(0, ctx)
    uri = quote(policy.policy_rule_uri, safe=":")
    detail = "/policy/{policy_rule_uri}"
    checks = [
        (api.get("/tokens"), "/tokens", "get", 200),
        (api.post("/tokens", {"name": "documented"}, format="json"), "/tokens", "post", 201),
        (api.get("/audit"), "/audit", "get", 200),
        (api.get("/keys"), "/keys", "get", 200),
        (api.post(f"/policy/{uri}/submit", {"comment": ""}, format="json"), f"{detail}/submit", "post", 200),
        (api.get(f"/policy/{uri}/history"), f"{detail}/history", "get", 200),
        (api.post(f"/policy/{uri}/new-version", {"version": "2.0"}, format="json"), f"{detail}/new-version", "post",
         201),
        (api.post(f"/policy/{uri}/approve", {}, format="json"), f"{detail}/approve", "post", 403),  # own submission
        (api.patch(f"/policy/{uri}", {"description": "x"}, format="json"), detail, "patch", 400),
    ]
    for response, path, method, status_code in checks:
        assert response.status_code == status_code, (method, path, response.content)
        errors = [e.message for e in documented(schema, path, method, status_code).iter_errors(response.json())]
        assert errors == [], (method, path, status_code, errors)


@pytest.mark.slow
def test_schemathesis_finds_nothing_with_every_check_on():
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace (unshare --net): the fuzzed records name arbitrary hosts")
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "tests.openapi.run_schemathesis",
         "--max-time", str(FUZZ_SECONDS), "--", "--no-shrink"],
        cwd=ROOT, capture_output=True, text=True, timeout=FUZZ_SECONDS + 180,
    )
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-5000:]
    assert "passed" in result.stdout
