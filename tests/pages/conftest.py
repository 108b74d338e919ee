"""Fixtures of the portal page tests: a small world with a record of every kind, logged-in page clients of every
role, and (re-exported) the governance tests' signing key, settings and Debian's chromium."""
import pytest
from django.test import Client

from governance import lifecycle
from tests.governance.conftest import (  # noqa: F401 - fixtures used by the page tests
    _governance_settings,
    browser,
    new_policy,
    policy_in,
    second_reviewer,
    signing_key,
)

PASSWORD = "pw-for-tests-1"
FUNCTIONS = ("fetch-ip", "score-ip", "geo-ip", "decide")


@pytest.fixture
def page_client(users):
    def make(role: str) -> Client:
        client = Client()
        assert client.login(username=users[role].username, password=PASSWORD)
        return client

    return make


@pytest.fixture
def world(new_policy, users):  # noqa: F811 - the fixture imported above
    """An approved policy 1.0 and a draft 1.1, an executor, four functions of 1.0, a graph of them, a job."""
    from executors.models import PolicyExecutor
    from functions.models import Function
    from graphs.models import Graph
    from jobs.models import Job

    approved = new_policy(version="1.0", description="Blocks unknown addresses.")
    lifecycle.submit(approved, users["author"], "ready")
    approved = lifecycle.approve(approved, users["reviewer"], "fine")
    draft = new_policy(version="1.1", description="Stricter.")
    executor = PolicyExecutor.objects.create(executor_id="edge-1", executor_host_uri="http://127.0.0.1:9")
    for fid in FUNCTIONS:
        Function.objects.create(function_id=fid, function_executor_id="edge-1",
                                function_policy_rule_uri=approved.policy_rule_uri, function_status="ready")
    graph = Graph(graph_name="ip-pipeline", graph_version="1.0", graph_release_tag="beta",
                  graph_function_ids=list(FUNCTIONS),
                  graph_connection_data={"fetch-ip": ["score-ip", "geo-ip"], "score-ip": ["decide"], "geo-ip": ["decide"]},
                  created_by=users["author"])
    graph.save()
    job = Job(job_name="nightly-check", job_policy_rule_uri=approved.policy_rule_uri, job_executor_id="edge-1",
              job_status="failed", job_error="boom", job_inputs={"ip": "10.0.0.1"})
    job.resolve_references()
    job.save()
    return {"approved": approved, "draft": draft, "executor": executor, "graph": graph, "job": job}


def make_run(graph, user, status, node_states, **fields):
    """A run as the engine leaves it (its plan from the graph), without running anything."""
    from graphs.models import GraphRun, NodeRun
    from graphs.services import run_plan

    run = GraphRun.objects.create(graph=graph, graph_uri=graph.graph_uri, status=status, input_data={"ip": "1.2.3.4"},
                                  plan=run_plan(graph), timeout_seconds=60,
                                  created_by=user, **fields)
    for position, node in enumerate(graph.graph_function_ids):
        NodeRun.objects.create(run=run, node_id=node, position=position, status=node_states.get(node, "pending"))
    return run
