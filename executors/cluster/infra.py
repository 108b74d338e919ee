"""create-infra and remove-infra (docs/api.md §4.3): an executor service provisioned into a cluster.

``request_infra`` (the API, with its actor) checks the body, stores the kubeconfig encrypted, sets
``infra_status`` to ``pending`` and queues ``provision_infra`` (the Celery task), which moves it to
``provisioning`` and then ``ready`` — the objects made and the Deployment ready — or ``failed`` with the reason,
having deleted what it made (all-or-nothing). ``request_removal`` refuses (409) while jobs or functions live on
the executor, unless ``cascade``; ``remove_infra`` (the task) deletes every object labelled with the executor.
"""
from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.rest import ApiException
from policygrid.errors import InputInvalid, PolicyGridError, Unavailable

from accounts.choices import Role
from accounts.services import issue_token, revoke_token
from audit.services import audit_object
from executors.choices import ExecutorRuntime, InfraStatus
from executors.cluster import credentials, manifests
from executors.cluster.objects import KINDS, STUCK_WAITING, call_api, create_all, delete_all, reason_of
from executors.models import PolicyExecutor
from executors.services import new_credential
from executors.signals import infra_removed
from records.api.errors import Conflict
from records.validators import validate_dns_label

READY_TIMEOUT = 120.0  # seconds create-infra waits for the executor's Deployment to be ready
BODY_FIELDS = {"cluster_config", "namespace", "replicas", "max_processes", "image", "resources", "portal_url",
               "ready_timeout"}


def _refuse(field: str, reason: str) -> InputInvalid:
    return InputInvalid(f"invalid request: {field}: {reason}", errors={field: [reason]})


