"""The function server (Type 4, docs/runtime.md §6): ``python -m policygrid.function --limits '<json>'``.

One process per replica of a function, the same program on the local runtime and in a container. It starts its
sandbox (``policygrid.workers``: a pool of one warm worker, the protections of Type 2), reads its spec (one JSON
line on stdin, or ``--spec-file PATH``: a container reads it from a mounted Secret), builds the policy instance
once (the constructor runs now, so a bad record fails the replica before it serves) and serves HTTP
(``--host``/``--port``; port 0: any free port)::

    GET  /health                                        200 {"status": "ready", …}: the readiness probe
    POST /call        {"input_data", "timeout_seconds"?}   {"success": true, "data": <eval output>}
    POST /management  {"action", "data"?}                  {"success": true, "data": <management output>}

``/call`` and ``/management`` need ``Authorization: Bearer <the spec's token>`` (the executor's secret for this
function). Errors use the executor's envelope and error types. The instance lives as long as the replica, so
its state persists between calls: an error the policy raises leaves it alone; a crash of the policy's process or
a call past its timeout loses it, and the next call builds a fresh instance (``instance_starts`` counts them).

The spec: ``name``, ``replica``, ``token``, ``record``, ``package_dir`` + ``requirements_dir`` (prepared by the
local runtime) or ``portal_url`` (the one loader fetches and verifies the package), ``settings`` and
``parameters`` (the caller's overrides: they win key by key), ``context_namespace`` (the context store's
namespace: the policy URI and the function name), ``timeout_seconds`` (per call, and the most a call may ask
for), ``lifetime_cpu_seconds`` (CPU time an instance may use in all before it is replaced).

Once it serves, it prints one line on stdout, ``{"port": N, "worker_pids": […]}``, for its supervisor; if the
instance can't be built it prints ``{"error": {…}}`` and exits 2. What the policy prints goes to stderr, one
escaped line each, beside the server's own lines: the replica's log.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import socket
import sys
from typing import Any

from .asgi import bearer_matches, read_body, refusal, send_json
from .errors import InputInvalid, NotFound, PolicyGridError
from .job import limits_from_json, log, prepare_package
from .lifetime import die_with_parent
from .wire import error_envelope
from .workers import PoolLimits, WorkerPool
from .workers.pool import escape_for_log

EXIT_LOAD_FAILED = 2
MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_LIFETIME_CPU_SECONDS = 3600.0
_RK = "fn"


class FunctionServer:
    """The ASGI application of one replica: its pool, its instance and its counters."""

    def __init__(self, pool: WorkerPool, spec: dict[str, Any], package: tuple[str, str | None, str]) -> None:
        self.pool = pool
        self.spec = spec
        self.record = spec["record"]
        self.name = str(spec.get("name") or "")
        self.replica = str(spec.get("replica") or "0")
        self._token = f"Bearer {spec['token']}".encode()
        package_dir, requirements_dir, self.digest = package
        self.timeout = float(spec.get("timeout_seconds") or pool.limits.timeout_seconds)
        self.request = {"rk": _RK, "pkg": package_dir, "req": requirements_dir,
                        "uri": self.record["policy_rule_uri"], "settings": spec.get("settings") or None,
                        "parameters": spec.get("parameters") or None, "keep": True, "stateful": True,
                        "ctx": spec.get("context_namespace") or None,
                        "cpu_seconds": float(spec.get("lifetime_cpu_seconds") or DEFAULT_LIFETIME_CPU_SECONDS)}
        self.status = "loading"
        self.calls = 0
        self.errors = 0
        self.instance_starts = 0
        self._instance: tuple[int, ...] = ()

    async def run(self, message: dict[str, Any], timeout: float) -> bytes:
        printed: dict[str, Any] = {}
        try:
            return await self.pool.run(self.digest, {**self.request, **message}, self.record, _RK, timeout,
                                       output=printed)
        finally:
            for stream in ("stdout", "stderr"):
                for line in (printed.get(stream) or "").splitlines():
                    log(f"policy {stream}: {escape_for_log(line)}")
            kept = tuple(pid for worker in self.pool.workers for pid in worker.keepers)
            if kept and kept != self._instance:
                self._instance = kept
                self.instance_starts += 1
                if self.instance_starts > 1:
                    log(f"a new policy instance was built (instance {self.instance_starts}): the previous one's "
                        "state is gone")

    async def load(self) -> None:
        await self.run({"op": "load"}, self.pool.limits.start_timeout_seconds)
        self.status = "ready"

    # --- ASGI ---------------------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        try:
            if path == "/health":
                if method not in ("GET", "HEAD"):
                    raise refusal(405, "use GET for /health")
                status, payload = (200 if self.status == "ready" else 503), json.dumps(self.health()).encode()
            elif path in ("/call", "/management"):
                if method != "POST":
                    raise refusal(405, f"use POST for {path}")
                if not bearer_matches(scope, self._token):
                    raise refusal(401, "this function replica answers only its executor: send 'Authorization: "
                                       "Bearer <the function's secret>'")
                body = _json_object(await read_body(receive, MAX_BODY_BYTES))
                status, payload = 200, await (self.call(body) if path == "/call" else self.manage(body))
            else:
                raise NotFound(f"no route {method} {path} on this function replica (it serves /health, /call "
                               "and /management)")
        except PolicyGridError as exc:
            status, payload = exc.status, json.dumps(error_envelope(exc), default=str).encode()
        await send_json(send, status, payload)

    async def call(self, body: dict[str, Any]) -> bytes:
        if "input_data" not in body:
            raise InputInvalid("invalid request: input_data is required (any JSON; {} included)",
                               errors={"input_data": ["required"]})
        timeout = body.get("timeout_seconds", self.timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= self.timeout:
            raise InputInvalid(f"invalid request: timeout_seconds: a number above 0 and at most {self.timeout:g}",
                               errors={"timeout_seconds": [f"a number in (0, {self.timeout:g}]"]})
        return await self._counted({"op": "eval", "input_data": body["input_data"]}, float(timeout))

    async def manage(self, body: dict[str, Any]) -> bytes:
        action = body.get("action")
        if not isinstance(action, str) or not action:
            raise InputInvalid("invalid request: action: the name of a management command is required",
                               errors={"action": ["a non-empty string"]})
        data = body.get("data")
        if data is not None and not isinstance(data, dict):
            raise InputInvalid("invalid request: data: an object (or leave it out)", errors={"data": ["an object"]})
        return await self._counted({"op": "management", "action": action, "data": data}, self.timeout)

    async def _counted(self, message: dict[str, Any], timeout: float) -> bytes:
        self.calls += 1
        try:
            result = await self.run(message, timeout)
        except PolicyGridError:
            self.errors += 1
            raise
        return b'{"success":true,"data":' + result + b"}"

    def health(self) -> dict[str, Any]:
        return {"status": self.status, "name": self.name, "replica": self.replica, "calls": self.calls,
                "errors": self.errors, "instance_starts": self.instance_starts,
                "uri": self.record.get("policy_rule_uri")}


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InputInvalid("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InputInvalid("the request body must be a JSON object")
    return body


def read_spec(spec_file: str | None) -> dict[str, Any]:
    text = open(spec_file, encoding="utf-8").read() if spec_file else sys.stdin.readline()  # noqa: SIM115
    spec = json.loads(text)
    missing = [key for key in ("token", "record") if not spec.get(key)]
    if missing:
        raise InputInvalid(f"the function's spec lacks {', '.join(missing)}")
    return spec


async def main_async(limits: PoolLimits, spec_file: str | None, host: str, port: int) -> int:
    import uvicorn

    pool = WorkerPool(limits)
    await pool.start()
    try:
        spec = await asyncio.to_thread(read_spec, spec_file)
        log(f"function {spec.get('name')} replica {spec.get('replica')}: {spec['record'].get('policy_rule_uri')}")
        server = FunctionServer(pool, spec, await asyncio.to_thread(prepare_package, spec))
        await server.load()
    except PolicyGridError as exc:
        log(f"the policy instance could not be built: {exc.error_type}: {exc.message}")
        print(json.dumps({"error": error_envelope(exc)}, default=str), flush=True)
        await pool.close()
        return EXIT_LOAD_FAILED
    listener = socket.create_server((host, port), reuse_port=False)
    fast = importlib.util.find_spec("httptools") is not None
    config = uvicorn.Config(server, log_level="warning", lifespan="off", access_log=False,
                            http="httptools" if fast else "h11", timeout_graceful_shutdown=2)
    web = uvicorn.Server(config)
    print(json.dumps({"port": listener.getsockname()[1], "worker_pids": pool.worker_pids()}), flush=True)
    log(f"serving on {host}:{listener.getsockname()[1]}")
    try:
        await web.serve(sockets=[listener])
    finally:
        await pool.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policygrid.function", description=__doc__.splitlines()[0])
    parser.add_argument("--limits", default="{}", help="the sandbox limits, as JSON (policygrid.job.limits_to_json)")
    parser.add_argument("--spec-file", help="read the spec from this file instead of one line on stdin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    die_with_parent(os.getppid(), signal.SIGTERM)  # a replica whose supervisor dies stops too
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    limits = limits_from_json(args.limits)
    limits.label = "function"
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    return run(main_async(limits, args.spec_file, args.host, args.port))


if __name__ == "__main__":
    sys.exit(main())
