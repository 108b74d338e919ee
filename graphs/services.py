"""Graph run operations with side effects (Type 5, docs/api.md §4.6): execute (sync or async), the driver of a
run's steps, cancel, retry, the periodic reconciliation and the run metrics. Each takes its actor and writes the audit entry; the API, the
tasks and the bench call them. The steps themselves are in graphs.engine."""
from __future__ import annotations

import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from jsonschema import Draft202012Validator
from policygrid.errors import InputInvalid, NotExecutable, NotFound
from policygrid.schema import compile_check

from audit.services import audit_object
from governance.gate import assert_executable
from graphs import engine
from graphs.choices import NodeStatus, RunStatus
from graphs.models import Graph, GraphRun, NodeRun
from portal.queueing import send_after_commit
from records.api.errors import ApiError, Conflict
from records.validators import check_body

EXECUTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["graph_uri", "input_data"],
    "properties": {
        "graph_uri": {"type": "string", "minLength": 1, "maxLength": 255},
        "input_data": {"description": "what every root node receives (any JSON, {} included)"},
        "async": {"type": "boolean", "description": "answer 202 with the run_id at once (default false)"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "description": "the whole run's limit"},
        "dry_run": {"type": "boolean", "description": "a draft's trial run, by its author or a reviewer"},
    },
}
RETRY_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {key: EXECUTE_SCHEMA["properties"][key] for key in ("async", "timeout_seconds")},
}
_EXECUTE = Draft202012Validator(EXECUTE_SCHEMA)
_RETRY = Draft202012Validator(RETRY_SCHEMA)
# Nodes of one run called at the same time by one process (independent branches), each in a thread.
NODE_THREADS = 16
# Seconds a worker goes on starting a run's nodes before it puts the run back in the queue: a long run takes its
# turn with the others instead of holding a worker process while tasks queued behind it (the embedded
# supervisor's heartbeat among them) wait.
WORKER_SLICE = 1.0
# Seconds without a node starting or finishing after which the reconciliation advances an active run again.
STALLED_AFTER = 5.0
# Node durations histogram buckets (milliseconds) of /metrics.
DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


def find_run(run_id: str) -> GraphRun:
    try:
        key = uuid.UUID(str(run_id))
    except ValueError:
        key = None
    run = GraphRun.objects.select_related("graph").filter(run_id=key).first() if key else None
    if run is None:
        raise NotFound(f"no graph run with run_id '{run_id}'")
    return run


def run_plan(graph: Graph) -> dict[str, Any]:
    """What a run of ``graph`` follows, frozen at its start: nodes, parents (in graph_function_ids order: the
    ``list`` merge order), sinks, merge mode, node options, output schema. The test and bench runs use it too."""
    ids = list(graph.graph_function_ids)
    parents: dict[str, list[str]] = {node: [] for node in ids}
    for source, targets in graph.graph_connection_data.items():
        for target in targets:
            parents[target].append(source)
    position = {node: i for i, node in enumerate(ids)}
    for node in ids:
        parents[node].sort(key=position.__getitem__)  # the "list" merge order: graph_function_ids
    sinks = [node for node in ids if not graph.graph_connection_data.get(node)]
    return {"ids": ids, "parents": parents, "sinks": sinks, "merge_mode": graph.graph_merge_mode,
            "options": graph.graph_node_options, "output_schema": graph.graph_output_schema}


# --- who may do what: the services' own checks, which the pages also ask to show only the buttons that work ---


def check_may_execute(actor, graph: Graph | None, *, dry_run: bool) -> None:
    """403 unless ``actor`` may start a run: ``graphs.execute_graph``, or a dry run by the graph's author or a
    reviewer (with ``graph`` None, only what holds for any graph)."""
    if actor.has_perm("graphs.execute_graph"):
        return
    if not dry_run:
        raise PermissionDenied("executing a graph needs the permission 'graphs.execute_graph' (operator or admin); "
                               "its author and reviewers may send \"dry_run\": true")
    if graph is not None and not (actor.pk == graph.created_by_id or actor.has_perm("graphs.review_graph")):
        raise PermissionDenied(f"only the author or a reviewer of {graph.graph_uri} may dry-run it")