def infra_request(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(kubeconfig, infra_config) of a create-infra body, or InputInvalid naming the field."""
    if not isinstance(body, dict):
        raise _refuse("(body)", "a JSON object is required")
    for name in sorted(set(body) - BODY_FIELDS):
        raise _refuse(name, f"unknown field (accepted: {', '.join(sorted(BODY_FIELDS))})")
    if "cluster_config" not in body:
        raise _refuse("cluster_config", "required: the cluster's kubeconfig, as an object or a YAML string")
    kubeconfig = credentials.parse_kubeconfig(body["cluster_config"])
    namespace = body.get("namespace") or "default"
    try:
        validate_dns_label(namespace)
    except Exception:
        raise _refuse("namespace", "a DNS-1123 label (lower-case letters, digits and '-')") from None
    config: dict[str, Any] = {"namespace": namespace, "image": body.get("image") or settings.KUBERNETES_IMAGE,
                              "portal_url": body.get("portal_url") or settings.PUBLIC_BASE_URL}
    for name, low in (("replicas", 1), ("max_processes", 1), ("ready_timeout", 1)):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise _refuse(name, f"an integer ≥ {low}")
    config.update(replicas=body.get("replicas") or 1, max_processes=body.get("max_processes"),
                  ready_timeout=body.get("ready_timeout") or READY_TIMEOUT)
    resources = body.get("resources") or {}
    if not isinstance(resources, dict):
        raise _refuse("resources", "an object: {\"requests\": {\"cpu\", \"memory\"}, \"limits\": {…}}")
    config["resources"] = manifests.resources_of(resources)
    if not isinstance(config["image"], str) or not config["image"].strip():
        raise _refuse("image", "a container image reference")
    if not isinstance(config["portal_url"], str) or not config["portal_url"].startswith(("http://", "https://")):
        raise _refuse("portal_url", "the portal's http(s) address as the cluster's pods reach it")
    return kubeconfig, config


def request_infra(actor, executor: PolicyExecutor, body: Any) -> PolicyExecutor:
    """``POST /executor/<id>/create-infra``: store the request (``pending``); the caller queues the task."""
    kubeconfig, config = infra_request(body)
    with transaction.atomic():
        locked = PolicyExecutor.objects.select_for_update().get(pk=executor.pk)
        if locked.infra_status in InfraStatus.ACTIVE or locked.infra_status == InfraStatus.READY:
            raise Conflict(f"executor {executor.executor_id} is already {locked.infra_status} in a cluster: "
                           f"remove it first (DELETE /executor/{executor.executor_id}/remove-infra)")
        locked.cluster_config = credentials.encrypt(kubeconfig)
        locked.infra_config = config
        locked.infra_status, locked.infra_message = InfraStatus.PENDING, ""
        locked.executor_runtime = ExecutorRuntime.KUBERNETES
        locked.save(update_fields=["cluster_config", "infra_config", "infra_status", "infra_message",
                                   "executor_runtime", "updated_at"])
        audit_object(actor, "executor.create_infra", locked, {k: v for k, v in config.items() if k != "resources"})
    return locked


def _actor(actor_id):
    return get_user_model().objects.filter(pk=actor_id).first() if actor_id else None


def _set(executor: PolicyExecutor, status: str, message: str, **fields) -> None:
    executor.infra_status, executor.infra_message = status, message[:5000]
    for name, value in fields.items():
        setattr(executor, name, value)
    executor.save(update_fields=["infra_status", "infra_message", "updated_at", *fields])


def task_refused(executor_id: str, reason: str) -> None:
    """The broker refused the create-infra or remove-infra task: nothing will run it, and the record says so."""
    _set(PolicyExecutor.objects.get(executor_id=executor_id), InfraStatus.FAILED, reason)


def provision_infra(executor_id: str, actor_id=None) -> str:
    """The task: make the executor's objects and wait for its Deployment; ``ready`` or ``failed``."""
    executor = PolicyExecutor.objects.get(executor_id=executor_id)
    if executor.infra_status != InfraStatus.PENDING:
        return executor.infra_status  # a repeated delivery of the task: the first one did (or does) the work
    actor = _actor(actor_id)
    _set(executor, InfraStatus.PROVISIONING, "creating the executor's objects")
    config = dict(executor.infra_config)
    namespace = config["namespace"]
    credential = executor.credential or new_credential()
    user, _ = get_user_model().objects.get_or_create(username=f"executor-{executor_id}"[:150])
    user.groups.add(*Group.objects.filter(name=Role.VIEWER))  # it reads policies and packages, nothing more
    token, portal_token = issue_token(user, name=f"executor {executor_id} in its cluster", actor=actor)
    objects = manifests.executor_objects(
        executor_id, namespace, image=config["image"], replicas=config["replicas"], resources=config["resources"],
        max_processes=config.get("max_processes"), portal_url=config["portal_url"], executor_token=credential,
        portal_token=portal_token)
    made: list[dict[str, Any]] = []
    try:
        client, _ = credentials.client_for(executor)
        made = create_all(client, namespace, objects)
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
        ready = _wait_ready(client, namespace, deployment["metadata"]["name"], selector, config["replicas"],
                            float(config["ready_timeout"]))
        if ready is not None:
            raise PolicyGridError(ready)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, nothing is left half-made and the record says why
        left = delete_all(client, namespace, made) if made else []
        revoke_token(token, actor=actor)
        reason = exc.message if isinstance(exc, PolicyGridError) else f"{type(exc).__name__}: {exc}"
        message = reason + (f"; left behind: {'; '.join(left)}" if left else "")
        _set(executor, InfraStatus.FAILED, message)
        audit_object(actor, "executor.infra_failed", executor, {"reason": message})
        return InfraStatus.FAILED
    config.update(secret=objects[0]["metadata"]["name"], objects=made, token_id=token.pk)
    _set(executor, InfraStatus.READY, f"{config['replicas']} of {config['replicas']} replicas ready",
         infra_config=config, credential=credential,
         executor_host_uri=manifests.executor_address(executor_id, namespace))
    audit_object(actor, "executor.infra_ready", executor, {"namespace": namespace,
                                                            "objects": [f"{o['kind']}/{o['name']}" for o in made]})
    return InfraStatus.READY


def _wait_ready(client: k8s.ApiClient, namespace: str, name: str, selector: str, replicas: int,
                timeout: float) -> str | None:
    """None once the Deployment has ``replicas`` ready; else why not (its pods' reasons). A watch on the
    Deployment tells at once when it is ready; every 2 s without that, one read of its pods looks for a reason
    they will never start (ImagePullBackOff…): a slow rollout costs a watch and a list per 2 s, not a storm."""
    apps, core = k8s.AppsV1Api(client), k8s.CoreV1Api(client)
    deadline = time.monotonic() + timeout
    stuck = (*STUCK_WAITING, "CrashLoopBackOff")
    while True:
        window = max(1, min(2, int(deadline - time.monotonic())))
        watcher = watch.Watch()
        try:
            for event in watcher.stream(apps.list_namespaced_deployment, namespace, timeout_seconds=window,
                                        field_selector=f"metadata.name={name}"):
                status = event["object"].status
                if event["type"] != "DELETED" and status is not None and (status.ready_replicas or 0) >= replicas:
                    return None
        except ApiException as exc:
            raise Unavailable(f"the cluster refused watching the executor's Deployment: {reason_of(exc)}") from None
        finally:
            watcher.stop()
        pods = call_api("listing the executor's pods", core.list_namespaced_pod, namespace,
                        label_selector=selector).items
        reasons = sorted({f"{s.state.waiting.reason}: {s.state.waiting.message or ''}".strip(": ")
                          for pod in pods for s in (pod.status.container_statuses or [])
                          if s.state and s.state.waiting and s.state.waiting.reason in stuck})
        if reasons and any(not r.startswith("CrashLoopBackOff") for r in reasons):
            return f"the executor's pods cannot start: {'; '.join(reasons)}"
        if time.monotonic() > deadline:
            return (f"the executor's Deployment {namespace}/{name} was not ready within {timeout:g}s"
                    + (f": {'; '.join(reasons)}" if reasons else ""))


# --- remove-infra ----------------------------------------------------------------------------------------------


def dependents(executor: PolicyExecutor) -> dict[str, list[str]]:
    """The unfinished jobs and the functions living on ``executor`` (their apps point here, not the reverse)."""
    return {"jobs": [str(j) for j in executor.jobs.filter(job_status__in=("pending", "running"))
                     .values_list("job_id", flat=True)],
            "functions": list(executor.functions.values_list("function_id", flat=True))}


def request_removal(actor, executor: PolicyExecutor, body: Any) -> PolicyExecutor:
    """``DELETE /executor/<id>/remove-infra``: 409 naming the jobs and functions on it unless cascade; 202."""
    cascade = isinstance(body, dict) and body.get("cascade") is True
    if executor.infra_status in (InfraStatus.NONE, InfraStatus.REMOVING):
        raise Conflict(f"executor {executor.executor_id} has no infrastructure to remove "
                       f"(infra_status {executor.infra_status})")
    if executor.infra_status in (InfraStatus.PENDING, InfraStatus.PROVISIONING):
        raise Conflict(f"executor {executor.executor_id} is being provisioned; remove it once it is ready or failed")
    found = dependents(executor)
    if not cascade and (found["jobs"] or found["functions"]):
        names = "; ".join(f"{kind}: {', '.join(ids)}" for kind, ids in found.items() if ids)
        raise Conflict(f"executor {executor.executor_id} still runs {names}; send {{\"cascade\": true}} to remove "
                       f"them with it")
    _set(executor, InfraStatus.REMOVING, "removing the executor's objects")
    audit_object(actor, "executor.remove_infra", executor, {"cascade": cascade, **found})
    return executor


def remove_infra(executor_id: str, actor_id=None) -> str:
    """The task: delete every object labelled with the executor (its jobs' and functions' too), forget the
    credentials; ``none``, or ``failed`` naming what was left."""
    executor = PolicyExecutor.objects.get(executor_id=executor_id)
    client, namespace = credentials.client_for(executor)
    selector = f"{manifests.LABEL_EXECUTOR}={executor_id}"
    left = []
    for kind in ("HorizontalPodAutoscaler", "Deployment", "Job", "Service", "RoleBinding", "Role", "Secret",
                 "ServiceAccount"):
        api, suffix = KINDS[kind]
        try:
            found = getattr(api(client), f"list_namespaced_{suffix}")(namespace, label_selector=selector).items
        except Exception as exc:  # the cluster is gone: record it, the operator decides
            left.append(f"{kind}: {type(exc).__name__}: {exc}")
            continue
        left += delete_all(client, namespace, [{"kind": kind, "name": item.metadata.name} for item in found],
                           propagation="Foreground")
    actor = _actor(actor_id)
    token_id = (executor.infra_config or {}).get("token_id")
    if token_id:
        from accounts.models import ApiToken

        for token in ApiToken.objects.filter(pk=token_id):
            revoke_token(token, actor=actor)
    if left:
        _set(executor, InfraStatus.FAILED, "removal left: " + "; ".join(left))
        audit_object(actor, "executor.infra_removal_failed", executor, {"left": left})
        return InfraStatus.FAILED
    _set(executor, InfraStatus.NONE, "removed", cluster_config="", infra_config={}, executor_host_uri="",
         executor_runtime=ExecutorRuntime.LOCAL)
    audit_object(actor, "executor.infra_removed", executor, {})
    infra_removed.send(sender=PolicyExecutor, executor=executor, actor=actor)
    return InfraStatus.NONE
