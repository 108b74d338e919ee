"""policygrid.wire: the execute request's schema and parser, the error envelope's encoder and decoders."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from policygrid.errors import (
    InputInvalid,
    IntegrityError,
    PackageRequired,
    PolicyError,
    PolicyGridError,
    ResourceLimit,
    Timeout,
    Unavailable,
)
from policygrid.wire import (
    EXECUTE_REQUEST_SCHEMA,
    PUBLIC_FIELDS,
    ExecuteRequest,
    error_envelope,
    error_from_envelope,
    execute_request_schema,
    execute_with_upload,
    executor_result,
    parse_execute_request,
)

DIGEST = "sha256:" + "ab" * 32


def refused(body, **options) -> InputInvalid:
    with pytest.raises(InputInvalid) as caught:
        parse_execute_request(body, max_timeout=options.pop("max_timeout", 300), **options)
    return caught.value


def test_a_valid_request_is_parsed_with_its_defaults():
    request = parse_execute_request({"policy_rule_uri": " a:1-b ", "input_data": None}, max_timeout=300)
    assert request == ExecuteRequest(policy_rule_uri="a:1-b", input_data=None)
    record = {"policy_rule_uri": "a:1-b", "code_digest": DIGEST}
    body = {"policy_rule_uri": "a:1-b", "input_data": {}, "timeout_seconds": 2, "dry_run": True, "record": record,
            "release": {"key_id": "k", "signature": "c2ln"}, "parameters": {"x": 1}, "settings": None}
    request = parse_execute_request(json.dumps(body).encode(), max_timeout=300)
    assert (request.record, request.release["key_id"], request.timeout_seconds, request.dry_run) == (record, "k", 2, True)


@pytest.mark.parametrize("body, field, reason", [
    ({"input_data": {}}, "policy_rule_uri", "is required: the policy's URI, name:version-release_tag"),
    ({"policy_rule_uri": "  ", "input_data": {}}, "policy_rule_uri", "is required: the policy's URI, name:version-release_tag"),
    ({"policy_rule_uri": "a:1-b"}, "input_data", "is required (any JSON value; {} is fine)"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "parameters": []}, "parameters", "must be a JSON object"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "settings": "x"}, "settings", "must be a JSON object"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "timeout_seconds": 0}, "timeout_seconds", "must be a positive number of seconds"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "timeout_seconds": True}, "timeout_seconds", "must be a positive number of seconds"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "timeout_seconds": float("nan")}, "timeout_seconds", "must be a positive number of seconds"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "timeout_seconds": 301}, "timeout_seconds", "must be at most 300 seconds"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "dry_run": "yes"}, "dry_run", "must be true or false"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "surprise": 1}, "surprise", "unknown field"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "record": {"policy_rule_uri": "a:1-b", "code_digest": "md5:x"}},
     "record", "must be the policy's record: an object with policy_rule_uri and code_digest (sha256:<64 hex>)"),
    ({"policy_rule_uri": "a:1-b", "input_data": {}, "release": {"key_id": "k"}}, "release", 'must be null or {"key_id": "…", "signature": "…"}'),
    ([], "(body)", "must be a JSON object"),
])
def test_each_bad_field_is_named_with_its_reason(body, field, reason):
    error = refused(body)
    assert error.errors[field] == [reason]
    assert error.message == f"invalid request: {field}: {reason}"


def test_every_bad_field_is_reported_unknown_fields_first():
    error = refused({"extra": 1, "parameters": 3, "dry_run": 1})
    assert list(error.errors) == ["extra", "policy_rule_uri", "input_data", "parameters", "dry_run"]
    assert error.message == "invalid request: extra: unknown field"


def test_the_portal_allows_only_the_public_fields_and_its_own_cap():
    body = {"policy_rule_uri": "a:1-b", "input_data": {}, "policy_stamp": "s"}
    assert refused(body, allowed_fields=PUBLIC_FIELDS).errors == {"policy_stamp": ["unknown field"]}
    assert refused({**body, "timeout_seconds": 11}, max_timeout=10).errors["timeout_seconds"] == [
        "must be at most 10 seconds"]
    assert set(execute_request_schema(fields=PUBLIC_FIELDS)["properties"]) == set(PUBLIC_FIELDS)


def test_a_record_of_another_policy_is_refused_and_bad_json_is_named():
    error = refused({"policy_rule_uri": "a:1-b", "input_data": {},
                     "record": {"policy_rule_uri": "other:1-b", "code_digest": DIGEST}})
    assert "other:1-b" in error.errors["record"][0]
    assert refused(b"{nope").errors == {"(body)": ["not valid JSON"]}


def test_the_schema_is_a_plain_valid_json_schema():
    Draft202012Validator.check_schema(EXECUTE_REQUEST_SCHEMA)
    assert json.loads(json.dumps(EXECUTE_REQUEST_SCHEMA)) == EXECUTE_REQUEST_SCHEMA


def test_envelope_round_trip_keeps_type_status_fields_and_exception_type():
    error = PolicyError("ValueError: x", exception_type="ValueError", errors={"a": ["b"]})
    body = error_envelope(error)
    assert body == {"success": False, "message": "ValueError: x", "error_type": "policy_error",
                    "errors": {"a": ["b"]}, "exception_type": "ValueError"}
    back = error_from_envelope(body, 500)
    assert type(back) is PolicyError and back.exception_type == "ValueError" and back.errors == {"a": ["b"]}
    required = error_envelope(PackageRequired("upload it", code_digest=DIGEST))
    assert required["code_digest"] == DIGEST and required["error_type"] == "package_required"
    assert error_from_envelope(required, 409).code_digest == DIGEST
    # No status (a worker's error object): the class's own.
    assert error_from_envelope({"error_type": "resource_limit", "message": "m"}).status == 500
    assert error_from_envelope({"error_type": "weird", "message": "m"}, 418).error_type == "weird"


@pytest.mark.parametrize("status, body, expected", [
    (400, {"success": False, "error_type": "input_invalid", "message": "m"}, (InputInvalid, 400)),
    (500, {"success": False, "error_type": "integrity", "message": "m"}, (IntegrityError, 500)),
    (500, {"success": False, "error_type": "resource_limit", "message": "m"}, (ResourceLimit, 500)),
    (504, {"success": False, "error_type": "timeout", "message": "m"}, (Timeout, 504)),
    (200, None, (Unavailable, 502)),
    (200, {"success": True}, (Unavailable, 502)),
    (502, {"data": 1}, (Unavailable, 502)),
    (401, {"success": False, "message": "no"}, (Unavailable, 502)),
    (503, {"success": False, "error_type": "unavailable", "message": "busy"}, (Unavailable, 502)),
    (409, {"success": False, "error_type": "package_required", "message": "m", "code_digest": DIGEST},
     (PackageRequired, 409)),
])
def test_executor_answers_become_data_or_the_right_error(status, body, expected):
    with pytest.raises(PolicyGridError) as caught:
        executor_result(status, body, "ex-1")
    assert (type(caught.value), caught.value.status) == expected
    if expected[0] is Unavailable:
        assert "ex-1" in caught.value.message and str(status) in caught.value.message
    assert executor_result(200, {"success": True, "data": [1]}, "ex-1") == [1]


def test_execute_with_upload_uploads_once_then_calls_again():
    sent = []
    answers = [(409, {"success": False, "error_type": "package_required", "message": "m", "code_digest": DIGEST}),
               (201, {"success": True, "data": {"code_digest": DIGEST}}),
               (200, {"success": True, "data": {"ok": True}})]

    def send(method, path, data):
        sent.append((method, path, data))
        return answers.pop(0)

    result = execute_with_upload(send, {"policy_rule_uri": "a:1-b", "input_data": {}}, lambda d: b"zip:" + d.encode(), "ex")
    assert result == {"ok": True}
    assert [(m, p) for m, p, _ in sent] == [("POST", "/execute_policy"), ("PUT", f"/packages/{DIGEST}"),
                                          ("POST", "/execute_policy")]
    assert sent[1][2] == b"zip:" + DIGEST.encode()
