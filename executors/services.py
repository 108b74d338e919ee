"""Executor operations with side effects: the Type 2 proxy and the health probes (each takes its actor).

``execute_policy`` is what the API route, the SDK's remote mode (through that route) and any command call;
``probe_executors`` is what the periodic Celery task calls. The executor service they talk to is described
in docs/runtime.md §5 and ``docs/executor.md``.
"""
from __future__ import annotations

import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from policygrid.errors import NotFound, Timeout, Unavailable
from policygrid.package import verify_digest
from policygrid.wire import (
    PUBLIC_FIELDS,
    RECORD_FIELDS,
    ExecuteRequest,
    execute_with_upload,
    health_summary,
    parse_execute_request,
)

from audit.services import audit_object, audited_execution
from executors.choices import ExecutorStatus
from executors.models import ExecutorProbe, PolicyExecutor
from executors.transport import (
    ConnectFailed,
    ConnectTimeoutError,
    ReadTimeoutError,
    Reply,
    TransportError,
    request,
)
from governance.gate import assert_executable
from governance.lifecycle import release_of
from governance.signing import sign_grant
from policies.models import PolicyRule
from policies.registration import read_package as read_package_bytes
from records.api.errors import Conflict
from records.cache import cached_record

logger = logging.getLogger(__name__)


def new_credential() -> str:
    return secrets.token_urlsafe(32)


def issue_credential(executor: PolicyExecutor, actor) -> str:
    """Give ``executor`` a new credential (registration, rotation); returns it, to be shown once."""
    executor.credential = new_credential()
    executor.save(update_fields=["credential", "updated_at"])
    audit_object(actor, "executor.credential_issue", executor, {})
    return executor.credential


def _http(executor: PolicyExecutor, method: str, url: str, *, connect_timeout: float, read_timeout: float,
          body: bytes | None = None, content_type: str = "application/json") -> Reply:
    """One request to ``executor`` with its own credential (``executors.transport``); raises its
    ``TransportError`` subclasses. An executor registered before credentials existed gets the deployment's
    POLICYGRID_EXECUTOR_TOKEN, if one is set."""
    headers = {"Content-Type": content_type}
    token = executor.credential or settings.EXECUTOR_TOKEN
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return request(method, url, headers=headers, connect_timeout=connect_timeout, read_timeout=read_timeout,
                   body=body)


# --- Type 2: execute a policy on an executor -------------------------------------------------------------


def validate_execute_body(body: Any) -> ExecuteRequest:
    """The body of ``POST /executor/<id>/execute_policy`` (docs/api.md §4.3), or InputInvalid naming the field."""
    return parse_execute_request(body, max_timeout=settings.EXECUTOR_MAX_CALL_TIMEOUT, allowed_fields=PUBLIC_FIELDS)


# The columns the gate, the audit entry and the call read: the record's behaviour fields go with the call.
EXECUTION_POLICY_FIELDS = ("id", "status", "created_by_id", "updated_at", *RECORD_FIELDS)
# What execute_policy reads of the executor: not health_data (the last /health answer) nor the metadata.
EXECUTION_EXECUTOR_FIELDS = ("id", "executor_id", "executor_host_uri", "executor_status", "executor_runtime",
                             "credential")


def executor_for_execution(executor_id: str) -> PolicyExecutor | None:
    """The executor of ``POST /executor/<id>/execute_policy``, its few columns from the record cache."""
    return cached_record(PolicyExecutor, executor_id, EXECUTION_EXECUTOR_FIELDS)


@dataclass(frozen=True)
class Execution:
    """A call's answer: the policy's output, and what it printed when the call asked (``capture_output``)."""

    data: Any
    printed: dict[str, Any] | None = None


