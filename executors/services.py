"""Executor operations with side effects: the Type 2 proxy and the health probes (each takes its actor).

``execute_policy`` is what the API route, the SDK's remote mode (through that route) and any command call;
``probe_executors`` is what the periodic Celery task calls. The executor service they talk to is described
in runtime.md §5 and ``docs/executor.md``.
"""
from __future__ import annotations

import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from policygrid.errors import InputInvalid, NotFound, PolicyGridError, Timeout, Unavailable

from audit.services import audit_object
from executors.choices import ExecutorStatus
from executors.models import PolicyExecutor
from executors.transport import (
    ConnectFailed,
    ConnectTimeoutError,
    ReadTimeoutError,
    Reply,
    TransportError,
    request,
)
from governance.gate import assert_executable
from policies.models import PolicyRule
from records.cache import cached_record

logger = logging.getLogger(__name__)

EXECUTE_FIELDS = frozenset({"policy_rule_uri", "input_data", "parameters", "settings", "timeout_seconds", "dry_run"})
# Failures of the policy itself, passed on as the executor reported them (api.md §1 table).
POLICY_FAILURES = {"input_invalid": 400, "policy_error": 500, "output_invalid": 500, "resource_limit": 500,
                   "integrity": 500, "timeout": 504}


class ExecutionFailed(PolicyGridError):
    """A failure reported by the executor, with the policy's own exception type beside the message."""

    def __init__(self, message: str, *, error_type: str, status: int, exception_type: str | None = None,
                 errors: dict | None = None) -> None:
        super().__init__(message, errors=errors, status=status, error_type=error_type)
        self.exception_type = exception_type

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.exception_type:
            body["exception_type"] = self.exception_type
        return body


def _http(method: str, url: str, *, connect_timeout: float, read_timeout: float, body: bytes | None = None) -> Reply:
    """One request to an executor (``executors.transport``); raises its ``TransportError`` subclasses."""
    return request(method, url, headers=_auth_headers(), connect_timeout=connect_timeout,
                   read_timeout=read_timeout, body=body)


def _auth_headers() -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if settings.EXECUTOR_TOKEN:
        headers["Authorization"] = f"Bearer {settings.EXECUTOR_TOKEN}"
    return headers


# --- Type 2: execute a policy on an executor -------------------------------------------------------------


