"""Creating and deleting the manifests of ``executors.cluster.manifests`` through one cluster's client.

``create_all`` is all-or-nothing (docs/runtime.md §6): a refusal part-way deletes what it made, in reverse,
and raises ``Unavailable`` naming the object and the cluster's reason. The typed APIs of the official client
are used (their answers are deserialized strictly), never the process-global configuration.
"""
from __future__ import annotations

import logging
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from policygrid.errors import Unavailable

logger = logging.getLogger(__name__)

# kind → (API class, the suffix of its create_namespaced_*/delete_namespaced_*/read_namespaced_* methods)
KINDS: dict[str, tuple[type, str]] = {
    "ServiceAccount": (k8s.CoreV1Api, "service_account"),
    "Secret": (k8s.CoreV1Api, "secret"),
    "Service": (k8s.CoreV1Api, "service"),
    "Role": (k8s.RbacAuthorizationV1Api, "role"),
    "RoleBinding": (k8s.RbacAuthorizationV1Api, "role_binding"),
    "Deployment": (k8s.AppsV1Api, "deployment"),
    "Job": (k8s.BatchV1Api, "job"),
    "HorizontalPodAutoscaler": (k8s.AutoscalingV2Api, "horizontal_pod_autoscaler"),
}


# A pod waiting for one of these will never start by itself: what it runs has failed, with that reason.
STUCK_WAITING = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError",
                 "CreateContainerError"}


def _method(client: k8s.ApiClient, kind: str, verb: str):
    api, suffix = KINDS[kind]
    return getattr(api(client), f"{verb}_namespaced_{suffix}")


def reason_of(exc: ApiException) -> str:
    """The cluster's own words: the ``message`` of its ``Status`` body, else the HTTP reason."""
    import json

    try:
        return json.loads(exc.body or "{}").get("message") or f"HTTP {exc.status} {exc.reason}"
    except (ValueError, AttributeError):
        return f"HTTP {exc.status} {exc.reason}"


def create_all(client: k8s.ApiClient, namespace: str, manifests: list[dict[str, Any]], *,
               owned_by_first: bool = False) -> list[dict[str, Any]]:
    """Create ``manifests`` in order; returns what was made (``{"kind", "name", "uid"}``). With
    ``owned_by_first`` every later object gets an ownerReference to the first, so the garbage collector
    removes them with it."""
    made: list[dict[str, Any]] = []
    for manifest in manifests:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if owned_by_first and made:
            first = made[0]
            manifest = {**manifest, "metadata": {**manifest["metadata"], "ownerReferences": [{
                "apiVersion": first["apiVersion"], "kind": first["kind"], "name": first["name"],
                "uid": first["uid"], "blockOwnerDeletion": True}]}}
        try:
            created = _method(client, kind, "create")(namespace, manifest)
        except ApiException as exc:
            delete_all(client, namespace, made)
            raise Unavailable(f"the cluster refused to create {kind} {namespace}/{name}: {reason_of(exc)}") from None
        except Exception as exc:  # unreachable, TLS, a body the client can't read
            delete_all(client, namespace, made)
            raise Unavailable(f"creating {kind} {namespace}/{name} failed: {type(exc).__name__}: {exc}") from None
        made.append({"apiVersion": manifest["apiVersion"], "kind": kind, "name": name, "uid": created.metadata.uid})
    return made


def delete_all(client: k8s.ApiClient, namespace: str, made: list[dict[str, Any]],
               propagation: str = "Background") -> list[str]:
    """Delete ``made`` in reverse order (an object already gone is fine); returns what could not be deleted."""
    left = []
    for item in reversed(made):
        try:
            _method(client, item["kind"], "delete")(item["name"], namespace, propagation_policy=propagation)
        except ApiException as exc:
            if exc.status != 404:
                left.append(f"{item['kind']} {item['name']}: {reason_of(exc)}")
        except Exception as exc:  # the cluster went away: say so, the caller records it
            left.append(f"{item['kind']} {item['name']}: {type(exc).__name__}: {exc}")
    if left:
        logger.warning("objects left in namespace %s: %s", namespace, "; ".join(left))
    return left


def call_api(what: str, method, *args, **kwargs):
    """``method(*args, **kwargs)`` of a typed API, its failures as ``Unavailable`` naming ``what`` and the reason."""
    try:
        return method(*args, **kwargs)
    except ApiException as exc:
        raise Unavailable(f"the cluster refused {what}: {reason_of(exc)}") from None
    except Exception as exc:  # unreachable, TLS
        raise Unavailable(f"{what} failed: {type(exc).__name__}: {exc}") from None
