"""The local runtime's functions (Type 4, docs/runtime.md §6): each replica is a supervised ``python -m policygrid.function``.

* ``POST /functions`` deploys ``replicas`` processes serving HTTP on loopback, each with one policy instance for
  its lifetime (state persists between its calls). A replica is ``ready`` once its instance is built and it
  serves; a function is ``ready`` while at least one replica is.
* A replica that exits is restarted with backoff (``BACKOFF_SECONDS`` doubling up to ``MAX_BACKOFF_SECONDS``);
  after ``MAX_CRASHES`` exits within ``CRASH_WINDOW_SECONDS`` it is ``failed``, and so is a replica whose instance
  can't be built (a constructor that raises fails the same way every time: no retry). A function whose
  replicas have all failed is ``failed``, with the last reason.
* ``DELETE /functions/<name>`` and the service's stop kill every replica with its sandbox: nothing is left.
* Calls go to the ready replicas in turn (``POST /functions/<name>/call``); management commands to every ready
  replica at once, or one (``POST /functions/<name>/management``), with one result per replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..errors import InputInvalid, NotFound, PolicyGridError, Timeout, Unavailable
from ..job import limits_to_json
from ..wire import error_envelope
from ..workers import PoolLimits
from .jobs import MAX_LINE_CHARS, RUNNER_SECRETS, log_line

logger = logging.getLogger("policygrid.executor.functions")

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_REPLICAS = 16
MAX_LOG_LINES = 5000
BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
MAX_CRASHES = 5
CRASH_WINDOW_SECONDS = 60.0
START_TIMEOUT_SECONDS = 60.0


class Replica:
    """One function server process (restarted in place) and what it printed."""

    def __init__(self, function: LocalFunction, index: int) -> None:
        self.function = function
        self.index = index
        self.state = "starting"
        self.message = ""
        self.restarts = 0
        self.crashes: deque[float] = deque()
        self.process: asyncio.subprocess.Process | None = None
        self.worker_pids: list[int] = []
        self.url = ""
        self.lines: deque[str] = deque(maxlen=MAX_LOG_LINES)
        self.task: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return f"{self.function.name}-{self.index}"

    def note(self, message: str) -> None:
        self.lines.append(log_line(f"[{self.name}] [executor] {message}"))

    def describe(self) -> dict[str, Any]:
        return {"replica": self.name, "state": self.state, "restarts": self.restarts, "message": self.message,
                "pid": self.process.pid if self.process and self.process.returncode is None else None}

    def kill(self, tmp_root: Path) -> None:
        """SIGKILL the server's session and each sandbox worker's (the policy instance is in one of them)."""
        if self.process is None:
            return
        for group in (self.process.pid, *self.worker_pids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        shutil.rmtree(tmp_root / f"policygrid-function-1-{self.process.pid}", ignore_errors=True)


class LocalFunction:
    def __init__(self, name: str, spec: dict[str, Any], replicas: int) -> None:
        self.name = name
        self.spec = spec
        self.token = secrets.token_urlsafe(32)
        self.replicas = [Replica(self, index) for index in range(replicas)]
        self.created_at = time.time()
        self.removed = False
        self._turn = 0

    @property
    def state(self) -> str:
        states = {replica.state for replica in self.replicas}
        if "ready" in states:
            return "ready"
        if states == {"failed"}:
            return "failed"
        return "deploying"

    def describe(self) -> dict[str, Any]:
        failed = [replica.message for replica in self.replicas if replica.state == "failed" and replica.message]
        return {"name": self.name, "state": self.state, "replicas": [r.describe() for r in self.replicas],
                "message": failed[-1] if self.state == "failed" and failed else "",
                "uri": self.spec["record"]["policy_rule_uri"], "created_at": self.created_at}

    def ready(self) -> list[Replica]:
        return [replica for replica in self.replicas if replica.state == "ready"]

    def next_ready(self) -> Replica:
        ready = self.ready()
        if not ready:
            raise PolicyGridError(f"function {self.name} has no ready replica ({self.state})", status=409,
                                  error_type="conflict")
        self._turn = (self._turn + 1) % len(ready)
        return ready[self._turn]


class FunctionSupervisor:
    def __init__(self, limits: PoolLimits, *, env: dict[str, str]) -> None:
        self.limits = limits  # the service pool's: per-call timeout, memory, processes, Redis, sandbox users
        self.env = {k: v for k, v in env.items() if k not in RUNNER_SECRETS}
        self.functions: dict[str, LocalFunction] = {}
        self.closed = False
        self._http = None

    @property
    def _tmp_root(self) -> Path:
        import tempfile

        return Path(self.limits.tmp_root or tempfile.gettempdir())

    def _client(self):
        if self._http is None:
            import aiohttp

            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256, limit_per_host=64),
                                               timeout=aiohttp.ClientTimeout(total=self.limits.timeout_seconds + 5))
        return self._http

    # --- deploy, remove, stop -----------------------------------------------------------------------------

    def deploy(self, name: Any, replicas: Any, spec: dict[str, Any]) -> LocalFunction:
        if not isinstance(name, str) or not NAME.match(name):
            raise InputInvalid("invalid request: function.name: a DNS-1123 label (lower-case letters, digits and "
                               "'-', at most 63)", errors={"function.name": ["a DNS-1123 label"]})
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
            raise InputInvalid(f"invalid request: function.replicas: an integer from 1 to {MAX_REPLICAS}",
                               errors={"function.replicas": [f"an integer from 1 to {MAX_REPLICAS}"]})
        if name in self.functions:
            raise PolicyGridError(f"function {name} is already deployed on this executor (remove it first)",
                                  status=409, error_type="conflict")
        namespace = f"{spec['record']['policy_rule_uri']}|function:{name}"
        function = LocalFunction(name, {**spec, "name": name, "context_namespace": namespace}, replicas)
        self.functions[name] = function
        for replica in function.replicas:
            replica.task = asyncio.ensure_future(self._supervise(replica))
        return function

    async def remove(self, name: str) -> LocalFunction:
        function = self.get(name)
        function.removed = True
        del self.functions[name]
        await self._stop(function)
        return function

    async def _stop(self, function: LocalFunction) -> None:
        for replica in function.replicas:
            if replica.task is not None:
                replica.task.cancel()
            replica.kill(self._tmp_root)
        for replica in function.replicas:
            if replica.process is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(replica.process.wait(), 5)
            replica.state = "stopped"

    async def close(self) -> None:
        self.closed = True
        for function in list(self.functions.values()):
            function.removed = True
            await self._stop(function)
        self.functions.clear()
        if self._http is not None:
            await self._http.close()

    # --- replicas -----------------------------------------------------------------------------------------

    async def _supervise(self, replica: Replica) -> None:
        function = replica.function
        while not function.removed and not self.closed:
            started = time.monotonic()
            code = await self._run_once(replica)
            if function.removed or self.closed or replica.state == "failed":
                return
            now = time.monotonic()
            replica.crashes.append(now)
            while replica.crashes and now - replica.crashes[0] > CRASH_WINDOW_SECONDS:
                replica.crashes.popleft()
            reason = _exit_reason(code)
            if len(replica.crashes) >= MAX_CRASHES:
                replica.state = "failed"
                replica.message = f"replica {replica.index} exited {len(replica.crashes)} times within " \
                                  f"{CRASH_WINDOW_SECONDS:g}s; the last time {reason}"
                replica.note(replica.message)
                return
            delay = 0 if now - started > CRASH_WINDOW_SECONDS else min(
                MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** (len(replica.crashes) - 1))
            replica.state = "restarting"
            replica.message = f"exited ({reason}); restarting in {delay:g}s"
            replica.note(replica.message)
            await asyncio.sleep(delay)
            replica.restarts += 1

    async def _run_once(self, replica: Replica) -> int:
        """Start the server, wait until it serves (or fails to load), then until it exits; its exit status."""
        process = replica.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "policygrid.function", "--limits", limits_to_json(self.limits),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self.env, start_new_session=True, limit=MAX_LINE_CHARS * 4)
        replica.state = "starting"
        replica.note(f"started: pid {process.pid}")
        spec = {**replica.function.spec, "replica": replica.name, "token": replica.function.token}
        reader = asyncio.ensure_future(_read_log(process, replica.lines, f"[{replica.name}]"))
        try:
            process.stdin.write(json.dumps(spec).encode() + b"\n")
            await process.stdin.drain()
            process.stdin.close()
            first = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_SECONDS)
            answer = json.loads(first) if first.strip() else {}
            if "port" in answer:
                replica.worker_pids = [int(pid) for pid in answer.get("worker_pids", [])]
                replica.url = f"http://127.0.0.1:{int(answer['port'])}"
                replica.state, replica.message = "ready", ""
                replica.note(f"ready on {replica.url}")
            elif "error" in answer:
                replica.state = "failed"
                replica.message = f"the policy instance could not be built: {answer['error'].get('message')}"
                replica.note(replica.message)
            code = await process.wait()
        except (TimeoutError, ValueError, OSError) as exc:
            replica.note(f"did not start: {type(exc).__name__}: {exc}")
            replica.kill(self._tmp_root)
            code = await process.wait()
        finally:
            replica.kill(self._tmp_root)
            replica.url = ""
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(reader, 1)
        return code

    # --- calls, management, logs --------------------------------------------------------------------------

    def get(self, name: str) -> LocalFunction:
        function = self.functions.get(name)
        if function is None:
            raise NotFound(f"no function {name} on this executor")
        return function

    async def call(self, name: str, raw: bytes) -> tuple[int, bytes]:
        replica = self.get(name).next_ready()
        return await self._forward(replica, "/call", raw)

    async def manage(self, name: str, raw: bytes) -> list[dict[str, Any]]:
        function = self.get(name)
        target, payload = management_request(raw)
        replicas = [function.next_ready()] if target == "one" else function.ready()
        if not replicas:
            function.next_ready()  # raises the 409
        answers = await asyncio.gather(*(self._forward(replica, "/management", payload) for replica in replicas))
        return [replica_result(replica.name, answer) for replica, (_, answer) in zip(replicas, answers, strict=True)]

    async def _forward(self, replica: Replica, path: str, raw: bytes) -> tuple[int, bytes]:
        import aiohttp

        headers = {"Authorization": f"Bearer {replica.function.token}", "Content-Type": "application/json"}
        try:
            async with self._client().post(replica.url + path, data=raw, headers=headers) as answer:
                return answer.status, await answer.read()
        except aiohttp.ClientError as exc:
            error = Unavailable(f"function {replica.function.name} replica {replica.index} did not answer: {exc}")
        except TimeoutError:
            error = Timeout(f"function {replica.function.name} replica {replica.index} did not answer in time")
        return error.status, json.dumps(error_envelope(error)).encode()

    async def describe(self, name: str) -> dict[str, Any]:
        return self.get(name).describe()

    async def describe_all(self) -> list[dict[str, Any]]:
        return [function.describe() for function in self.functions.values()]

    async def logs(self, name: str, tail: int | None) -> str:
        function = self.get(name)
        lines = sorted(line for replica in function.replicas for line in replica.lines)
        if tail is not None:
            lines = lines[-tail:] if tail else []
        return "\n".join(lines) + ("\n" if lines else "")

    def stats(self) -> dict[str, Any]:
        return {"functions": len(self.functions),
                "replicas": sum(len(f.replicas) for f in self.functions.values()),
                "ready_replicas": sum(len(f.ready()) for f in self.functions.values())}


def management_request(raw: bytes) -> tuple[str, bytes]:
    """(target, the body a replica gets) of ``POST /functions/<name>/management``: ``target`` all (the default)
    or one, taken out of the body."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise InputInvalid("the request body is not valid JSON") from None
    target = body.pop("target", "all") if isinstance(body, dict) else None
    if target not in ("all", "one"):
        raise InputInvalid("invalid request: target: \"all\" or \"one\"", errors={"target": ["all or one"]})
    return target, json.dumps(body).encode()


def replica_result(replica: str, answer: bytes) -> dict[str, Any]:
    """One replica's management result: ``{"replica", "success", "data" | "error_type", "message"}``."""
    try:
        envelope = json.loads(answer)
    except ValueError:
        envelope = error_envelope(Unavailable(f"replica {replica} answered something that is not JSON"))
    envelope.pop("success", None)
    return {"replica": replica, "success": "data" in envelope, **envelope}


async def _read_log(process: asyncio.subprocess.Process, lines: deque[str], tag: str) -> None:
    """The server's stderr, each line tagged with its replica after the time stamp."""
    while True:
        try:
            line = await process.stderr.readline()
        except ValueError:  # a line longer than the stream's limit: skip it
            continue
        if not line:
            return
        stamp, _, rest = line.decode(errors="replace").rstrip("\n").partition(" ")
        lines.append(f"{stamp} {tag} {rest}"[:MAX_LINE_CHARS])


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
