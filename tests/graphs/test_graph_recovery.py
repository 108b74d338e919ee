"""A graph run survives its worker: a Celery worker process SIGKILLed in the middle of a node leaves no run
`running`, and no node's side effect happens twice unless the node is retried; 50 runs at once stay apart."""
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.graphs.conftest import nodes_by_id
from tests.jobs.conftest import alive, wait_dead

pytestmark = pytest.mark.slow


def _kill_worker_of_running_node(system, run_id, node_id) -> int:
    deadline = time.monotonic() + 30
    while True:
        node = nodes_by_id(system.run(run_id))[node_id]
        if node["status"] == "running":
            break
        assert time.monotonic() < deadline, node
        time.sleep(0.05)
    pid = int(node["worker"].rsplit(":", 1)[1])
    assert alive(pid) and pid != os.getpid()
    time.sleep(0.3)  # inside the call by now
    os.kill(pid, signal.SIGKILL)  # the Celery pool process running the node
    assert wait_dead(pid)
    return pid


@pytest.mark.parametrize("retries", [0, 1])
def test_a_worker_killed_mid_node_leaves_no_run_running_and_repeats_no_side_effect(graph_system, retries):
    options = {"d": {"timeout_seconds": 3, **({"retries": retries, "retry_backoff_seconds": 0.1} if retries else {})}}
    uri = graph_system.register(["side", "d", "last"], {"side": ["d"], "d": ["last"]}, graph_node_options=options)
    before = {name: graph_system.count(name) for name in ("side", "last")}
    answer = graph_system.execute(uri, {"control": {"sleep": {"d": 2}}}, **{"async": True})
    assert answer.status_code == 202, answer.json()
    run_id = answer.json()["run_id"]
    killed = _kill_worker_of_running_node(graph_system, run_id, "d")
    # The node's lease (its timeout + margins) runs out; the reconciliation (every second here) fails or retries it.
    run = graph_system.wait_run(run_id, timeout=60)
    nodes = nodes_by_id(run)
    assert graph_system.count("side") == before["side"] + 1  # the node that completed before the kill: once
    if retries:
        assert run["status"] == "completed", run
        assert nodes["d"]["attempt"] == 2 and nodes["d"]["worker"] != f"{nodes['d']['worker'].split(':')[0]}:{killed}"
        assert graph_system.count("last") == before["last"] + 1
    else:
        assert run["status"] == "failed" and run["failed_node"] == "d", run
        assert run["error_type"] == "worker_lost" and "lost mid-call" in run["error"]
        assert nodes["d"]["status"] == "failed" and nodes["d"]["attempt"] == 1
        assert nodes["last"]["status"] == "skipped" and graph_system.count("last") == before["last"]
    assert nodes["side"]["attempt"] == 1
    assert graph_system.get("/graph/runs", params={"graph_uri": uri, "status": "running"}).json()["data"] == []


def test_fifty_runs_at_once_are_all_correct_and_see_only_their_own_data(graph_system):
    uri = graph_system.register(["a", "b", "c", "d"], {"a": ["b", "c"], "b": ["d"], "c": ["d"]}, mode="keyed")

    def start(i):
        body = {"control": {"tag": f"run-{i}"}, "i": i}
        return i, graph_system.execute(uri, body, **({"async": True} if i % 2 else {}))

    with ThreadPoolExecutor(25) as pool:
        started = list(pool.map(start, range(50)))
    run_ids = {}
    for i, answer in started:
        assert answer.status_code in (200, 202), answer.json()
        run_ids[i] = answer.json()["run_id"]
    assert len(set(run_ids.values())) == 50
    for i, run_id in run_ids.items():
        run = graph_system.wait_run(run_id, timeout=180)
        assert run["status"] == "completed", run
        assert run["input_data"] == {"control": {"tag": f"run-{i}"}, "i": i}
        seen = run["output"]["seen"]
        assert seen["b"]["control"]["tag"] == seen["c"]["control"]["tag"] == f"run-{i}"
        assert seen["b"]["seen"]["seen"] == {"control": {"tag": f"run-{i}"}, "i": i}
        for node in run["nodes"]:
            assert node["status"] == "completed" and f"run-{i}" in str(node["input"])
            assert not any(f"run-{j}'" in str(node["output"]) for j in range(50) if j != i)
