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
import time
from typing import Any

from .. import __version__
from ..cache import PackageCache
from ..client import PortalClient
from ..errors import InputInvalid, NotFound, PolicyGridError, Unavailable
from ..wire import error_envelope, parse_execute_request
from ..workers import PoolLimits, WorkerPool
from .config import ExecutorConfig
from .store import PolicyStore

logger = logging.getLogger("policygrid.executor")

_JSON = [(b"content-type", b"application/json")]


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
                    raise _refusal(405, "use POST for /execute_policy")
                if not authorised:
                    raise _refusal(401, _UNAUTHORISED)
                status, payload = await self.execute(await self._body(receive))
            elif path == "/health":
                if method not in ("GET", "HEAD"):
                    raise _refusal(405, "use GET for /health")
                status, payload = 200, json.dumps(self.health(detailed=authorised)).encode()
            else:
                raise NotFound(f"no route {method} {path} on this executor (it serves /health and "
                               "/execute_policy)")
        except PolicyGridError as exc:
            status, payload = exc.status, json.dumps(error_envelope(exc), default=str).encode()
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
                raise _refusal(413, f"the request body exceeds {self.config.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    # --- the routes ---------------------------------------------------------------------------------------

    async def execute(self, raw: bytes) -> tuple[int, bytes]:
        """``POST /execute_policy``: (status, envelope bytes)."""
        self.calls += 1
        try:
            body = parse_execute_request(raw, max_timeout=self.config.max_timeout_seconds)
            timeout = body.timeout_seconds or self.config.timeout_seconds
            resolved = await self.store.resolve(body.policy_rule_uri, body.policy_stamp)
            request = {"rk": resolved.record_key, "pkg": str(resolved.package_dir),
                       "req": str(resolved.requirements_dir) if resolved.requirements_dir else None,
                       "uri": resolved.uri, "input_data": body.input_data,
                       "settings": body.settings, "parameters": body.parameters}
            result = await self.pool.run(resolved.digest, request, resolved.record, resolved.record_key, timeout)
        except PolicyGridError as exc:
            self.failures += 1
            logger.info("execute_policy failed: %s: %s", exc.error_type, exc.message[:300])
            return exc.status, json.dumps(error_envelope(exc), default=str).encode()
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


def _refusal(status: int, message: str) -> PolicyGridError:
    """An answer of the HTTP layer itself (wrong method, no credentials, too large): no policy ran."""
    return PolicyGridError(message, status=status, error_type="http_error")


_UNAUTHORISED = ("this executor accepts only its callers' requests: send 'Authorization: Bearer <the executor's "
                 "shared secret>'")


def create_app(config: ExecutorConfig | None = None) -> ExecutorService:
    return ExecutorService(config or ExecutorConfig.from_env())


__all__ = ["ExecutorService", "Unavailable", "create_app"]
