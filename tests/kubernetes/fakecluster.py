"""A fake Kubernetes cluster on loopback for the tests: an API server and a "kubelet" that really runs containers.

The API server speaks the part of the Kubernetes REST API that PolicyGrid uses, for the kinds it makes
(ServiceAccount, Secret, Service, Pod, Role, RoleBinding, Deployment, Job, HorizontalPodAutoscaler):
create / get / list (label and field selectors) / watch / delete (with ownerReference garbage collection), the
``status`` subresource, pod logs (``tailLines``), a pod's ServiceAccount (its token file and the in-cluster
environment; its requests are held to its Roles' rules: 403 ``Forbidden`` otherwise), and failures as ``Status`` bodies (401, 404, 409
``AlreadyExists``, 422 ``Invalid`` for a name that is not a DNS-1123 label or a label value that is too long).
Answers carry what the official client's models require, so its strict deserialization reads them.

Its controllers do what Kubernetes' do, in miniature: a Job gets one pod (``backoffLimit`` is honoured as 0),
``Complete``/``Failed`` conditions (``BackoffLimitExceeded``, ``DeadlineExceeded`` past
``activeDeadlineSeconds``); a Deployment keeps ``replicas`` pods and counts the ready ones; the scheduler leaves
a pod whose ``nodeSelector`` the one node's labels don't satisfy ``Pending`` (``Unschedulable``); the node runs at
most ``max_pods`` pods at once.

Its kubelet runs each pod's container **command as a local process** (``python`` is this interpreter): the pod's
environment (values, ``secretKeyRef``, ``fieldRef: status.podIP``), its Secret volumes written to a temporary
folder — the one liberty taken: the mount path is not a real path here, so each argument that starts with a mount
path is rewritten to the folder. Each pod has its own loopback address (127.1.x.y) as its IP, so servers in
several pods can listen on the same port. A readiness probe (``httpGet``) is really sent to the pod's address.
Faults can be injected on the next pod of a component: ``OOMKilled`` (the process is SIGKILLed once it runs, and
reported so), ``ImagePullBackOff`` (never started), ``NodeLost`` (killed, the pod ``Failed`` with that reason).
``refuse(kind)`` makes creates of a kind fail with 403. ``calls`` counts the requests by method and resource.

kmock (nolar's Kubernetes mock server) was considered: it emulates the API's storage well, but has no
controllers nor kubelet, brings aiohttp and an async test style, and is young; what is needed here beyond a
store (running pods as processes) would be written anyway, so the whole fake is this one module.
"""
from __future__ import annotations

import base64
import collections
import copy
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.kubernetes.fakekubelet import forbidden, now, reconcile

# plural → (apiVersion, kind)
RESOURCES = {
    ("", "v1", "pods"): "Pod", ("", "v1", "secrets"): "Secret", ("", "v1", "services"): "Service",
    ("", "v1", "serviceaccounts"): "ServiceAccount",
    ("rbac.authorization.k8s.io", "v1", "roles"): "Role",
    ("rbac.authorization.k8s.io", "v1", "rolebindings"): "RoleBinding",
    ("apps", "v1", "deployments"): "Deployment", ("batch", "v1", "jobs"): "Job",
    ("autoscaling", "v2", "horizontalpodautoscalers"): "HorizontalPodAutoscaler",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PATH = re.compile(r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
                  r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>status|log))?$")


# Every pod of every fake cluster in this process gets its own loopback address (two clusters must never hand out
# the same one: a probe would reach the other cluster's server).
_POD_NUMBERS = itertools.count(os.getpid() % 64 * 1000)  # next() on a count is atomic; on a generator it is not


def pod_address() -> str:
    i = next(_POD_NUMBERS)
    return f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 2}"


