"""The kubernetes runtime's functions, seen from the executor service in the cluster (docs/runtime.md §6).

On that runtime the portal deploys a function itself (``executors.cluster.functions``: a Deployment of the
function server, its Secret and Service); the executor service beside it answers ``POST /functions/<name>/call``,
``/management`` and ``GET /functions/<name>/logs`` by reaching the function's **ready pods**, with the
service's own in-cluster identity (its ServiceAccount: read pods, their logs, and secrets, in its namespace):

* the pods are those labelled with this executor and the function (``LABEL_EXECUTOR``, ``LABEL_FUNCTION``: the
  labels ``executors.cluster.manifests`` puts on them); a pod is ready when it runs, has an address and its
  ``Ready`` condition is true (its readiness probe answers), and is not being deleted. The list is kept
  ``POD_CACHE_SECONDS``, and dropped when a pod doesn't answer;
* each replica answers only ``Authorization: Bearer <the function's token>``: the token is read from the Secret
  the pod mounts as its spec (``spec.json``), and read again when a replica refuses it (a redeployment);
* calls go to the ready pods in turn; management to every ready pod (or one: ``target: "one"``), one result per
  pod ``{"replica": <pod name>, "success", "data" | "error_type", "message"}`` as the local runtime's; logs are
  every pod's log (the pods' log API), each line tagged with its pod, by time.

Chosen by ``POLICYGRID_FUNCTION_BACKEND=kubernetes`` (create-infra's Deployment sets it, with
``POLICYGRID_KUBERNETES_NAMESPACE`` and ``POLICYGRID_EXECUTOR_ID``); the local supervisor is the default.
The API client is the official ``kubernetes`` one (the SDK's ``kubernetes`` extra), configured the in-cluster
way (``KUBERNETES_SERVICE_HOST``/``PORT``, the ServiceAccount's token, re-read as it rotates, and CA);
``POLICYGRID_KUBERNETES_API``, ``POLICYGRID_KUBERNETES_TOKEN_FILE`` and ``POLICYGRID_KUBERNETES_CA_FILE``
override the address and the files (a cluster reached without TLS, a token mounted elsewhere).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import time
from typing import Any

from ..errors import InputInvalid, NotFound, PolicyGridError, Timeout, Unavailable
from ..extras import require
from ..wire import error_envelope
from .functions import management_request, replica_result

logger = logging.getLogger("policygrid.executor.cluster_functions")

LABEL_EXECUTOR = "policygrid.io/executor"  # as executors.cluster.manifests (a test holds them equal)
LABEL_FUNCTION = "policygrid.io/function"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SPEC_VOLUME = "spec"  # the pod's volume of its Secret; the token is in its spec.json
DEFAULT_PORT = 8080
POD_CACHE_SECONDS = 1.0
MAX_LOG_LINES = 5000


def in_cluster_client(env: dict[str, str]):
    """An ``ApiClient`` of the pod's ServiceAccount (a client object of its own: the global default is untouched)."""
    kubernetes = require("kubernetes", "kubernetes", "functions on the kubernetes runtime")
    from kubernetes.config.incluster_config import InClusterConfigLoader

    configuration = kubernetes.client.Configuration()
    loader = InClusterConfigLoader(
        token_filename=env.get("POLICYGRID_KUBERNETES_TOKEN_FILE") or f"{SERVICE_ACCOUNT_DIR}/token",
        cert_filename=env.get("POLICYGRID_KUBERNETES_CA_FILE") or f"{SERVICE_ACCOUNT_DIR}/ca.crt", environ=env)
    loader.load_and_set(configuration)
    if env.get("POLICYGRID_KUBERNETES_API"):
        # The loader sets its address again with each token it reads (its refresh hook): change its own.
        loader.host = configuration.host = env["POLICYGRID_KUBERNETES_API"].rstrip("/")
        if loader.host.startswith("http://"):
            loader.ssl_ca_cert = configuration.ssl_ca_cert = None  # no TLS: no CA to load
    return kubernetes.client.ApiClient(configuration)


class Pod:
    """One replica: its pod's name, address, readiness, restarts and the Secret holding its token."""

    def __init__(self, item) -> None:
        meta, spec, status = item.metadata, item.spec, item.status
        self.name = meta.name
        self.ip = status.pod_ip if status else None
        conditions = (status.conditions or []) if status else []
        self.ready = bool(status and status.phase == "Running" and self.ip and not meta.deletion_timestamp
                          and any(c.type == "Ready" and c.status == "True" for c in conditions))
        statuses = (status.container_statuses or []) if status else []
        self.restarts = sum(s.restart_count or 0 for s in statuses)
        waiting = [s.state.waiting for s in statuses if s.state and s.state.waiting]
        self.message = "; ".join(f"{w.reason}: {w.message or ''}".strip(": ") for w in waiting if w.reason)
        self.secret = next((v.secret.secret_name for v in spec.volumes or [] if v.name == SPEC_VOLUME and v.secret),
                           None)
        ports = [p.container_port for c in spec.containers for p in c.ports or [] if p.name == "http"]
        self.url = f"http://{self.ip}:{ports[0] if ports else DEFAULT_PORT}"

    def describe(self) -> dict[str, Any]:
        state = "ready" if self.ready else ("failed" if "BackOff" in self.message else "starting")
        return {"replica": self.name, "state": state, "restarts": self.restarts, "message": self.message}


