"""create-infra and remove-infra against a fake cluster (docs/api.md §4.3): the objects and their specs, the
status machine, all-or-nothing, the credentials encrypted at rest and never shown."""
import pytest
import yaml
from django.db import connection

from executors import tasks
from executors.cluster import credentials
from executors.models import PolicyExecutor
from tests.kubernetes.conftest import closed_port

# Not transactional: the commit hook that queues the task never fires; the test runs the task itself.
pytestmark = pytest.mark.django_db


def register(api, executor_id="k8s-one"):
    assert api.post("/executor", {"executor_id": executor_id}, format="json").status_code == 201
    return executor_id


def create_infra(api, cluster, executor_id, **body):
    body = {"cluster_config": cluster.kubeconfig, "namespace": "policygrid", "replicas": 2,
            "portal_url": f"http://127.0.0.1:{closed_port()}", "ready_timeout": 30, **body}
    return api.post(f"/executor/{executor_id}/create-infra", body, format="json")


def provision(executor_id, user=None):
    """What the worker runs once the request is committed (the Celery task, called in this process)."""
    return tasks.provision_infra(executor_id, getattr(user, "pk", None))


def test_create_infra_makes_the_objects_and_becomes_ready(api, users, cluster, kube_settings):
    executor_id = register(api)
    answer = create_infra(api, cluster, executor_id, resources={"requests": {"cpu": "500m", "memory": "512Mi"}})
    assert answer.status_code == 202, answer.json()
    assert answer.json()["data"]["infra_status"] == "pending"
    assert answer.json()["data"]["executor_runtime"] == "kubernetes"
    assert provision(executor_id, users["admin"]) == "ready"
    executor = PolicyExecutor.objects.get(executor_id=executor_id)
    assert executor.infra_status == "ready" and "2 of 2" in executor.infra_message
    assert executor.executor_host_uri.startswith("http://pg-executor-k8s-one-") and ".policygrid.svc:8900" in \
        executor.executor_host_uri
    kinds = {kind: cluster.objects(kind, "policygrid") for kind in
             ("ServiceAccount", "Role", "RoleBinding", "Secret", "Deployment", "Service")}
    assert all(len(found) == 1 for found in kinds.values()), kinds
    role = kinds["Role"][0]
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}, "the executor's Role only reads"
    assert not cluster.objects("ClusterRole") and not cluster.objects("ClusterRoleBinding")
    deployment = kinds["Deployment"][0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 2 and deployment["status"]["readyReplicas"] == 2
    assert container["image"] == "policygrid/dataplane:test"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert container["resources"]["limits"]["memory"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == role["metadata"]["name"]
    # The executor's secrets reach the pod by reference, never as values in its spec.
    assert executor.credential not in str(deployment)
    assert kinds["Service"][0]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    pods = cluster.objects("Pod", "policygrid")
    assert len(pods) == 2 and all(pod["status"]["phase"] == "Running" for pod in pods)
    entries = api.get("/audit", {"target_key": executor_id}).json()["data"]
    actions = {(entry["action"], entry["actor"]) for entry in entries}
    assert {("executor.create_infra", "admin-user"), ("executor.infra_ready", "admin-user")} <= actions


def test_a_refused_service_leaves_nothing_behind_and_fails_with_the_reason(api, cluster, kube_settings):
    executor_id = register(api)
    cluster.refuse("Service", "services are not allowed in this namespace")
    assert create_infra(api, cluster, executor_id).status_code == 202
    assert provision(executor_id) == "failed"
    executor = PolicyExecutor.objects.get(executor_id=executor_id)
    assert executor.infra_status == "failed"
    assert "Service" in executor.infra_message and "services are not allowed" in executor.infra_message
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Secret", "Deployment", "Pod"):
        assert cluster.objects(kind) == [], kind
    assert executor.executor_host_uri == ""


def test_pods_that_cannot_pull_their_image_fail_create_infra_and_are_removed(api, cluster, kube_settings):
    executor_id = register(api)
    cluster.inject("ImagePullBackOff", "executor")
    assert create_infra(api, cluster, executor_id, replicas=1).status_code == 202
    assert provision(executor_id) == "failed"
    executor = PolicyExecutor.objects.get(executor_id=executor_id)
    assert "ImagePullBackOff" in executor.infra_message
    assert cluster.objects("Deployment") == [] and cluster.objects("Secret") == []


def test_remove_infra_tears_everything_down(api, cluster, kube_settings):
    executor_id = register(api)
    create_infra(api, cluster, executor_id, replicas=1)
    assert provision(executor_id) == "ready"
    answer = api.delete(f"/executor/{executor_id}/remove-infra", {}, format="json")
    assert answer.status_code == 202 and answer.json()["data"]["infra_status"] == "removing"
    assert tasks.remove_infra(executor_id) == "none"
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Secret", "Deployment", "Service", "Pod"):
        assert cluster.objects(kind) == [], kind
    executor = PolicyExecutor.objects.get(executor_id=executor_id)
    assert executor.infra_status == "none" and executor.cluster_config == "" and executor.executor_host_uri == ""


def test_create_infra_twice_conflicts_and_remove_infra_needs_infra(api, cluster, kube_settings):
    executor_id = register(api)
    refused = api.delete(f"/executor/{executor_id}/remove-infra", {}, format="json")
    assert refused.status_code == 409 and "no infrastructure" in refused.json()["message"]
    assert create_infra(api, cluster, executor_id).status_code == 202
    again = create_infra(api, cluster, executor_id)
    assert again.status_code == 409 and "remove-infra" in again.json()["message"]


def test_remove_infra_names_the_jobs_on_the_executor_unless_cascade(api, users, cluster, kube_settings):
    from jobs.models import Job

    executor_id = register(api)
    create_infra(api, cluster, executor_id, replicas=1)
    assert provision(executor_id) == "ready"
    job = Job.objects.create(job_name="still-running", job_policy_rule_uri="p:1-a", job_executor_id=executor_id,
                             job_status="running", executor=PolicyExecutor.objects.get(executor_id=executor_id))
    refused = api.delete(f"/executor/{executor_id}/remove-infra", {}, format="json")
    assert refused.status_code == 409 and str(job.job_id) in refused.json()["message"]
    assert api.delete(f"/executor/{executor_id}/remove-infra", {"cascade": True}, format="json").status_code == 202
    assert tasks.remove_infra(executor_id, users["admin"].pk) == "none"
    job.refresh_from_db()
    assert job.job_status == "cancelled" and "infrastructure was removed" in job.job_error


def test_create_infra_refuses_a_bad_kubeconfig_naming_the_field(api, kube_settings):
    executor_id = register(api)
    for bad in ("not: [valid", {"clusters": []}, 42):
        answer = api.post(f"/executor/{executor_id}/create-infra", {"cluster_config": bad}, format="json")
        assert answer.status_code == 400 and "cluster_config" in answer.json()["errors"], answer.json()
    assert PolicyExecutor.objects.get(executor_id=executor_id).infra_status == "none"


def test_a_kubeconfig_that_runs_programs_or_reads_files_is_refused(api, cluster, kube_settings):
    executor_id = register(api)
    for user in ({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh", "args": ["-c", "id"]}},
                 {"client-certificate": "/etc/passwd", "client-key": "/etc/shadow"}, {"tokenFile": "/etc/hostname"}):
        config = cluster.kubeconfig
        config["users"][0]["user"] = user
        answer = api.post(f"/executor/{executor_id}/create-infra", {"cluster_config": config}, format="json")
        assert answer.status_code == 400 and "only inline credentials" in answer.json()["errors"]["cluster_config"][0]


def test_create_infra_needs_the_change_permission(clients, api):
    executor_id = register(api)
    answer = clients["viewer"].post(f"/executor/{executor_id}/create-infra", {"cluster_config": {}}, format="json")
    assert answer.status_code == 403


def test_the_kubeconfig_is_ciphertext_in_the_database_and_never_shown(api, users, cluster, kube_settings, client):
    executor_id = register(api)
    as_yaml = yaml.safe_dump(cluster.kubeconfig)  # the YAML form is accepted too
    assert create_infra(api, cluster, executor_id, cluster_config=as_yaml).status_code == 202
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM executors_policyexecutor WHERE executor_id = %s", [executor_id])
        row = " ".join(str(value) for value in cursor.fetchone())
    assert cluster.token not in row and cluster.url not in row
    stored = PolicyExecutor.objects.get(executor_id=executor_id).cluster_config
    assert credentials.decrypt(stored)["users"][0]["user"]["token"] == cluster.token
    for path in (f"/executor/{executor_id}", "/executor"):
        text = api.get(path).content.decode()
        assert cluster.token not in text and stored not in text and "cluster_config" not in text
    query = api.post("/executor/query", {"query": {"executor_id": executor_id}}, format="json").content.decode()
    assert cluster.token not in query and stored not in query
    client.force_login(users["admin"])
    pk = PolicyExecutor.objects.get(executor_id=executor_id).pk
    for page in (f"/admin/executors/policyexecutor/{pk}/change/", "/admin/executors/policyexecutor/"):
        answer = client.get(page)
        assert answer.status_code == 200, page
        assert cluster.token not in answer.content.decode() and stored not in answer.content.decode()


def test_keys_rotate_newest_first_with_the_command(api, cluster, kube_settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    kube_settings.KUBECONFIG_KEYS = [old]
    executor_id = register(api)
    assert create_infra(api, cluster, executor_id).status_code == 202
    before = PolicyExecutor.objects.get(executor_id=executor_id).cluster_config
    kube_settings.KUBECONFIG_KEYS = [new, old]
    call_command("rotate_kubeconfig_keys")
    kube_settings.KUBECONFIG_KEYS = [new]
    after = PolicyExecutor.objects.get(executor_id=executor_id).cluster_config
    assert after != before and credentials.decrypt(after)["users"][0]["user"]["token"] == cluster.token
    with pytest.raises(Exception, match="can't be decrypted"):
        credentials.decrypt(before)
