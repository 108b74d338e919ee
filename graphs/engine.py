"""The graph run engine (docs/runtime.md §7): the run's state is in its rows (GraphRun, NodeRun), advanced by
small idempotent steps that Celery tasks (graphs.tasks) or a synchronous request run alike:

* ``advance(run)`` starts a pending run, ends it (completed, failed, timed out) or names the nodes whose
  parents have all completed;
* ``run_node(node)`` claims one node with a conditional UPDATE (pending → running: of two workers one wins,
  so no node runs twice), calls its function through ``functions.services.call_function`` (the one call path
  of Type 4) and records the outcome, or puts it back to pending for a retry after its backoff;
* ``reconcile_runs()`` (beat) fails or retries nodes whose lease expired (their worker died mid-call: the
  call may have happened, so it is repeated only when the node has retries) and re-advances active runs, so
  no run stays ``running`` forever.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from policygrid.errors import ERROR_CLASSES, OutputInvalid, PolicyGridError
from policygrid.schema import compile_check
from rest_framework.exceptions import APIException

from audit.services import audit_object
from functions.services import call_function
from graphs.choices import MergeMode, NodeStatus, RunStatus
from graphs.models import GraphRun, NodeRun

logger = logging.getLogger(__name__)

# How long past its own timeout a running node may stay silent before it counts as lost.
LEASE_MARGIN = 2.0
DEFAULT_BACKOFF = 0.5  # seconds before the first retry of a node without retry_backoff_seconds; doubled each time
# Error types of the engine's own, with their HTTP status (the others are those of docs/api.md §1).
ENGINE_STATUSES = {"worker_lost": 502, "cancelled": 409, "conflict": 409}
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def error_status(error_type: str) -> int:
    cls = ERROR_CLASSES.get(error_type)
    return cls.status if cls is not None else ENGINE_STATUSES.get(error_type, 500)


@dataclass
class Progress:
    """What one ``advance`` found: the run ended (``done``), or these nodes may start now (``ready``), or a
    retry waits ``wait`` seconds for its backoff; ``deadline``: the run's."""

    done: bool = False
    ready: list[int] = field(default_factory=list)
    wait: float | None = None
    deadline: Any = None
    run: GraphRun | None = None  # as this step read it: its driver hands it to run_node, with the node's row
    seen: dict[int, dict] = field(default_factory=dict)  # pk -> the ready node's node_id, status and attempt


