"""Function operations with side effects (Type 4, docs/api.md §4.5): create, deploy, call, manage, logs, remove and
the periodic reconciliation. Each takes its actor and writes the audit entry; the API, the admin and the tasks
call them. Functions reach their executor's runtime only through ``executors.runtime.runtime_for``.

::

    create ──▶ deploying ──(task: runtime.deploy_function, then its status)──▶ ready | failed
    ready ──(reconciliation: the runtime lost it, e.g. its executor restarted)──▶ deploying (redeployed)
    any ──remove──▶ removing ──▶ (record deleted)      409 while a graph uses it
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from jsonschema import Draft202012Validator
from policygrid.errors import InputInvalid, NotFound, PolicyGridError
from policygrid.rule_runner import merge_overrides
from policygrid.schema import compile_check, validate_management

from audit.services import audit_object, audited_execution
from executors.allocator import SUBMISSION_PROPERTIES, choose_executor
from executors.models import PolicyExecutor
from executors.runtime import FunctionDeployment, RuntimeFunction, runtime_for
from executors.services import executor_for_execution, require_address
from functions.choices import FunctionStatus
from functions.models import Function
from governance.gate import assert_executable
from policies.models import PolicyRule
from portal.queueing import send_after_commit
from records.api.errors import ApiError, Conflict
from records.cache import cached_record
from records.services import MAX_NAMED, delete_record, save_record
from records.validators import check_body

logger = logging.getLogger(__name__)

MAX_REPLICAS = 16
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "policy_rule_uri"],
    "properties": {
        **SUBMISSION_PROPERTIES,
        "name": {"type": "string", "description": "a DNS-1123 label: the function's id"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": MAX_REPLICAS},
        "autoscaling": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "enabled": {"type": "boolean"}, "min_replicas": {"type": "integer", "minimum": 1},
            "max_replicas": {"type": "integer", "minimum": 1, "maximum": 100},
            "target_cpu_utilization_percentage": {"type": "integer", "minimum": 1, "maximum": 100}}},
        "function_metadata": {"type": ["object", "null"]},
        "function_tags": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}
MANAGEMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["action"],
    "properties": {"action": {"type": "string", "minLength": 1}, "data": {"type": ["object", "null"]},
                   "target": {"enum": ["all", "one"]}},
}
# What a call reads of its function (from the record cache).
CALL_FIELDS = ("id", "function_id", "function_status", "function_message", "function_executor_id")
_CREATE = Draft202012Validator(CREATE_SCHEMA)
_MANAGEMENT = Draft202012Validator(MANAGEMENT_SCHEMA)


def find_function(name: str) -> Function:
    function = Function.objects.select_related("executor").filter(function_id=name).first()
    if function is None:
        raise NotFound(f"no function named '{name}'", errors={"name": ["no such function"]})
    return function


# --- create and deploy ------------------------------------------------------------------------------------


def create_function(actor, body: Any, executor_id: str | None) -> Function:
    """Check the request and the policy, create the record (``deploying``) and queue its deployment.

    Order of checks: the body (400), the executor (404, or the allocator's answer), the policy (404), the gate
    (409), the overrides against the policy's schemas (400), the executor's address (409), the name (409).
    """
    data = check_body(_CREATE, CREATE_SCHEMA, body)
    replicas = data.get("replicas")
    if executor_id is None:
        placement = choose_executor(actor, "function", data, data.get("alloc"))
        executor, replicas = placement.executor, replicas or placement.replicas
    else:
        executor = PolicyExecutor.objects.filter(executor_id=executor_id).first()
        if executor is None:
            raise NotFound(f"no executor with executor_id '{executor_id}'",
                           errors={"executor_id": ["no such executor"]})
    uri = data["policy_rule_uri"]
    policy = PolicyRule.objects.filter(policy_rule_uri=uri).first()
    if policy is None:
        raise NotFound(f"no policy with policy_rule_uri '{uri}'", errors={"policy_rule_uri": ["no such policy"]})
    assert_executable(policy, actor, dry_run=False)
    for what, stored, given, schema in (
            ("settings", policy.policy_settings, data.get("policy_rule_settings"), policy.policy_settings_schema),
            ("parameters", policy.policy_parameters, data.get("policy_rule_parameters"),
             policy.policy_parameters_schema)):
        check = compile_check(schema, what=what)
        if check is not None:
            check(merge_overrides(stored, given))
    require_address(executor)
    runtime_for(executor)  # a runtime this deployment doesn't have: 501 now, not in the task
    function = Function(
        function_id=data["name"], function_executor_id=executor.executor_id,
        function_executor_uri=executor.executor_host_uri, function_policy_rule_uri=policy.policy_rule_uri,
        function_policy_data={"policy_rule_uri": policy.policy_rule_uri, "code_digest": policy.code_digest,
                              "status": policy.status},
        policy_rule_parameters=data.get("policy_rule_parameters") or {},
        policy_rule_settings=data.get("policy_rule_settings") or {}, replicas=replicas or 1,
        autoscaling=data.get("autoscaling") or {}, resources=data.get("resources") or {},
        node_selector=data.get("node_selector") or {}, function_metadata=data.get("function_metadata") or {},
        function_tags=data.get("function_tags") or [], function_status=FunctionStatus.DEPLOYING,
        function_message="queued for deployment", created_by=actor)
    function.full_clean(validate_unique=False)
    try:
        save_record(function, actor, action="function.create")
    except IntegrityError:
        raise Conflict(f"a function named '{function.function_id}' already exists") from None
    queue_deployment(function)
    return function


def queue_deployment(function: Function) -> None:
    """Queue the deployment task (by its name: functions.tasks wraps this module) once the record is committed;
    a deployment the broker refuses is ``failed`` with the reason (and the request answers 503)."""
    pk = function.pk

    def refused(reason: str) -> None:
        refused_function = Function.objects.get(pk=pk)
        refused_function.function_status, refused_function.function_message = FunctionStatus.FAILED, reason[:5000]
        refused_function.save(update_fields=["function_status", "function_message", "updated_at"])

    send_after_commit("functions.deploy_function", [pk], refused)


def deploy(function_pk: int) -> str:
    """The deployment task's body: start the function on its runtime and wait until it is ready or failed."""
    function = Function.objects.select_related("executor", "policy").filter(pk=function_pk).first()
    if function is None or function.function_status != FunctionStatus.DEPLOYING:
        return "gone" if function is None else function.function_status
    executor, policy = function.executor, function.policy
    runtime = runtime_for(executor)
    try:
        try:
            seen = runtime.deploy_function(executor, FunctionDeployment(
                name=function.function_id, policy=policy, settings=function.policy_rule_settings,
                parameters=function.policy_rule_parameters, replicas=function.replicas,
                autoscaling=function.autoscaling, resources=function.resources, node_selector=function.node_selector))
        except PolicyGridError as exc:
            # A task delivered again (its worker died after sending it: acks_late) finds the function already
            # deployed: it watches that deployment rather than failing it as a duplicate.
            seen = (runtime.function_status(executor, function.function_id)
                    if getattr(exc, "upstream_status", exc.status) == 409 else None)
            if seen is None:
                raise
        deadline = time.monotonic() + settings.FUNCTION_DEPLOY_TIMEOUT
        pause = 0.02
        while seen.state == "deploying" and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(1.0, pause * 2)
            seen = runtime.function_status(executor, function.function_id) or RuntimeFunction(
                "failed", message=f"executor {executor.executor_id} no longer knows it")
    except PolicyGridError as exc:
        seen = RuntimeFunction("failed", message=f"the runtime could not deploy it: {exc.error_type}: {exc.message}")
    if seen.state == "ready":
        status, message = FunctionStatus.READY, f"{seen.ready_replicas} of {len(seen.replicas)} replicas ready"
    elif seen.state == "deploying":
        status, message = FunctionStatus.FAILED, f"not ready within {settings.FUNCTION_DEPLOY_TIMEOUT:g}s"
    else:
        status, message = FunctionStatus.FAILED, seen.message or "its replicas failed to start"
    if _transition(function, {FunctionStatus.DEPLOYING}, status, message):
        audit_object(None, "function.deployed" if status == FunctionStatus.READY else "function.deploy_failed",
                     function, {"function_status": status, "function_message": message[:500]})
    return status


def _transition(function: Function, allowed_from: set[str], to: str, message: str) -> bool:
    """Move to ``to`` if still in ``allowed_from`` (one conditional UPDATE: of concurrent writers one wins)."""
    with transaction.atomic():
        won = Function.objects.filter(pk=function.pk, function_status__in=allowed_from).update(
            function_status=to, function_message=message[:10000], updated_at=timezone.now())
        if won:
            function.function_status, function.function_message = to, message[:10000]
            function.save(update_fields=["function_status", "function_message", "updated_at"])
    return bool(won)


# --- calls, management, logs --------------------------------------------------------------------------------


def _require_ready(function: Function) -> None:
    if function.function_status != FunctionStatus.READY:
        raise Conflict(f"function {function.function_id} is {function.function_status}, not ready"
                       + (f": {function.function_message}" if function.function_message else ""))


def _ready(name: str) -> Function:
    function = find_function(name)
    _require_ready(function)
    return function


def call_function(actor, name: str, input_data: Any, timeout: float | None = None, audited: bool = True) -> Any:
    """One call of the function's policy ``eval`` on one of its replicas: its output (within ``timeout``
    seconds when given, e.g. a graph node's, else the executor's default).

    The hot path: the function's and its executor's few columns come from the record cache (invalidated by
    their saves), so a call reads no table. Each call is an audit entry (``function.call``), but a graph's
    node (``audited=False``): its run is audited."""
    function = cached_record(Function, name, CALL_FIELDS)
    if function is None:
        raise NotFound(f"no function named '{name}'", errors={"name": ["no such function"]})
    _require_ready(function)
    executor = executor_for_execution(function.function_executor_id)
    if executor is None:
        raise NotFound(f"function {name}'s executor {function.function_executor_id} is gone")
    call = partial(runtime_for(executor).call_function, executor, name, input_data, timeout=timeout)
    if not audited:
        return call()
    with audited_execution(actor, "function.call", function, {"executor_id": executor.executor_id}):
        return call()


def manage_function(actor, name: str, body: Any) -> list[dict[str, Any]]:
    """``management(action, data)`` on every ready replica (or one), checked here against the policy's
    ``management_commands_schema`` first; one result per replica; audited."""
    data = check_body(_MANAGEMENT, MANAGEMENT_SCHEMA, body)
    function = _ready(name)
    commands = PolicyRule.objects.filter(pk=function.policy_id).values_list("management_commands_schema",
                                                                            flat=True).first()
    validate_management(commands or [], data["action"], data.get("data"))
    results = runtime_for(function.executor).manage_function(function.executor, name, data["action"],
                                                             data.get("data"), data.get("target", "all"))
    audit_object(actor, "function.management", function, {
        "action": data["action"], "target": data.get("target", "all"),
        "replicas": {str(r.get("replica")): bool(r.get("success")) for r in results}})
    return results


def function_logs(name: str, tail: int | None) -> str:
    function = find_function(name)
    return runtime_for(function.executor).function_logs(function.executor, name, tail)


def function_replicas(name: str) -> dict[str, Any]:
    """What the runtime sees of the function now: its state and each replica's."""
    function = find_function(name)
    seen = runtime_for(function.executor).function_status(function.executor, name)
    if seen is None:
        return {"state": "unknown", "replicas": [], "message": "the runtime does not know this function"}
    return {"state": seen.state, "replicas": list(seen.replicas), "message": seen.message}


# --- remove -------------------------------------------------------------------------------------------------


def remove_function(actor, name: str) -> dict[str, Any]:
    """Stop the function on its runtime and delete the record; 409 while a graph uses it (naming the graphs)."""
    function = find_function(name)
    graphs = list(function.graphs.order_by("graph_uri").values_list("graph_uri", flat=True).distinct()[:MAX_NAMED])
    if graphs:
        raise Conflict(f"function {name} is used by graph(s) {', '.join(graphs)}: remove it from them first")
    previous = function.function_status
    if not _transition(function, set(FunctionStatus.values) - {FunctionStatus.REMOVING}, FunctionStatus.REMOVING,
                       f"being removed by {getattr(actor, 'username', 'the system')}"):
        raise Conflict(f"function {name} is already being removed")
    try:
        runtime_for(function.executor).remove_function(function.executor, name)
    except PolicyGridError as exc:
        _transition(function, {FunctionStatus.REMOVING}, FunctionStatus.FAILED,
                    f"removal failed (was {previous}): {exc.error_type}: {exc.message}")
        raise ApiError(f"function {name} could not be removed from executor {function.function_executor_id}: "
                       f"{exc.message}", exc.status, error_type=exc.error_type) from None
    return delete_record(function, actor, extra={"action_detail": "function.remove"})


# --- reconciliation -------------------------------------------------------------------------------------------


def reconcile_functions() -> dict[str, int]:
    """Compare every deployed function with its runtime (the periodic task): a ready function whose replicas
    all failed becomes ``failed``; one its runtime no longer knows (an executor restarted) is redeployed."""
    counts = {"checked": 0, "failed": 0, "redeployed": 0, "ready": 0}
    # A deployment whose task was lost (a worker killed mid-task, a broker that dropped it) ends as failed.
    stale = timezone.now() - timedelta(seconds=settings.FUNCTION_DEPLOY_TIMEOUT * 2 + 60)
    for function in Function.objects.filter(function_status=FunctionStatus.DEPLOYING, updated_at__lt=stale):
        if _transition(function, {FunctionStatus.DEPLOYING}, FunctionStatus.FAILED,
                       "its deployment never finished (the task was lost): remove it and create it again"):
            counts["failed"] += 1
    for function in Function.objects.filter(function_status=FunctionStatus.READY).select_related("executor"):
        counts["checked"] += 1
        try:
            seen = runtime_for(function.executor).function_status(function.executor, function.function_id)
        except PolicyGridError as exc:
            logger.info("function %s: its runtime did not answer: %s", function.function_id, exc.message)
            continue
        if seen is None:
            if _transition(function, {FunctionStatus.READY}, FunctionStatus.DEPLOYING,
                           "redeploying: its executor no longer had it"):
                audit_object(None, "function.redeploy", function, {"reason": "the runtime no longer had it"})
                queue_deployment(function)
                counts["redeployed"] += 1
        elif seen.state == "failed":
            if _transition(function, {FunctionStatus.READY}, FunctionStatus.FAILED, seen.message or "replicas failed"):
                audit_object(None, "function.failed", function, {"reason": seen.message[:500]})
                counts["failed"] += 1
        else:
            counts["ready"] += 1
    return counts


__all__ = ["InputInvalid", "call_function", "create_function", "deploy", "function_logs", "function_replicas",
           "manage_function", "reconcile_functions", "remove_function"]
