"""Graph registration (docs/api.md §4.6): rejected at creation for dangling edges, cycles, empty or unknown nodes."""
import pytest

from functions.models import Function
from graphs.models import Graph

pytestmark = pytest.mark.django_db

SAMPLE = {
    "graph_name": "ip_risk_analysis", "graph_version": "1.0", "graph_release_tag": "stable",
    "graph_metadata": {"author_name": "Prasanna", "tags": ["ip", "risk"]},
    "graph_function_ids": ["funcA", "funcB", "funcC", "funcD"],
    "graph_connection_data": {"funcA": ["funcB", "funcC"], "funcB": ["funcD"], "funcC": ["funcD"]},
    "graph_search_tags": ["ip", "pipeline", "threat", "analysis"],
    "graph_description": "A multi-function policy graph.",
    "graph_input_schema": {"ip": {"type": "string", "pattern": "^\\d{1,3}(\\.\\d{1,3}){3}$"}},
    "graph_output_schema": {"decision": {"type": "string", "choices": ["allow", "block", "review"]}},
}


@pytest.fixture(autouse=True)
def functions(db):
    for fid in ("funcA", "funcB", "funcC", "funcD"):
        Function.objects.create(function_id=fid.lower(), function_executor_id="local", function_policy_rule_uri="p:1-x")


def sample(**changes):
    body = {**SAMPLE, **changes}
    ids = [i.lower() for i in body["graph_function_ids"]]
    edges = {k.lower(): [t.lower() for t in v] if isinstance(v, list) else v
             for k, v in body["graph_connection_data"].items()}
    return {**body, "graph_function_ids": ids, "graph_connection_data": edges}


def test_the_description_graph_registers_with_its_uri(clients):
    response = clients["author"].post("/graphs", sample(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["graph_uri"] == "ip_risk_analysis:1.0-stable"
    assert data["graph_merge_mode"] == "list" and data["status"] == "draft"


@pytest.mark.parametrize("changes,needle", [
    ({"graph_connection_data": {"funcA": ["funcX"]}}, "funcx"),
    ({"graph_connection_data": {"funcX": ["funcA"]}}, "funcx"),
    ({"graph_connection_data": {"funcA": ["funcB"], "funcB": ["funcC"], "funcC": ["funcA"]}}, "cycle"),
    ({"graph_function_ids": [], "graph_connection_data": {}}, "empty"),
    ({"graph_function_ids": ["funcA", "funcA"], "graph_connection_data": {}}, "more than once"),
    ({"graph_connection_data": {"funcA": "funcB"}}, "list of ids"),
    ({"graph_merge_mode": "sum"}, "graph_merge_mode"),
])
def test_invalid_graphs_are_refused_at_creation(clients, changes, needle):
    response = clients["author"].post("/graphs", sample(**changes), format="json")
    assert response.status_code == 400, response.content
    assert needle in response.content.decode()
    assert not Graph.objects.exists()


def test_a_cycle_is_named_in_the_message(clients):
    body = sample(graph_connection_data={"funcA": ["funcB"], "funcB": ["funcC"], "funcC": ["funcB"]})
    message = clients["author"].post("/graphs", body, format="json").json()["message"]
    assert "funcb → funcc → funcb" in message or "funcc → funcb → funcc" in message


def test_a_node_that_is_not_a_registered_function_is_refused(clients):
    body = sample()
    body["graph_function_ids"] = [*body["graph_function_ids"], "ghost"]
    response = clients["author"].post("/graphs", body, format="json")
    assert response.status_code == 400
    assert "ghost" in response.json()["message"]


def test_graph_query_of_the_description(clients):
    clients["author"].post("/graphs", sample(graph_search_tags=["security", "ip"]), format="json")
    found = clients["viewer"].post("/graphs/query", {"graph_search_tags": {"$in": ["security"]}, "graph_version": "1.0"},
                                   format="json").json()["data"]
    assert [g["graph_uri"] for g in found] == ["ip_risk_analysis:1.0-stable"]
