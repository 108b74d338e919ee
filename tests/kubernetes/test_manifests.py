"""Every manifest PolicyGrid generates and every file in deploy/ passes strict validation against the Kubernetes
version the project states (KUBERNETES_VERSION), with the schemas kubernetes-validate carries (offline)."""
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from executors.cluster import manifests

KUBERNETES_VERSION = "1.33.0"  # docs/kubernetes.md states it
ROOT = Path(__file__).resolve().parents[2]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def strictly_valid(obj: dict) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def generated() -> list[dict]:
    objects = manifests.executor_objects(
        "exec-1", "policygrid", image="img:1", replicas=2, resources={"cpu": "1", "memory": "1Gi"}, max_processes=8,
        portal_url="https://portal.example", executor_token="t" * 40, portal_token="p" * 40)
    objects += manifests.job_objects(
        "exec-1", "policygrid", job_id="0b6f4bd6-5f55-4a0e-8f56-4b1c2b7c6d00", job_name="nightly", image="img:1",
        spec_json="{}", portal_secret="pg-executor-exec-1-0123456789", timeout_seconds=600,
        node_selector={"disktype": "ssd"}, resources={"requests": {"cpu": "100m"}})
    for enabled in (True, False):
        objects += manifests.function_objects(
            "exec-1", "policygrid", name=f"fn-{str(enabled).lower()}", image="img:1", spec_json="{}",
            portal_secret="pg-executor-exec-1-0123456789", replicas=2, resources={}, node_selector={"pool": "a"},
            autoscaling={"enabled": enabled, "min_replicas": 2, "max_replicas": 5})
    return objects


def test_an_autoscaler_only_when_enabled():
    kinds = [o["kind"] for o in generated() if o["metadata"]["labels"].get(manifests.LABEL_FUNCTION) == "fn-false"]
    assert sorted(kinds) == ["Deployment", "Secret", "Service"]


@pytest.mark.parametrize("obj", generated(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_every_generated_manifest_is_strictly_valid(obj):
    strictly_valid(obj)
    assert DNS_LABEL.match(obj["metadata"]["name"])


def test_an_invalid_manifest_is_refused():
    job = manifests.job_objects("e", "ns", job_id="x", job_name="n", image="i", spec_json="{}", portal_secret="s",
                                timeout_seconds=1, node_selector={}, resources={})[0]
    job["spec"]["backoffLimitt"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        strictly_valid(job)


def deploy_documents():
    for path in sorted((ROOT / "deploy").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            yield path.name, document


@pytest.mark.parametrize("name,document", list(deploy_documents()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_file_in_deploy_is_strictly_valid(name, document):
    if document["kind"] == "Kustomization":  # kustomize's own file, not an API object: its resources must exist
        assert all((ROOT / "deploy" / resource).is_file() for resource in document["resources"])
        listed = set(document["resources"]) | {"kustomization.yaml"}
        assert listed == {p.name for p in (ROOT / "deploy").glob("*.yaml")}, "every manifest is in the kustomization"
        return
    strictly_valid(document)


def test_names_fit_kubernetes_and_never_collide():
    long_name = "a" * 63
    names = {manifests.object_name("pg-job", long_name, f"id-{i}") for i in range(2000)}
    assert len(names) == 2000
    assert all(len(name) <= 63 and DNS_LABEL.match(name) for name in names)
    assert manifests.object_name("pg-job", "same", "one") != manifests.object_name("pg-job", "same", "two")


def test_resources_always_carry_requests():
    assert manifests.resources_of({})["requests"] == manifests.DEFAULT_RESOURCES["requests"]
    flat = manifests.resources_of({"cpu": "2", "memory": "3Gi"})
    assert flat["requests"] == {"cpu": "2", "memory": "3Gi"} == flat["limits"]