def execute_policy(actor, executor: PolicyExecutor, body: Any) -> Execution:
    """Run a policy on ``executor`` (Type 2) for ``actor``; returns the policy's output or raises its error.

    Order of checks: the body (400), who may execute (403), the policy (404), its lifecycle (409), the
    executor's address (409); then the call, whose failures map per docs/api.md §1. Every call that reaches
    the executor is audited, successful or not.
    """
    call = validate_execute_body(body)
    may_execute = actor.has_perm("policies.execute_policyrule")
    if not may_execute and not call.dry_run:
        raise PermissionDenied(
            "executing a policy needs the permission 'policies.execute_policyrule' (operator or admin); "
            "its author and reviewers may send \"dry_run\": true"
        )
    policy = cached_record(PolicyRule, call.policy_rule_uri, EXECUTION_POLICY_FIELDS)
    if policy is None:
        raise NotFound(f"no policy with policy_rule_uri '{call.policy_rule_uri}'",
                       errors={"policy_rule_uri": ["no such policy"]})
    if not may_execute and not (actor.pk == policy.created_by_id or actor.has_perm("policies.review_policyrule")):
        raise PermissionDenied(f"only the author or a reviewer of {policy.key} may dry-run it")
    assert_executable(policy, actor, dry_run=call.dry_run)
    require_address(executor)

    with audited_execution(actor, "policy.execute", policy, {"executor_id": executor.executor_id,
                                                             "dry_run": call.dry_run}):
        return _forward(executor, policy, call, f"user:{actor.pk}")


def execution_body(policy: PolicyRule, call: ExecuteRequest, purpose: str = "call", caller: str = "") -> dict[str, Any]:
    """What the executor needs, sent with the call so that it never reads the portal while we wait for it.

    The record's behaviour fields go with its release signature: the executor verifies them against the
    published keys, so it needn't trust us for their content. A draft's dry run has no release.
    """
    body: dict[str, Any] = {"policy_rule_uri": policy.policy_rule_uri, "input_data": call.input_data,
                            "dry_run": call.dry_run,
                            "record": {name: getattr(policy, name) for name in RECORD_FIELDS}}
    for name in ("parameters", "settings", "timeout_seconds"):
        if getattr(call, name) is not None:
            body[name] = getattr(call, name)
    if call.capture_output:
        body["capture_output"] = True
    body["release"] = release_signature(policy)
    body["grant"] = (sign_grant(policy.policy_rule_uri, policy.code_digest, dry_run=call.dry_run, purpose=purpose,
                                caller=caller) if settings.SIGNING_ENABLED else None)
    return body


def release_signature(policy: PolicyRule) -> dict[str, str] | None:
    """``{"key_id", "signature"}`` of the version's standing release, or None; cached like the record.

    A release is made, and retired, by a lifecycle transition, which saves the version and so changes its
    ``updated_at``: the key names the version as it is now, and a changed version is a new key.
    """
    key = f"release:{policy.pk}:{policy.updated_at.timestamp():.6f}"
    cache = caches[settings.RECORD_CACHE]
    found = cache.get(key)
    if found is None:
        release = release_of(policy)
        standing = release is not None and release.signature and release.retired_at is None
        found = {"key_id": release.key_id, "signature": release.signature} if standing else {}
        cache.set(key, found, settings.RECORD_CACHE_SECONDS)
    return found or None


def require_address(executor: PolicyExecutor) -> None:
    """409 saying how to give an executor an address, before anything is sent to it."""
    if not executor.executor_host_uri:
        raise Conflict(
            f"executor {executor.executor_id} has no address: set its executor_host_uri (PATCH /executor/"
            f"{executor.executor_id} with {{\"$set\": {{\"executor_host_uri\": \"http://host:port\"}}}}), or "
            f"its cluster_public_ip, or provision it with POST /executor/{executor.executor_id}/create-infra"
        )


def executor_channel(executor: PolicyExecutor, read_timeout: float, answered: list | None = None):
    """``send(method, path, data) -> (status, parsed JSON or None)``: one request to ``executor`` with its
    credential, its transport failures mapped to ``Unavailable`` (502) and ``Timeout`` (504); ``answered`` keeps
    the last parsed answer."""
    connect_timeout = (settings.EXECUTOR_UNREACHABLE_CONNECT_TIMEOUT
                       if executor.executor_status == ExecutorStatus.UNREACHABLE else settings.EXECUTOR_CONNECT_TIMEOUT)
    base = executor.executor_host_uri.rstrip("/")

    def send(method: str, path: str, data: bytes | None = None) -> tuple[int, Any]:
        url = base + path
        content_type = "application/octet-stream" if method == "PUT" else "application/json"
        try:
            response = _http(executor, method, url, body=data, content_type=content_type, connect_timeout=connect_timeout,
                             read_timeout=read_timeout)
        except ConnectFailed as exc:  # refused, no route, no such host, TLS handshake
            raise Unavailable(f"cannot reach executor {executor.executor_id} at {url}: {exc}") from exc
        except ConnectTimeoutError as exc:
            raise Unavailable(f"executor {executor.executor_id} did not accept a connection within "
                              f"{connect_timeout:g}s ({url})") from exc
        except ReadTimeoutError as exc:
            raise Timeout(f"executor {executor.executor_id} did not answer within {read_timeout:g}s") from exc
        except TransportError as exc:
            raise Unavailable(f"executor {executor.executor_id} at {url} did not answer: {exc}") from exc
        if answered is not None:
            answered[:] = [response.json()]
            return response.status, answered[0]
        return response.status, response.json()

    return send


