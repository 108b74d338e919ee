"""Functions on Kubernetes through the fake cluster (docs/runtime.md §6): a Deployment of the real function
server (ready only once its /health answers), its Service, an autoscaler only when enabled, the request's
nodeSelector and resources, status per replica, removal of everything."""
import base64
import json
import time

import pytest
import requests

from executors.runtime import FunctionDeployment, runtime_for
from policies.models import PolicyRule
from tests.kubernetes.conftest import infra_ready

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def k8s_executor(api, cluster, kube_settings):
    return infra_ready(api, cluster, "k8s-fn", "fns")


def deploy(executor, policy_uri, name, **shape):
    policy = PolicyRule.objects.get(policy_rule_uri=policy_uri)
    return runtime_for(executor).deploy_function(executor, FunctionDeployment(name=name, policy=policy, **shape))


def wait_ready(executor, name, replicas, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        seen = runtime_for(executor).function_status(executor, name)
        if seen is not None and seen.ready_replicas >= replicas:
            return seen
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)


def of_function(cluster, kind, name):
    return [o for o in cluster.objects(kind, "fns") if o["metadata"]["labels"].get("policygrid.io/function") == name]


def test_a_function_is_a_deployment_of_ready_servers_with_service_and_autoscaler(cluster, k8s_executor, behaving):
    seen = deploy(k8s_executor, behaving, "echo", replicas=3, node_selector={"pool": "fast"},
                  resources={"requests": {"cpu": "200m", "memory": "256Mi"}},
                  autoscaling={"enabled": True, "min_replicas": 3, "max_replicas": 6,
                               "target_cpu_utilization_percentage": 70})
    assert seen.state == "deploying"
    seen = wait_ready(k8s_executor, "echo", 3)
    assert seen.state == "ready" and len(seen.replicas) == 3
    [deployment] = of_function(cluster, "Deployment", "echo")
    pod_spec = deployment["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    assert pod_spec["nodeSelector"] == {"pool": "fast"}
    assert container["resources"]["requests"] == {"cpu": "200m", "memory": "256Mi"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    [hpa] = of_function(cluster, "HorizontalPodAutoscaler", "echo")
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 6
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    [service] = of_function(cluster, "Service", "echo")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    # Each replica is the real function server, serving on its pod's address with the spec's token.
    [secret] = of_function(cluster, "Secret", "echo")
    token = json.loads(base64.b64decode(secret["data"]["spec.json"]))["token"]
    assert token not in json.dumps(deployment)
    for pod in of_function(cluster, "Pod", "echo"):
        answer = requests.post(f"http://{pod['status']['podIP']}:8080/call", json={"input_data": {"n": 1}},
                               headers={"Authorization": f"Bearer {token}"}, timeout=30,
                               proxies={"http": None, "https": None})
        assert answer.status_code == 200 and answer.json()["data"]["echo"] == {"n": 1}, answer.text
    runtime_for(k8s_executor).remove_function(k8s_executor, "echo")
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "Secret", "Pod"):
        assert of_function(cluster, kind, "echo") == [], kind
    assert runtime_for(k8s_executor).function_status(k8s_executor, "echo") is None


def test_no_autoscaler_unless_enabled_and_a_failed_image_is_reported(cluster, k8s_executor, behaving):
    cluster.inject("ImagePullBackOff", "function")
    deploy(k8s_executor, behaving, "plain", replicas=1, autoscaling={"enabled": False})
    assert of_function(cluster, "HorizontalPodAutoscaler", "plain") == []
    assert len(of_function(cluster, "Deployment", "plain")) == 1
    deadline = time.monotonic() + 30
    while (seen := runtime_for(k8s_executor).function_status(k8s_executor, "plain")).state != "failed":
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)
    assert "ImagePullBackOff" in seen.message


def test_a_job_past_its_active_deadline_is_reported_with_deadline_exceeded(cluster, k8s_executor):
    """The status mapping of a Job the cluster killed at activeDeadlineSeconds (the portal's own jobs get their
    timeout + 30 s: too long to wait for here, so this Job is made directly with a one-second deadline)."""
    from executors.cluster import manifests
    from executors.cluster.credentials import client_for
    from executors.cluster.objects import create_all

    job_id = "5d1c3f3e-0000-4000-8000-000000000001"
    [job, secret] = manifests.job_objects("k8s-fn", "fns", job_id=job_id, job_name="slow", image="img",
                                          spec_json="{}", portal_secret=k8s_executor.infra_config["secret"],
                                          timeout_seconds=1, node_selector={}, resources={})
    job["spec"]["activeDeadlineSeconds"] = 1
    job["spec"]["template"]["spec"]["containers"][0]["command"] = ["python", "-c", "import time; time.sleep(60)"]
    create_all(client_for(k8s_executor)[0], "fns", [job, secret], owned_by_first=True)
    runtime = runtime_for(k8s_executor)
    deadline = time.monotonic() + 30
    while not (seen := runtime.job_status(k8s_executor, job_id)).finished:
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)
    assert seen.state == "exited" and "DeadlineExceeded" in seen.reason and seen.exit_code != 0
