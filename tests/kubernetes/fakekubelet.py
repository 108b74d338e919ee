"""The fake cluster's controllers and kubelet (``tests.kubernetes.fakecluster`` describes what they do).

``reconcile`` runs every 50 ms under the cluster's lock, except while starting processes and probing.
"""
from __future__ import annotations

import base64
import copy
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

FakeCluster = Any  # tests.kubernetes.fakecluster.FakeCluster (which imports this module)
COMPONENT = "app.kubernetes.io/component"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(timestamp: str) -> float:
    return time.time() - datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _owned_pods(cluster: FakeCluster, owner: dict) -> list[dict]:
    uid = owner["metadata"]["uid"]
    return [o for (k, ns, _), o in cluster.store.items() if k == "Pod" and ns == owner["metadata"]["namespace"]
            and any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])]


def _new_pod(cluster: FakeCluster, owner: dict, template: dict, extra_labels: dict) -> None:
    meta = owner["metadata"]
    name = f"{meta['name'][:52]}-{uuid.uuid4().hex[:5]}"
    labels = {**(template.get("metadata") or {}).get("labels", {}), **extra_labels}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels,
                        "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                             "name": meta["name"], "uid": meta["uid"], "controller": True}]},
           "spec": copy.deepcopy(template["spec"])}
    cluster.create("v1", "Pod", meta["namespace"], pod)


def _set_status(cluster: FakeCluster, obj: dict, status: dict) -> None:
    if obj.get("status") != status:
        obj["status"] = status
        cluster._put(obj["kind"], obj, "MODIFIED")


def _jobs(cluster: FakeCluster) -> None:
    for (kind, _, _), job in list(cluster.store.items()):
        if kind != "Job":
            continue
        status = copy.deepcopy(job.get("status") or {})
        if any(c["type"] in ("Complete", "Failed") for c in status.get("conditions", [])):
            continue
        pods = _owned_pods(cluster, job)
        if not pods:
            _new_pod(cluster, job, job["spec"]["template"],
                     {"batch.kubernetes.io/job-name": job["metadata"]["name"],
                      "batch.kubernetes.io/controller-uid": job["metadata"]["uid"]})
            status.update(startTime=now(), active=1)
            _set_status(cluster, job, status)
            continue
        phase = pods[-1]["status"].get("phase")
        condition = None
        deadline = job["spec"].get("activeDeadlineSeconds")
        if phase == "Succeeded":
            status.update(active=0, succeeded=1, completionTime=now())
            condition = {"type": "Complete", "status": "True", "reason": "Completed", "message": "Reached expected "
                         "number of succeeded pods"}
        elif phase == "Failed":
            status.update(active=0, failed=1)
            condition = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                         "message": "Job has reached the specified backoff limit"}
        elif deadline and status.get("startTime") and _age(status["startTime"]) > deadline:
            for pod in pods:
                cluster.delete("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
            status.update(active=0, failed=1)
            condition = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                         "message": "Job was active longer than specified deadline"}
        if condition is not None:
            status["conditions"] = [{**condition, "lastProbeTime": now(), "lastTransitionTime": now()}]
        _set_status(cluster, job, status)