def status_body(code: int, reason: str, message: str) -> dict:
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def matches(labels: dict, selector: str) -> bool:
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class Refused(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.body = status_body(code, reason, message)


class FakeCluster:
    """``url``, ``token``, ``kubeconfig``; ``objects(kind)``; ``inject(fault, component)``; ``refuse(kind)``."""

    def __init__(self, name: str = "fake", extra_env: dict[str, str] | None = None, max_pods: int = 110,
                 node_labels: dict[str, str] | None = None):
        self.name, self.token = name, uuid.uuid4().hex
        # The one node's labels: a pod whose nodeSelector they don't satisfy stays Pending, Unschedulable.
        self.node_labels = {"kubernetes.io/hostname": f"{name}-node-1", "kubernetes.io/os": "linux",
                            **(node_labels or {})}
        self.max_pods = max_pods  # the node's capacity (the kubelet's default max-pods): beyond it pods stay Pending
        self.extra_env = extra_env or {}
        self.store: dict[tuple[str, str, str], dict] = {}  # (kind, namespace, name) → object
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.events: list[tuple[int, str, dict]] = []  # (resourceVersion, type, object) for watches
        self.version = itertools.count(1)
        self.calls: collections.Counter = collections.Counter()
        self.faults: dict[str, list[str]] = collections.defaultdict(list)
        self.refused: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen] = {}  # pod uid → its container's process
        self.pod_faults: dict[str, str | None] = {}
        self.pod_started: dict[str, float] = {}
        self.accounts: dict[str, tuple[str, str]] = {}  # a pod's ServiceAccount token → (namespace, name): RBAC
        self.root = Path(tempfile.mkdtemp(prefix=f"fakecluster-{name}-"))
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                        threading.Thread(target=self._control_loop, daemon=True)]
        for thread in self.threads:
            thread.start()

    @property
    def kubeconfig(self) -> dict:
        return {"apiVersion": "v1", "kind": "Config", "current-context": self.name,
                "clusters": [{"name": self.name, "cluster": {"server": self.url}}],
                "users": [{"name": f"{self.name}-user", "user": {"token": self.token}}],
                "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": f"{self.name}-user"}}]}

    def account_token(self, namespace: str, account: str) -> str:
        """The token of a ServiceAccount (one per account, made on first use), as its pods' token file holds."""
        with self.lock:
            for token, known in self.accounts.items():
                if known == (namespace, account):
                    return token
            token = uuid.uuid4().hex
            self.accounts[token] = (namespace, account)
            return token

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        for process in list(self.processes.values()):
            self._kill(process)
        shutil.rmtree(self.root, ignore_errors=True)

    pod_address = staticmethod(pod_address)

    # --- test controls ----------------------------------------------------------------------------------------

    def objects(self, kind: str, namespace: str | None = None) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(o) for (k, ns, _), o in self.store.items() if k == kind and namespace in (None, ns)]

    def inject(self, fault: str, component: str) -> None:
        """The next pod whose ``app.kubernetes.io/component`` label is ``component`` suffers ``fault``."""
        self.faults[component].append(fault)

    def refuse(self, kind: str, message: str = "the fake cluster was told to refuse this kind") -> None:
        self.refused[kind] = message

    # --- storage -------------------------------------------------------------------------------------------

    def _put(self, kind: str, obj: dict, event: str) -> dict:
        obj["metadata"]["resourceVersion"] = str(next(self.version))
        meta = obj["metadata"]
        self.store[(kind, meta["namespace"], meta["name"])] = obj
        self.events.append((int(meta["resourceVersion"]), event, copy.deepcopy(obj)))
        del self.events[:-2000]
        self.changed.notify_all()
        return obj

    def create(self, api_version: str, kind: str, namespace: str, body: dict) -> dict:
        meta = body.get("metadata") or {}
        name = meta.get("name") or ""
        if body.get("kind") not in (None, kind):
            raise Refused(400, "BadRequest", f"the body's kind {body.get('kind')!r} is not {kind}")
        if not DNS_LABEL.match(name):
            raise Refused(422, "Invalid", f'{kind} "{name}" is invalid: metadata.name: must be a DNS-1123 label')
        for key, value in (meta.get("labels") or {}).items():
            if len(str(value)) > 63:
                raise Refused(422, "Invalid", f'{kind} "{name}" is invalid: metadata.labels: {key}: must be no more '
                                              f'than 63 characters')
        with self.lock:
            if kind in self.refused:
                raise Refused(403, "Forbidden", f'{kind} "{name}" is forbidden: {self.refused[kind]}')
            if (kind, namespace, name) in self.store:
                raise Refused(409, "AlreadyExists", f'{kind.lower()}s "{name}" already exists')
            obj = copy.deepcopy(body)
            obj.update(apiVersion=api_version, kind=kind)
            obj["metadata"] = {**meta, "namespace": namespace, "uid": str(uuid.uuid4()), "creationTimestamp": now(),
                               "generation": 1}
            if kind == "Secret":  # the API server turns stringData into data
                data = {k: base64.b64encode(str(v).encode()).decode() for k, v in (obj.pop("stringData", {})).items()}
                obj["data"] = {**(obj.get("data") or {}), **data}
            if kind in ("Pod", "Job", "Deployment"):
                obj.setdefault("status", {"phase": "Pending"} if kind == "Pod" else {})
            if kind == "HorizontalPodAutoscaler":  # desiredReplicas is required: the controller fills it at once
                obj["status"] = {"currentReplicas": 0, "desiredReplicas": 0}
            if kind == "Service":
                obj["spec"].setdefault("clusterIP", "10.96.0.10")
                obj["spec"].setdefault("type", "ClusterIP")
            return copy.deepcopy(self._put(kind, obj, "ADDED"))

    def delete(self, kind: str, namespace: str, name: str) -> dict:
        with self.lock:
            obj = self.store.pop((kind, namespace, name), None)
            if obj is None:
                raise Refused(404, "NotFound", f'{kind.lower()}s "{name}" not found')
            self.events.append((next(self.version), "DELETED", obj))
            self.changed.notify_all()
            process = self.processes.pop(obj["metadata"]["uid"], None)
            uid = obj["metadata"]["uid"]
            owned = [(k, ns, n) for (k, ns, n), o in self.store.items()
                     if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])]
        if process is not None:
            self._kill(process)
        for k, ns, n in owned:  # the garbage collector: what the object owned goes with it
            try:
                self.delete(k, ns, n)
            except Refused:
                pass
        return obj

    # --- the HTTP side -------------------------------------------------------------------------------------

    def _handler(self):
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, body, content_type="application/json"):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _dispatch(self, method: str):
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                scheme, _, bearer = (self.headers.get("Authorization") or "").partition(" ")
                bearer = bearer.strip() if scheme.lower() == "bearer" else ""
                if bearer != cluster.token and bearer not in cluster.accounts:
                    return self._send(401, status_body(401, "Unauthorized", "Unauthorized"))
                found = PATH.match(url.path)
                key = (found.group("g") or "", found.group("cv") or found.group("v"), found.group("plural")) \
                    if found else None
                if key not in RESOURCES:
                    return self._send(404, status_body(404, "NotFound", f"the server could not find {url.path}"))
                kind, namespace, name, sub = RESOURCES[key], found.group("ns"), found.group("name"), found.group("sub")
                api_version = f"{key[0]}/{key[1]}" if key[0] else key[1]
                watching = method == "GET" and not name and query.get("watch") in ("true", "1")
                if bearer in cluster.accounts:  # a pod's ServiceAccount: only what its Roles allow
                    verb = {"POST": "create", "DELETE": "delete"}.get(method) or (
                        "get" if name else "watch" if watching else "list")
                    with cluster.lock:
                        denied = forbidden(cluster, cluster.accounts[bearer], verb, key[0],
                                           key[2] + (f"/{sub}" if sub else ""), namespace, name)
                    if denied:
                        return self._send(403, status_body(403, "Forbidden", denied))
                cluster.calls[(method if not watching else "WATCH", kind)] += 1
                try:
                    if method == "POST" and not name:
                        return self._send(201, cluster.create(api_version, kind, namespace, json.loads(raw or b"{}")))
                    if method == "DELETE" and name:
                        gone = cluster.delete(kind, namespace, name)
                        if kind in ("Pod", "Service", "ServiceAccount"):  # as the real server: the object
                            return self._send(200, gone)
                        return self._send(200, {"apiVersion": "v1", "kind": "Status", "metadata": {},
                                                "status": "Success", "details": {"name": name, "kind": key[2]}})
                    if method != "GET":
                        raise Refused(405, "MethodNotAllowed", f"{method} is not supported here")
                    if watching:
                        return self._watch(kind, namespace, query)
                    if not name:
                        return self._send(200, cluster.list(api_version, kind, namespace, query))
                    with cluster.lock:
                        obj = copy.deepcopy(cluster.store.get((kind, namespace, name)))
                    if obj is None:
                        raise Refused(404, "NotFound", f'{key[2]} "{name}" not found')
                    if sub == "log":
                        return self._send(200, cluster.log(obj, query.get("tailLines")), "text/plain")
                    return self._send(200, obj)
                except Refused as exc:
                    return self._send(exc.body["code"], exc.body)

            def _watch(self, kind, namespace, query):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                since = int(query.get("resourceVersion") or 0)
                deadline = time.monotonic() + float(query.get("timeoutSeconds") or 30)
                with cluster.lock:
                    backlog = [(int(o["metadata"]["resourceVersion"]), "ADDED", copy.deepcopy(o))
                               for (k, ns, _), o in cluster.store.items() if k == kind and ns == namespace] \
                        if not since else [e for e in cluster.events if e[0] > since]
                    since = max([since, *(e[0] for e in cluster.events)])
                while True:
                    for _, event, obj in backlog:
                        if obj["kind"] == kind and obj["metadata"]["namespace"] == namespace and cluster.selected(
                                obj, query):
                            line = json.dumps({"type": event, "object": obj}).encode() + b"\n"
                            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                            self.wfile.flush()
                    with cluster.lock:
                        left = deadline - time.monotonic()
                        if left <= 0 or cluster.stopping.is_set():
                            break
                        cluster.changed.wait(min(left, 0.5))
                        backlog = [e for e in cluster.events if e[0] > since]
                        since = max([since, *(e[0] for e in backlog)])
                self.wfile.write(b"0\r\n\r\n")

            def do_GET(self):
                self._dispatch("GET")

            def do_POST(self):
                self._dispatch("POST")

            def do_DELETE(self):
                self._dispatch("DELETE")

            def do_PUT(self):
                self._dispatch("PUT")

        return Handler

    def selected(self, obj: dict, query: dict) -> bool:
        field = query.get("fieldSelector") or ""
        if field.startswith("metadata.name=") and obj["metadata"]["name"] != field.split("=", 1)[1]:
            return False
        return matches(obj["metadata"].get("labels") or {}, query.get("labelSelector", ""))

    def list(self, api_version: str, kind: str, namespace: str, query: dict) -> dict:
        with self.lock:
            items = [copy.deepcopy(o) for (k, ns, _), o in sorted(self.store.items())
                     if k == kind and ns == namespace and self.selected(o, query)]
            version = str(max([0, *(e[0] for e in self.events)]))
        return {"apiVersion": api_version, "kind": f"{kind}List", "metadata": {"resourceVersion": version},
                "items": items}

    def log(self, pod: dict, tail: str | None) -> str:
        path = self.root / pod["metadata"]["name"] / "log"
        text = path.read_text(errors="replace") if path.is_file() else ""
        if tail is not None:
            text = "".join(text.splitlines(keepends=True)[-int(tail):])
        return text

    # --- controllers and kubelet ---------------------------------------------------------------------------

    def _control_loop(self) -> None:
        while not self.stopping.wait(0.05):
            try:
                reconcile(self)
            except Exception as exc:  # a controller's bug must show, not silently stop the cluster
                sys.stderr.write(f"fake cluster {self.name}: controller error: {type(exc).__name__}: {exc}\n")

    def _kill(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)

    def probe(self, address: str, port: int, path: str) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
        try:
            with opener.open(f"http://{address}:{port}{path}", timeout=1) as answer:
                return 200 <= answer.status < 400
        except OSError:
            return False