def validate_execute_body(body: Any) -> dict[str, Any]:
    """The body of ``POST /executor/<id>/execute_policy`` (api.md §4.3), or InputInvalid naming the field."""
    if not isinstance(body, dict):
        raise InputInvalid("the body must be a JSON object", errors={"non_field_errors": ["expected a JSON object"]})
    errors: dict[str, list[str]] = {name: ["unknown field"] for name in sorted(set(body) - EXECUTE_FIELDS)}
    uri = body.get("policy_rule_uri")
    if not isinstance(uri, str) or not uri.strip():
        errors["policy_rule_uri"] = ["is required: the policy's URI, name:version-release_tag"]
    if "input_data" not in body:
        errors["input_data"] = ["is required (any JSON value; {} is fine)"]
    for name in ("parameters", "settings"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            errors[name] = ["must be a JSON object"]
    timeout = body.get("timeout_seconds")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
            errors["timeout_seconds"] = ["must be a positive number of seconds"]
        elif timeout > settings.EXECUTOR_MAX_CALL_TIMEOUT:
            errors["timeout_seconds"] = [f"must be at most {settings.EXECUTOR_MAX_CALL_TIMEOUT:g} seconds"]
    if "dry_run" in body and not isinstance(body["dry_run"], bool):
        errors["dry_run"] = ["must be true or false"]
    if errors:
        field = next(iter(errors))
        raise InputInvalid(f"invalid request: {field}: {errors[field][0]}", errors=errors)
    return {
        "policy_rule_uri": uri.strip(),
        "input_data": body["input_data"],
        "parameters": body.get("parameters"),
        "settings": body.get("settings"),
        "timeout_seconds": timeout,
        "dry_run": bool(body.get("dry_run", False)),
    }


# The columns the gate, the forward and the audit entry read; schemas and settings stay with the executor.
EXECUTION_POLICY_FIELDS = ("id", "status", "policy_rule_uri", "created_by_id", "code_digest", "updated_at")
# What execute_policy reads of the executor: not health_data (the last /health answer) nor the metadata.
EXECUTION_EXECUTOR_FIELDS = ("id", "executor_id", "executor_host_uri", "executor_status")


def executor_for_execution(executor_id: str) -> PolicyExecutor | None:
    """The executor of ``POST /executor/<id>/execute_policy``, its few columns from the record cache."""
    return cached_record(PolicyExecutor, executor_id, EXECUTION_EXECUTOR_FIELDS)


def execute_policy(actor, executor: PolicyExecutor, body: Any) -> Any:
    """Run a policy on ``executor`` (Type 2) for ``actor``; returns the policy's output or raises its error.

    Order of checks: the body (400), who may execute (403), the policy (404), its lifecycle (409), the
    executor's address (409); then the call, whose failures map per api.md §1. Every call that reaches
    the executor is audited, successful or not.
    """
    data = validate_execute_body(body)
    dry_run = data["dry_run"]
    may_execute = actor.has_perm("policies.execute_policyrule")
    if not may_execute and not dry_run:
        raise PermissionDenied(
            "executing a policy needs the permission 'policies.execute_policyrule' (operator or admin); "
            "its author and reviewers may send \"dry_run\": true"
        )
    policy = cached_record(PolicyRule, data["policy_rule_uri"], EXECUTION_POLICY_FIELDS)
    if policy is None:
        raise NotFound(f"no policy with policy_rule_uri '{data['policy_rule_uri']}'",
                       errors={"policy_rule_uri": ["no such policy"]})
    if not may_execute and not (actor.pk == policy.created_by_id or actor.has_perm("policies.review_policyrule")):
        raise PermissionDenied(f"only the author or a reviewer of {policy.key} may dry-run it")
    assert_executable(policy, actor, dry_run=dry_run)
    if not executor.executor_host_uri:
        from records.api.errors import Conflict

        raise Conflict(
            f"executor {executor.executor_id} has no address: set its executor_host_uri (PATCH /executor/"
            f"{executor.executor_id} with {{\"$set\": {{\"executor_host_uri\": \"http://host:port\"}}}}), or "
            f"its cluster_public_ip, or provision it with POST /executor/{executor.executor_id}/create-infra"
        )

    started = time.monotonic()
    error: PolicyGridError | None = None
    try:
        return _forward(executor, policy, data)
    except PolicyGridError as exc:
        error = exc
        raise
    finally:
        audit_object(actor, "policy.execute", policy, {
            "executor_id": executor.executor_id,
            "dry_run": dry_run,
            "success": error is None,
            "error_type": error.error_type if error is not None else None,
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
        })


def policy_stamp(policy) -> str:
    """The version stamp the executor service caches records by (``policygrid.executor.store.record_stamp``)."""
    return f"{policy.code_digest or ''}|{policy.updated_at.timestamp():.6f}"


def _forward(executor: PolicyExecutor, policy, data: dict[str, Any]) -> Any:
    payload = {"policy_rule_uri": policy.policy_rule_uri, "input_data": data["input_data"],
               "policy_stamp": policy_stamp(policy)}
    for name in ("parameters", "settings", "timeout_seconds"):
        if data[name] is not None:
            payload[name] = data[name]
    call_timeout = data["timeout_seconds"] or settings.EXECUTOR_CALL_TIMEOUT
    connect_timeout = (settings.EXECUTOR_UNREACHABLE_CONNECT_TIMEOUT
                       if executor.executor_status == ExecutorStatus.UNREACHABLE else settings.EXECUTOR_CONNECT_TIMEOUT)
    url = executor.executor_host_uri.rstrip("/") + "/execute_policy"
    try:
        response = _http("POST", url, body=json.dumps(payload).encode(), connect_timeout=connect_timeout,
                         read_timeout=call_timeout + settings.EXECUTOR_TIMEOUT_MARGIN)
    except ConnectFailed as exc:  # refused, no route, no such host, TLS handshake
        raise Unavailable(f"cannot reach executor {executor.executor_id} at {url}: {exc}") from exc
    except ConnectTimeoutError as exc:
        raise Unavailable(f"executor {executor.executor_id} did not accept a connection within "
                          f"{connect_timeout:g}s ({url})") from exc
    except ReadTimeoutError as exc:
        raise Timeout(f"executor {executor.executor_id} did not answer within "
                      f"{call_timeout + settings.EXECUTOR_TIMEOUT_MARGIN:g}s") from exc
    except TransportError as exc:
        raise Unavailable(f"executor {executor.executor_id} at {url} did not answer: {exc}") from exc
    return _result_of(executor, response)


def _result_of(executor: PolicyExecutor, response: Reply) -> Any:
    name = executor.executor_id
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("success"), bool):
        raise Unavailable(f"executor {name} answered HTTP {response.status} without a JSON envelope")
    if body["success"]:
        if response.status != 200 or "data" not in body:
            raise Unavailable(f"executor {name} answered HTTP {response.status} with an incomplete envelope")
        return body["data"]
    error_type = body.get("error_type")
    message = str(body.get("message") or "the executor reported a failure")
    if error_type in POLICY_FAILURES:
        errors = body.get("errors") if isinstance(body.get("errors"), dict) else None
        exception_type = body.get("exception_type") if isinstance(body.get("exception_type"), str) else None
        return_status = POLICY_FAILURES[error_type]
        raise ExecutionFailed(message, error_type=error_type, status=return_status,
                              exception_type=exception_type, errors=errors)
    if response.status in (401, 403):
        raise Unavailable(f"executor {name} refused the portal's credentials: the portal's "
                          "POLICYGRID_EXECUTOR_TOKEN must be the executor's shared secret")
    raise Unavailable(f"executor {name} could not run the call (HTTP {response.status}, "
                      f"{error_type or 'no error_type'}): {message}")


