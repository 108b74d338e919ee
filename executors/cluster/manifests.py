"""The Kubernetes objects PolicyGrid makes, as plain manifests (dicts): pure functions, validated strictly in the
tests (``kubernetes-validate --strict``, Kubernetes 1.33) and created by ``executors.cluster.objects``.

Names derive from a readable part and an id (``object_name``) so that two submissions never collide and every
name is a DNS-1123 label of at most 63 characters. Every object carries ``LABEL_MANAGED`` and the executor's
label; a job's objects carry its id, a function's its name.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

LABEL_MANAGED = {"app.kubernetes.io/managed-by": "policygrid"}
LABEL_EXECUTOR = "policygrid.io/executor"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_JOB = "policygrid.io/job-id"
LABEL_FUNCTION = "policygrid.io/function"
EXECUTOR_PORT = 8900
FUNCTION_PORT = 8080
SPEC_DIR = "/var/run/policygrid"  # where a pod's Secret (its spec, its token) is mounted
SPEC_FILE = f"{SPEC_DIR}/spec.json"
DEFAULT_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
JOB_BACKOFF_LIMIT = 0  # a job's runner posts its outcome once; a retried pod would run the policy twice
# The runner enforces timeout_seconds on the policy itself and posts "timeout"; the Job's deadline adds the time
# to pull, start and load the package, so that Kubernetes kills only a runner that overran its own limit.
JOB_START_GRACE = 30
JOB_TTL_SECONDS = 3600  # a finished Job (and its pod, and its logs) is kept this long for status and logs


def object_name(prefix: str, name: str, ident: str) -> str:
    """``<prefix>-<name>-<10 hex of sha256(ident)>``, the readable part cut so the whole is ≤ 63 characters: the
    id decides uniqueness (two jobs of one name differ by their ids), the name only helps people read it."""
    digest = hashlib.sha256(ident.encode()).hexdigest()[:10]
    readable = re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{name}".lower())[: 63 - 11].strip("-")
    return f"{readable}-{digest}"


def _meta(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {**LABEL_MANAGED, **labels}}


def resources_of(requested: dict[str, Any] | None) -> dict[str, Any]:
    """The container's ``resources``: what was asked (``{"requests", "limits"}``, or a flat ``{"cpu", "memory"}``
    taken as both), else the defaults; requests always set, so that an autoscaler can compute utilisation."""
    requested = dict(requested or {})
    if requested and not set(requested) & {"requests", "limits"}:
        flat = {key: str(value) for key, value in requested.items() if key in ("cpu", "memory")}
        requested = {"requests": flat, "limits": flat}
    requests = {**DEFAULT_RESOURCES["requests"], **{k: str(v) for k, v in (requested.get("requests") or {}).items()}}
    limits = {**DEFAULT_RESOURCES["limits"], **{k: str(v) for k, v in (requested.get("limits") or {}).items()}}
    return {"requests": requests, "limits": limits}


def _secret(name: str, namespace: str, labels: dict[str, str], data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(name, namespace, labels), "type": "Opaque",
            "stringData": data}


def _pod_ip_env(variable: str) -> dict[str, Any]:
    # A server listens on its pod's own address: the address its Service and readiness probe use.
    return {"name": variable, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def _secret_env(variable: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


# --- the executor service (create-infra) ---------------------------------------------------------------------


def executor_objects(executor_id: str, namespace: str, *, image: str, replicas: int, resources: dict[str, Any],
                     max_processes: int | None, portal_url: str, executor_token: str,
                     portal_token: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding, Secret, Deployment, Service of one executor, in creation order.

    The Role holds only what the executor needs in its namespace: to read the pods and endpoints of the
    functions beside it (a management command reaches every ready replica), their logs, and to ``get`` a Secret
    by name (a function's token, in the Secret its pods mount: ``policygrid.executor.cluster_functions``). Never
    cluster-wide, never a list or watch of secrets, never a write.
    """
    name = object_name("pg-executor", executor_id, executor_id)
    labels = {LABEL_EXECUTOR: executor_id, LABEL_COMPONENT: "executor"}
    env = [_secret_env("POLICYGRID_EXECUTOR_TOKEN", name, "executor-token"),
           _secret_env("POLICYGRID_TOKEN", name, "portal-token"),
           {"name": "POLICYGRID_URL", "value": portal_url},
           {"name": "POLICYGRID_EXECUTOR_PORT", "value": str(EXECUTOR_PORT)},
           {"name": "POLICYGRID_KUBERNETES_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
           {"name": "POLICYGRID_EXECUTOR_ID", "value": executor_id},
           {"name": "POLICYGRID_FUNCTION_BACKEND", "value": "kubernetes"},  # calls go to the functions' pods
           _pod_ip_env("POLICYGRID_EXECUTOR_HOST")]
    if max_processes:
        env.append({"name": "POLICYGRID_EXECUTOR_MAX_PROCESSES", "value": str(max_processes)})
    probe = {"httpGet": {"path": "/health", "port": EXECUTOR_PORT}, "periodSeconds": 5, "timeoutSeconds": 3}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, namespace, labels)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(name, namespace, labels),
         "rules": [{"apiGroups": [""], "resources": ["pods", "endpoints"], "verbs": ["get", "list", "watch"]},
                   {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _meta(name, namespace, labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
        _secret(name, namespace, labels, {"executor-token": executor_token, "portal-token": portal_token}),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace, labels),
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": {**LABEL_MANAGED, **labels}},
                               "spec": {"serviceAccountName": name, "containers": [{
                                   "name": "executor", "image": image,
                                   "command": ["python", "-m", "policygrid.executor", "serve"],
                                   "ports": [{"name": "http", "containerPort": EXECUTOR_PORT}],
                                   "env": env, "resources": resources_of(resources),
                                   "readinessProbe": probe, "securityContext": _SECURITY}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, labels),
         "spec": {"selector": labels, "ports": [{"name": "http", "port": EXECUTOR_PORT, "targetPort": "http"}]}},
    ]


def executor_address(executor_id: str, namespace: str) -> str:
    """The executor's address inside its cluster: its Service's DNS name."""
    return f"http://{object_name('pg-executor', executor_id, executor_id)}.{namespace}.svc:{EXECUTOR_PORT}"


# --- jobs ----------------------------------------------------------------------------------------------------


def job_objects(executor_id: str, namespace: str, *, job_id: str, job_name: str, image: str, spec_json: str,
                portal_secret: str, timeout_seconds: int, node_selector: dict[str, Any],
                resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``batch/v1 Job`` whose one container runs the job runner, and the Secret holding the job's spec (its
    token included: never in the pod spec), mounted as a file; the Secret is created second, owned by the Job
    (``objects.create_all``), so that it goes with it."""
    name = object_name("pg-job", job_name, job_id)
    labels = {LABEL_EXECUTOR: executor_id, LABEL_COMPONENT: "job", LABEL_JOB: job_id}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never", "automountServiceAccountToken": False,
        "containers": [{"name": "job", "image": image,
                        "command": ["python", "-m", "policygrid.job", "--spec-file", SPEC_FILE],
                        "env": [_secret_env("POLICYGRID_TOKEN", portal_secret, "portal-token")],
                        "resources": resources_of(resources), "securityContext": _SECURITY,
                        "volumeMounts": [{"name": "spec", "mountPath": SPEC_DIR, "readOnly": True}]}],
        "volumes": [{"name": "spec", "secret": {"secretName": name, "defaultMode": 0o400}}],
    }
    if node_selector:
        pod_spec["nodeSelector"] = {str(k): str(v) for k, v in node_selector.items()}
    return [
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(name, namespace, labels),
         "spec": {"backoffLimit": JOB_BACKOFF_LIMIT, "activeDeadlineSeconds": int(timeout_seconds) + JOB_START_GRACE,
                  "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
                  "template": {"metadata": {"labels": {**LABEL_MANAGED, **labels}}, "spec": pod_spec}}},
        _secret(name, namespace, labels, {"spec.json": spec_json}),
    ]


# --- functions ---------------------------------------------------------------------------------------------


def function_objects(executor_id: str, namespace: str, *, name: str, image: str, spec_json: str, portal_secret: str,
                     replicas: int,
                     autoscaling: dict[str, Any], resources: dict[str, Any],
                     node_selector: dict[str, Any]) -> list[dict[str, Any]]:
    """Secret (the function's spec and token, mounted as a file), Deployment (the function server, a readiness
    probe on its ``/health`` so that no call reaches a replica still loading, CPU and memory requests so that an
    autoscaler can compute utilisation), Service, and — only when ``autoscaling.enabled`` — an
    ``autoscaling/v2`` HorizontalPodAutoscaler on CPU."""
    object_id = object_name("pg-fn", name, f"{executor_id}/{name}")
    labels = {LABEL_EXECUTOR: executor_id, LABEL_COMPONENT: "function", LABEL_FUNCTION: name}
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": [{
            "name": "function", "image": image,
            # Kubernetes expands $(POD_IP) from the container's environment: the server listens on its pod's address.
            "command": ["python", "-m", "policygrid.function", "--spec-file", SPEC_FILE, "--host", "$(POD_IP)",
                        "--port", str(FUNCTION_PORT)],
            "env": [_pod_ip_env("POD_IP"), _secret_env("POLICYGRID_TOKEN", portal_secret, "portal-token")],
            "ports": [{"name": "http", "containerPort": FUNCTION_PORT}],
            "resources": resources_of(resources), "securityContext": _SECURITY,
            "readinessProbe": {"httpGet": {"path": "/health", "port": FUNCTION_PORT}, "periodSeconds": 2,
                               "timeoutSeconds": 2},
            "volumeMounts": [{"name": "spec", "mountPath": SPEC_DIR, "readOnly": True}]}],
        "volumes": [{"name": "spec", "secret": {"secretName": object_id, "defaultMode": 0o400}}],
    }
    if node_selector:
        pod_spec["nodeSelector"] = {str(k): str(v) for k, v in node_selector.items()}
    objects = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(object_id, namespace, labels),
         "spec": {"replicas": int(replicas), "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": {**LABEL_MANAGED, **labels}}, "spec": pod_spec}}},
        _secret(object_id, namespace, labels, {"spec.json": spec_json}),
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(object_id, namespace, labels),
         "spec": {"selector": labels, "ports": [{"name": "http", "port": FUNCTION_PORT, "targetPort": "http"}]}},
    ]
    if autoscaling.get("enabled"):
        low = int(autoscaling.get("min_replicas") or replicas or 1)
        objects.append({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(object_id, namespace, labels),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": object_id},
                     "minReplicas": low, "maxReplicas": max(low, int(autoscaling.get("max_replicas") or low)),
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization",
                         "averageUtilization": int(autoscaling.get("target_cpu_utilization_percentage") or 80)}}}]}})
    return objects
