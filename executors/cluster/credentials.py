"""Cluster credentials: a kubeconfig validated, stored encrypted at rest, and turned into one client per cluster.

The kubeconfig (an object or a YAML string, ``POST /executor/<id>/create-infra``) is checked here, encrypted with
Fernet (``cryptography``) and stored on the executor; it is never answered by the API nor shown in the admin.
Keys come from ``POLICYGRID_KUBECONFIG_KEYS`` (comma-separated, newest first: the first encrypts, every one
decrypts, so a key is rotated by putting the new one first and running ``manage.py rotate_kubeconfig_keys``);
without it, the embedded default generates ``<state>/keys/kubeconfig.key`` (mode 0600) once.

Each cluster gets its own ``kubernetes.client.ApiClient`` built with ``new_client_from_config_dict``: the
process-global configuration of the client library is never loaded (``load_kube_config`` would make every
executor talk to the last cluster loaded).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import yaml
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from policygrid.errors import InputInvalid, PolicyGridError, Unavailable

KEY_FILE_NAME = "kubeconfig.key"
# A kubeconfig runs on the portal's workers: one that names a program (exec, auth-provider) would run it there, and
# one that names files would read the portal's own files. Only credentials written inline are accepted.
REFUSED_KEYS = {"exec", "auth-provider", "client-certificate", "client-key", "certificate-authority", "tokenFile",
                "token-file"}
INLINE_KEYS = {"token", "client-certificate-data", "client-key-data", "certificate-authority-data", "username",
               "password"}


def _key_file() -> Path:
    return Path(settings.SIGNING_KEY_DIR) / KEY_FILE_NAME


def _keys() -> list[bytes]:
    if settings.KUBECONFIG_KEYS:
        return [key.encode() for key in settings.KUBECONFIG_KEYS]
    path = _key_file()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: of two processes generating the key at once, one writes it and both read that one
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
        except FileExistsError:
            pass
    return [path.read_bytes().strip()]


def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as exc:  # a key that is not 32 url-safe base64-encoded bytes
        raise Unavailable(f"POLICYGRID_KUBECONFIG_KEYS holds a key that is not a Fernet key: {exc}") from None


def encrypt(kubeconfig: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(kubeconfig, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict[str, Any]:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise Unavailable("the stored cluster credentials can't be decrypted with the configured keys "
                          "(POLICYGRID_KUBECONFIG_KEYS): was a key removed before rotating?") from None


def rotate(token: str) -> str:
    """The same kubeconfig encrypted with the newest key (MultiFernet.rotate)."""
    return _fernet().rotate(token.encode()).decode()


def parse_kubeconfig(value: Any) -> dict[str, Any]:
    """A kubeconfig given as an object or a YAML/JSON string, checked enough to build a client from it: its
    current context names a cluster with a server and a user. InputInvalid naming ``cluster_config``."""
    def refuse(reason: str) -> InputInvalid:
        return InputInvalid(f"invalid request: cluster_config: {reason}", errors={"cluster_config": [reason]})

    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise refuse(f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise refuse("a kubeconfig (an object, or a YAML string) is required")
    named: dict[str, dict[str, dict]] = {}
    for section, body in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
        entries = value.get(section)
        if not isinstance(entries, list) or not entries:
            raise refuse(f"'{section}' must be a non-empty list")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(
                    entry.get(body), dict):
                raise refuse(f"each of '{section}' needs a 'name' and a '{body}' object")
            named.setdefault(section, {})[entry["name"]] = entry[body]
    current = value.get("current-context") or (next(iter(named["contexts"])) if len(named["contexts"]) == 1 else "")
    context = named["contexts"].get(current)
    if context is None:
        raise refuse(f"current-context {current!r} names no context")
    cluster = named["clusters"].get(context.get("cluster", ""))
    if cluster is None or not str(cluster.get("server", "")).startswith(("https://", "http://")):
        raise refuse(f"context {current!r} must name a cluster with an http(s) 'server'")
    if context.get("user", "") not in named["users"]:
        raise refuse(f"context {current!r} names no known user")
    for section in ("users", "clusters"):
        for name, body in named[section].items():
            refused = sorted(set(body) & REFUSED_KEYS)
            if refused:
                raise refuse(f"{section[:-1]} {name!r} uses {', '.join(refused)}: only inline credentials are "
                             f"accepted ({', '.join(sorted(INLINE_KEYS))})")
    return {**value, "current-context": current}


def cluster_key(kubeconfig: dict[str, Any]) -> str:
    """What identifies a cluster's client: the kubeconfig itself (two executors with one kubeconfig share it)."""
    return hashlib.sha256(json.dumps(kubeconfig, sort_keys=True).encode()).hexdigest()


_clients: dict[str, k8s.ApiClient] = {}
_clients_lock = threading.Lock()


def api_client(kubeconfig: dict[str, Any]) -> k8s.ApiClient:
    """The one ``ApiClient`` of this cluster in this process (thread-safe: urllib3 pools connections)."""
    key = cluster_key(kubeconfig)
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            try:
                found = k8s_config.new_client_from_config_dict(kubeconfig, persist_config=False)
            except (k8s_config.ConfigException, ValueError, TypeError) as exc:
                raise Unavailable(f"the cluster credentials can't be used: {exc}") from None
            _clients[key] = found
    return found


def client_for(executor) -> tuple[k8s.ApiClient, str]:
    """The client of ``executor``'s cluster and its namespace, from what create-infra stored."""
    if not executor.cluster_config or not (executor.infra_config or {}).get("namespace"):
        raise PolicyGridError(f"executor {executor.executor_id} has no cluster: provision it with "
                       f"POST /executor/{executor.executor_id}/create-infra", status=409, error_type="conflict")
    return api_client(decrypt(executor.cluster_config)), executor.infra_config["namespace"]
