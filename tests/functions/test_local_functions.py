"""Functions (Type 4) end to end on the embedded system: the portal, its worker, the local executor service and
real replica processes serving HTTP on loopback."""
import os
import signal
import time

import pytest

from tests.functions.conftest import STATEFUL_URI
from tests.jobs.conftest import alive, wait_dead

pytestmark = pytest.mark.slow


def test_deploy_becomes_ready_and_state_persists_between_calls(functions_system):
    created = functions_system.deploy("counter")
    assert created.status_code == 202, created.json()
    assert created.json()["data"]["function_status"] == "deploying"
    record = functions_system.wait_ready("counter")
    assert record["function_status"] == "ready", record
    first = functions_system.call("counter", {"n": 1})
    assert first.status_code == 200, first.json()
    second = functions_system.call("counter", {"n": 2}).json()["data"]
    assert first.json()["data"]["count"] == 1 and second["count"] == 2
    assert second["label"] == "initial" and second["echo"] == {"n": 2}
    failed = functions_system.call("counter", {"raise": True})
    assert failed.status_code == 500 and failed.json()["error_type"] == "policy_error"
    assert "the input asked me to fail" in failed.json()["message"]
    assert functions_system.call("counter", {}).json()["data"]["count"] == 3  # an error the policy raised kept it
    # Every call is an execution of Type 4, audited with its outcome and duration (docs/governance.md §3).
    audited = functions_system.get("/audit", params={"action": "function.call", "target_key": "counter",
                                                     "ordering": "seq"}).json()["data"]
    assert [(e["data"]["success"], e["data"]["error_type"]) for e in audited] == [
        (True, None), (True, None), (False, "policy_error"), (True, None)]
    assert all(e["actor"] and e["data"]["duration_ms"] > 0 for e in audited)


def test_management_reaches_both_replicas_and_is_checked_against_the_schema(functions_system):
    assert functions_system.deploy("labelled", replicas=2).status_code == 202
    assert functions_system.wait_ready("labelled")["function_status"] == "ready"
    deadline = time.monotonic() + 30
    while sum(r["state"] == "ready" for r in functions_system.replicas("labelled")) < 2:
        assert time.monotonic() < deadline, functions_system.replicas("labelled")
        time.sleep(0.1)
    changed = functions_system.post("/function/labelled/management", {"action": "set_label", "data": {"label": "new"}})
    assert changed.status_code == 200, changed.json()
    results = changed.json()["data"]
    assert len(results) == 2 and all(r["success"] and r["data"] == {"label": "new"} for r in results), results
    states = functions_system.post("/function/labelled/management", {"action": "get_state"}).json()["data"]
    assert {r["data"]["label"] for r in states} == {"new"} and len({r["data"]["pid"] for r in states}) == 2
    for _ in range(4):
        assert functions_system.call("labelled", {}).json()["data"]["label"] == "new"
    one = functions_system.post("/function/labelled/management", {"action": "get_state", "target": "one"})
    assert one.status_code == 200 and len(one.json()["data"]) == 1
    unknown = functions_system.post("/function/labelled/management", {"action": "explode"})
    assert unknown.status_code == 400 and "explode" in unknown.json()["message"]
    bad = functions_system.post("/function/labelled/management", {"action": "set_label", "data": {"label": 5}})
    assert bad.status_code == 400 and bad.json()["error_type"] == "input_invalid"
    entries = functions_system.get("/audit", params={"action": "function.management"}).json()["data"]
    assert any(e["target_key"] == "labelled" and e["actor"] == "admin" for e in entries), entries


def test_a_crashed_replica_is_restarted_and_the_function_stays_callable(functions_system):
    assert functions_system.deploy("crashy").status_code == 202
    assert functions_system.wait_ready("crashy")["function_status"] == "ready"
    [replica] = functions_system.replicas("crashy")
    os.kill(replica["pid"], signal.SIGKILL)
    assert wait_dead(replica["pid"])
    deadline = time.monotonic() + 30
    while True:
        answer = functions_system.call("crashy", {"after": "restart"})
        if answer.status_code == 200:
            break
        assert answer.status_code in (409, 502), answer.json()
        assert time.monotonic() < deadline, answer.json()
        time.sleep(0.2)
    [restarted] = functions_system.replicas("crashy")
    assert restarted["restarts"] >= 1 and restarted["pid"] != replica["pid"]
    crashed = functions_system.call("crashy", {"crash": True})  # the policy's own process dies mid-call
    assert crashed.status_code == 500 and crashed.json()["error_type"] == "policy_error", crashed.json()
    assert functions_system.call("crashy", {}).json()["data"]["count"] == 1  # a fresh instance, same replica


def test_remove_leaves_no_process_and_the_record_is_gone(functions_system):
    assert functions_system.deploy("doomed", replicas=2).status_code == 202
    assert functions_system.wait_ready("doomed")["function_status"] == "ready"
    time.sleep(1)
    pids = [r["pid"] for r in functions_system.replicas("doomed") if r["pid"]]
    assert pids
    removed = functions_system.remove("doomed")
    assert removed.status_code == 200, removed.json()
    assert all(wait_dead(pid) for pid in pids)
    assert functions_system.get("/function/doomed").status_code == 404
    assert functions_system.call("doomed", {}).status_code == 404
    assert functions_system.remove("doomed").status_code == 404


