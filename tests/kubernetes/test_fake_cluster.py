"""The fake cluster answers as the API server does where PolicyGrid depends on it (Status bodies the official
client reads), and ``objects.create_all`` is all-or-nothing against it."""
import pytest
from kubernetes import client as k8s
from kubernetes import config
from kubernetes.client.rest import ApiException
from policygrid.errors import Unavailable

from executors.cluster.objects import create_all


def secret(name):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}}


def test_a_wrong_token_is_401_and_each_cluster_knows_only_its_own(cluster, second_cluster):
    foreign = {**cluster.kubeconfig, "users": second_cluster.kubeconfig["users"],
               "contexts": [{"name": "x", "context": {"cluster": cluster.name, "user": f"{second_cluster.name}-user"}}],
               "current-context": "x"}
    api = config.new_client_from_config_dict(foreign, persist_config=False)
    with pytest.raises(ApiException) as refused:
        k8s.CoreV1Api(api).list_namespaced_secret("ns")
    assert refused.value.status == 401


def test_conflicts_and_invalid_names_are_status_bodies_and_a_batch_is_undone(cluster):
    api = config.new_client_from_config_dict(cluster.kubeconfig, persist_config=False)
    create_all(api, "ns", [secret("taken")])
    with pytest.raises(Unavailable, match='secrets "taken" already exists'):
        create_all(api, "ns", [secret("first-of-batch"), secret("taken")])
    assert [s["metadata"]["name"] for s in cluster.objects("Secret")] == ["taken"]
    with pytest.raises(Unavailable, match="must be a DNS-1123 label"):
        create_all(api, "ns", [secret("Not_A_Label")])
    with pytest.raises(ApiException) as missing:
        k8s.CoreV1Api(api).read_namespaced_secret("nope", "ns")
    assert missing.value.status == 404 and '"reason": "NotFound"' in missing.value.body