# --- health probes ---------------------------------------------------------------------------------------


def probe_health(executor: PolicyExecutor) -> dict[str, Any]:
    """Ask one executor for ``/health``; returns the probe's outcome, writes nothing."""
    url = executor.executor_host_uri.rstrip("/") + "/health"
    started = time.monotonic()
    try:
        response = _http("GET", url, connect_timeout=settings.EXECUTOR_PROBE_CONNECT_TIMEOUT,
                         read_timeout=settings.EXECUTOR_PROBE_TIMEOUT)
    except TransportError as exc:
        return {"status": ExecutorStatus.UNREACHABLE, "latency_ms": None,
                "reason": f"{type(exc).__name__} reaching {url}: {exc}", "health": {}}
    latency_ms = round((time.monotonic() - started) * 1000, 2)
    health = response.json()
    if response.status != 200 or not isinstance(health, dict):
        return {"status": ExecutorStatus.DEGRADED, "latency_ms": latency_ms, "health": {},
                "reason": f"/health answered HTTP {response.status} without a health document"}
    reasons = []
    if health.get("status") != "ok":
        reasons.append(f"the service reports status {health.get('status')!r}: {health.get('trouble') or ''}".strip())
    if latency_ms > settings.EXECUTOR_DEGRADED_LATENCY_MS:
        reasons.append(f"slow: /health took {latency_ms:g} ms (limit {settings.EXECUTOR_DEGRADED_LATENCY_MS:g} ms)")
    status = ExecutorStatus.DEGRADED if reasons else ExecutorStatus.HEALTHY
    return {"status": status, "latency_ms": latency_ms, "health": health, "reason": "; ".join(reasons)}


def record_probe(executor: PolicyExecutor, outcome: dict[str, Any], actor=None) -> PolicyExecutor:
    """Store a probe's outcome on the executor (``.save()``: the search index follows); audit a change."""
    previous = executor.executor_status
    executor.executor_status = outcome["status"]
    executor.latency_ms = outcome["latency_ms"]
    executor.health_data = {**(outcome.get("health") or {}), "probe": {
        "status": outcome["status"], "reason": outcome.get("reason", ""), "at": timezone.now().isoformat()}}
    if outcome["status"] != ExecutorStatus.UNREACHABLE:
        executor.last_seen = timezone.now()
    # Only the probe's fields: a concurrent edit of the record's other fields is never overwritten.
    executor.save(update_fields=["executor_status", "latency_ms", "health_data", "last_seen", "updated_at"])
    if previous != executor.executor_status:
        audit_object(actor, "executor.status_change", executor, {
            "from": previous, "to": executor.executor_status, "reason": outcome.get("reason", ""),
            "latency_ms": outcome["latency_ms"],
        })
    return executor


def probe_executor(executor: PolicyExecutor, actor=None) -> PolicyExecutor:
    return record_probe(executor, probe_health(executor), actor)


def probe_executors(actor=None) -> dict[str, str]:
    """Probe every executor that has an address, concurrently; returns ``{executor_id: status}``."""
    executors = list(PolicyExecutor.objects.exclude(executor_host_uri=""))
    if not executors:
        return {}
    workers = min(settings.EXECUTOR_PROBE_CONCURRENCY, len(executors))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        outcomes = list(pool.map(probe_health, executors))
    results = {}
    for executor, outcome in zip(executors, outcomes, strict=True):
        try:
            record_probe(executor, outcome, actor)
        except Exception:  # one executor's bookkeeping must not stop the others'
            logger.exception("recording the health of executor %s failed", executor.executor_id)
        results[executor.executor_id] = str(outcome["status"])
    return results


def health_report(executor: PolicyExecutor) -> dict[str, Any]:
    """``GET /executor/<id>/health``: the last probe, as stored."""
    health = executor.health_data or {}
    return {
        "executor_id": executor.executor_id,
        "executor_status": executor.executor_status,
        "last_seen": executor.last_seen.isoformat() if executor.last_seen else None,
        "latency_ms": executor.latency_ms,
        "reason": (health.get("probe") or {}).get("reason", ""),
        "probed_at": (health.get("probe") or {}).get("at"),
        "capacity": {"workers": health.get("workers"), "version": health.get("version")},
        "load": {"busy": health.get("busy"), "queued": health.get("queued")},
        "health_data": health,
    }
