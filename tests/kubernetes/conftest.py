"""Fixtures of the Kubernetes tests: fake clusters on loopback (tests/kubernetes/fakecluster.py)."""
from __future__ import annotations

import socket
import threading

import pytest

from tests.jobs.conftest import BEHAVING  # the jobs tests' policy: prints, sleeps, raises or answers
from tests.kubernetes.fakecluster import FakeCluster

# What the fake's node adds to every pod's environment, for this machine only: one executor worker per pod (a
# shared two-core machine), and packages fetched from the tests' loopback file server (the SSRF guard refuses
# loopback otherwise, as it should in a real cluster).
POD_ENV = {"POLICYGRID_EXECUTOR_WORKERS": "1", "POLICYGRID_ALLOW_PRIVATE_NETWORKS": "true"}


def closed_port() -> int:
    """A loopback port nothing listens on: the portal address of tests that need none."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The labels of the fake clusters' node: the tests' nodeSelectors match them (or, on purpose, don't).
NODE_LABELS = {"disktype": "ssd", "pool": "fast"}


@pytest.fixture
def cluster():
    fake = FakeCluster("alpha", extra_env=POD_ENV, node_labels=NODE_LABELS)
    yield fake
    fake.stop()


@pytest.fixture
def second_cluster():
    fake = FakeCluster("beta", extra_env=POD_ENV, node_labels=NODE_LABELS)
    yield fake
    fake.stop()


@pytest.fixture
def kube_settings(settings, tmp_path):
    """A key store of the test's own (the kubeconfig key is generated there) and an image name."""
    settings.SIGNING_KEY_DIR = tmp_path / "keys"
    settings.KUBECONFIG_KEYS = []
    settings.KUBERNETES_IMAGE = "policygrid/dataplane:test"
    return settings


@pytest.fixture
def celery_eager():
    """Tasks run where they are queued (Celery's documented eager mode): the provisioning of create-infra runs in
    the request that asked for it, so that a test against a live portal needs no worker."""
    from portal.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def behaving(api, users, file_server, policy_payload):
    """``behaving:1.0-k8s``, approved and signed through the real lifecycle."""
    import io
    import zipfile

    from policies.models import PolicyRule
    from policies.services import release_for_demo

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("code/function.py", BEHAVING)
    url = file_server.serve("behaving.zip", buffer.getvalue())
    body = policy_payload(name="behaving", version="1.0", release_tag="k8s", code=url, policy_input_schema={},
                          policy_output_schema={}, policy_settings={}, policy_parameters={},
                          policy_settings_schema={}, policy_parameters_schema={}, management_commands_schema=[])
    created = api.post("/policy", body, format="json")
    assert created.status_code == 201, created.json()
    release_for_demo(PolicyRule.objects.get(policy_rule_uri="behaving:1.0-k8s"), users["admin"])
    return "behaving:1.0-k8s"


@pytest.fixture
def k8s_portal(live_server, settings, kube_settings, celery_eager):
    """A live portal (its own address is the one pods post results to).

    On the tests' in-memory SQLite the live server's request threads share one database connection (as Django's
    LiveServerTestCase documentation warns): two pods posting their results at once interleaved their savepoints
    ("no such savepoint", a 500 and a job left running). Its requests take turns; none of them waits for another."""
    settings.PUBLIC_BASE_URL = live_server.url
    httpd = live_server.thread.httpd
    app = httpd.get_app()
    turns = threading.Lock()

    def one_at_a_time(environ, start_response):
        with turns:
            answer = app(environ, start_response)
            try:
                return [b"".join(answer)]
            finally:
                getattr(answer, "close", lambda: None)()

    httpd.set_app(one_at_a_time)
    yield live_server.url
    httpd.set_app(app)


def provisioned(api, cluster, executor_id: str, portal_url: str) -> str:
    """Register ``executor_id`` and create-infra it into ``cluster`` (eager: ready when this returns)."""
    assert api.post("/executor", {"executor_id": executor_id}, format="json").status_code == 201
    answer = api.post(f"/executor/{executor_id}/create-infra", {
        "cluster_config": cluster.kubeconfig, "namespace": "jobs", "replicas": 1, "portal_url": portal_url,
        "ready_timeout": 30}, format="json")
    assert answer.status_code == 202, answer.json()
    record = api.get(f"/executor/{executor_id}").json()["data"]
    assert record["infra_status"] == "ready", record
    return executor_id


def infra_ready(api, cluster, executor_id: str, namespace: str):
    """Register ``executor_id`` and run create-infra's task in this process (no portal for its pods: a closed port);
    the executor once ready."""
    from executors import tasks
    from executors.models import PolicyExecutor

    assert api.post("/executor", {"executor_id": executor_id}, format="json").status_code == 201
    answer = api.post(f"/executor/{executor_id}/create-infra", {
        "cluster_config": cluster.kubeconfig, "namespace": namespace, "replicas": 1, "ready_timeout": 30,
        "portal_url": f"http://127.0.0.1:{closed_port()}"}, format="json")
    assert answer.status_code == 202
    assert tasks.provision_infra(executor_id) == "ready"
    return PolicyExecutor.objects.get(executor_id=executor_id)
