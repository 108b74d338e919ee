"""Calls, management and logs of a function on the kubernetes runtime, through the portal (docs/runtime.md §6):
the executor service that create-infra runs in the fake cluster reaches the function's ready pods with its own
ServiceAccount (policygrid.executor.cluster_functions), held by the fake API server to its Role's rules."""
import io
import os
import signal
import time
import zipfile

import pytest
from policygrid.executor import cluster_functions

from executors.cluster import manifests
from executors.models import PolicyExecutor
from functions import services as function_services
from functions.models import Function
from policies.models import PolicyRule
from policies.services import release_for_demo
from tests.functions.conftest import STATEFUL, STATEFUL_RECORD
from tests.kubernetes.conftest import infra_ready

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
URI = "stateful:1.0-k8s"


@pytest.fixture
def stateful(api, users, file_server, policy_payload):
    """A policy that counts its calls, returns its process's pid and answers management commands."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("code/function.py", STATEFUL)
    body = policy_payload(name="stateful", version="1.0", release_tag="k8s", code=file_server.serve(
        "stateful.zip", buffer.getvalue()), policy_input_schema={}, policy_output_schema={}, policy_settings={},
        policy_settings_schema={}, **STATEFUL_RECORD)
    created = api.post("/policy", body, format="json")
    assert created.status_code == 201, created.json()
    release_for_demo(PolicyRule.objects.get(policy_rule_uri=URI), users["admin"])
    return URI


@pytest.fixture
def cluster_executor(api, cluster, kube_settings):
    """An executor create-infra ran in the fake cluster; the portal reaches its pod (the fake has no Service
    proxy nor cluster DNS: its address is the pod's, where the Service would lead)."""
    infra_ready(api, cluster, "k8s-calls", "fns")
    [pod] = [p for p in cluster.objects("Pod", "fns") if p["metadata"]["labels"].get(manifests.LABEL_COMPONENT)
             == "executor"]
    PolicyExecutor.objects.filter(executor_id="k8s-calls").update(
        executor_host_uri=f"http://{pod['status']['podIP']}:{manifests.EXECUTOR_PORT}")
    return PolicyExecutor.objects.get(executor_id="k8s-calls")


def function_pods(cluster, name):
    return sorted((p for p in cluster.objects("Pod", "fns")
                   if p["metadata"]["labels"].get(manifests.LABEL_FUNCTION) == name), key=lambda p: p["metadata"]["name"])


def is_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def wait_pods(cluster, name, ready, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        found = function_pods(cluster, name)
        if sum(is_ready(pod) for pod in found) == ready:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def call(api, name, payload):
    answer = api.post(f"/function/call_function/{name}", payload, format="json")
    assert answer.status_code == 200, answer.json()
    return answer.json()["data"]


def manage(api, name, body):
    answer = api.post(f"/function/{name}/management", body, format="json")
    assert answer.status_code == 200, answer.json()
    return answer.json()["data"]


def test_calls_management_and_logs_reach_the_functions_ready_pods(api, cluster, cluster_executor, stateful):
    created = api.post("/function/deployments/create/k8s-calls", {"name": "counter", "policy_rule_uri": URI,
                                                                   "replicas": 3}, format="json")
    assert created.status_code == 202, created.json()
    assert function_services.deploy(Function.objects.get(function_id="counter").pk) == "ready"
    pods = wait_pods(cluster, "counter", 3)
    names = {pod["metadata"]["name"] for pod in pods}
    assert len(names) == 3

    # Management broadcast to the 3 pods: one result per pod, named by it.
    results = manage(api, "counter", {"action": "get_state"})
    assert {r["replica"] for r in results} == names, results
    assert all(r["success"] and r["data"]["count"] == 0 for r in results), results
    pid_of = {r["replica"]: r["data"]["pid"] for r in results}
    assert len(set(pid_of.values())) == 3
    results = manage(api, "counter", {"action": "set_label", "data": {"label": "everywhere"}})
    assert {r["replica"] for r in results} == names and all(r["data"]["label"] == "everywhere" for r in results)
    [one] = manage(api, "counter", {"action": "get_state", "target": "one"})
    assert one["replica"] in names

    # Calls go round the ready pods: each answers from its own instance.
    answers = [call(api, "counter", {"n": i}) for i in range(6)]
    assert {a["pid"] for a in answers} == set(pid_of.values()), answers
    assert all(a["label"] == "everywhere" and a["echo"]["n"] == i for i, a in enumerate(answers))
    counts = {r["replica"]: r["data"]["count"] for r in manage(api, "counter", {"action": "get_state"})}
    assert counts == dict.fromkeys(names, 2), counts

    # The logs: every pod's lines, each tagged with its pod.
    answer = api.get("/function/get_logs/counter")
    assert answer.status_code == 200, answer.json()
    text = answer.json()["data"]
    assert "function says" in text
    assert all(f"[{name}]" in text for name in names), text
    tail = api.get("/function/get_logs/counter", {"tail": 2}).json()["data"]
    assert len(tail.splitlines()) == 2

    # A pod that stops answering its readiness probe is no longer ready: it gets no call nor command.
    stopped = pods[0]
    process = cluster.processes[stopped["metadata"]["uid"]]
    os.killpg(process.pid, signal.SIGSTOP)
    try:
        left = wait_pods(cluster, "counter", 2)
        assert not is_ready(next(p for p in left if p["metadata"]["name"] == stopped["metadata"]["name"]))
        time.sleep(cluster_functions.POD_CACHE_SECONDS + 0.2)
        answers = [call(api, "counter", {"n": i}) for i in range(4)]  # a call sent there would hang: no answer
        assert pid_of[stopped["metadata"]["name"]] not in {a["pid"] for a in answers}
        assert len({a["pid"] for a in answers}) == 2
        results = manage(api, "counter", {"action": "get_state"})
        assert {r["replica"] for r in results} == names - {stopped["metadata"]["name"]}
    finally:
        os.killpg(process.pid, signal.SIGCONT)
    wait_pods(cluster, "counter", 3)
    time.sleep(cluster_functions.POD_CACHE_SECONDS + 0.2)
    counts = {r["replica"]: r["data"]["count"] for r in manage(api, "counter", {"action": "get_state"})}
    assert counts[stopped["metadata"]["name"]] == 2, counts  # it received nothing while it was not ready


def test_the_executor_reads_only_what_its_role_allows(cluster, cluster_executor):
    """The executor pod's ServiceAccount: pods, their logs, secrets by name; not a list of secrets, no writes."""
    [role] = [r for r in cluster.objects("Role", "fns")]
    [account] = [a for a in cluster.objects("ServiceAccount", "fns")]
    token = cluster.account_token("fns", account["metadata"]["name"])
    client = cluster_functions.ClusterFunctions("fns", "k8s-calls", env={}, timeout_seconds=5,
                                                api_client=_client(cluster.url, token))
    from kubernetes.client.rest import ApiException

    core = client._core()
    assert core.list_namespaced_pod("fns").items
    secret = role["metadata"]["name"]
    assert core.read_namespaced_secret(secret, "fns").data
    for forbidden in (lambda: core.list_namespaced_secret("fns"), lambda: core.list_namespaced_pod("other"),
                      lambda: core.delete_namespaced_pod(cluster.objects("Pod", "fns")[0]["metadata"]["name"], "fns")):
        with pytest.raises(ApiException) as refused:
            forbidden()
        assert refused.value.status == 403
    assert cluster_functions.LABEL_EXECUTOR == manifests.LABEL_EXECUTOR
    assert cluster_functions.LABEL_FUNCTION == manifests.LABEL_FUNCTION
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]} in role["rules"]


def test_the_in_cluster_client_reads_the_service_account_files(tmp_path, cluster):
    """Without overrides, the address is https://KUBERNETES_SERVICE_HOST:PORT; the token is read from its file."""
    (tmp_path / "token").write_text("t0ken")
    (tmp_path / "ca.crt").write_text("ca")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
           "POLICYGRID_KUBERNETES_TOKEN_FILE": str(tmp_path / "token"),
           "POLICYGRID_KUBERNETES_CA_FILE": str(tmp_path / "ca.crt")}
    configuration = cluster_functions.in_cluster_client(env).configuration
    configuration.refresh_api_key_hook(configuration)  # what the client runs before each request
    assert configuration.host == "https://10.96.0.1:443" and configuration.ssl_ca_cert == str(tmp_path / "ca.crt")
    assert configuration.api_key["BearerToken"].endswith("t0ken")
    overridden = cluster_functions.in_cluster_client({**env, "POLICYGRID_KUBERNETES_API": cluster.url}).configuration
    overridden.refresh_api_key_hook(overridden)
    assert overridden.host == cluster.url and overridden.ssl_ca_cert is None


def _client(url, token):
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)
