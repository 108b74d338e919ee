"""Executor registration (docs/api.md §4.3): address forms, defaults, validation."""
import pytest

pytestmark = pytest.mark.django_db


def create(api, **body):
    return api.post("/executor", {"executor_id": "executor-001", **body}, format="json")


def test_cluster_public_ip_gives_the_nodeport_address(api):
    data = create(api, cluster_public_ip="127.0.0.1").json()["data"]
    assert data["executor_host_uri"] == "http://127.0.0.1:30900"
    assert data["executor_status"] == "healthy"


def test_executor_without_address_is_unknown_until_given_one(api):
    data = create(api, executor_metadata={"author_name": "Prasanna"}).json()["data"]
    assert data["executor_host_uri"] == "" and data["executor_status"] == "unknown"
    assert data["executor_runtime"] == "local"


def test_the_description_payload_registers(api):
    body = {"executor_metadata": {"author_name": "Prasanna", "tags": ["amd_64", "kubernetes-cluster", "NIC"]},
            "executor_hardware_info": {"nodes": {"count": 2, "nodeData": [{"id": "node-001", "vcpus": {"count": 12}}]},
                                       "vcpus": {"count": 24}, "memory": 64010, "id": "cluster-123"}}
    response = create(api, executor_host_uri="http://127.0.0.1:8900", **body)
    assert response.status_code == 201
    assert response.json()["data"]["executor_hardware_info"]["vcpus"]["count"] == 24


@pytest.mark.parametrize("field_name,value", [
    ("cluster_public_ip", "not-an-ip"),
    ("executor_host_uri", "ftp://127.0.0.1"),
    ("executor_host_uri", "nonsense"),
    ("executor_runtime", "docker"),
    ("executor_status", "sleepy"),
    ("executor_metadata", ["a"]),
])
def test_invalid_fields_are_400_naming_them(api, field_name, value):
    response = create(api, **{field_name: value})
    assert response.status_code == 400
    assert field_name in response.json()["errors"]


def test_machine_written_fields_are_read_only(api):
    create(api, executor_host_uri="http://127.0.0.1:8900")
    response = api.patch("/executor/executor-001", {"$set": {"infra_status": "ready"}}, format="json")
    assert response.status_code == 400
    assert "read-only" in response.json()["message"]