def run_modes(actor, graph: Graph) -> list[str]:
    """How ``actor`` may run ``graph`` now: ``"run"`` and/or ``"dry_run"`` (empty: not at all), by the same
    checks as ``execute_graph`` (the role, then the lifecycle gate)."""
    modes = []
    for mode, dry_run in (("run", False), ("dry_run", True)):
        try:
            check_may_execute(actor, graph, dry_run=dry_run)
            assert_executable(graph, actor, dry_run=dry_run)
        except (PermissionDenied, NotExecutable):
            continue
        modes.append(mode)
    return modes


def may_cancel(actor, run: GraphRun) -> bool:
    return actor.has_perm("graphs.execute_graph") or actor.pk == run.created_by_id


def may_retry(actor, run: GraphRun) -> bool:
    return actor.has_perm("graphs.execute_graph") or (run.dry_run and actor.pk == run.created_by_id)


def _timeout(given: float | None) -> float:
    timeout = given or settings.GRAPH_RUN_TIMEOUT
    if timeout > settings.GRAPH_MAX_RUN_TIMEOUT:
        raise InputInvalid(f"invalid request: timeout_seconds: at most {settings.GRAPH_MAX_RUN_TIMEOUT:g}",
                           errors={"timeout_seconds": [f"at most {settings.GRAPH_MAX_RUN_TIMEOUT:g}"]})
    return float(timeout)


def execute_graph(actor, body: Any) -> GraphRun:
    """Run a graph version for ``actor``: synchronously (the run has ended when this returns) or, with
    ``async``, queued for the workers (the run is pending or running).

    Order of checks: the body (400), who may execute (403), the graph (404), its lifecycle (409), the run's
    timeout and the input against graph_input_schema (400); then the run exists and is audited."""
    data = check_body(_EXECUTE, EXECUTE_SCHEMA, body)
    dry_run = bool(data.get("dry_run", False))
    check_may_execute(actor, None, dry_run=dry_run)  # 403 before 404: who may execute at all
    graph = Graph.objects.filter(graph_uri=data["graph_uri"]).first()
    if graph is None:
        raise NotFound(f"no graph with graph_uri '{data['graph_uri']}'", errors={"graph_uri": ["no such graph"]})
    check_may_execute(actor, graph, dry_run=dry_run)
    assert_executable(graph, actor, dry_run=dry_run)
    timeout = _timeout(data.get("timeout_seconds"))
    check = compile_check(graph.graph_input_schema, what="input_data")
    if check is not None:
        check(data["input_data"])
    now = timezone.now()
    warnings = [f"graph {graph.graph_uri} runs a retired policy version in one of its functions: "
                "it still runs, but should move to a current version"] if graph.uses_retired_policy else []
    with transaction.atomic():
        run = GraphRun.objects.create(
            graph=graph, graph_uri=graph.graph_uri, input_data=data["input_data"], plan=run_plan(graph),
            dry_run=dry_run, uses_retired_policy=graph.uses_retired_policy, warnings=warnings,
            timeout_seconds=timeout, deadline_at=now + timedelta(seconds=timeout), created_by=actor)
        NodeRun.objects.bulk_create(NodeRun(run=run, node_id=node, position=i)
                                    for i, node in enumerate(run.plan["ids"]))
        audit_object(actor, "graph.run_start", graph, {"run_id": str(run.run_id), "attempt": 1, "dry_run": dry_run,
                                                       "async": bool(data.get("async")), "timeout_seconds": timeout,
                                                       "uses_retired_policy": graph.uses_retired_policy})
    return _go(run, bool(data.get("async")))


def _go(run: GraphRun, run_async: bool) -> GraphRun:
    if run_async:
        send_after_commit("graphs.advance_run", [run.pk], lambda reason: engine.end_run(
            run, RunStatus.FAILED, error=reason, error_type="unavailable"))
    else:
        drive(run.pk, to_the_end=True)
    run.refresh_from_db()
    return run


