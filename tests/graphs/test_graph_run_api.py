"""The graph run routes refuse bad input, each with its status and a readable message: unknown graphs and runs,
drafts (dry runs for their authors and reviewers only), malformed and huge bodies, missing or weak credentials;
runs are listed per graph newest first; a graph whose function runs a retired policy version says so."""
import pytest
import requests

from tests.functions.conftest import STATEFUL, push_and_approve, user_session
from tests.graphs.conftest import nodes_by_id

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sessions(graph_system):
    return {role: user_session(graph_system, f"demo-{role}") for role in ("viewer", "author", "operator")}


def test_unknown_graphs_and_runs_answer_404(graph_system):
    answer = graph_system.execute("nope:1.0-x", {})
    assert answer.status_code == 404 and answer.json()["error_type"] == "not_found"
    assert "nope:1.0-x" in answer.json()["message"]
    for run_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        assert graph_system.get(f"/graph/runs/{run_id}").status_code == 404
        assert graph_system.post(f"/graph/runs/{run_id}/cancel").status_code == 404
        assert graph_system.post(f"/graph/runs/{run_id}/retry").status_code == 404


def test_a_draft_runs_only_as_a_dry_run_of_its_author_or_a_reviewer(graph_system, sessions):
    uri = graph_system.register(["a"], {}, approve=False)
    refused = graph_system.execute(uri, {})
    assert refused.status_code == 409 and refused.json()["error_type"] == "not_executable", refused.json()
    assert "dry_run" in refused.json()["message"]
    dry = graph_system.execute(uri, {"control": {}}, dry_run=True)  # the admin created it
    assert dry.status_code == 200 and dry.json()["data"]["node"] == "a", dry.json()
    assert graph_system.run(dry.json()["run_id"])["dry_run"] is True
    reviewer = graph_system.reviewer.post(f"{graph_system.base}/graph/execute_graph", timeout=60,
                                          json={"graph_uri": uri, "input_data": {}, "dry_run": True})
    assert reviewer.status_code == 200, reviewer.json()
    for role in ("viewer", "author"):  # neither its author nor a reviewer
        answer = sessions[role].post(f"{graph_system.base}/graph/execute_graph", timeout=60,
                                     json={"graph_uri": uri, "input_data": {}, "dry_run": True})
        assert answer.status_code == 403, answer.json()


@pytest.mark.parametrize("body,field", [
    ({"input_data": {}}, "graph_uri"),
    ({"graph_uri": "x:1-y"}, "input_data"),
    ({"graph_uri": "x:1-y", "input_data": {}, "colour": "red"}, "colour"),
    ({"graph_uri": 5, "input_data": {}}, "graph_uri"),
    ({"graph_uri": "x:1-y", "input_data": {}, "async": "yes"}, "async"),
    ({"graph_uri": "x:1-y", "input_data": {}, "timeout_seconds": -1}, "timeout_seconds"),
    (["graph_uri"], "(body)"),
])
def test_a_malformed_body_answers_400_naming_the_field(graph_system, body, field):
    answer = graph_system.post("/graph/execute_graph", body)
    assert answer.status_code == 400, answer.json()
    assert answer.json()["success"] is False and field in answer.json()["errors"], answer.json()


def test_bodies_that_are_not_json_too_large_or_too_long_a_timeout(graph_system):
    uri = graph_system.register(["a"], {})
    url = f"{graph_system.base}/graph/execute_graph"
    broken = graph_system.api.post(url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=60)
    assert broken.status_code == 400 and broken.json()["success"] is False
    plain = graph_system.api.post(url, data=b"graph_uri=x", headers={"Content-Type": "text/plain"}, timeout=60)
    assert plain.status_code == 415
    huge = graph_system.execute(uri, {"blob": "x" * (2 * 1024 * 1024)})
    assert huge.status_code == 413 and huge.json()["success"] is False
    long = graph_system.execute(uri, {}, timeout_seconds=10**7)
    assert long.status_code == 400 and "timeout_seconds" in long.json()["errors"]
    retry_body = graph_system.post("/graph/runs/" + graph_system.execute(uri, {}).json()["run_id"] + "/retry",
                                   {"colour": "red"})
    assert retry_body.status_code == 400 and "colour" in retry_body.json()["errors"]


def test_credentials_and_roles_are_required(graph_system, sessions):
    uri = graph_system.register(["a"], {})
    run_id = graph_system.execute(uri, {}).json()["run_id"]
    anonymous = requests.Session()
    for method, path in (("post", "/graph/execute_graph"), ("get", "/graph/runs"), ("get", f"/graph/runs/{run_id}"),
                         ("post", f"/graph/runs/{run_id}/cancel"), ("post", f"/graph/runs/{run_id}/retry")):
        answer = getattr(anonymous, method)(graph_system.base + path, json={"graph_uri": uri, "input_data": {}},
                                            timeout=60)
        assert answer.status_code == 401, (path, answer.json())
    viewer = sessions["viewer"]
    refused = viewer.post(f"{graph_system.base}/graph/execute_graph", json={"graph_uri": uri, "input_data": {}},
                          timeout=60)
    assert refused.status_code == 403 and "graphs.execute_graph" in refused.json()["message"]
    assert viewer.get(f"{graph_system.base}/graph/runs/{run_id}", timeout=60).status_code == 200
    async_run = graph_system.execute(uri, {"control": {"sleep": {"a": 1}}}, **{"async": True}).json()["run_id"]
    assert viewer.post(f"{graph_system.base}/graph/runs/{async_run}/cancel", timeout=60).status_code == 403
    operator = sessions["operator"].post(f"{graph_system.base}/graph/execute_graph", timeout=60,
                                         json={"graph_uri": uri, "input_data": {"control": {}}})
    assert operator.status_code == 200, operator.json()
    assert graph_system.run(operator.json()["run_id"])["actor"] == "demo-operator"
    graph_system.wait_run(async_run)
    assert graph_system.post(f"/graph/runs/{async_run}/cancel").status_code == 409


def test_runs_of_a_graph_are_listed_newest_first(graph_system):
    uri = graph_system.register(["a"], {})
    other = graph_system.register(["b"], {})
    ids = [graph_system.execute(uri, {"n": n}).json()["run_id"] for n in range(3)]
    graph_system.execute(other, {})
    listed = graph_system.get("/graph/runs", params={"graph_uri": uri})
    assert listed.status_code == 200 and listed.json()["pagination"]["count"] == 3
    assert [r["run_id"] for r in listed.json()["data"]] == ids[::-1]
    assert {r["status"] for r in listed.json()["data"]} == {"completed"}


def test_a_graph_whose_function_runs_a_retired_policy_says_so_in_its_runs(graph_system, tmp_path):
    uri_old = "graphnode:0.9-old"
    push_and_approve(graph_system, tmp_path, STATEFUL, uri_old, {})
    assert graph_system.deploy("old", uri=uri_old).status_code == 202
    assert graph_system.wait_ready("old")["function_status"] == "ready"
    uri = graph_system.register(["old"], {})
    assert graph_system.run(graph_system.execute(uri, {}).json()["run_id"])["uses_retired_policy"] is False
    retired = graph_system.reviewer.post(f"{graph_system.base}/policy/{uri_old}/retire", json={"comment": "old"},
                                         timeout=60)
    assert retired.status_code == 200, retired.json()
    answer = graph_system.execute(uri, {"n": 1})
    assert answer.status_code == 200, answer.json()
    run = graph_system.run(answer.json()["run_id"])
    assert run["uses_retired_policy"] is True and "retired policy" in run["warnings"][0]
    assert nodes_by_id(run)["old"]["status"] == "completed"
