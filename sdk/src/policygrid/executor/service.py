"""The executor service's HTTP API (runtime.md §5): ``GET /health`` and ``POST /execute_policy``.

A bare ASGI application (no framework: the request path is a few dictionary look-ups), served by uvicorn.
Every request must carry the shared secret (``Authorization: Bearer <POLICYGRID_EXECUTOR_TOKEN>``), compared
in constant time; ``GET /health`` without it answers only the public counters. Answers use the envelope and
error types of api.md §1.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from typing import Any

from .. import __version__
from ..cache import PackageCache
from ..client import PortalClient
from ..errors import InputInvalid, PolicyGridError, Unavailable
from ..workers import PoolLimits, WorkerPool
from .config import ExecutorConfig
from .store import PolicyStore

logger = logging.getLogger("policygrid.executor")

_JSON = [(b"content-type", b"application/json")]
_BODY_FIELDS = {"policy_rule_uri", "input_data", "parameters", "settings", "timeout_seconds", "policy_stamp",
                "dry_run"}


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
        self.started_at = time.time()
        self.calls = 0
        self.failures = 0

    # --- lifespan -----------------------------------------------------------------------------------------

    async def startup(self) -> None:
        config = self.config
        client = PortalClient(config.portal_url, config.portal_token or "", timeout=10,
                              public_url=config.portal_public_url)
        cache = PackageCache(config.cache_dir) if config.cache_dir else PackageCache()
        self.store = PolicyStore(client, cache, client.fetch_options(), config.record_ttl_seconds,
                                 verify_signatures=config.verify_signatures)
        self.pool = WorkerPool(PoolLimits(
            workers=config.workers, timeout_seconds=config.timeout_seconds, cpu_seconds=config.cpu_seconds,
            memory_mb=config.memory_mb, max_processes=config.max_processes,
            max_result_bytes=config.max_result_bytes, landlock=config.landlock, preload=config.preload,
            pass_env=config.pass_env, redis_url=config.redis_url, tmp_root=config.tmp_dir,
        ))
        await self.pool.start()
        logger.warning("policygrid executor %s on http://%s:%s: %d workers, portal %s",
                       __version__, config.host, config.port, config.workers, client.base_url)
        for name, note in sorted(self.protections().items()):
            level = logging.WARNING if "NOT" in note or "not enforced" in note else logging.INFO
            logger.log(level, "protection %-28s %s", name + ":", note)

    async def shutdown(self) -> None:
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
        authorised = self._authorised(scope)
        try:
            if path == "/execute_policy":
                if method != "POST":
                    raise _HttpError(405, "use POST for /execute_policy")
                if not authorised:
                    raise _HttpError(401, "this executor accepts only the portal's requests: send "
                                          "'Authorization: Bearer <the executor's shared secret>'")
                body = await self._body(receive)
                status, payload = await self.execute(body)
            elif path == "/health":
                if method not in ("GET", "HEAD"):
                    raise _HttpError(405, "use GET for /health")
                status, payload = 200, json.dumps(self.health(detailed=authorised)).encode()
            else:
                raise _HttpError(404, f"no route {method} {path} on this executor (it serves /health and "
                                      "/execute_policy)", "not_found")
        except _HttpError as exc:
            status, payload = exc.status, exc.body()
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_JSON, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    def _authorised(self, scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self._token)
        return False

    async def _body(self, receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.config.max_body_bytes:
                raise _HttpError(413, f"the request body exceeds {self.config.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    # --- the routes ---------------------------------------------------------------------------------------

    async def execute(self, raw: bytes) -> tuple[int, bytes]:
        """``POST /execute_policy``: (status, envelope bytes)."""
        self.calls += 1
        try:
            body = _parse_body(raw)
            timeout = body.get("timeout_seconds") or self.config.timeout_seconds
            timeout = min(float(timeout), self.config.max_timeout_seconds)
            resolved = await self.store.resolve(body["policy_rule_uri"], body.get("policy_stamp"))
            request = {"rk": resolved.record_key, "pkg": str(resolved.package_dir),
                       "req": str(resolved.requirements_dir) if resolved.requirements_dir else None,
                       "uri": resolved.uri, "input_data": body["input_data"],
                       "settings": body.get("settings"), "parameters": body.get("parameters")}
            result = await self.pool.run(resolved.digest, request, resolved.record, resolved.record_key, timeout)
        except PolicyGridError as exc:
            self.failures += 1
            logger.info("execute_policy failed: %s: %s", exc.error_type, exc.message[:300])
            envelope: dict[str, Any] = exc.to_dict()
            exception_type = getattr(exc, "exception_type", None)
            if exception_type:
                envelope["exception_type"] = exception_type
            return exc.status, json.dumps(envelope, default=str).encode()
        return 200, b'{"success":true,"data":' + result + b"}"

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
            "cache": self.store.stats() if self.store is not None and detailed else {
                "records": len(self.store.entries) if self.store else 0},
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


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputInvalid(f"the body is not valid JSON: {exc}", errors={"(body)": ["not JSON"]}) from None
    if not isinstance(body, dict):
        raise InputInvalid("the body must be a JSON object", errors={"(body)": ["not an object"]})
    errors: dict[str, list[str]] = {}
    for name in sorted(set(body) - _BODY_FIELDS):
        errors[name] = ["unknown field"]
    uri = body.get("policy_rule_uri")
    if not isinstance(uri, str) or not uri:
        errors["policy_rule_uri"] = ["is required: the URI name:version-tag of the policy"]
    if "input_data" not in body:
        errors["input_data"] = ["is required (any JSON value, {} included)"]
    for name in ("parameters", "settings"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            errors[name] = ["must be a JSON object"]
    timeout = body.get("timeout_seconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not math.isfinite(timeout) or timeout <= 0):
        errors["timeout_seconds"] = ["must be a positive number of seconds"]
    if body.get("policy_stamp") is not None and not isinstance(body["policy_stamp"], str):
        errors["policy_stamp"] = ["must be a string"]
    if errors:
        first = next(iter(errors))
        raise InputInvalid(f"invalid request: {first}: {errors[first][0]}", errors=errors)
    return body


class _HttpError(Exception):
    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type

    def body(self) -> bytes:
        envelope: dict[str, Any] = {"success": False, "message": self.message}
        if self.error_type:
            envelope["error_type"] = self.error_type
        return json.dumps(envelope).encode()


def create_app(config: ExecutorConfig | None = None) -> ExecutorService:
    return ExecutorService(config or ExecutorConfig.from_env())


__all__ = ["ExecutorService", "Unavailable", "create_app"]