def sync_outcome(run: GraphRun) -> Any:
    """A synchronous run's output, or its failure as the error answer (with the run_id and the failed node)."""
    if run.status == RunStatus.COMPLETED:
        return run.output
    raise ApiError(run.error or f"the run is {run.status}", engine.error_status(run.error_type or "cancelled"),
                   error_type=run.error_type or "cancelled", run_id=str(run.run_id),
                   **({"failed_node": run.failed_node} if run.failed_node else {}))


# --- the drivers: the same steps, run by the workers or by the request -------------------------------------


def queue_advance(run_pk: int, countdown: float | None = None) -> None:
    """Queue one ``advance`` step (by its task's name: graphs.tasks wraps this module)."""
    from celery import current_app

    current_app.send_task("graphs.advance_run", args=[run_pk], countdown=countdown)


def _node_in_thread(node_pk: int, run, seen) -> None:
    try:
        engine.run_node(node_pk, run, seen)
    finally:
        connection.close()  # this thread's own connection


def drive(run_pk: int, *, to_the_end: bool) -> None:
    """Drive a run through its steps in this process: ready nodes run in threads of their own (independent
    branches at the same time), a lone ready node in this thread. ``to_the_end``: a synchronous request waits
    until the run has ended; a worker (the ``graphs.advance_run`` task) returns once nothing of the run runs here,
    queueing the next step after a retry's backoff, or after ``WORKER_SLICE``. A process that dies here leaves
    its claimed nodes to the reconciliation (their leases run out), like any worker that dies."""
    pool: ThreadPoolExecutor | None = None
    inflight: dict[int, Any] = {}
    began = time.monotonic()
    held = None  # the run as the last step read it
    try:
        while True:
            progress = engine.advance(run_pk, held)
            held = progress.run
            if progress.done:
                return
            fresh = [pk for pk in progress.ready if pk not in inflight]
            if not to_the_end and time.monotonic() - began > WORKER_SLICE:
                if not inflight:
                    queue_advance(run_pk)  # behind the runs (and the heartbeat) that waited meanwhile
                    return
                fresh = []  # start nothing new here; the nodes running here finish first
            if len(fresh) == 1 and not inflight:
                engine.run_node(fresh[0], progress.run, progress.seen[fresh[0]])
                continue
            for node_pk in fresh:
                pool = pool or ThreadPoolExecutor(NODE_THREADS, thread_name_prefix="graph-node")
                inflight[node_pk] = pool.submit(_node_in_thread, node_pk, progress.run, progress.seen[node_pk])
            if not inflight and not to_the_end:
                if progress.wait is not None:
                    queue_advance(run_pk, countdown=progress.wait)
                return  # what runs elsewhere advances the run when it ends
            remaining = max(0.0, (progress.deadline - timezone.now()).total_seconds()) + 0.01
            pause = min(remaining, progress.wait if progress.wait is not None else remaining)
            if inflight:
                finished, _ = wait(inflight.values(), timeout=pause, return_when=FIRST_COMPLETED)
                inflight = {pk: f for pk, f in inflight.items() if f not in finished}
            else:
                time.sleep(min(pause, 0.5) if progress.wait is None else pause)
    finally:
        if pool is not None:
            pool.shutdown(wait=False)  # nodes still running finish on their own (their timeout bounds them)


# --- cancel and retry ---------------------------------------------------------------------------------------


def cancel_run(actor, run: GraphRun) -> GraphRun:
    """Cancel a pending or running run: nothing new starts, running nodes finish; 409 once it has ended."""
    if not may_cancel(actor, run):
        raise PermissionDenied("cancelling a run needs the permission 'graphs.execute_graph', or to have started it")
    if not engine.end_run(run, RunStatus.CANCELLED, error=f"cancelled by {getattr(actor, 'username', 'the system')}",
                          error_type="cancelled", actor=actor):
        run.refresh_from_db(fields=["status"])
        raise Conflict(f"run {run.run_id} is already {run.status}: only a pending or running run can be cancelled")
    run.refresh_from_db()
    return run