def _deployments(cluster: FakeCluster) -> None:
    for (kind, _, _), deployment in list(cluster.store.items()):
        if kind != "Deployment":
            continue
        pods = _owned_pods(cluster, deployment)
        want = deployment["spec"].get("replicas", 1)
        for _ in range(want - len(pods)):
            _new_pod(cluster, deployment, deployment["spec"]["template"],
                     {"pod-template-hash": deployment["metadata"]["uid"][:10]})
        for pod in pods[want:]:
            cluster.delete("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
        ready = sum(1 for pod in pods[:want] if any(c["type"] == "Ready" and c["status"] == "True"
                                                    for c in pod["status"].get("conditions", [])))
        _set_status(cluster, deployment, {
            "observedGeneration": 1, "replicas": min(want, len(pods)), "updatedReplicas": min(want, len(pods)),
            "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": max(0, want - ready),
            "conditions": [{"type": "Available", "status": "True" if ready >= want else "False",
                            "reason": "MinimumReplicasAvailable" if ready >= want else "MinimumReplicasUnavailable",
                            "lastUpdateTime": deployment["metadata"]["creationTimestamp"],
                            "lastTransitionTime": deployment["metadata"]["creationTimestamp"]}]})


def _container_status(container: dict, state: dict, ready: bool = False) -> list[dict]:
    return [{"name": container["name"], "image": container["image"], "imageID": "", "ready": ready,
             "restartCount": 0, "started": "running" in state, "state": state}]


def _secret_value(cluster: FakeCluster, namespace: str, ref: dict) -> str | None:
    secret = cluster.store.get(("Secret", namespace, ref["name"]))
    if secret is None or ref["key"] not in (secret.get("data") or {}):
        return None
    return base64.b64decode(secret["data"][ref["key"]]).decode()


def _start(cluster: FakeCluster, pod: dict) -> None:
    """The kubelet for one pending pod: pull (or not), mount, set the environment, run the command."""
    meta, spec, namespace = pod["metadata"], pod["spec"], pod["metadata"]["namespace"]
    container = spec["containers"][0]
    faults = cluster.faults.get((meta.get("labels") or {}).get(COMPONENT, ""), [])
    if meta["uid"] not in cluster.pod_faults:  # decided once per pod, kept beside it (never answered)
        cluster.pod_faults[meta["uid"]] = faults.pop(0) if faults else None
    fault = cluster.pod_faults[meta["uid"]]
    wanted = spec.get("nodeSelector") or {}
    if any(cluster.node_labels.get(key) != value for key, value in wanted.items()):  # the scheduler's one rule here
        return _set_status(cluster, pod, {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": now(),
            "message": f"0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector {wanted}"}]})
    base = {"phase": "Pending", "hostIP": "10.0.0.1", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": meta["creationTimestamp"]}]}
    if fault == "ImagePullBackOff":
        return _set_status(cluster, pod, {**base, "containerStatuses": _container_status(container, {"waiting": {
            "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{container["image"]}"'}})})
    folder = cluster.root / meta["name"]
    mounts: dict[str, str] = {}
    for volume in spec.get("volumes") or []:
        secret = cluster.store.get(("Secret", namespace, (volume.get("secret") or {}).get("secretName", "")))
        if secret is None:  # the kubelet waits for the Secret (it may be created just after its owner)
            return _set_status(cluster, pod, {**base, "containerStatuses": _container_status(
                container, {"waiting": {"reason": "ContainerCreating"}})})
        target = folder / "volumes" / volume["name"]
        target.mkdir(parents=True, exist_ok=True)
        for key, value in (secret.get("data") or {}).items():
            (target / key).write_bytes(base64.b64decode(value))
            os.chmod(target / key, 0o400)
        for mount in container.get("volumeMounts") or []:
            if mount["name"] == volume["name"]:
                mounts[mount["mountPath"]] = str(target)
    address = cluster.pod_address()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "HOSTNAME": meta["name"],
           **cluster.extra_env}
    for item in container.get("env") or []:
        source = item.get("valueFrom") or {}
        if "secretKeyRef" in source:
            value = _secret_value(cluster, namespace, source["secretKeyRef"])
            if value is None:
                return _set_status(cluster, pod, {**base, "containerStatuses": _container_status(container, {
                    "waiting": {"reason": "CreateContainerConfigError",
                                "message": f"secret {source['secretKeyRef']['name']} not found"}})})
        elif "fieldRef" in source:
            value = {"status.podIP": address, "metadata.name": meta["name"],
                     "metadata.namespace": namespace}[source["fieldRef"]["fieldPath"]]
        else:
            value = item.get("value", "")
        env[item["name"]] = value
    if spec.get("automountServiceAccountToken") is not False:
        env.update(in_cluster_env(cluster, namespace, spec.get("serviceAccountName") or "default", folder))
    command = [*container.get("command", []), *container.get("args", [])]
    for name, value in env.items():  # Kubernetes expands $(VAR) in command and args from the container's env
        command = [arg.replace(f"$({name})", value) for arg in command]
    command = [sys.executable if i == 0 and arg == "python" else arg for i, arg in enumerate(command)]
    for path, local in mounts.items():  # the one rewrite: a mount path is a local folder here
        command = [local + arg[len(path):] if arg.startswith(path) else arg for arg in command]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "log", "ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=folder, start_new_session=True)
    cluster.processes[meta["uid"]] = process
    pod["spec"]["nodeName"] = f"{cluster.name}-node-1"
    _set_status(cluster, pod, {**base, "phase": "Running", "podIP": address, "podIPs": [{"ip": address}],
                               "startTime": now(), "containerStatuses": _container_status(
                                   container, {"running": {"startedAt": now()}})})


def in_cluster_env(cluster: FakeCluster, namespace: str, account: str, folder) -> dict[str, str]:
    """What a pod's ServiceAccount gives it: the API's address (``KUBERNETES_SERVICE_HOST``/``PORT``) and its token,
    CA and namespace as files. Two liberties, as for Secret volumes: the files are in the pod's folder, not under
    /var/run/secrets, and the fake serves plain HTTP; the PolicyGrid variables that override both say so."""
    target = folder / "serviceaccount"
    target.mkdir(parents=True, exist_ok=True)
    for name, value in (("token", cluster.account_token(namespace, account)), ("ca.crt", "not used: plain HTTP\n"),
                        ("namespace", namespace)):
        (target / name).write_text(value)
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": cluster.url.rsplit(":", 1)[1],
            "POLICYGRID_KUBERNETES_API": cluster.url, "POLICYGRID_KUBERNETES_TOKEN_FILE": str(target / "token"),
            "POLICYGRID_KUBERNETES_CA_FILE": str(target / "ca.crt")}


def forbidden(cluster: FakeCluster, account: tuple[str, str], verb: str, group: str, resource: str, namespace: str,
              name: str | None) -> str | None:
    """None when a Role bound to the ServiceAccount ``account`` (namespace, name) in ``namespace`` allows the
    request (RBAC's rules: API group, resource or ``resource/subresource``, verb, resourceNames); else why not."""
    for (kind, ns, _), binding in cluster.store.items():
        if kind != "RoleBinding" or ns != namespace or binding["roleRef"].get("kind") != "Role" or not any(
                s.get("kind") == "ServiceAccount" and (s.get("namespace"), s.get("name")) == account
                for s in binding.get("subjects") or []):
            continue
        role = cluster.store.get(("Role", namespace, binding["roleRef"]["name"])) or {}
        for rule in role.get("rules") or []:
            if group in rule.get("apiGroups", []) and resource in rule.get("resources", []) and (
                    verb in rule.get("verbs", []) or "*" in rule.get("verbs", [])) and (
                    not rule.get("resourceNames") or name in rule["resourceNames"]):
                return None
    return (f'{resource} is forbidden: User "system:serviceaccount:{account[0]}:{account[1]}" cannot {verb} '
            f'resource "{resource}" in API group "{group}" in the namespace "{namespace}"')


def _observe(cluster: FakeCluster, pod: dict, ready: bool) -> None:
    """A running pod: its process's exit, an injected fault, its readiness (``ready``: the probe's answer)."""
    meta, container = pod["metadata"], pod["spec"]["containers"][0]
    process = cluster.processes.get(meta["uid"])
    status = copy.deepcopy(pod["status"])
    fault = cluster.pod_faults.get(meta["uid"])
    started = cluster.pod_started.setdefault(meta["uid"], time.time())
    if process is not None and fault in ("OOMKilled", "NodeLost") and process.poll() is None and \
            time.time() - started > 0.5:
        cluster._kill(process)
    if process is None or process.poll() is None:
        was = any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
        if was == ready and any(c["type"] == "Ready" for c in status["conditions"]):
            return  # nothing changed: no new resourceVersion, no event
        status["containerStatuses"] = _container_status(container, status["containerStatuses"][0]["state"], ready)
        status["conditions"] = [c for c in status["conditions"] if c["type"] != "Ready"] + [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now()}]
        return _set_status(cluster, pod, status)
    code = process.returncode
    code = 128 - code if code < 0 else code  # killed by a signal: 128 + its number, as a container runtime says
    reason = "OOMKilled" if fault == "OOMKilled" else ("Completed" if code == 0 else "Error")
    terminated = {"exitCode": code, "reason": reason, "startedAt": status.get("startTime", now()), "finishedAt": now()}
    status.update(phase="Succeeded" if code == 0 else "Failed",
                  containerStatuses=_container_status(container, {"terminated": terminated}))
    if fault == "NodeLost":
        status.update(phase="Failed", reason="NodeLost", message=f"node {cluster.name}-node-1 is not responding")
    cluster.processes.pop(meta["uid"], None)
    _set_status(cluster, pod, status)


def _ready(cluster: FakeCluster, pod: dict) -> bool:
    probe = pod["spec"]["containers"][0].get("readinessProbe", {}).get("httpGet")
    return probe is None or cluster.probe(pod["status"]["podIP"], int(probe["port"]), probe.get("path", "/"))


def reconcile(cluster: FakeCluster) -> None:
    with cluster.lock:
        _jobs(cluster)
        _deployments(cluster)
        pods = [o for (k, _, _), o in cluster.store.items() if k == "Pod"]
        room = cluster.max_pods - len(cluster.processes)
        for pod in pods:
            if pod["status"].get("phase") == "Pending" and room > 0:
                _start(cluster, pod)
                room -= 1 if pod["metadata"]["uid"] in cluster.processes else 0
        running = [pod for pod in pods if pod["status"].get("phase") == "Running"]
    for pod in running:
        ready = _ready(cluster, pod)  # outside the lock: a probe may take its timeout
        with cluster.lock:
            current = cluster.store.get(("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"]))
            if current is not None and current["status"].get("phase") == "Running":
                _observe(cluster, current, ready)