def package_reader(executor: PolicyExecutor, policy: PolicyRule):
    """``read_package(code_digest) -> bytes``: the package an executor lacks, read here (our asset storage, or
    its URL) and checked against the version's pin."""

    def read_package(code_digest: str) -> bytes:
        if code_digest != policy.code_digest:
            raise Unavailable(f"executor {executor.executor_id} asked for package {code_digest}, "
                              f"not {policy.code_digest} of {policy.key}")
        try:
            data = read_package_bytes(policy.code)
            verify_digest(data, policy.code_digest, policy.code)
            return data
        except ValidationError as exc:
            raise Unavailable(f"the package of {policy.key} can't be read for executor "
                              f"{executor.executor_id}: {'; '.join(exc.messages)}") from exc

    return read_package


def _forward(executor: PolicyExecutor, policy: PolicyRule, call: ExecuteRequest, caller: str) -> Execution:
    call_timeout = call.timeout_seconds or settings.EXECUTOR_CALL_TIMEOUT
    answered: list[Any] = []  # the executor's last answer, for what the policy printed
    send = executor_channel(executor, call_timeout + settings.EXECUTOR_TIMEOUT_MARGIN, answered)
    data = execute_with_upload(send, execution_body(policy, call, caller=caller), package_reader(executor, policy),
                               executor.executor_id)
    printed = answered[0].get("output") if call.capture_output and answered else None
    return Execution(data, printed if isinstance(printed, dict) else None)


# --- health probes ---------------------------------------------------------------------------------------


def probe_health(executor: PolicyExecutor) -> dict[str, Any]:
    """Ask one executor for ``/health``; returns the probe's outcome, writes nothing."""
    url = executor.executor_host_uri.rstrip("/") + "/health"
    started = time.monotonic()
    try:
        response = _http(executor, "GET", url, connect_timeout=settings.EXECUTOR_PROBE_CONNECT_TIMEOUT,
                         read_timeout=settings.EXECUTOR_PROBE_TIMEOUT)
    except TransportError as exc:
        return {"status": ExecutorStatus.UNREACHABLE, "latency_ms": None,
                "reason": f"{type(exc).__name__} reaching {url}: {exc}", "health": {}}
    latency_ms = round((time.monotonic() - started) * 1000, 2)
    # Only the checked fields of a health document are kept: an address that is not an executor service (an
    # internal URL an operator registered) must not have its answer stored for viewers to read.
    health = health_summary(response.json()) if response.status == 200 else None
    if health is None:
        return {"status": ExecutorStatus.DEGRADED, "latency_ms": latency_ms, "health": {},
                "reason": f"/health answered HTTP {response.status} without a health document"}
    reasons = []
    if health["status"] != "ok":
        reasons.append(f"the service reports status {health['status']!r}: {'; '.join(health.get('trouble', []))}")
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
    keep_probe(executor, outcome)
    if previous != executor.executor_status:
        audit_object(actor, "executor.status_change", executor, {
            "from": previous, "to": executor.executor_status, "reason": outcome.get("reason", ""),
            "latency_ms": outcome["latency_ms"],
        })
    return executor


def keep_probe(executor: PolicyExecutor, outcome: dict[str, Any]) -> None:
    """Append the probe to the executor's bounded history (the page's plot): the oldest beyond the bound go."""
    ExecutorProbe.objects.create(executor=executor, probed_at=timezone.now(), status=outcome["status"],
                                 latency_ms=outcome["latency_ms"], reason=outcome.get("reason", "")[:2000])
    stale = (ExecutorProbe.objects.filter(executor=executor).order_by("-probed_at", "-pk")
             .values_list("pk", flat=True)[ExecutorProbe.PROBES_KEPT:ExecutorProbe.PROBES_KEPT + 100])
    if stale:
        ExecutorProbe.objects.filter(pk__in=list(stale)).delete()


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