def retry_run(actor, run: GraphRun, body: Any) -> GraphRun:
    """A new attempt of a failed or cancelled run: the nodes that did not complete run again, the completed ones
    keep their outputs. The gate applies again (a version retired since can't run)."""
    data = check_body(_RETRY, RETRY_SCHEMA, body if body else {})
    if not may_retry(actor, run):
        raise PermissionDenied("retrying a run needs the permission 'graphs.execute_graph'")
    assert_executable(run.graph, actor, dry_run=run.dry_run)
    timeout = _timeout(data.get("timeout_seconds") or run.timeout_seconds)
    with transaction.atomic():
        moved = GraphRun.objects.filter(pk=run.pk, status__in={RunStatus.FAILED, RunStatus.CANCELLED}).update(
            status=RunStatus.RUNNING, attempt=run.attempt + 1, error="", error_type="", failed_node="", output=None,
            finished_at=None, timeout_seconds=timeout, deadline_at=timezone.now() + timedelta(seconds=timeout))
        if not moved:
            run.refresh_from_db(fields=["status"])
            raise Conflict(f"run {run.run_id} is {run.status}: only a failed or cancelled run can be retried")
        NodeRun.objects.filter(run=run).exclude(status__in={NodeStatus.COMPLETED, NodeStatus.RUNNING}).update(
            status=NodeStatus.PENDING, attempt=0, error="", error_type="", output=None, started_at=None,
            finished_at=None, duration_ms=None, not_before=None, lease_until=None)
        audit_object(actor, "graph.run_start", run.graph, {"run_id": str(run.run_id), "attempt": run.attempt + 1,
                                                           "retry": True}, target_key=run.graph_uri)
    run.refresh_from_db()
    return _go(run, bool(data.get("async")))


# --- reconciliation and metrics -----------------------------------------------------------------------------


def reconcile_runs() -> dict[str, int]:
    """The periodic task: nodes whose worker died mid-call are failed or retried (engine.expire_leases), and
    every active run is advanced again (a lost message, a dead request, a deadline passed while idle)."""
    close_old_connections()
    expired = engine.expire_leases()
    runs = expired | engine.stalled_runs(quiet_for=STALLED_AFTER)
    for run_pk in runs:
        queue_advance(run_pk)
    return {"runs_with_lost_nodes": len(expired), "advanced_runs": len(runs)}


def metric_lines() -> list[str]:
    """Prometheus lines: runs by status, and the node call durations as a histogram."""
    lines = ["# HELP policygrid_graph_runs Graph runs by status.", "# TYPE policygrid_graph_runs gauge"]
    counts = dict(GraphRun.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    lines += [f'policygrid_graph_runs{{status="{status}"}} {counts.get(status, 0)}' for status in RunStatus.values]
    done = NodeRun.objects.filter(duration_ms__isnull=False)
    buckets = done.aggregate(**{f"le_{b}": Count("id", filter=Q(duration_ms__lte=b)) for b in DURATION_BUCKETS_MS},
                             total=Count("id"), sum=Sum("duration_ms"))
    lines += ["# HELP policygrid_graph_node_duration_seconds Duration of graph node calls.",
              "# TYPE policygrid_graph_node_duration_seconds histogram"]
    lines += [f'policygrid_graph_node_duration_seconds_bucket{{le="{b / 1000:g}"}} {buckets[f"le_{b}"]}'
              for b in DURATION_BUCKETS_MS]
    lines += [f'policygrid_graph_node_duration_seconds_bucket{{le="+Inf"}} {buckets["total"]}',
              f"policygrid_graph_node_duration_seconds_sum {(buckets['sum'] or 0) / 1000:g}",
              f"policygrid_graph_node_duration_seconds_count {buckets['total']}"]
    return lines
