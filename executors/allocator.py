"""The resource allocator (docs/runtime.md §6): a policy chooses the executor of a job or function submitted without one.

The policy is the request's ``alloc.resource_allocator_policy_uri``, else ``settings.RESOURCE_ALLOCATOR_URI`` (the
project's default allocator, ``resource_allocator:1.0-default``: the healthy executor with the most free vCPUs,
registered by the demo data and by ``manage.py install_allocator``). It goes through the execution gate like any
policy and runs here, in the portal, in the sandbox of isolated local runs (its own unprivileged process with
every protection of an executor's workers): an allocator is policy code, so it is treated as hostile too.

Its input is ``{"mode": "job"|"function", "request": <the submission>, "executors": [<every executor>]}``; its
output ``{"executor_id", "replicas"?, "reason"?}``. An allocator that fails answers 502 naming it; one that chooses
no executor, 409 with its reason; one that names an unknown executor, or one not healthy, 502 naming both.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from policygrid.cache import PackageCache
from policygrid.errors import NotFound, PolicyGridError, Unavailable
from policygrid.package import check_package_dir, verify_digest
from policygrid.requirements import ensure_requirements
from policygrid.wire import RECORD_FIELDS
from policygrid.workers import IsolatedRunner, IsolationLimits

from executors.choices import ExecutorStatus
from executors.models import PolicyExecutor
from governance.gate import assert_executable
from policies.models import PolicyRule
from policies.registration import read_package
from records.api.errors import ApiError, Conflict

EXECUTOR_FIELDS = ("executor_id", "executor_status", "executor_runtime", "executor_host_uri", "executor_metadata",
                   "executor_hardware_info")
HEALTH_FIELDS = ("workers", "busy", "queued", "jobs", "functions")
KEPT_RUNNERS = 4
# What a submission of a job (Type 3) or a function (Type 4) has in common, in the JSON schema of their bodies:
# the policy and its overrides, where it may run (``alloc``: which allocator places it, runtime.md §6;
# ``node_selector``: Kubernetes' map of label strings) and what it needs.
SUBMISSION_PROPERTIES: dict[str, Any] = {
    "policy_rule_uri": {"type": "string", "minLength": 1},
    "policy_rule_parameters": {"type": ["object", "null"], "description": "overrides of the stored parameters"},
    "policy_rule_settings": {"type": ["object", "null"], "description": "overrides of the stored settings"},
    "node_selector": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
    "resources": {"type": ["object", "null"]},
    "alloc": {"type": "object", "description": "the resource allocator's policy (runtime.md §6)"},
}
_runners: OrderedDict[tuple, IsolatedRunner] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class Placement:
    executor: PolicyExecutor
    replicas: int | None
    reason: str
    allocator_uri: str


def choose_executor(actor, mode: str, request: dict[str, Any], alloc: Any) -> Placement:
    """Run the allocator for ``request`` (a job or function submission) and return the executor it chose."""
    alloc = alloc if isinstance(alloc, dict) else {}
    uri = alloc.get("resource_allocator_policy_uri") or settings.RESOURCE_ALLOCATOR_URI
    policy = PolicyRule.objects.filter(policy_rule_uri=uri).first()
    if policy is None:
        hint = ("" if alloc.get("resource_allocator_policy_uri") else
                " (the deployment's default allocator: install it with `manage.py install_allocator`)")
        raise NotFound(f"no resource allocator policy '{uri}'{hint}",
                       errors={"alloc.resource_allocator_policy_uri": ["no such policy"]})
    assert_executable(policy, actor, dry_run=False)
    executors = list(PolicyExecutor.objects.order_by("executor_id"))
    allocator_input = {"mode": mode, "request": {k: v for k, v in request.items() if k != "alloc"},
                       "executors": [_describe(executor) for executor in executors]}
    try:
        output = _runner(policy, alloc.get("settings"), alloc.get("parameters")).eval(allocator_input)
    except PolicyGridError as exc:
        raise ApiError(f"the resource allocator {uri} failed: {exc.error_type}: {exc.message}", 502,
                       error_type="unavailable") from None
    chosen = output.get("executor_id") if isinstance(output, dict) else None
    reason = str(output.get("reason") or "") if isinstance(output, dict) else ""
    if not isinstance(output, dict) or (chosen is not None and not isinstance(chosen, str)):
        raise ApiError(f"the resource allocator {uri} answered {json.dumps(output)[:200]}, not "
                       "{\"executor_id\": …}", 502, error_type="unavailable")
    if chosen is None:
        raise Conflict(f"the resource allocator {uri} found no executor for this {mode}: {reason or 'no reason given'}")
    executor = next((e for e in executors if e.executor_id == chosen), None)
    if executor is None:
        raise ApiError(f"the resource allocator {uri} chose executor '{chosen}', which does not exist", 502,
                       error_type="unavailable")
    if executor.executor_status != ExecutorStatus.HEALTHY:
        raise ApiError(f"the resource allocator {uri} chose executor '{chosen}', which is "
                       f"{executor.executor_status}, not healthy", 502, error_type="unavailable")
    replicas = output.get("replicas")
    if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1):
        raise ApiError(f"the resource allocator {uri} answered replicas {replicas!r}, not a positive integer", 502,
                       error_type="unavailable")
    return Placement(executor, replicas, reason, uri)


def _describe(executor: PolicyExecutor) -> dict[str, Any]:
    health = executor.health_data or {}
    return {**{name: getattr(executor, name) for name in EXECUTOR_FIELDS},
            "health": {name: health[name] for name in HEALTH_FIELDS if name in health},
            "latency_ms": executor.latency_ms,
            "last_seen": executor.last_seen.isoformat() if executor.last_seen else None}


def _runner(policy: PolicyRule, settings_: Any, parameters: Any) -> IsolatedRunner:
    """A sandboxed instance of the allocator version with these overrides, kept between submissions (a few)."""
    key = (policy.policy_rule_uri, policy.code_digest, policy.updated_at.timestamp(),
           json.dumps(settings_, sort_keys=True, default=str), json.dumps(parameters, sort_keys=True, default=str))
    with _lock:
        runner = _runners.get(key)
        if runner is not None:
            _runners.move_to_end(key)
            return runner
        cache = PackageCache()

        def archive() -> bytes:
            try:
                data = read_package(policy.code)
                verify_digest(data, policy.code_digest, policy.code)
            except ValidationError as exc:
                raise Unavailable(f"the package of {policy.policy_rule_uri} can't be read: "
                                  f"{'; '.join(exc.messages)}") from exc
            return data

        package_dir = cache.get_or_unpack(policy.code_digest, archive, check=check_package_dir)
        requirements = ensure_requirements(package_dir, root=cache.root / "requirements")
        record = {name: getattr(policy, name) for name in RECORD_FIELDS}
        limits = IsolationLimits(timeout_seconds=settings.RESOURCE_ALLOCATOR_TIMEOUT,
                                 # CPU over the kept instance's whole life (each call has its wall-clock timeout)
                                 cpu_seconds=3600, memory_mb=512, max_processes=4)
        runner = IsolatedRunner(package_dir, requirements, record, settings=settings_ if isinstance(settings_, dict)
                                else None, parameters=parameters if isinstance(parameters, dict) else None,
                                limits=limits)
        _runners[key] = runner
        while len(_runners) > KEPT_RUNNERS:
            _runners.popitem(last=False)[1].close()
        return runner
