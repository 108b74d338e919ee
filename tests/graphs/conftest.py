"""Fixtures of the graph run tests: the embedded system started for real (the function tests' fixtures), with a
node policy pushed and approved, functions deployed from it, and helpers to register, approve and run graphs."""
from __future__ import annotations

import itertools
import time

import pytest

from tests.functions.conftest import FunctionSystem, push_and_approve, user_session
from tests.portal.test_embedded import start_embedded

# A node of the test graphs. Its label (a parameter of its deployment) names it in its output; what it does is
# said by the "control" object that travels from the run's input through every node's output:
# {"sleep": {label: seconds}, "fail": [labels], "fail_first": {label: n calls}, "tag": anything}.
NODE = """
import time


def control_of(value):
    if isinstance(value, dict):
        if "control" in value:
            return value["control"]
        values = list(value.values())
    elif isinstance(value, list):
        values = value
    else:
        return None
    for item in values:
        found = control_of(item)
        if found is not None:
            return found
    return None


class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters):
        self.label = parameters.get("label", "")
        self.count = 0

    def eval(self, parameters, input_data, context):
        started = time.time()
        self.count += 1
        control = control_of(input_data) or {}
        time.sleep(control.get("sleep", {}).get(self.label, 0))
        if self.count <= control.get("fail_first", {}).get(self.label, 0):
            raise RuntimeError(f"{self.label} fails its call {self.count} on purpose")
        if self.label in control.get("fail", []):
            raise ValueError(f"{self.label} was told to fail")
        return {"node": self.label, "seen": input_data, "control": control, "count": self.count,
                "started": started, "ended": time.time()}

    def management(self, action, data):
        return {"count": self.count, "label": self.label}
"""
NODE_RECORD = {
    "policy_parameters_schema": {"label": {"type": "string"}},
    "policy_parameters": {"label": ""},
    "management_commands_schema": [{"name": "get_state", "description": "the count and the label", "schema": {}}],
}
NODE_URI = "graphnode:1.0-test"
# The general nodes every test may share (their counts are not asserted), and nodes of one test each.
SHARED = ("a", "b", "c", "d", "e")
OWN = ("flaky", "once", "first", "side", "last")
_names = itertools.count()


class GraphSystem(FunctionSystem):
    def register(self, ids, edges, *, mode="list", approve=True, **extra) -> str:
        """Create a graph of these nodes (a fresh name each time), submit it and have the reviewer approve it."""
        body = {"graph_name": f"g{next(_names)}-{int(time.time() * 1000) % 100000}", "graph_version": "1.0",
                "graph_release_tag": "test", "graph_function_ids": list(ids), "graph_connection_data": edges,
                "graph_merge_mode": mode, **extra}
        created = self.post("/graphs", body)
        assert created.status_code == 201, created.json()
        uri = created.json()["data"]["graph_uri"]
        if approve:
            assert self.post(f"/graphs/{uri}/submit", {"comment": "test"}).status_code == 200
            approved = self.reviewer.post(f"{self.base}/graphs/{uri}/approve", json={"comment": "ok"}, timeout=60)
            assert approved.status_code == 200, approved.json()
        return uri

    def deploy_nodes(self, names, replicas: int = 1) -> None:
        """Deploy the node policy as these functions (labelled by name), two at a time until each is ready."""
        for first in range(0, len(names), 2):
            batch = names[first:first + 2]
            for name in batch:
                created = self.deploy(name, uri=NODE_URI, policy_rule_parameters={"label": name}, replicas=replicas)
                assert created.status_code == 202, created.json()
            for name in batch:
                record = self.wait_ready(name, timeout=120)
                if record["function_status"] == "failed":  # e.g. a deployment task run twice on a busy machine
                    assert self.remove(name).status_code == 200
                    assert self.deploy(name, uri=NODE_URI, policy_rule_parameters={"label": name},
                                       replicas=replicas).status_code == 202
                    record = self.wait_ready(name, timeout=120)
                assert record["function_status"] == "ready", record

    def execute(self, uri, input_data, **extra):
        return self.post("/graph/execute_graph", {"graph_uri": uri, "input_data": input_data, **extra})

    def run(self, run_id) -> dict:
        answer = self.get(f"/graph/runs/{run_id}")
        assert answer.status_code == 200, answer.json()
        return answer.json()["data"]

    def wait_run(self, run_id, statuses=("completed", "failed", "cancelled"), timeout=60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} is still {run['status']}: {run}")
            time.sleep(0.05)

    def count(self, name) -> int:
        """How many calls the function's instance has run: its side effect, read by a management command."""
        answer = self.post(f"/function/{name}/management", {"action": "get_state"})
        assert answer.status_code == 200, answer.json()
        return answer.json()["data"][0]["data"]["count"]


def nodes_by_id(run: dict) -> dict[str, dict]:
    return {node["node_id"]: node for node in run["nodes"]}


@pytest.fixture(scope="package")
def graph_system(tmp_path_factory):
    # The reconciliation every second: a lost worker's node is found soon after its lease ends.
    env = {"POLICYGRID_GRAPH_RECONCILE_INTERVAL": "1"}
    for started in start_embedded(tmp_path_factory.mktemp("graphs-state"), extra_env=env):
        system = GraphSystem(started)
        push_and_approve(system, tmp_path_factory.mktemp("graphnode"), NODE, NODE_URI, NODE_RECORD)
        system.reviewer = user_session(system, "demo-reviewer")
        system.deploy_nodes((*SHARED, *OWN))
        yield system
