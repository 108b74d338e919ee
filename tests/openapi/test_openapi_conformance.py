"""The OpenAPI document tells the truth about the API (issue 13, deliverable 5).

The document itself (cheap, through the test client): the envelope, the error statuses, nullable fields, the
content types, no route that isn't served. Then the live check: schemathesis with every check on and every
phase, stateful included, against the web server ``run_embedded`` starts, in a network namespace of its own
(tests/openapi/run_schemathesis.py), bounded to a few minutes.
"""
import subprocess
import sys
from pathlib import Path

import pytest

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
