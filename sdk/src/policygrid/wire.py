"""The execute request and the error envelope on the wire: one schema, one parser, one encoder, one decoder.

Shared by the executor service, the SDK's portal client and the portal, so that none of them can disagree with
another on what a request may hold or on what an error answer means.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from .errors import (
    ERROR_CLASSES,
    InputInvalid,
    NotExecutable,
    NotFound,
    PackageRequired,
    PolicyGridError,
    Timeout,
    Unavailable,
)
from .signing import POLICY_SIGNED_FIELDS

# The fields a caller of the portal's route may send; the executor takes these and the executor-only ones.
PUBLIC_FIELDS = ("policy_rule_uri", "input_data", "parameters", "settings", "timeout_seconds", "dry_run",
                 "capture_output")
EXECUTOR_FIELDS = (*PUBLIC_FIELDS, "policy_stamp", "record", "release", "grant")
# What the executor needs of a policy record to run it without asking the portal: the signed statement's fields.
RECORD_FIELDS = ("policy_rule_uri", *POLICY_SIGNED_FIELDS)
DIGEST_PATTERN = "^sha256:[0-9a-f]{64}$"

EXECUTE_REQUEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ExecuteRequest",
    "type": "object",
    "required": ["policy_rule_uri", "input_data"],
    "additionalProperties": False,
    "properties": {
        "policy_rule_uri": {"type": "string", "pattern": r"\S", "description": "name:version-release_tag"},
        "input_data": {"description": "the policy's input: any JSON value"},
        "parameters": {"type": ["object", "null"], "description": "overrides of the stored parameters"},
        "settings": {"type": ["object", "null"], "description": "overrides of the stored settings"},
        "timeout_seconds": {"type": ["number", "null"], "exclusiveMinimum": 0,
                            "description": "wall-clock limit of the call"},
        "dry_run": {"type": "boolean", "description": "a trial run by the policy's author or a reviewer"},
        "capture_output": {"type": "boolean",
                           "description": "answer what the policy printed too: output {stdout, stderr, truncated}"},
        "policy_stamp": {"type": ["string", "null"],
                         "description": "executor only: the version stamp of the record the caller checked"},
        "record": {
            "type": ["object", "null"],
            "description": "executor only: the policy record to run (policy_rule_uri and the signed fields)",
            "required": ["policy_rule_uri", "code_digest"],
            "properties": {"policy_rule_uri": {"type": "string", "minLength": 1},
                           "code_digest": {"type": "string", "pattern": DIGEST_PATTERN}},
        },
        "release": {
            "type": ["object", "null"],
            "description": "executor only: the record's release signature, or null for an unsigned record",
            "required": ["key_id", "signature"],
            "properties": {"key_id": {"type": "string", "minLength": 1},
                           "signature": {"type": "string", "minLength": 1}},
        },
        "grant": {
            "type": ["object", "null"],
            "description": "executor only: the portal's signed, short-lived authorisation of this call",
            "required": ["statement", "key_id", "signature"],
            "properties": {"statement": {"type": "object"}, "key_id": {"type": "string", "minLength": 1},
                           "signature": {"type": "string", "minLength": 1}},
        },
    },
}

_REASONS = {
    "policy_rule_uri": "is required: the policy's URI, name:version-release_tag",
    "input_data": "is required (any JSON value; {} is fine)",
    "parameters": "must be a JSON object",
    "settings": "must be a JSON object",
    "timeout_seconds": "must be a positive number of seconds",
    "dry_run": "must be true or false",
    "capture_output": "must be true or false",
    "policy_stamp": "must be a string",
    "record": "must be the policy's record: an object with policy_rule_uri and code_digest (sha256:<64 hex>)",
    "release": 'must be null or {"key_id": "…", "signature": "…"}',
    "grant": 'must be null or {"statement": {…}, "key_id": "…", "signature": "…"}',
}
# Failures of the policy itself, passed on as the executor reported them (docs/api.md §1 table).
POLICY_FAILURES = {"input_invalid": 400, "policy_error": 500, "output_invalid": 500, "resource_limit": 500,
                   "integrity": 500, "timeout": 504}


@dataclass(frozen=True)
class ExecuteRequest:
    policy_rule_uri: str
    input_data: Any
    parameters: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    timeout_seconds: float | None = None
    dry_run: bool = False
    capture_output: bool = False
    policy_stamp: str | None = None
    record: dict[str, Any] | None = None
    release: dict[str, str] | None = None
    grant: dict[str, Any] | None = None


def execute_request_schema(*, max_timeout: float | None = None, fields=EXECUTOR_FIELDS) -> dict[str, Any]:
    """The schema restricted to ``fields`` (the portal publishes ``PUBLIC_FIELDS``), with the timeout's cap."""
    schema = copy.deepcopy(EXECUTE_REQUEST_SCHEMA)
    schema["properties"] = {name: rule for name, rule in schema["properties"].items() if name in fields}
    if max_timeout is not None:
        schema["properties"]["timeout_seconds"]["maximum"] = max_timeout
    return schema


