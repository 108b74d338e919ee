"""Functions on Kubernetes (docs/runtime.md §6): a Deployment of the function server, its Service and, when
enabled, its HorizontalPodAutoscaler, all owned by the Deployment so that deleting it removes them.

Answers are the shapes ``RuntimeFunction.from_answer`` reads: ``state`` deploying | ready | failed, one entry per
replica (pod) ``{"replica", "state", "restarts", "message"}``.
"""
from __future__ import annotations

import json
import secrets
from typing import Any

from kubernetes import client as k8s
from policygrid.errors import Unavailable

from executors.cluster import manifests
from executors.cluster.credentials import client_for
from executors.cluster.objects import STUCK_WAITING, call_api, create_all, delete_all
from executors.services import execution_body


def _selector(executor_id: str, name: str) -> str:
    return f"{manifests.LABEL_EXECUTOR}={executor_id},{manifests.LABEL_FUNCTION}={name}"


def deploy_function(executor, deployment, call) -> dict[str, Any]:
    """Create the function's objects (all-or-nothing); ``call`` is the ExecuteRequest of its settings."""
    client, namespace = client_for(executor)
    body = execution_body(deployment.policy, call, f"function:{deployment.name}")
    record = {**body["record"], **(body.get("release") or {})}
    spec = json.dumps({
        "name": deployment.name, "replica": "k8s", "token": secrets.token_urlsafe(32), "record": record,
        "portal_url": executor.infra_config["portal_url"], "settings": call.settings, "parameters": call.parameters,
        "context_namespace": f"{deployment.policy.policy_rule_uri}|function:{deployment.name}"})
    objects = manifests.function_objects(
        executor.executor_id, namespace, name=deployment.name, image=executor.infra_config["image"], spec_json=spec,
        portal_secret=executor.infra_config["secret"], replicas=deployment.replicas, autoscaling=deployment.autoscaling or {}, resources=deployment.resources,
        node_selector=deployment.node_selector)
    create_all(client, namespace, objects, owned_by_first=True)
    return {"state": "deploying"}


def remove_function(executor, name: str) -> None:
    client, namespace = client_for(executor)
    found = call_api("listing deployments", k8s.AppsV1Api(client).list_namespaced_deployment, namespace,
                  label_selector=_selector(executor.executor_id, name)).items
    left = delete_all(client, namespace, [{"kind": "Deployment", "name": d.metadata.name} for d in found],
                      propagation="Foreground")
    if left:
        raise Unavailable(f"function {name} could not be removed: {'; '.join(left)}")


def _replica(pod) -> dict[str, Any]:
    statuses = (pod.status.container_statuses or []) if pod.status else []
    state, message, restarts = "starting", "", 0
    for status in statuses:
        restarts = status.restart_count or 0
        waiting = status.state.waiting if status.state else None
        if status.ready:
            state = "ready"
        elif waiting is not None and waiting.reason in STUCK_WAITING:
            state, message = "failed", f"{waiting.reason}: {waiting.message or ''}".strip(": ")
        elif waiting is not None and waiting.reason == "CrashLoopBackOff" or (status.state and status.state.terminated):
            state = "restarting"
    if pod.status is not None and pod.status.phase == "Failed":
        state, message = "failed", f"{pod.status.reason or 'Failed'}: {pod.status.message or ''}".strip(": ")
    return {"replica": pod.metadata.name, "state": state, "restarts": restarts, "message": message}


def function_status(executor, name: str) -> dict[str, Any] | None:
    client, namespace = client_for(executor)
    selector = _selector(executor.executor_id, name)
    found = call_api("listing deployments", k8s.AppsV1Api(client).list_namespaced_deployment, namespace,
                  label_selector=selector).items
    if not found:
        return None
    pods = call_api("listing pods", k8s.CoreV1Api(client).list_namespaced_pod, namespace, label_selector=selector).items
    replicas = [_replica(pod) for pod in pods]
    if any(r["state"] == "ready" for r in replicas):
        state = "ready"
    elif replicas and all(r["state"] == "failed" for r in replicas):
        state = "failed"
    else:
        state = "deploying"
    return {"state": state, "replicas": replicas,
            "message": "; ".join(sorted({r["message"] for r in replicas if r["message"]}))}
