"""Graph node options are checked at registration; runs are read-only in the admin (no embedded system)."""
import pytest

from functions.models import Function
from graphs.models import Graph, GraphRun, NodeRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def functions(db):
    for fid in ("fa", "fb"):
        Function.objects.create(function_id=fid, function_executor_id="local", function_policy_rule_uri="p:1-x")


def body(**changes):
    return {"graph_name": "g", "graph_version": "1.0", "graph_release_tag": "t", "graph_function_ids": ["fa", "fb"],
            "graph_connection_data": {"fa": ["fb"]}, **changes}


@pytest.mark.parametrize("options,field", [
    ({"fz": {"retries": 1}}, "graph_node_options.fz"),
    ({"fa": {"retries": 11}}, "graph_node_options.fa.retries"),
    ({"fa": {"retries": 1.5}}, "graph_node_options.fa.retries"),
    ({"fa": {"timeout_seconds": 0}}, "graph_node_options.fa.timeout_seconds"),
    ({"fa": {"retry_backoff_seconds": True}}, "graph_node_options.fa.retry_backoff_seconds"),
    ({"fa": {"colour": 1}}, "graph_node_options.fa.colour"),
    ({"fa": 3}, "graph_node_options.fa"),
    (["fa"], "graph_node_options"),
])
def test_bad_node_options_are_refused_at_creation_naming_the_option(clients, options, field):
    response = clients["author"].post("/graphs", body(graph_node_options=options), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not Graph.objects.exists()


def test_good_node_options_and_a_graph_of_one_node_register(clients):
    options = {"fb": {"retries": 2, "retry_backoff_seconds": 0.5, "timeout_seconds": 3}}
    response = clients["author"].post("/graphs", body(graph_node_options=options), format="json")
    assert response.status_code == 201 and response.json()["data"]["graph_node_options"] == options
    single = clients["author"].post("/graphs", body(graph_name="one", graph_function_ids=["fa"],
                                                    graph_connection_data={}), format="json")
    assert single.status_code == 201, single.content


def test_runs_are_read_only_in_the_admin(client, users):
    users["admin"].is_superuser = True
    users["admin"].save()
    client.force_login(users["admin"])
    graph = Graph.objects.create(graph_name="g", graph_version="1", graph_release_tag="t",
                                 graph_function_ids=["fa"], graph_connection_data={})
    run = GraphRun.objects.create(graph=graph, graph_uri=graph.graph_uri, plan={}, timeout_seconds=5)
    NodeRun.objects.create(run=run, node_id="fa", position=0)
    assert client.get("/admin/graphs/graphrun/").status_code == 200
    page = client.get(f"/admin/graphs/graphrun/{run.pk}/change/")
    assert page.status_code == 200 and b"fa" in page.content and b'name="_save"' not in page.content
    assert client.get("/admin/graphs/graphrun/add/").status_code == 403
