"""Graph runs (docs/runtime.md §7, docs/api.md §4.6) end to end on the embedded system: the portal, its Celery
worker and beat, the local executor service and real function replicas."""
import time

import pytest

from tests.graphs.conftest import nodes_by_id

pytestmark = pytest.mark.slow


def test_a_chain_passes_each_output_to_the_next_and_records_every_node(graph_system):
    uri = graph_system.register(["a", "b", "c"], {"a": ["b"], "b": ["c"]})
    answer = graph_system.execute(uri, {"control": {"tag": "chain"}, "x": 1})
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["success"] is True and body["run_id"]
    out = body["data"]
    assert out["node"] == "c" and out["seen"]["node"] == "b" and out["seen"]["seen"]["node"] == "a"
    assert out["seen"]["seen"]["seen"] == {"control": {"tag": "chain"}, "x": 1}
    run = graph_system.run(body["run_id"])
    assert run["status"] == "completed" and run["output"] == out and run["graph_uri"] == uri
    assert run["actor"] == "admin" and run["attempt"] == 1 and run["error"] == ""
    nodes = nodes_by_id(run)
    assert [n["node_id"] for n in run["nodes"]] == ["a", "b", "c"]
    for node in nodes.values():
        assert node["status"] == "completed" and node["attempt"] == 1 and node["duration_ms"] > 0
        assert node["started_at"] <= node["finished_at"]
    assert nodes["a"]["finished_at"] <= nodes["b"]["started_at"] <= nodes["b"]["finished_at"] <= nodes["c"]["started_at"]
    assert nodes["b"]["input"] == nodes["a"]["output"]
    entries = graph_system.get("/audit", params={"target_key": uri}).json()["data"]
    actions = {e["action"]: e for e in entries}
    assert actions["graph.run_start"]["actor"] == "admin" and actions["graph.run_finish"]["actor"] == "admin"
    assert actions["graph.run_finish"]["data"]["status"] == "completed"


@pytest.mark.parametrize("mode", ["list", "keyed"])
def test_a_diamond_merges_its_parents_as_the_merge_mode_says(graph_system, mode):
    # d's parents are listed c before b in graph_function_ids: the list follows that order, not the edges'.
    uri = graph_system.register(["a", "c", "b", "d"], {"a": ["b", "c"], "b": ["d"], "c": ["d"]}, mode=mode)
    answer = graph_system.execute(uri, {"control": {"tag": mode}})
    assert answer.status_code == 200, answer.json()
    seen = answer.json()["data"]["seen"]
    if mode == "list":
        assert isinstance(seen, list) and [s["node"] for s in seen] == ["c", "b"]
    else:
        assert set(seen) == {"b", "c"} and seen["b"]["node"] == "b" and seen["c"]["node"] == "c"
    assert answer.json()["data"]["node"] == "d"


def test_several_sinks_answer_an_object_keyed_by_sink(graph_system):
    uri = graph_system.register(["a", "b", "c"], {"a": ["b", "c"]})
    answer = graph_system.execute(uri, {"control": {}})
    assert answer.status_code == 200, answer.json()
    out = answer.json()["data"]
    assert set(out) == {"b", "c"} and out["b"]["node"] == "b" and out["c"]["node"] == "c"


@pytest.mark.parametrize("run_async", [False, True])
def test_independent_branches_run_at_the_same_time(graph_system, run_async):
    uri = graph_system.register(["a", "b", "c", "d"], {"a": ["b", "c"], "b": ["d"], "c": ["d"]})
    control = {"sleep": {"b": 1.0, "c": 1.0}}
    started = time.monotonic()
    answer = graph_system.execute(uri, {"control": control}, **({"async": True} if run_async else {}))
    if run_async:
        assert answer.status_code == 202, answer.json()
        run = graph_system.wait_run(answer.json()["run_id"])
    else:
        assert answer.status_code == 200, answer.json()
        run = graph_system.run(answer.json()["run_id"])
    elapsed = time.monotonic() - started
    assert run["status"] == "completed", run
    nodes = nodes_by_id(run)
    b, c = nodes["b"], nodes["c"]
    assert b["started_at"] < c["finished_at"] and c["started_at"] < b["finished_at"], (b, c)  # they overlap
    assert b["output"]["started"] < c["output"]["ended"] and c["output"]["started"] < b["output"]["ended"]
    assert elapsed < 1.9 or run_async, elapsed  # one after the other would take 2 s


