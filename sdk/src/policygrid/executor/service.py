"""The executor service's HTTP API (docs/runtime.md §5): ``GET /health``, ``POST /execute_policy``, ``PUT /packages/<digest>``.

A bare ASGI application (no framework: the request path is a few dictionary look-ups), served by uvicorn.
Every request must carry the shared secret (``Authorization: Bearer <POLICYGRID_EXECUTOR_TOKEN>``), compared
in constant time; ``GET /health`` without it answers only the public counters. Answers use the envelope and
error types of docs/api.md §1 (``policygrid.wire``); the body of ``POST /execute_policy`` is
``policygrid.wire.EXECUTE_REQUEST_SCHEMA``.

The portal's protocol never makes the service call back into the portal while the portal waits:

1. ``POST /execute_policy`` with ``record`` (``policygrid.wire.RECORD_FIELDS`` of the policy) and ``release``
   (``{"key_id", "signature"}``, or null). A release is verified against the signing keys the service holds
   (an unknown key id or a bad signature: ``integrity``, 500, and the keys are read again in the background).
   A null release is accepted only while signature verification is off, or for ``"dry_run": true``. With
   verification on, every such call also carries ``grant``: the portal's signed, short-lived authorisation of
   exactly this call (``policygrid.signing.grant_statement``: URI, package digest, dry run, expiry), checked
   against the same keys, so a stolen executor credential alone runs nothing.
2. If the service doesn't hold the package of ``record.code_digest`` it answers at once 409
   ``{"success": false, "error_type": "package_required", "message", "code_digest"}``. The caller uploads it
   with ``PUT /packages/<code_digest>`` (the archive's bytes, ``application/octet-stream``; 201 created, 200
   already held, 400 wrong digest, 413 too large) and repeats the call (``policygrid.wire.execute_with_upload``).

A body without ``record`` is resolved through the service's own portal client (``GET /policy/<uri>``, cached
by ``policy_stamp``), for direct clients of the executor; with verification on, only an approved or
deprecated version runs that way.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..asgi import bearer_matches, read_body, refusal, send_json
from ..cache import PackageCache
from ..client import PortalClient
from ..errors import InputInvalid, NotFound, PackageTooLarge, PolicyGridError, Unavailable
from ..fetch import FetchOptions
from ..wire import error_envelope, parse_execute_request
from ..workers import PoolLimits, WorkerPool
from .config import ExecutorConfig
from .functions import FunctionSupervisor

if TYPE_CHECKING:
    from .cluster_functions import ClusterFunctions
from .jobs import JobSupervisor, parse_tail
from .keys import SigningKeys
from .store import PolicyStore

logger = logging.getLogger("policygrid.executor")


class ExecutorService:
    """The ASGI callable. ``pool`` and ``store`` are created at start-up (the ASGI lifespan)."""

    def __init__(self, config: ExecutorConfig) -> None:
        if not config.token:
            raise InputInvalid("the executor service needs a shared secret: set POLICYGRID_EXECUTOR_TOKEN",
                               errors={"POLICYGRID_EXECUTOR_TOKEN": ["required"]})
        self.config = config
        self._token = f"Bearer {config.token}".encode()
        self.pool: WorkerPool | None = None
        self.store: PolicyStore | None = None
        self.keys: SigningKeys | None = None
        self.jobs: JobSupervisor | None = None
        self.functions: FunctionSupervisor | ClusterFunctions | None = None
        self.started_at = time.time()
        self.calls = 0
        self.failures = 0

    # --- lifespan -----------------------------------------------------------------------------------------

    async def startup(self) -> None:
        config = self.config
        # No portal is fine: every call then brings its record (and the keys come from a file).
        client = PortalClient(config.portal_url, config.portal_token or "", timeout=10,
                              public_url=config.portal_public_url) if config.portal_url else None
        cache = PackageCache(config.cache_dir) if config.cache_dir else PackageCache()
        self.keys = SigningKeys(client, config.signing_keys_file, config.keys_refresh_seconds)
        if config.verify_signatures:
            await self.keys.start()
        self.store = PolicyStore(client, cache, client.fetch_options() if client else FetchOptions(), self.keys,
                                 config.record_ttl_seconds, verify_signatures=config.verify_signatures)
        self.pool = WorkerPool(self.pool_limits())
        await self.pool.start()
        # Jobs run in runners of their own, with this pool's protections; their CPU budget is their timeout.
        self.jobs = JobSupervisor(dataclasses.replace(self.pool.limits, cpu_seconds=config.max_job_timeout_seconds),
                                  portal_url=config.portal_url, max_jobs=config.max_jobs, env=dict(os.environ))
        await self.jobs.start()
        self.functions = self.function_backend()
        logger.warning("policygrid executor %s on http://%s:%s: %d workers, portal %s, signing keys %s",
                       __version__, config.host, config.port, config.workers, client.base_url if client else "none",
                       self.keys.stats() if config.verify_signatures else "not used (verification off)")
        for name, note in sorted(self.protections().items()):
            level = logging.WARNING if "NOT" in note or "not enforced" in note else logging.INFO
            logger.log(level, "protection %-28s %s", name + ":", note)

    def function_backend(self) -> FunctionSupervisor | ClusterFunctions:
        """Where the functions' replicas are: this service's own processes (the default), or the ready pods of
        their Deployments in its cluster (``POLICYGRID_FUNCTION_BACKEND=kubernetes``, set by create-infra)."""
        env = dict(os.environ)
        backend = env.get("POLICYGRID_FUNCTION_BACKEND") or "local"
        if backend == "kubernetes":
            from .cluster_functions import from_env

            return from_env(env, self.config.timeout_seconds)
        if backend != "local":
            raise InputInvalid(f"POLICYGRID_FUNCTION_BACKEND: 'local' or 'kubernetes', not {backend!r}",
                               errors={"POLICYGRID_FUNCTION_BACKEND": ["local or kubernetes"]})
        return FunctionSupervisor(self.pool.limits, env=env)

    def pool_limits(self) -> PoolLimits:
        config = self.config
        return PoolLimits(
            workers=config.workers, timeout_seconds=config.timeout_seconds, cpu_seconds=config.cpu_seconds,
            memory_mb=config.memory_mb, max_processes=config.max_processes,
            max_result_bytes=config.max_result_bytes, landlock=config.landlock, preload=config.preload,
            pass_env=config.pass_env, redis_url=config.redis_url, tmp_root=config.tmp_dir,
            sandbox_uids=config.sandbox_uids,
        )

    async def shutdown(self) -> None:
        if self.functions is not None:
            await self.functions.close()
        if self.jobs is not None:
            await self.jobs.close()
        if self.keys is not None:
            await self.keys.close()
        if self.pool is not None:
            await self.pool.close()

    def protections(self) -> dict[str, str]:
        return dict(self.pool.protections) if self.pool is not None else {}

    # --- ASGI ---------------------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    logger.exception("the executor service failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        path = scope["path"]
        method = scope["method"]
        authorised = bearer_matches(scope, self._token)
        try:
            if path == "/execute_policy":
                if method != "POST":
                    raise refusal(405, "use POST for /execute_policy")
                if not authorised:
                    raise refusal(401, _UNAUTHORISED)
                status, payload = await self.execute(await read_body(receive, self.config.max_body_bytes))
            elif path.startswith("/packages/"):
                if method != "PUT":
                    raise refusal(405, "use PUT for /packages/<code_digest>")
                if not authorised:
                    raise refusal(401, _UNAUTHORISED)
                status, payload = await self.put_package(path[len("/packages/"):], scope, receive)
            elif path == "/jobs" or path.startswith("/jobs/"):
                if not authorised:
                    raise refusal(401, _UNAUTHORISED)
                status, payload = await self.job_route(method, path, scope, receive)
            elif path == "/functions" or path.startswith("/functions/"):
                if not authorised:
                    raise refusal(401, _UNAUTHORISED)
                status, payload = await self.function_route(method, path, scope, receive)
            elif path == "/health":
                if method not in ("GET", "HEAD"):
                    raise refusal(405, "use GET for /health")
                status, payload = 200, json.dumps(self.health(detailed=authorised)).encode()
            else:
                raise NotFound(f"no route {method} {path} on this executor (it serves /health, "
                               "/execute_policy, /packages/<code_digest>, /jobs and /functions)")
        except PolicyGridError as exc:
            status, payload = exc.status, json.dumps(error_envelope(exc), default=str).encode()
        await send_json(send, status, payload)

    # --- the routes ---------------------------------------------------------------------------------------

    async def resolve(self, call, purpose: str = "call"):
        """The package a call runs: from the record and release the portal sent (with its grant for this
        ``purpose``: a call, ``job:<id>``, ``function:<name>``), or by URI."""
        if call.record is not None:
            return await self.store.resolve_record(call.record, call.release, call.dry_run, call.grant, purpose)
        return await self.store.resolve(call.policy_rule_uri, call.policy_stamp)

    async def execute(self, raw: bytes) -> tuple[int, bytes]:
        """``POST /execute_policy``: (status, envelope bytes)."""
        self.calls += 1
        try:
            body = parse_execute_request(raw, max_timeout=self.config.max_timeout_seconds)
            timeout = body.timeout_seconds or self.config.timeout_seconds
            resolved = await self.resolve(body)
            request = {"rk": resolved.record_key, "pkg": str(resolved.package_dir),
                       "req": str(resolved.requirements_dir) if resolved.requirements_dir else None,
                       "uri": resolved.uri, "input_data": body.input_data,
                       "settings": body.settings, "parameters": body.parameters, "domain": _caller(body)}
            output: dict[str, Any] | None = {} if body.capture_output else None
            result = await self.pool.run(resolved.digest, request, resolved.record, resolved.record_key, timeout,
                                         output=output)
        except PolicyGridError as exc:
            self.failures += 1
            logger.info("execute_policy failed: %s: %s", exc.error_type, exc.message[:300])
            return exc.status, json.dumps(error_envelope(exc), default=str).encode()
        if output is not None:
            return 200, b'{"success":true,"data":' + result + b',"output":' + json.dumps(output).encode() + b"}"
        return 200, b'{"success":true,"data":' + result + b"}"

    async def job_route(self, method: str, path: str, scope, receive) -> tuple[int, bytes]:
        """``POST /jobs``, ``GET``/``DELETE /jobs/<id>``, ``GET /jobs/<id>/logs?tail=N`` (the local runtime)."""
        parts = path.split("/")[2:]
        if path == "/jobs":
            if method != "POST":
                raise refusal(405, "use POST for /jobs")
            return await self.launch_job(await read_body(receive, self.config.max_body_bytes))
        if len(parts) == 2 and parts[1] == "logs":
            if method not in ("GET", "HEAD"):
                raise refusal(405, "use GET for /jobs/<id>/logs")
            text = self.jobs.logs(parts[0], parse_tail(scope.get("query_string", b"")))
            return 200, json.dumps({"success": True, "data": text}).encode()
        if len(parts) != 1:
            raise NotFound(f"no route {method} {path} on this executor")
        if method == "DELETE":
            return 200, json.dumps({"success": True, "data": self.jobs.cancel(parts[0]).describe()}).encode()
        if method in ("GET", "HEAD"):
            return 200, json.dumps({"success": True, "data": self.jobs.get(parts[0]).describe()}).encode()
        raise refusal(405, "use GET or DELETE for /jobs/<id>")

    async def launch_job(self, raw: bytes) -> tuple[int, bytes]:
        """``POST /jobs``: the body of ``/execute_policy`` (record, release, grant: authorised the same way) plus
        ``job: {"job_id", "token"}``; the policy's package is prepared here, the job runs in a runner of its own."""
        try:
            body = json.loads(raw)
        except ValueError:
            raise InputInvalid("the request body is not valid JSON") from None
        job = body.pop("job", None) if isinstance(body, dict) else None
        if not isinstance(job, dict) or set(job) - {"job_id", "token"}:
            raise InputInvalid("invalid request: job: {\"job_id\", \"token\"} is required",
                               errors={"job": ["an object with job_id and token"]})
        call = parse_execute_request(body, max_timeout=self.config.max_job_timeout_seconds)
        resolved = await self.resolve(call, f"job:{job.get('job_id')}")
        spec = {"record": resolved.record, "package_dir": str(resolved.package_dir),
                "requirements_dir": str(resolved.requirements_dir) if resolved.requirements_dir else None,
                "input_data": call.input_data, "settings": call.settings, "parameters": call.parameters,
                "timeout_seconds": call.timeout_seconds or self.config.timeout_seconds}
        launched = self.jobs.submit(job.get("job_id"), job.get("token"), spec, spec["timeout_seconds"])
        return 200, json.dumps({"success": True, "data": launched.describe()}).encode()

    async def function_route(self, method: str, path: str, scope, receive) -> tuple[int, bytes]:
        """``POST /functions``; ``GET``/``DELETE /functions/<name>``; ``POST /functions/<name>/call`` and
        ``/management``; ``GET /functions/<name>/logs?tail=N`` (the local runtime's replicas, or the function's ready
        pods in the service's cluster: ``function_backend``)."""
        parts = path.split("/")[2:]
        functions = self.functions
        if path == "/functions":
            if method == "POST":
                return await self.deploy_function(await read_body(receive, self.config.max_body_bytes))
            if method in ("GET", "HEAD"):
                return 200, _ok(await functions.describe_all())
            raise refusal(405, "use POST (deploy) or GET (list) for /functions")
        if len(parts) == 2 and parts[1] in ("call", "management", "logs"):
            wanted = "GET" if parts[1] == "logs" else "POST"
            if method != wanted and not (wanted == "GET" and method == "HEAD"):
                raise refusal(405, f"use {wanted} for /functions/<name>/{parts[1]}")
            if parts[1] == "logs":
                return 200, _ok(await functions.logs(parts[0], parse_tail(scope.get("query_string", b""))))
            body = await read_body(receive, self.config.max_body_bytes)
            if parts[1] == "call":
                return await functions.call(parts[0], body)
            return 200, _ok(await functions.manage(parts[0], body))
        if len(parts) != 1:
            raise NotFound(f"no route {method} {path} on this executor")
        if method == "DELETE":
            return 200, _ok((await functions.remove(parts[0])).describe())
        if method in ("GET", "HEAD"):
            return 200, _ok(await functions.describe(parts[0]))
        raise refusal(405, "use GET or DELETE for /functions/<name>")

    async def deploy_function(self, raw: bytes) -> tuple[int, bytes]:
        """``POST /functions``: the body of ``/execute_policy`` (record, release, grant: authorised the same way;
        ``input_data`` null) plus ``function: {"name", "replicas"}``; the replicas start in the background."""
        try:
            body = json.loads(raw)
        except ValueError:
            raise InputInvalid("the request body is not valid JSON") from None
        function = body.pop("function", None) if isinstance(body, dict) else None
        if not isinstance(function, dict) or set(function) - {"name", "replicas"}:
            raise InputInvalid("invalid request: function: {\"name\", \"replicas\"} is required",
                               errors={"function": ["an object with name and replicas"]})
        call = parse_execute_request(body, max_timeout=self.config.max_timeout_seconds)
        resolved = await self.resolve(call, f"function:{function.get('name')}")
        spec = {"record": resolved.record, "package_dir": str(resolved.package_dir),
                "requirements_dir": str(resolved.requirements_dir) if resolved.requirements_dir else None,
                "settings": call.settings, "parameters": call.parameters,
                "timeout_seconds": self.config.timeout_seconds}
        deployed = self.functions.deploy(function.get("name"), function.get("replicas", 1), spec)
        return 200, _ok(deployed.describe())

    async def put_package(self, digest: str, scope, receive) -> tuple[int, bytes]:
        """``PUT /packages/<code_digest>``: 201 when unpacked now, 200 when already held."""
        limit = self.config.max_package_bytes
        too_large = PackageTooLarge(f"the package is larger than the {limit} bytes this executor accepts",
                                    errors={"code_digest": [f"larger than {limit} bytes"]})
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        try:
            data = await read_body(receive, limit)
        except PolicyGridError:  # the body outgrew the limit on the way (no or a wrong Content-Length)
            raise too_large from None
        digest, created = await self.store.put_package(digest, data)
        envelope = {"success": True, "data": {"code_digest": digest, "created": created}}
        return (201 if created else 200), json.dumps(envelope).encode()

    def health(self, *, detailed: bool) -> dict[str, Any]:
        stats = self.pool.stats() if self.pool is not None else {"workers": 0, "busy": 0, "queued": 0, "live": 0}
        trouble = []
        if self.pool is None or stats["live"] == 0:
            trouble.append("no live worker")
        elif stats["queued"] > self.config.degraded_queue_factor * max(1, stats["workers"]):
            trouble.append(f"{stats['queued']} calls queued")
        body: dict[str, Any] = {
            "status": "degraded" if trouble else "ok",
            "version": __version__,
            "workers": stats["workers"],
            "busy": stats["busy"],
            "queued": stats["queued"],
            "jobs": self.jobs.stats() if self.jobs is not None else {},
            "functions": self.functions.stats() if self.functions is not None else {},
            "cache": self.store.stats() if self.store is not None and detailed else {
                "records": self.store.stats()["records"] if self.store else 0},
        }
        if trouble:
            body["trouble"] = trouble
        if detailed:
            body.update({
                "pool": stats,
                "protections": self.protections(),
                "limits": {"timeout_seconds": self.config.timeout_seconds, "cpu_seconds": self.config.cpu_seconds,
                           "memory_mb": self.config.memory_mb, "max_processes": self.config.max_processes,
                           "max_result_bytes": self.config.max_result_bytes},
                "calls": self.calls, "failures": self.failures,
                "uptime_seconds": round(time.time() - self.started_at, 1),
                "context_store": "redis" if self.config.redis_url else "memory (per call)",
            })
        return body


def _caller(call) -> str:
    """Whose call this is (workers/domains.py): the caller the portal signed into the call's grant (checked in
    ``resolve`` when signatures are verified), else this service's own credential's holder."""
    statement = call.grant.get("statement") if isinstance(call.grant, dict) else None
    caller = statement.get("caller") if isinstance(statement, dict) else None
    return f"caller:{caller}" if isinstance(caller, str) and caller else "direct"


def _ok(data: Any) -> bytes:
    return json.dumps({"success": True, "data": data}, default=str).encode()


_UNAUTHORISED = ("this executor accepts only its callers' requests: send 'Authorization: Bearer <the executor's "
                 "shared secret>'")


def create_app(config: ExecutorConfig | None = None) -> ExecutorService:
    return ExecutorService(config or ExecutorConfig.from_env())


__all__ = ["ExecutorService", "Unavailable", "create_app"]
