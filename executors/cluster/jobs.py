"""Jobs on Kubernetes (docs/runtime.md §6): a ``batch/v1 Job`` per job, observed through its Job and pod.

Answers are the shapes the local executor service answers (``RuntimeJob.from_answer`` reads both): ``state``
queued | running | exited | cancelled, ``exit_code``, ``signal``, ``reason``, ``node``. A Job is found by its
label (``policygrid.io/job-id``), so nothing but the job id is needed to reach it again.
"""
from __future__ import annotations

import json
from typing import Any

from kubernetes import client as k8s
from policygrid.errors import Unavailable

from executors.cluster import manifests
from executors.cluster.credentials import client_for
from executors.cluster.objects import STUCK_WAITING, call_api, create_all, delete_all
from executors.services import execution_body


def job_spec(executor, launch) -> str:
    """What the job runner reads from its mounted Secret (``python -m policygrid.job --spec-file``)."""
    body = execution_body(launch.policy, launch.call, f"job:{launch.job_id}")
    record = dict(body["record"])
    if body.get("release"):
        record.update(body["release"])  # the release signature the runner may verify before loading
    return json.dumps({
        "job_id": launch.job_id, "token": launch.token, "portal_url": executor.infra_config["portal_url"],
        "record": record, "input_data": launch.call.input_data, "parameters": launch.call.parameters,
        "settings": launch.call.settings, "timeout_seconds": launch.call.timeout_seconds,
    })


def launch_job(executor, launch) -> dict[str, Any]:
    client, namespace = client_for(executor)
    config = executor.infra_config
    objects = manifests.job_objects(
        executor.executor_id, namespace, job_id=launch.job_id, job_name=launch.name, image=config["image"],
        spec_json=job_spec(executor, launch), portal_secret=config["secret"],
        timeout_seconds=int(launch.call.timeout_seconds), node_selector=launch.node_selector,
        resources=launch.resources)
    create_all(client, namespace, objects, owned_by_first=True)
    return {"state": "queued"}


def _selector(job_id: str) -> str:
    return f"{manifests.LABEL_JOB}={job_id}"


def _find(executor, job_id: str):
    client, namespace = client_for(executor)
    jobs = call_api("listing jobs", k8s.BatchV1Api(client).list_namespaced_job, namespace,
                 label_selector=_selector(job_id)).items
    return client, namespace, (jobs[0] if jobs else None)


def _pods(client, namespace: str, job_id: str) -> list:
    pods = call_api("listing pods", k8s.CoreV1Api(client).list_namespaced_pod, namespace,
                 label_selector=_selector(job_id)).items
    return sorted(pods, key=lambda pod: pod.metadata.creation_timestamp or 0)


def cancel_job(executor, job_id: str) -> None:
    """Delete the Job with its pods (Foreground: the pods go first) and, by ownership, its Secret."""
    client, namespace, job = _find(executor, job_id)
    if job is not None:
        left = delete_all(client, namespace, [{"kind": "Job", "name": job.metadata.name}], propagation="Foreground")
        if left:
            raise Unavailable(f"job {job_id} could not be deleted: {'; '.join(left)}")


def describe(job, pods: list) -> dict[str, Any]:
    """A Job and its pods as the runtime interface's job state, naming the cluster's reasons."""
    pod = pods[-1] if pods else None
    node = (pod.spec.node_name or "") if pod is not None and pod.spec is not None else ""
    terminated = waiting = None
    for status in (pod.status.container_statuses or []) if pod is not None and pod.status else []:
        terminated = terminated or (status.state.terminated if status.state else None)
        waiting = waiting or (status.state.waiting if status.state else None)
    conditions = {c.type: c for c in (job.status.conditions or []) if c.status == "True"} if job.status else {}
    pod_reason = (pod.status.reason or "") if pod is not None and pod.status else ""
    if "Complete" in conditions:
        return {"state": "exited", "exit_code": 0, "node": node}
    if "Failed" in conditions or (terminated is not None and terminated.exit_code != 0) or pod_reason:
        condition = conditions.get("Failed")
        reasons = [f"{condition.reason}: {condition.message}" if condition is not None else "",
                   f"{terminated.reason} (exit code {terminated.exit_code})" if terminated is not None else "",
                   f"pod {pod_reason}: {pod.status.message or ''}".strip() if pod_reason else ""]
        code = terminated.exit_code if terminated is not None else None
        return {"state": "exited", "exit_code": code if code else None, "node": node,
                "reason": "; ".join(r for r in reasons if r) or "the Job failed",
                "signal": "SIGKILL" if code == 137 else None}
    if waiting is not None and waiting.reason in STUCK_WAITING:
        return {"state": "exited", "exit_code": None, "node": node,
                "reason": f"{waiting.reason}: {waiting.message or 'the container cannot start'}"}
    if terminated is not None and terminated.exit_code == 0:
        return {"state": "exited", "exit_code": 0, "node": node}
    running = pod is not None and pod.status is not None and pod.status.phase == "Running"
    return {"state": "running" if running else "queued", "node": node}


def job_status(executor, job_id: str) -> dict[str, Any] | None:
    client, namespace, job = _find(executor, job_id)
    if job is None:
        return None
    return describe(job, _pods(client, namespace, job_id))


def job_logs(executor, job_id: str, tail: int | None = None) -> str:
    client, namespace = client_for(executor)
    pods = _pods(client, namespace, job_id)
    if not pods:
        return ""
    kwargs = {"tail_lines": int(tail)} if tail is not None else {}
    return call_api("reading the job's log", k8s.CoreV1Api(client).read_namespaced_pod_log, pods[-1].metadata.name,
                 namespace, container="job", **kwargs) or ""