def test_the_first_failure_fails_the_run_and_nothing_new_starts(graph_system):
    # a → b → c and a → e: b fails after 0.5 s while e (started with b) is still sleeping; c never starts, e finishes.
    uri = graph_system.register(["a", "b", "c", "e"], {"a": ["b", "e"], "b": ["c"]})
    answer = graph_system.execute(uri, {"control": {"fail": ["b"], "sleep": {"b": 0.5, "e": 2.0}}})
    assert answer.status_code == 500, answer.json()
    body = answer.json()
    assert body["success"] is False and body["error_type"] == "policy_error" and body["failed_node"] == "b"
    assert "b was told to fail" in body["message"] and "node b" in body["message"]
    run = graph_system.run(body["run_id"])
    assert run["status"] == "failed" and run["failed_node"] == "b" and "b was told to fail" in run["error"]
    nodes = nodes_by_id(run)
    assert nodes["b"]["status"] == "failed" and "b was told to fail" in nodes["b"]["error"]
    assert nodes["c"]["status"] == "skipped" and nodes["c"]["started_at"] is None
    run = graph_system.wait_run(body["run_id"])  # e, running when b failed, is left to finish
    deadline = time.monotonic() + 10
    while nodes_by_id(run)["e"]["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        run = graph_system.run(body["run_id"])
    assert nodes_by_id(run)["e"]["status"] == "completed" and run["status"] == "failed"


def test_the_input_is_checked_before_any_node_and_the_output_after_the_last(graph_system):
    schema = {"type": "object", "required": ["ip"], "properties": {"ip": {"type": "string"}}}
    uri = graph_system.register(["a"], {}, graph_input_schema=schema,
                                graph_output_schema={"type": "object", "required": ["decision"]})
    before = graph_system.count("a")
    refused = graph_system.execute(uri, {"ip": 5})
    assert refused.status_code == 400 and refused.json()["error_type"] == "input_invalid", refused.json()
    assert "ip" in refused.json()["message"]
    assert graph_system.count("a") == before  # no node ran
    answer = graph_system.execute(uri, {"ip": "10.0.0.1"})
    assert answer.status_code == 500 and answer.json()["error_type"] == "output_invalid", answer.json()
    run = graph_system.run(answer.json()["run_id"])
    assert run["status"] == "failed" and "decision" in run["error"] and run["output"] is None
    assert nodes_by_id(run)["a"]["status"] == "completed"


def test_a_run_past_its_timeout_fails_and_a_node_past_its_own_fails_too(graph_system):
    uri = graph_system.register(["a", "b"], {"a": ["b"]})
    started = time.monotonic()
    answer = graph_system.execute(uri, {"control": {"sleep": {"a": 3}}}, timeout_seconds=1)
    assert time.monotonic() - started < 2.5
    assert answer.status_code == 504 and answer.json()["error_type"] == "timeout", answer.json()
    run = graph_system.run(answer.json()["run_id"])
    assert run["status"] == "failed" and "timeout" in run["error"] and nodes_by_id(run)["b"]["status"] == "skipped"

    per_node = graph_system.register(["a", "b"], {"a": ["b"]}, graph_node_options={"a": {"timeout_seconds": 1}})
    answer = graph_system.execute(per_node, {"control": {"sleep": {"a": 3}}})
    assert answer.status_code == 504 and answer.json()["failed_node"] == "a", answer.json()
    node = nodes_by_id(graph_system.run(answer.json()["run_id"]))["a"]
    assert node["status"] == "failed" and node["error_type"] == "timeout" and node["duration_ms"] < 2500


def test_a_cancelled_run_starts_nothing_new(graph_system):
    uri = graph_system.register(["a", "b"], {"a": ["b"]})
    answer = graph_system.execute(uri, {"control": {"sleep": {"a": 1.5}}}, **{"async": True})
    assert answer.status_code == 202 and answer.json()["success"] is True, answer.json()
    run_id = answer.json()["run_id"]
    deadline = time.monotonic() + 30
    while nodes_by_id(graph_system.run(run_id))["a"]["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = graph_system.post(f"/graph/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.json()
    assert cancelled.json()["data"]["status"] == "cancelled"
    again = graph_system.post(f"/graph/runs/{run_id}/cancel")
    assert again.status_code == 409
    time.sleep(2.5)
    run = graph_system.run(run_id)
    assert run["status"] == "cancelled"
    assert nodes_by_id(run)["a"]["status"] == "completed" and nodes_by_id(run)["b"]["status"] == "skipped"


def test_retry_reruns_the_failed_node_and_what_follows_reusing_completed_outputs(graph_system):
    uri = graph_system.register(["first", "once", "last"], {"first": ["once"], "once": ["last"]})
    counts = {name: graph_system.count(name) for name in ("first", "once", "last")}
    control = {"fail_first": {"once": counts["once"] + 1}}  # its next call fails, the one after succeeds
    failed = graph_system.execute(uri, {"control": control})
    assert failed.status_code == 500 and failed.json()["failed_node"] == "once", failed.json()
    run_id = failed.json()["run_id"]
    first_output = nodes_by_id(graph_system.run(run_id))["first"]["output"]
    retried = graph_system.post(f"/graph/runs/{run_id}/retry")
    assert retried.status_code == 200, retried.json()
    assert retried.json()["run_id"] == run_id and retried.json()["attempt"] == 2
    run = graph_system.run(run_id)
    assert run["status"] == "completed" and run["attempt"] == 2
    nodes = nodes_by_id(run)
    assert nodes["first"]["output"] == first_output and nodes["first"]["run_attempt"] == 1
    assert nodes["once"]["run_attempt"] == 2 and nodes["last"]["run_attempt"] == 2
    assert run["output"]["seen"]["seen"] == first_output
    assert graph_system.count("first") == counts["first"] + 1  # not called again
    assert graph_system.count("once") == counts["once"] + 2 and graph_system.count("last") == counts["last"] + 1
    assert graph_system.post(f"/graph/runs/{run_id}/retry").status_code == 409  # a completed run


def test_a_node_with_retries_is_called_again_after_its_backoff(graph_system):
    uri = graph_system.register(["a", "flaky"], {"a": ["flaky"]},
                                graph_node_options={"flaky": {"retries": 2, "retry_backoff_seconds": 0.2}})
    before = graph_system.count("flaky")
    answer = graph_system.execute(uri, {"control": {"fail_first": {"flaky": before + 2}}})
    assert answer.status_code == 200, answer.json()
    node = nodes_by_id(graph_system.run(answer.json()["run_id"]))["flaky"]
    assert node["status"] == "completed" and node["attempt"] == 3
    assert graph_system.count("flaky") == before + 3
    # Retries run out: the run fails, naming the node's last error.
    answer = graph_system.execute(uri, {"control": {"fail_first": {"flaky": before + 100}}})
    assert answer.status_code == 500 and answer.json()["failed_node"] == "flaky", answer.json()
    assert nodes_by_id(graph_system.run(answer.json()["run_id"]))["flaky"]["attempt"] == 3


def test_metrics_count_runs_and_node_durations(graph_system):
    uri = graph_system.register(["a"], {})
    assert graph_system.execute(uri, {}).status_code == 200
    text = graph_system.get("/metrics").text
    completed = [line for line in text.splitlines() if line.startswith('policygrid_graph_runs{status="completed"}')]
    assert completed and int(completed[0].split()[-1]) >= 1
    assert "# TYPE policygrid_graph_node_duration_seconds histogram" in text
    count = [line for line in text.splitlines() if line.startswith("policygrid_graph_node_duration_seconds_count")]
    assert int(count[0].split()[-1]) >= 1