class ClusterFunctions:
    """The service's functions when they are Deployments in its cluster: ``describe``/``call``/``manage``/``logs``/
    ``stats`` as ``FunctionSupervisor``'s; deploying and removing are the portal's (it creates the objects)."""

    def __init__(self, namespace: str, executor_id: str, *, env: dict[str, str], timeout_seconds: float,
                 api_client=None) -> None:
        if not namespace or not executor_id:
            raise InputInvalid("the kubernetes function backend needs POLICYGRID_KUBERNETES_NAMESPACE and "
                               "POLICYGRID_EXECUTOR_ID", errors={"POLICYGRID_FUNCTION_BACKEND": ["kubernetes"]})
        self.namespace = namespace
        self.executor_id = executor_id
        self.env = env
        self.timeout_seconds = timeout_seconds
        self._api = api_client
        self._pods: dict[str, tuple[float, list[Pod]]] = {}
        self._tokens: dict[str, str] = {}
        self._turns: dict[str, itertools.count] = {}
        self._http = None

    # --- the cluster --------------------------------------------------------------------------------------

    def _core(self):
        from kubernetes import client

        if self._api is None:
            self._api = in_cluster_client(self.env)
        return client.CoreV1Api(self._api)

    async def _ask(self, what: str, method: str, *args, **kwargs):
        from kubernetes.client.rest import ApiException

        try:
            return await asyncio.to_thread(lambda: getattr(self._core(), method)(*args, **kwargs))
        except ApiException as exc:
            reason = exc.reason
            try:
                reason = json.loads(exc.body).get("message") or reason
            except (TypeError, ValueError):
                pass
            raise Unavailable(f"the cluster refused {what} to this executor ({exc.status}): {reason}") from None
        except Exception as exc:  # noqa: BLE001 - the API server unreachable, a bad in-cluster configuration
            raise Unavailable(f"the cluster's API could not be reached for {what}: {type(exc).__name__}: {exc}") \
                from None

    async def pods(self, name: str, *, fresh: bool = False) -> list[Pod]:
        """The function's pods (ready or not), by name; NotFound when it has none."""
        kept = self._pods.get(name)
        if kept is not None and not fresh and time.monotonic() - kept[0] < POD_CACHE_SECONDS:
            return kept[1]
        selector = f"{LABEL_EXECUTOR}={self.executor_id},{LABEL_FUNCTION}={name}"
        found = await self._ask(f"listing the pods of function {name}", "list_namespaced_pod", self.namespace,
                                label_selector=selector)
        pods = sorted((Pod(item) for item in found.items), key=lambda pod: pod.name)
        if not pods:
            self._pods.pop(name, None)
            raise NotFound(f"no function {name} on this executor (no pod of it in namespace {self.namespace})")
        self._pods[name] = (time.monotonic(), pods)
        return pods

    async def ready(self, name: str) -> list[Pod]:
        ready = [pod for pod in await self.pods(name) if pod.ready]
        if not ready:
            raise PolicyGridError(f"function {name} has no ready replica", status=409, error_type="conflict")
        return ready

    async def token(self, pod: Pod, *, fresh: bool = False) -> str:
        if pod.secret is None:
            raise Unavailable(f"pod {pod.name} mounts no spec Secret: it is not a function replica of PolicyGrid")
        if fresh or pod.secret not in self._tokens:
            secret = await self._ask(f"reading the function's Secret {pod.secret}", "read_namespaced_secret",
                                     pod.secret, self.namespace)
            try:
                spec = json.loads(base64.b64decode((secret.data or {})["spec.json"]))
                self._tokens[pod.secret] = str(spec["token"])
            except (KeyError, ValueError, TypeError):
                raise Unavailable(f"the Secret {pod.secret} holds no function spec with a token") from None
        return self._tokens[pod.secret]

    # --- the interface of the service ---------------------------------------------------------------------

    async def describe(self, name: str) -> dict[str, Any]:
        replicas = [pod.describe() for pod in await self.pods(name, fresh=True)]
        states = {replica["state"] for replica in replicas}
        state = "ready" if "ready" in states else ("failed" if states == {"failed"} else "deploying")
        return {"name": name, "state": state, "replicas": replicas,
                "message": "; ".join(sorted({r["message"] for r in replicas if r["message"]}))}

    async def call(self, name: str, raw: bytes) -> tuple[int, bytes]:
        ready = await self.ready(name)
        turn = next(self._turns.setdefault(name, itertools.count()))
        pod = ready[turn % len(ready)]
        status, answer, delivered = await self._forward(name, pod, "/call", raw)
        if not delivered and len(ready) > 1:  # never reached it (refused connection): the next pod takes it
            pod = ready[(turn + 1) % len(ready)]
            status, answer, _ = await self._forward(name, pod, "/call", raw)
        return status, answer

    async def manage(self, name: str, raw: bytes) -> list[dict[str, Any]]:
        target, payload = management_request(raw)
        pods = await self.ready(name)
        if target == "one":
            pods = [pods[next(self._turns.setdefault(name, itertools.count())) % len(pods)]]
        answers = await asyncio.gather(*(self._forward(name, pod, "/management", payload) for pod in pods))
        return [replica_result(pod.name, answer) for pod, (_, answer, _) in zip(pods, answers, strict=True)]

    async def logs(self, name: str, tail: int | None) -> str:
        pods = await self.pods(name, fresh=True)
        keep = MAX_LOG_LINES if tail is None else tail

        async def one(pod: Pod) -> list[str]:
            if not keep:
                return []
            text = await self._ask(f"reading the log of pod {pod.name}", "read_namespaced_pod_log", pod.name,
                                   self.namespace, tail_lines=keep)
            lines = []
            for line in (text or "").splitlines():
                stamp, _, rest = line.partition(" ")
                lines.append(f"{stamp} [{pod.name}] {rest}")
            return lines

        lines = sorted(line for found in await asyncio.gather(*(one(pod) for pod in pods)) for line in found)
        lines = lines[-keep:] if keep else []
        return "\n".join(lines) + ("\n" if lines else "")

    def stats(self) -> dict[str, Any]:
        pods = [pod for _, found in self._pods.values() for pod in found]
        return {"backend": "kubernetes", "namespace": self.namespace, "functions": len(self._pods),
                "replicas": len(pods), "ready_replicas": sum(1 for pod in pods if pod.ready)}

    async def describe_all(self) -> list[dict[str, Any]]:
        return [await self.describe(name) for name in sorted(self._pods)]

    def deploy(self, name: Any, replicas: Any, spec: dict[str, Any]):
        raise PolicyGridError("functions on this executor run in its cluster: the portal deploys them (a Deployment "
                              "per function), not POST /functions", status=409, error_type="conflict")

    async def remove(self, name: str):
        raise PolicyGridError("functions on this executor run in its cluster: the portal removes them",
                              status=409, error_type="conflict")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._api is not None:
            await asyncio.to_thread(self._api.close)

    # --- the replicas -------------------------------------------------------------------------------------

    def _client(self):
        if self._http is None:
            import aiohttp

            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256, limit_per_host=64),
                                               timeout=aiohttp.ClientTimeout(total=self.timeout_seconds + 5))
        return self._http

    async def _forward(self, name: str, pod: Pod, path: str, raw: bytes) -> tuple[int, bytes, bool]:
        """(status, body, delivered): one request to a pod, with its token (read again once if refused)."""
        import aiohttp

        for attempt in range(2):
            headers = {"Authorization": f"Bearer {await self.token(pod, fresh=attempt > 0)}",
                       "Content-Type": "application/json"}
            try:
                async with self._client().post(pod.url + path, data=raw, headers=headers) as answer:
                    status, body = answer.status, await answer.read()
            except aiohttp.ClientConnectorError as exc:
                self._pods.pop(name, None)  # the list is stale: read it again next time
                error: PolicyGridError = Unavailable(f"function {name} pod {pod.name} did not answer: {exc}")
                return error.status, json.dumps(error_envelope(error)).encode(), False
            except aiohttp.ClientError as exc:
                self._pods.pop(name, None)
                error = Unavailable(f"function {name} pod {pod.name} did not answer: {exc}")
                return error.status, json.dumps(error_envelope(error)).encode(), True
            except TimeoutError:
                error = Timeout(f"function {name} pod {pod.name} did not answer in time")
                return error.status, json.dumps(error_envelope(error)).encode(), True
            if status != 401:
                break
        return status, body, True


def from_env(env: dict[str, str], timeout_seconds: float) -> ClusterFunctions:
    return ClusterFunctions(env.get("POLICYGRID_KUBERNETES_NAMESPACE", ""), env.get("POLICYGRID_EXECUTOR_ID", ""),
                            env=env, timeout_seconds=timeout_seconds)
