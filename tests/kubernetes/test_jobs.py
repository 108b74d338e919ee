"""Jobs on Kubernetes end to end through the fake cluster (docs/runtime.md §6): the Job's spec, the runner's
result posted with the job's token, failure reasons from the pod, cancel, logs, two clusters at once."""
import base64
import json
import time

import pytest

from jobs.models import Job
from jobs.services import reconcile_jobs
from tests.kubernetes.conftest import provisioned

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_for(api, job_id, statuses=("completed", "failed", "cancelled", "lost"), timeout=60, reconcile=False):
    deadline = time.monotonic() + timeout
    while True:
        if reconcile:
            reconcile_jobs()  # what beat runs every POLICYGRID_JOB_RECONCILE_INTERVAL
        record = api.get(f"/jobs/{job_id}").json()["data"]
        if record["job_status"] in statuses:
            return record
        assert time.monotonic() < deadline, f"job {job_id} is still {record['job_status']}"
        time.sleep(0.1)


def submit(api, executor_id, uri, inputs, **extra):
    answer = api.post(f"/jobs/submit/{executor_id}", {"name": "k8s-job", "policy_rule_uri": uri, "inputs": inputs,
                                                     **extra}, format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()["job_id"]


def running_pod(cluster, job_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = [p for p in cluster.objects("Pod") if p["metadata"]["labels"].get("policygrid.io/job-id") == job_id]
        if pods and pods[0]["status"].get("phase") == "Running":
            return pods[0]
        time.sleep(0.05)
    raise AssertionError(f"no running pod for job {job_id}")


def test_a_job_runs_as_a_batch_job_and_posts_its_result_with_its_token(api, k8s_portal, cluster, behaving):
    executor_id = provisioned(api, cluster, "k8s-jobs", k8s_portal)
    job_id = submit(api, executor_id, behaving, {"say": "hello"}, timeout_seconds=120,
                    node_selector={"disktype": "ssd"}, resources={"requests": {"cpu": "100m", "memory": "128Mi"},
                                                                 "limits": {"memory": "256Mi"}})
    [job] = [j for j in cluster.objects("Job", "jobs") if j["metadata"]["labels"]["policygrid.io/job-id"] == job_id]
    assert len(job["metadata"]["name"]) <= 63 and job["metadata"]["name"].startswith("pg-job-k8s-job-")
    spec, pod_spec = job["spec"], job["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never" and spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] >= 120 and spec["ttlSecondsAfterFinished"] > 0
    assert pod_spec["nodeSelector"] == {"disktype": "ssd"}
    container = pod_spec["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert container["resources"]["limits"]["memory"] == "256Mi"
    assert container["command"][:3] == ["python", "-m", "policygrid.job"] and "--spec-file" in container["command"]
    # The token is in the job's own Secret (owned by the Job), mounted as a file; never in the Job or its pod.
    [secret] = [s for s in cluster.objects("Secret", "jobs") if s["metadata"]["name"] == job["metadata"]["name"]]
    assert secret["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    token = json.loads(base64.b64decode(secret["data"]["spec.json"]))["token"]
    assert token not in json.dumps(job) and token not in json.dumps(cluster.objects("Pod", "jobs"))
    record = wait_for(api, job_id)
    assert record["job_status"] == "completed", (record["job_error"], api.get(f"/jobs/{job_id}/logs").json())
    assert record["job_output_data"]["echo"] == {"say": "hello"}
    assert record["node_id"] == "" or record["node_id"].startswith("alpha")
    entries = api.get("/audit", {"target_key": job_id}).json()["data"]
    assert any(e["action"] == "job.finish" and e["data"].get("reported_by") == "runner" for e in entries), entries
    logs = api.get(f"/jobs/{job_id}/logs").json()
    assert "job says" in logs["data"] and "hello" in logs["data"]
    assert api.get(f"/jobs/{job_id}/logs", {"tail": 1}).json()["data"].count("\n") <= 1


@pytest.mark.parametrize("fault", ["OOMKilled", "ImagePullBackOff", "NodeLost"])
def test_a_pod_that_dies_without_posting_fails_the_job_with_the_pods_reason(api, k8s_portal, cluster, behaving,
                                                                             fault):
    executor_id = provisioned(api, cluster, "k8s-faults", k8s_portal)
    cluster.inject(fault, "job")
    job_id = submit(api, executor_id, behaving, {"sleep": 30})
    record = wait_for(api, job_id, reconcile=True)
    assert record["job_status"] == "failed", record
    assert fault in record["job_error"], record["job_error"]


def test_cancel_deletes_the_job_with_its_pod_and_secret(api, k8s_portal, cluster, behaving):
    executor_id = provisioned(api, cluster, "k8s-cancel", k8s_portal)
    job_id = submit(api, executor_id, behaving, {"sleep": 60})
    pod = running_pod(cluster, job_id)
    process = cluster.processes[pod["metadata"]["uid"]]
    answer = api.post(f"/jobs/{job_id}/cancel")
    assert answer.status_code == 200 and answer.json()["data"]["job_status"] == "cancelled"
    mine = [o for kind in ("Job", "Pod", "Secret") for o in cluster.objects(kind, "jobs")
            if o["metadata"].get("labels", {}).get("policygrid.io/job-id") == job_id]
    assert mine == []
    assert process.poll() is not None, "the pod's process was killed"
    assert ("DELETE", "Job") in cluster.calls


def test_a_node_selector_no_node_matches_keeps_the_pod_pending(api, k8s_portal, cluster, behaving):
    executor_id = provisioned(api, cluster, "k8s-unschedulable", k8s_portal)
    job_id = submit(api, executor_id, behaving, {}, node_selector={"gpu": "a100"})
    deadline = time.monotonic() + 10
    while not [p for p in cluster.objects("Pod") if p["metadata"]["labels"].get("policygrid.io/job-id") == job_id
               and p["status"].get("conditions")]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1)  # time enough for a scheduler that ignored the selector to have started it
    [pod] = [p for p in cluster.objects("Pod") if p["metadata"]["labels"].get("policygrid.io/job-id") == job_id]
    assert pod["status"]["phase"] == "Pending" and pod["status"]["conditions"][0]["reason"] == "Unschedulable"
    assert api.get(f"/jobs/{job_id}").json()["data"]["job_status"] == "running"
    reconcile_jobs()  # the runtime says queued: not failed, not lost, before its deadline
    assert api.get(f"/jobs/{job_id}").json()["data"]["job_status"] == "running"
    assert api.post(f"/jobs/{job_id}/cancel").json()["data"]["job_status"] == "cancelled"


def test_two_executors_on_two_clusters_at_once(api, k8s_portal, cluster, second_cluster, behaving):
    first = provisioned(api, cluster, "k8s-alpha", k8s_portal)
    second = provisioned(api, second_cluster, "k8s-beta", k8s_portal)
    ids = {first: submit(api, first, behaving, {"on": first}), second: submit(api, second, behaving, {"on": second})}
    for executor_id, job_id in ids.items():
        record = wait_for(api, job_id)
        assert record["job_status"] == "completed" and record["job_output_data"]["echo"] == {"on": executor_id}
    for fake, executor_id in ((cluster, first), (second_cluster, second)):
        labels = [j["metadata"]["labels"] for j in fake.objects("Job")]
        assert [label["policygrid.io/executor"] for label in labels] == [executor_id]
    assert Job.objects.filter(job_status="completed").count() == 2