def _one(queryset):
    """The first row of an unordered query (``first()`` would add an ORDER BY, measurable on the hot path)."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


def node_options(plan: dict, node_id: str) -> dict:
    return plan.get("options", {}).get(node_id, {})


# --- the run ------------------------------------------------------------------------------------------------


def _move_run(run: GraphRun, allowed_from, to: str, **fields) -> bool:
    """Move the run to ``to`` if it is still in ``allowed_from``: one conditional UPDATE, so of two writers (a
    worker, a cancel, the reconciliation) one wins."""
    won = GraphRun.objects.filter(pk=run.pk, status__in=allowed_from).update(status=to, **fields)
    if won:
        run.status = to
        for name, value in fields.items():
            setattr(run, name, value)
    return bool(won)


def end_run(run: GraphRun, status: str, *, output: Any = None, error: str = "", error_type: str = "",
            failed_node: str = "", actor=None) -> bool:
    """End an active run (completed, failed, cancelled): its nodes not yet started are skipped; running ones
    are left to finish. Audited; False when it had already ended (the first outcome stands)."""
    with transaction.atomic():
        won = _move_run(run, RunStatus.ACTIVE, status, output=output, error=error[:10000], error_type=error_type,
                        failed_node=failed_node, finished_at=timezone.now())
        if won:
            NodeRun.objects.filter(run=run, status=NodeStatus.PENDING).update(status=NodeStatus.SKIPPED)
            audit_object(actor if actor is not None else run.created_by, "graph.run_finish", run.graph, {
                "run_id": str(run.run_id), "status": status, "attempt": run.attempt, "error_type": error_type,
                "failed_node": failed_node, "error": error[:500]}, target_key=run.graph_uri)
    return won


# What a driver's later steps read again of a run it holds (the rest is fixed while the run is active).
RUN_STATE = ("status", "attempt", "deadline_at")


def advance(run_pk: int, run: GraphRun | None = None) -> Progress:
    """One idempotent step of a run: see the module's docstring. ``run``: the run as this driver's previous
    step read it, of which only ``RUN_STATE`` is read again."""
    if run is None:
        run = _one(GraphRun.objects.select_related("created_by").filter(pk=run_pk))
    else:
        state = _one(GraphRun.objects.filter(pk=run_pk).values_list(*RUN_STATE))
        if state is not None:
            for name, value in zip(RUN_STATE, state, strict=True):
                setattr(run, name, value)
        else:
            run = None
    if run is None or run.status in RunStatus.TERMINAL:
        return Progress(done=True)
    now = timezone.now()
    if run.status == RunStatus.PENDING:
        _move_run(run, {RunStatus.PENDING}, RunStatus.RUNNING, started_at=now)
        if run.status != RunStatus.RUNNING:
            return Progress(done=True)
    if run.deadline_at is not None and now >= run.deadline_at:
        end_run(run, RunStatus.FAILED, error=f"the run exceeded its timeout of {run.timeout_seconds:g}s",
                error_type="timeout")
        return Progress(done=True)
    nodes = {n["node_id"]: n for n in NodeRun.objects.filter(run=run).order_by().values(
        "pk", "node_id", "status", "attempt", "not_before", "error", "error_type", "finished_at")}
    failed = sorted((n for n in nodes.values() if n["status"] == NodeStatus.FAILED),
                    key=lambda n: n["finished_at"] or now)
    if failed:
        first = failed[0]
        end_run(run, RunStatus.FAILED, error=f"node {first['node_id']} failed: {first['error']}",
                error_type=first["error_type"] or "policy_error", failed_node=first["node_id"])
        return Progress(done=True)
    if all(n["status"] == NodeStatus.COMPLETED for n in nodes.values()):
        _complete(run)
        return Progress(done=True)
    progress = Progress(deadline=run.deadline_at, run=run)
    parents = run.plan["parents"]
    for node_id, node in nodes.items():
        if node["status"] != NodeStatus.PENDING:
            continue
        if not all(nodes[p]["status"] == NodeStatus.COMPLETED for p in parents[node_id]):
            continue
        if node["not_before"] is not None and node["not_before"] > now:
            wait = (node["not_before"] - now).total_seconds()
            progress.wait = wait if progress.wait is None else min(progress.wait, wait)
            continue
        progress.ready.append(node["pk"])
        progress.seen[node["pk"]] = {name: node[name] for name in ("node_id", "status", "attempt")}
    return progress


def _complete(run: GraphRun) -> None:
    """All nodes completed: the output (the only sink's, or ``{sink: output}``), checked against the graph's
    output schema."""
    outputs = dict(NodeRun.objects.filter(run=run, node_id__in=run.plan["sinks"]).order_by().values_list(
        "node_id", "output"))
    sinks = run.plan["sinks"]
    output = outputs[sinks[0]] if len(sinks) == 1 else {sink: outputs[sink] for sink in sinks}
    try:
        check = compile_check(run.plan.get("output_schema") or {}, what="graph output", error_cls=OutputInvalid)
        if check is not None:
            check(output)
    except PolicyGridError as exc:
        end_run(run, RunStatus.FAILED, error=exc.message, error_type=exc.error_type)
        return
    end_run(run, RunStatus.COMPLETED, output=output)


# --- one node -----------------------------------------------------------------------------------------------


def node_input(run: GraphRun, node_id: str) -> Any:
    """Roots get the run's input; one parent's output passes unchanged; several merge as the plan says."""
    parents = run.plan["parents"][node_id]
    if not parents:
        return run.input_data
    outputs = dict(NodeRun.objects.filter(run=run, node_id__in=parents).order_by().values_list("node_id", "output"))
    if len(parents) == 1:
        return outputs[parents[0]]
    if run.plan["merge_mode"] == MergeMode.KEYED:
        return {parent: outputs[parent] for parent in parents}
    return [outputs[parent] for parent in parents]  # parents are kept in graph_function_ids order


def run_node(node_pk: int, run: GraphRun | None = None, seen: dict | None = None) -> float | None:
    """Claim the node, call its function, record the outcome. Returns the seconds a retry must wait, or None.

    A node another worker claimed (or that is no longer pending, or whose run ended) is left alone. ``run`` and
    ``seen``: the run and the node's ``node_id``, ``status`` and ``attempt`` as the driver's last ``advance`` read
    them (a run's plan, input, deadline and creator don't change while it runs); the claim checks again that the
    run still runs and the node is still pending at that attempt. Without them both are read here."""
    if run is None or seen is None:
        node = _one(NodeRun.objects.select_related("run", "run__created_by").filter(pk=node_pk))
    else:
        node = NodeRun(pk=node_pk, run=run, **seen)
    if node is None or node.status != NodeStatus.PENDING or node.run.status != RunStatus.RUNNING:
        return None
    run = node.run
    options = node_options(run.plan, node.node_id)
    now = timezone.now()
    remaining = (run.deadline_at - now).total_seconds() if run.deadline_at else settings.EXECUTOR_CALL_TIMEOUT
    timeout = min(float(options.get("timeout_seconds", settings.EXECUTOR_CALL_TIMEOUT)), remaining)
    if timeout <= 0:
        return None  # the run is past its deadline: the next advance ends it
    given = node_input(run, node.node_id)
    # The run's status by EXISTS, not a join: an UPDATE with a join is compiled as "pk IN (SELECT …)".
    still_running = Exists(GraphRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING))
    claimed = NodeRun.objects.filter(still_running, pk=node.pk, status=NodeStatus.PENDING,
                                     attempt=node.attempt).update(
        status=NodeStatus.RUNNING, attempt=F("attempt") + 1, started_at=now, finished_at=None, duration_ms=None,
        lease_until=now + timedelta(seconds=timeout + settings.EXECUTOR_TIMEOUT_MARGIN + LEASE_MARGIN),
        input=given, worker=WORKER, run_attempt=run.attempt)
    if not claimed:
        return None
    attempt = node.attempt + 1
    started = time.perf_counter()
    output, error, error_type = None, "", ""
    try:
        output = call_function(run.created_by, node.node_id, given, timeout=timeout, audited=False)
    except PolicyGridError as exc:
        error, error_type = exc.message, exc.error_type
    except APIException as exc:  # 409: the function is not ready
        error, error_type = str(exc.detail), getattr(exc, "error_type", None) or "conflict"
    except Exception as exc:  # noqa: BLE001 - a node's unexpected failure fails the node, not the worker
        logger.exception("node %s of run %s", node.node_id, run.run_id)
        error, error_type = f"{type(exc).__name__}: {exc}", "policy_error"
    duration_ms = (time.perf_counter() - started) * 1000
    return finish_node(node, attempt, output=output, error=error, error_type=error_type, duration_ms=duration_ms)


def finish_node(node: NodeRun, attempt: int, *, output: Any = None, error: str = "", error_type: str = "",
                duration_ms: float | None = None) -> float | None:
    """Record the outcome of the node's ``attempt``-th call (only if it is still that call's); on failure with
    retries left the node goes back to pending after its backoff (returned, in seconds)."""
    now = timezone.now()
    mine = NodeRun.objects.filter(pk=node.pk, status=NodeStatus.RUNNING, attempt=attempt)
    if not error:
        mine.update(status=NodeStatus.COMPLETED, output=output, error="", error_type="", finished_at=now,
                    duration_ms=duration_ms, lease_until=None)
        return None
    options = node_options(node.run.plan, node.node_id)
    if attempt <= options.get("retries", 0) and node.run.status == RunStatus.RUNNING:
        backoff = float(options.get("retry_backoff_seconds", DEFAULT_BACKOFF)) * 2 ** (attempt - 1)
        if mine.update(status=NodeStatus.PENDING, error=f"attempt {attempt}: {error}"[:10000], error_type=error_type,
                       finished_at=now, duration_ms=duration_ms, lease_until=None,
                       not_before=now + timedelta(seconds=backoff)):
            return backoff
        return None
    mine.update(status=NodeStatus.FAILED, error=error[:10000], error_type=error_type, finished_at=now,
                duration_ms=duration_ms, lease_until=None)
    return None


# --- reconciliation -----------------------------------------------------------------------------------------


def expire_leases(now=None) -> set[int]:
    """Nodes still running past their lease: their worker died mid-call. Failed (or retried when they have
    retries left) with the reason; returns their runs."""
    now = now or timezone.now()
    runs = set()
    for node in NodeRun.objects.select_related("run").filter(status=NodeStatus.RUNNING, lease_until__lt=now,
                                                                 run__status__in=RunStatus.ACTIVE):
        reason = (f"its worker ({node.worker}) was lost mid-call: no outcome by {node.lease_until.isoformat()} "
                  "(the call may have run; it is repeated only as a retry)")
        finish_node(node, node.attempt, error=reason, error_type="worker_lost")
        runs.add(node.run_id)
    return runs


def stalled_runs(quiet_for: float) -> set[int]:
    """Active runs in which no node started or finished for ``quiet_for`` seconds: a lost message, a request
    that died, a deadline passed while idle (the reconciliation advances them again)."""
    since = timezone.now() - timedelta(seconds=quiet_for)
    recent = NodeRun.objects.filter(run=OuterRef("pk")).filter(Q(started_at__gt=since) | Q(finished_at__gt=since))
    return set(GraphRun.objects.filter(status__in=RunStatus.ACTIVE, created_at__lt=since).exclude(Exists(recent))
               .order_by().values_list("pk", flat=True))