def test_logs_carry_what_the_policy_printed(functions_system):
    assert functions_system.deploy("talker").status_code == 202
    assert functions_system.wait_ready("talker")["function_status"] == "ready"
    functions_system.call("talker", {"say": "hello-from-the-function"})
    logs = functions_system.get("/function/get_logs/talker")
    assert logs.status_code == 200 and "hello-from-the-function" in logs.json()["data"]
    assert logs.json()["logs"] == logs.json()["data"]
    assert functions_system.get("/function/get_logs/talker", params={"tail": 1}).json()["data"].count("\n") == 1
    assert functions_system.get("/function/get_logs/talker", params={"tail": "x"}).status_code == 400


def test_calls_before_ready_and_bad_requests(functions_system):
    created = functions_system.deploy("slowstart")
    assert created.status_code == 202
    early = functions_system.call("slowstart", {})
    assert early.status_code in (200, 409)
    if early.status_code == 409:
        assert "not ready" in early.json()["message"]
    assert functions_system.deploy("slowstart").status_code == 409  # the name is taken
    assert functions_system.deploy("Bad_Name").status_code == 400
    assert functions_system.deploy("x1", uri="nope:1.0-x").status_code == 404
    assert functions_system.deploy("x2", executor="no-such-executor").status_code == 404
    assert functions_system.deploy("x3", replicas=0).status_code == 400
    assert functions_system.post("/function/deployments/create/local", {"name": "x4"}).status_code == 400
    assert functions_system.deploy("x5", uri=STATEFUL_URI, policy_rule_parameters={"label": 5}).status_code == 400
    assert functions_system.call("no-such-function", {}).status_code == 404


def test_an_executor_with_functions_cant_be_deleted(functions_system):
    assert functions_system.deploy("anchor").status_code == 202
    refused = functions_system.api.delete(f"{functions_system.base}/executor/local", timeout=30)
    assert refused.status_code == 409 and "anchor" in refused.json()["message"]


def test_the_default_allocator_places_a_function_on_a_healthy_executor(functions_system):
    placed = functions_system.deploy("placed", executor=None)
    assert placed.status_code == 202, placed.json()
    assert placed.json()["data"]["function_executor_id"] == "local"
    assert functions_system.wait_ready("placed")["function_status"] == "ready"
    broken = functions_system.deploy("misplaced", executor=None,
                                     alloc={"resource_allocator_policy_uri": "nope:1.0-x"})
    assert broken.status_code == 404 and "nope:1.0-x" in broken.json()["message"]


def test_no_replica_outlives_the_removal_of_many_functions(functions_system):
    names = [f"bulk-{i}" for i in range(3)]
    for name in names:
        assert functions_system.deploy(name).status_code == 202
    for name in names:
        assert functions_system.wait_ready(name)["function_status"] == "ready"
    pids = [r["pid"] for name in names for r in functions_system.replicas(name)]
    for name in names:
        assert functions_system.remove(name).status_code == 200
    assert not any(alive(pid) for pid in pids if pid)


def test_a_function_in_a_graph_cant_be_removed_and_the_graphs_are_named(functions_system):
    for name in ("graphed", "graphed-next"):
        assert functions_system.deploy(name).status_code == 202
        assert functions_system.wait_ready(name)["function_status"] == "ready"
    graph = functions_system.post("/graphs", {
        "graph_name": "uses-graphed", "graph_version": "1.0", "graph_release_tag": "test",
        "graph_function_ids": ["graphed", "graphed-next"], "graph_connection_data": {"graphed": ["graphed-next"]}})
    assert graph.status_code == 201, graph.json()
    refused = functions_system.remove("graphed")
    assert refused.status_code == 409 and "uses-graphed:1.0-test" in refused.json()["message"], refused.json()
    assert functions_system.wait_ready("graphed")["function_status"] == "ready"  # untouched
    assert functions_system.call("graphed", {}).status_code == 200


def test_a_deployment_task_delivered_again_watches_the_deployment_already_there(functions_system):
    from tests.functions.conftest import manage

    assert functions_system.deploy("redelivered").status_code == 202
    assert functions_system.wait_ready("redelivered")["function_status"] == "ready"
    # The task runs again for the same function (a worker died after sending it; Celery delivers it again).
    printed = manage(functions_system, "shell", "-c", (
        "from functions.models import Function; from functions.services import deploy; "
        "f = Function.objects.get(function_id='redelivered'); "
        "Function.objects.filter(pk=f.pk).update(function_status='deploying'); print(deploy(f.pk)); "
        "print(Function.objects.get(pk=f.pk).function_message)"))
    assert printed.strip().splitlines()[-2] == "ready", printed
    assert functions_system.call("redelivered", {}).status_code == 200
