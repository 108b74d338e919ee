"""A background task the broker refuses (Redis down, the file broker's folder unwritable) is said: 503
``unavailable`` naming the task queue, and the rows it was for say so too — never a 500 after the commit and a
record waiting for a task nobody will run (portal/queueing.py). The broker's refusal is what kombu raises."""
import pytest
from celery import current_app
from kombu.exceptions import ChannelError, OperationalError

from executors.models import PolicyExecutor
from functions.models import Function
from graphs.models import GraphRun
from tests.pages.test_graph_run_pages import approved_graph  # noqa: F401 - the fixture

# Transactional: the task is sent by the request's commit hook, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

REFUSALS = [OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
            ChannelError("Cannot add file '/state/broker/out/1.celery.msg' to directory")]


@pytest.fixture(params=REFUSALS, ids=["redis down", "file broker unwritable"])
def broker_refuses(request, monkeypatch):
    def refuse(*args, **kwargs):
        raise request.param

    monkeypatch.setattr(current_app, "send_task", refuse)
    return request.param


def assert_said(response, refusal):
    body = response.json()
    assert response.status_code == 503, body
    assert body["error_type"] == "unavailable" and "task queue refused" in body["message"], body
    assert str(refusal) in body["message"]


def test_an_async_graph_run_the_broker_refuses_is_failed_with_the_reason(approved_graph, clients,  # noqa: F811
                                                                         broker_refuses):
    response = clients["operator"].post("/graph/execute_graph", {"graph_uri": approved_graph.graph_uri,
                                                                 "input_data": {"ip": "1.2.3.4"}, "async": True},
                                        format="json")
    assert_said(response, broker_refuses)
    run = GraphRun.objects.get()
    assert run.status == "failed" and run.error_type == "unavailable" and "task queue refused" in run.error


def test_a_function_deployment_the_broker_refuses_is_failed_with_the_reason(world, clients, broker_refuses):
    response = clients["operator"].post("/function/deployments/create/edge-1",
                                        {"name": "late-one", "policy_rule_uri": world["approved"].key}, format="json")
    assert_said(response, broker_refuses)
    function = Function.objects.get(function_id="late-one")
    assert function.function_status == "failed" and "task queue refused" in function.function_message
    # The API reads it as failed at once (the record cache saw the change).
    assert clients["operator"].get("/function/late-one").json()["data"]["function_status"] == "failed"


def test_a_create_infra_the_broker_refuses_is_failed_with_the_reason(world, clients, broker_refuses, settings,
                                                                    tmp_path):
    settings.SIGNING_KEY_DIR, settings.KUBECONFIG_KEYS = tmp_path / "keys", []  # the kubeconfig's key, made here
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
                  "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                  "users": [{"name": "u", "user": {"token": "t0ken"}}],
                  "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}
    response = clients["admin"].post("/executor/edge-1/create-infra", {
        "cluster_config": kubeconfig, "image": "policygrid/sdk:test", "portal_url": "http://127.0.0.1:8000"},
        format="json")
    assert_said(response, broker_refuses)
    executor = PolicyExecutor.objects.get(executor_id="edge-1")
    assert executor.infra_status == "failed" and "task queue refused" in executor.infra_message