@functools.lru_cache(maxsize=16)
def _validator(max_timeout: float, fields: tuple[str, ...]) -> Draft202012Validator:
    return Draft202012Validator(execute_request_schema(max_timeout=max_timeout, fields=fields))


def parse_execute_request(body: Any, *, max_timeout: float, allowed_fields=EXECUTOR_FIELDS) -> ExecuteRequest:
    """Check a request body (parsed JSON, or its bytes) against the schema; InputInvalid names every bad field."""
    if isinstance(body, bytes | bytearray | str):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputInvalid(f"invalid request: (body): not valid JSON: {exc}",
                               errors={"(body)": ["not valid JSON"]}) from None
    fields = tuple(allowed_fields)
    errors: dict[str, list[str]] = {}
    for error in _validator(float(max_timeout), fields).iter_errors(body):
        for field, reason in _explain(error, max_timeout):
            errors.setdefault(field, [reason])
    if isinstance(body, dict):
        timeout = body.get("timeout_seconds")
        if isinstance(timeout, float) and not math.isfinite(timeout):  # NaN slips past every comparison
            errors.setdefault("timeout_seconds", [_REASONS["timeout_seconds"]])
        record = body.get("record")
        if isinstance(record, dict) and "record" not in errors and record["policy_rule_uri"] != body.get(
                "policy_rule_uri"):
            errors["record"] = [f"is the record of {record['policy_rule_uri']}, not of the requested policy"]
    if errors:
        order = [*sorted(f for f, r in errors.items() if r == ["unknown field"]), "(body)", *fields]
        errors = {field: errors[field] for field in order if field in errors}
        first = next(iter(errors))
        raise InputInvalid(f"invalid request: {first}: {errors[first][0]}", errors=errors)
    return ExecuteRequest(**{**body, "policy_rule_uri": body["policy_rule_uri"].strip(),
                             "dry_run": body.get("dry_run", False)})


def _explain(error, max_timeout: float) -> list[tuple[str, str]]:
    if not error.absolute_path:
        if error.validator == "required":
            return [(name, _REASONS[name]) for name in error.validator_value if name not in error.instance]
        if error.validator == "additionalProperties":
            known = set(error.schema["properties"])
            return [(name, "unknown field") for name in error.instance if name not in known]
        return [("(body)", "must be a JSON object")]
    field = str(error.absolute_path[0])
    if field == "timeout_seconds" and error.validator == "maximum":
        return [(field, f"must be at most {max_timeout:g} seconds")]
    return [(field, _REASONS[field])]


# --- the error envelope -----------------------------------------------------------------------------------


def error_envelope(exc: PolicyGridError) -> dict[str, Any]:
    """``{"success": false, "message", "error_type", "errors"?, "exception_type"?, "code_digest"?}``."""
    body = exc.to_dict()
    if isinstance(getattr(exc, "output", None), dict):
        body["output"] = exc.output  # what the policy printed, when the call asked for it
    exception_type = getattr(exc, "exception_type", None)
    if exception_type:
        body["exception_type"] = exception_type
    if isinstance(exc, PackageRequired):
        body["code_digest"] = exc.code_digest
    return body


def error_from_envelope(body: dict[str, Any], status: int | None = None) -> PolicyGridError:
    """Rebuild the error a server (``status``) or a worker process (no status) described in an error envelope."""
    error_type = body.get("error_type")
    cls = ERROR_CLASSES.get(error_type or "")
    if cls is None:
        cls = {400: InputInvalid, 404: NotFound, 409: NotExecutable, 502: Unavailable, 504: Timeout}.get(
            status or 500, PolicyGridError
        )
    message = body.get("message") or (f"request failed with HTTP {status}" if status else "the policy failed")
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else None
    error = cls(message, errors=errors, status=status, error_type=error_type or None)
    if isinstance(body.get("exception_type"), str):
        error.exception_type = body["exception_type"]  # type: ignore[attr-defined]
    if isinstance(error, PackageRequired):
        error.code_digest = str(body.get("code_digest") or "")
    if isinstance(body.get("output"), dict):
        error.output = body["output"]  # type: ignore[attr-defined]
    return error


