"""The engine's claim of a node, on the rows alone (no embedded system): a driver hands run_node the run and the
node as its last ``advance`` read them, and the claim's conditional UPDATE still refuses a node that moved on
meanwhile (claimed and put back for a retry: another attempt), a node no longer pending, and a run that
stopped running. No function is called for a refused claim."""
from datetime import timedelta

import pytest
from django.utils import timezone

from functions.models import Function
from graphs import engine
from graphs.choices import NodeStatus, RunStatus
from graphs.models import Graph, GraphRun, NodeRun
from graphs.services import run_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(clients, users):
    for fid in ("fa", "fb"):
        Function.objects.create(function_id=fid, function_executor_id="local", function_policy_rule_uri="p:1-x")
    response = clients["author"].post("/graphs", {
        "graph_name": "g", "graph_version": "1.0", "graph_release_tag": "t", "graph_function_ids": ["fa", "fb"],
        "graph_connection_data": {"fa": ["fb"]}}, format="json")
    assert response.status_code == 201, response.content
    graph = Graph.objects.get()
    made = GraphRun.objects.create(graph=graph, graph_uri=graph.graph_uri, input_data={"x": 1}, plan=run_plan(graph),
                                   timeout_seconds=30, deadline_at=timezone.now() + timedelta(seconds=30),
                                   created_by=users["operator"])
    NodeRun.objects.bulk_create(NodeRun(run=made, node_id=node, position=i) for i, node in enumerate(["fa", "fb"]))
    return made


@pytest.fixture
def calls(monkeypatch):
    made = []
    monkeypatch.setattr(engine, "call_function", lambda actor, name, given, **kw: made.append((name, given)) or 7)
    return made


def ready(run):
    progress = engine.advance(run.pk)
    assert progress.ready and progress.run is not None, progress
    pk = progress.ready[0]
    return pk, progress.run, progress.seen[pk]


def test_the_node_handed_over_by_advance_runs_once(run, calls):
    pk, seen_run, seen = ready(run)
    assert seen == {"node_id": "fa", "status": NodeStatus.PENDING, "attempt": 0}
    engine.run_node(pk, seen_run, seen)
    node = NodeRun.objects.get(pk=pk)
    assert (node.status, node.attempt, node.output) == (NodeStatus.COMPLETED, 1, 7)
    assert calls == [("fa", {"x": 1})]
    engine.run_node(pk, seen_run, seen)  # the same hand-over again: no longer pending at attempt 0
    assert len(calls) == 1 and NodeRun.objects.get(pk=pk).attempt == 1


def test_a_node_retried_by_another_worker_since_advance_is_not_claimed_at_a_stale_attempt(run, calls):
    pk, seen_run, seen = ready(run)
    # Meanwhile another worker claimed it, failed, and put it back for a retry: pending again, attempt 1.
    NodeRun.objects.filter(pk=pk).update(attempt=1, status=NodeStatus.PENDING)
    assert engine.run_node(pk, seen_run, seen) is None
    node = NodeRun.objects.get(pk=pk)
    assert (node.status, node.attempt) == (NodeStatus.PENDING, 1) and calls == []


def test_a_run_that_stopped_since_advance_starts_no_node(run, calls):
    pk, seen_run, seen = ready(run)
    GraphRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    assert engine.run_node(pk, seen_run, seen) is None
    assert NodeRun.objects.get(pk=pk).status == NodeStatus.PENDING and calls == []


def test_without_a_hand_over_the_node_and_its_run_are_read(run, calls):
    pk, _, _ = ready(run)
    engine.run_node(pk)
    assert NodeRun.objects.get(pk=pk).status == NodeStatus.COMPLETED and calls == [("fa", {"x": 1})]


def test_a_driver_holding_the_run_reads_its_state_again_at_each_step(run, calls):
    first = engine.advance(run.pk)
    assert first.ready and first.run.status == RunStatus.RUNNING
    GraphRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)  # by another request, meanwhile
    again = engine.advance(run.pk, first.run)
    assert again.done and not again.ready and first.run.status == RunStatus.CANCELLED
    GraphRun.objects.filter(pk=run.pk).delete()
    assert engine.advance(run.pk, first.run).done