def executor_result(status: int, body: Any, executor: str) -> Any:
    """The ``data`` of an executor's answer (HTTP ``status``, parsed JSON ``body`` or None), or its error.

    Failures of the policy are passed on with their status (``POLICY_FAILURES``); ``package_required`` is
    ``PackageRequired`` (upload the package, then call again: ``execute_with_upload``); anything else — no
    envelope, an incomplete one, refused credentials, an executor's own trouble — is ``Unavailable`` (502).
    """
    if not isinstance(body, dict) or not isinstance(body.get("success"), bool):
        raise Unavailable(f"executor {executor} answered HTTP {status} without a JSON envelope")
    if body["success"]:
        if status != 200 or "data" not in body:
            raise Unavailable(f"executor {executor} answered HTTP {status} with an incomplete envelope")
        return body["data"]
    error_type = body.get("error_type")
    if error_type in POLICY_FAILURES:
        raise error_from_envelope(body, POLICY_FAILURES[error_type])
    if error_type == PackageRequired.error_type and status == PackageRequired.status and body.get("code_digest"):
        raise error_from_envelope(body, status)
    if status in (401, 403):
        raise Unavailable(f"executor {executor} refused the caller's credentials (HTTP {status}): the bearer "
                          "token must be the executor's shared secret (POLICYGRID_EXECUTOR_TOKEN)")
    message = str(body.get("message") or "the executor reported a failure")
    failure = Unavailable(f"executor {executor} could not run the call (HTTP {status}, "
                          f"{error_type or 'no error_type'}): {message}")
    failure.upstream_status = status  # what the executor answered (409: e.g. a function already deployed)
    raise failure


def execute_with_upload(send: Callable[[str, str, bytes], tuple[int, Any]], body: dict[str, Any],
                        read_package: Callable[[str], bytes], executor: str, path: str = "/execute_policy") -> Any:
    """Run ``POST /execute_policy`` (or ``path``: ``/jobs`` launches a job the same way), uploading the package
    once if the executor asks for it (409 package_required).

    ``send(method, path, data)`` makes one authenticated request to the executor and returns (status, parsed
    JSON or None); ``read_package(code_digest)`` returns the archive's bytes. The upload is ``PUT
    /packages/<code_digest>`` with the bytes as the body (``Content-Type: application/octet-stream``).
    """
    request = json.dumps(body).encode()
    try:
        return executor_result(*send("POST", path, request), executor)
    except PackageRequired as needed:
        status, answer = send("PUT", f"/packages/{needed.code_digest}", read_package(needed.code_digest))
        if status not in (200, 201):
            executor_result(status, answer, executor)  # raises the upload's error
            raise Unavailable(f"executor {executor} answered the package upload with HTTP {status}") from None
    return executor_result(*send("POST", path, request), executor)


# --- the health document ------------------------------------------------------------------------------------

_HEALTH_COUNTERS = ("workers", "busy", "queued", "calls", "failures")


def health_summary(body: Any) -> dict[str, Any] | None:
    """The fields of a valid ``GET /health`` answer of an executor service, checked and bounded; None if it is
    not one. A prober stores this, never the raw answer: whatever else an address answers is not kept."""
    if not isinstance(body, dict) or body.get("status") not in ("ok", "degraded"):
        return None
    summary: dict[str, Any] = {"status": body["status"]}
    if isinstance(body.get("version"), str):
        summary["version"] = body["version"][:64]
    for name in _HEALTH_COUNTERS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
            summary[name] = value
    uptime = body.get("uptime_seconds")
    if isinstance(uptime, int | float) and not isinstance(uptime, bool) and math.isfinite(uptime) and uptime >= 0:
        summary["uptime_seconds"] = uptime
    trouble = body.get("trouble")
    if isinstance(trouble, list):
        summary["trouble"] = [item[:200] for item in trouble[:10] if isinstance(item, str)]
    protections = body.get("protections")
    if isinstance(protections, dict):
        summary["protections"] = {name[:64]: note[:300] for name, note in list(protections.items())[:40]
                                  if isinstance(name, str) and isinstance(note, str)}
    limits = body.get("limits")
    if isinstance(limits, dict):
        summary["limits"] = {name[:64]: value for name, value in list(limits.items())[:10]
                             if isinstance(name, str) and isinstance(value, int | float) and not isinstance(value, bool)
                             and math.isfinite(value)}
    return summary

