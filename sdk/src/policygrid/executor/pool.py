"""The pool of pre-started worker processes that run policy code for the executor service.

* ``size`` workers are started ahead of time and reused. A worker is bound to the first package digest it
  runs and only ever runs that package afterwards: imports stay warm, and one policy's module-level tampering
  (a patched ``requests``, a global) can never reach another policy's calls.
* A call goes to an idle worker bound to its digest, else to a fresh one; when neither exists and an idle
  worker is bound to another digest, that worker is retired and a fresh one started in its place.
* Each call has a wall-clock timeout: past it the worker (and everything it started) is killed and replaced.
  A worker that dies (crash, ``os._exit``, SIGXCPU, SIGKILL) fails that one call; the pool refills itself.
* After every call, any process the call left behind is killed (through the worker's cgroup, or its session
  where no cgroup is available); a worker left with extra threads is replaced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import sandbox
from ..errors import PolicyError, PolicyGridError, ResourceLimit, Timeout, Unavailable

logger = logging.getLogger("policygrid.executor")

# Variables a worker may see. Everything else (tokens, database URLs, cloud keys, the service's own
# configuration) stays in the service: an allow-list, so that a secret with an unusual name can't leak.
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
            "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


@dataclass
class PoolLimits:
    workers: int = 4
    timeout_seconds: float = 30
    cpu_seconds: float = 30
    memory_mb: int = 1024
    max_processes: int = 16
    max_result_bytes: int = 10 * 1024 * 1024
    max_message_chars: int = 2000
    start_timeout_seconds: float = 30
    landlock: bool = True
    preload: tuple[str, ...] = ("requests",)
    pass_env: tuple[str, ...] = ()
    redis_url: str | None = None
    tmp_root: Path | None = None


@dataclass(eq=False)
class Worker:
    name: str
    process: asyncio.subprocess.Process
    tmp: Path
    cgroup: sandbox.WorkerCgroup | None
    digest: str | None = None
    known_records: set[str] = field(default_factory=set)
    calls: int = 0
    dead: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerPool:
    def __init__(self, limits: PoolLimits) -> None:
        self.limits = limits
        self.idle: list[Worker] = []
        self.workers: set[Worker] = set()
        self.waiters: deque[tuple[str, asyncio.Future, float]] = deque()
        self.starting = 0
        self.closed = False
        self.protections: dict[str, Any] = {}
        self.started_total = 0
        self.replaced_total = 0
        self._counter = 0
        self._tasks: set[asyncio.Task] = set()
        root = limits.tmp_root or Path(tempfile.gettempdir())
        self.tmp_root = Path(root) / f"policygrid-executor-{os.getpid()}"
        self.cgroups, cgroup_note = sandbox.CgroupParent.create()
        self.protections["process_containment"] = cgroup_note
        self.protections["unprivileged_user"] = _user_note()

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.tmp_root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.tmp_root, 0o700)
        workers = await asyncio.gather(*(self._spawn() for _ in range(self.limits.workers)))
        for worker in workers:
            self._offer(worker)

    async def close(self) -> None:
        self.closed = True
        for _, future, _ in self.waiters:
            if not future.done():
                future.set_exception(Unavailable("the executor service is shutting down"))
        for worker in list(self.workers):
            await self._retire(worker, replace=False)
        if self.cgroups is not None:
            self.cgroups.remove()
        shutil.rmtree(self.tmp_root, ignore_errors=True)

    async def _spawn(self) -> Worker:
        self.starting += 1
        try:
            self._counter += 1
            name = f"w{self._counter}"
            tmp = self.tmp_root / name
            tmp.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o700)
            env = {k: v for k, v in os.environ.items() if k in SAFE_ENV or k in self.limits.pass_env}
            (tmp / "call").mkdir(mode=0o700, exist_ok=True)
            env.update({"TMPDIR": str(tmp / "call"), "HOME": str(tmp / "call"), "PYTHONDONTWRITEBYTECODE": "1",
                        "PYTHONNOUSERSITE": "1"})
            # The worker imports this very package, wherever the service was installed from.
            env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "policygrid.executor.worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
                cwd=str(tmp), env=env, start_new_session=True, limit=self.limits.max_result_bytes + 65536,
            )
            cgroup = None
            if self.cgroups is not None:
                # The worker waits for its init frame before running anything, so it is inside its cgroup
                # before the first policy instruction; threads count too, hence the worker's own few on top.
                cgroup = self.cgroups.worker(name, self.limits.max_processes + 8)
                if cgroup is not None and not cgroup.add(process.pid):
                    cgroup = None
            worker = Worker(name, process, tmp, cgroup)
            self.workers.add(worker)
            init = {
                "tmp_base": str(tmp), "memory_mb": self.limits.memory_mb, "max_processes": self.limits.max_processes,
                "cpu_seconds": self.limits.cpu_seconds, "max_result_bytes": self.limits.max_result_bytes,
                "max_message_chars": self.limits.max_message_chars, "redis_url": self.limits.redis_url,
                "landlock": self.limits.landlock, "preload": list(self.limits.preload),
            }
            try:
                await self._send(worker, json.dumps(init).encode())
                reply = await asyncio.wait_for(self._read(worker), self.limits.start_timeout_seconds)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
                await self._kill(worker)
                raise Unavailable(f"a worker process failed to start: {type(exc).__name__}") from exc
            hello = json.loads(reply)
            worker_notes = hello.get("protections", {})
            if cgroup is None:
                worker_notes["process_containment_worker"] = "no cgroup: leftovers killed by session"
            self.protections.update(worker_notes)
            self.started_total += 1
            return worker
        finally:
            self.starting -= 1

    async def _kill(self, worker: Worker) -> None:
        worker.dead = True
        if worker.cgroup is not None:
            worker.cgroup.kill_all()
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if worker.cgroup is None:
            _kill_session(worker.pid)
        try:
            await asyncio.wait_for(worker.process.wait(), 5)
        except TimeoutError:
            logger.warning("worker %s (pid %s) did not exit after SIGKILL", worker.name, worker.pid)

    async def _retire(self, worker: Worker, *, replace: bool = True) -> None:
        if worker in self.idle:
            self.idle.remove(worker)
        await self._kill(worker)
        self.workers.discard(worker)
        if worker.cgroup is not None:
            worker.cgroup.remove()
        shutil.rmtree(worker.tmp, ignore_errors=True)
        if replace and not self.closed:
            self.replaced_total += 1
            self._background(self._replace())

    async def _replace(self) -> None:
        for attempt in range(5):
            try:
                worker = await self._spawn()
            except PolicyGridError as exc:
                logger.error("could not start a replacement worker (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if self.closed:
                await self._retire(worker, replace=False)
            else:
                self._offer(worker)
            return

    def _background(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- scheduling ---------------------------------------------------------------------------------------

    async def acquire(self, digest: str) -> Worker:
        if self.closed:
            raise Unavailable("the executor service is shutting down")
        worker = self._take_idle(digest)
        if worker is not None:
            return worker
        future = asyncio.get_running_loop().create_future()
        entry = (digest, future, time.monotonic())
        self.waiters.append(entry)
        try:
            return await future
        except asyncio.CancelledError:
            if entry in self.waiters:
                self.waiters.remove(entry)
            if future.done() and not future.cancelled() and future.exception() is None:
                self._offer(future.result())
            raise

    def _take_idle(self, digest: str) -> Worker | None:
        for worker in self.idle:
            if worker.digest == digest:
                self.idle.remove(worker)
                return worker
        for worker in self.idle:
            if worker.digest is None:
                self.idle.remove(worker)
                worker.digest = digest
                return worker
        if self.idle:
            # Every idle worker is warm for another package: recycle the least recently used one.
            self._background(self._retire(self.idle.pop(0)))
        return None

    def _offer(self, worker: Worker) -> None:
        """A worker is free (a call finished, or it just started): hand it to a waiter, or park it."""
        live = [entry for entry in self.waiters if not entry[1].done()]
        self.waiters = deque(live)
        if not live:
            self.idle.append(worker)
            return
        head_digest, _, since = live[0]
        chosen = None
        # Warm workers serve waiters of their own package first, unless the head of the queue (another
        # package) has waited long enough: then the worker is recycled for it, so no package starves.
        if worker.digest in (None, head_digest) or time.monotonic() - since < 0.2:
            chosen = next((entry for entry in live if worker.digest in (None, entry[0])), None)
        if chosen is None:
            self._background(self._retire(worker))
            return
        self.waiters.remove(chosen)
        worker.digest = chosen[0]
        chosen[1].set_result(worker)

    def release(self, worker: Worker) -> None:
        if worker.dead or self.closed:
            return
        self._offer(worker)

    # --- calls --------------------------------------------------------------------------------------------

    async def run(self, digest: str, request: dict[str, Any], record: dict[str, Any], rk: str,
                  timeout: float) -> bytes:
        """Run one call; return the result's JSON bytes or raise the error's PolicyGridError subclass."""
        worker = await self.acquire(digest)
        try:
            if rk not in worker.known_records:
                request = {**request, "record": record}
            payload = json.dumps(request, separators=(",", ":")).encode()
            kind, body = await self._call(worker, payload, timeout)
            worker.known_records.add(rk)
        except BaseException:
            if not worker.dead:
                await self._retire(worker)
            raise
        worker.calls += 1
        hit_limit = kind in (b"E", b"e") and self._hit_limit(worker)
        leftovers = self._clean_after_call(worker)
        # A worker whose call left processes or threads behind is replaced: its killed children would stay
        # zombies charged to its cgroup, and a thread could run on into the next call.
        if kind in (b"r", b"e") or leftovers:
            await self._retire(worker)
        else:
            self.release(worker)
        if kind in (b"R", b"r"):
            return body
        error = json.loads(body)
        if error.get("error_type") == "policy_error" and hit_limit:
            error = {"error_type": "resource_limit", "exception_type": error.get("exception_type"),
                     "message": f"the policy hit the limit of {self.limits.max_processes} child processes "
                                f"({error.get('message')})"}
        raise build_error(error)

    async def _call(self, worker: Worker, payload: bytes, timeout: float) -> tuple[bytes, bytes]:
        hits_before = worker.cgroup.limit_hits() if worker.cgroup is not None else 0
        worker.hits_before = hits_before  # type: ignore[attr-defined]
        try:
            await self._send(worker, payload)
            frame = await asyncio.wait_for(self._read(worker), timeout)
        except TimeoutError:
            hit = self._hit_limit(worker)
            await self._retire(worker)
            if hit:
                raise ResourceLimit(f"the policy hit the limit of {self.limits.max_processes} child processes "
                                    f"and did not finish within {timeout:g}s; its processes were killed") from None
            raise Timeout(f"the policy did not finish within {timeout:g}s; its process was killed and replaced") from None
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError, asyncio.LimitOverrunError):
            raise await self._death(worker) from None
        return frame[:1], frame[1:]

    def _hit_limit(self, worker: Worker) -> bool:
        if worker.cgroup is None:
            return False
        return worker.cgroup.limit_hits() > getattr(worker, "hits_before", 0)

    async def _death(self, worker: Worker) -> PolicyGridError:
        try:
            code = await asyncio.wait_for(worker.process.wait(), 5)
        except TimeoutError:
            code = None
        hit = self._hit_limit(worker)
        await self._retire(worker)
        if hit:
            return ResourceLimit(f"the policy hit the limit of {self.limits.max_processes} child processes")
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            if -code == signal.SIGXCPU:
                return ResourceLimit(f"the policy exceeded its CPU-time limit of {self.limits.cpu_seconds:g}s ({name})")
            if -code == signal.SIGKILL:
                return ResourceLimit(f"the policy's process was killed ({name}), probably for memory")
            return PolicyError(f"the policy's process died with signal {name}", exception_type=name)
        return PolicyError(f"the policy's process exited unexpectedly (exit code {code})", exception_type="ProcessExit")

    def _clean_after_call(self, worker: Worker) -> str | None:
        """Kill what the call left running; 'threads' when the worker itself must be replaced."""
        if worker.cgroup is not None:
            if worker.cgroup.task_count() <= 1:
                return None
            if worker.cgroup.kill_all(spare=worker.pid):
                return "processes"
            return "threads" if worker.cgroup.task_count() > 1 else None
        return "processes" if _kill_session(worker.pid, spare=worker.pid) else None

    @staticmethod
    async def _send(worker: Worker, data: bytes) -> None:
        stdin = worker.process.stdin
        assert stdin is not None
        stdin.write(len(data).to_bytes(4, "big") + data)
        await stdin.drain()

    async def _read(self, worker: Worker) -> bytes:
        stdout = worker.process.stdout
        assert stdout is not None
        size = int.from_bytes(await stdout.readexactly(4), "big")
        if size > self.limits.max_result_bytes + 65536:
            raise asyncio.LimitOverrunError("reply too large", size)
        return await stdout.readexactly(size)

    # --- state --------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        live = len(self.workers)
        return {
            "workers": self.limits.workers,
            "live": live,
            "idle": len(self.idle),
            "busy": max(0, live - len(self.idle)),
            "starting": self.starting,
            "queued": sum(1 for _, f, _ in self.waiters if not f.done()),
            "warm_digests": sorted({w.digest for w in self.workers if w.digest}),
            "started_total": self.started_total,
            "replaced_total": self.replaced_total,
            "pids": sorted(w.pid for w in self.workers),
        }

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self.workers]


def build_error(body: dict[str, Any]) -> PolicyGridError:
    from ..errors import ERROR_CLASSES

    cls = ERROR_CLASSES.get(body.get("error_type", ""), PolicyError)
    kwargs: dict[str, Any] = {"errors": body.get("errors") or None}
    if cls is PolicyError:
        kwargs["exception_type"] = body.get("exception_type")
    error = cls(body.get("message") or "the policy failed", **kwargs)
    if body.get("exception_type"):
        error.exception_type = body["exception_type"]  # type: ignore[attr-defined]
    return error


def _kill_session(sid: int, spare: int | None = None) -> int:
    return sandbox.kill_until_gone(lambda: sandbox.session_members(sid), spare, rounds=20)


def _user_note() -> str:
    if os.geteuid() != 0:
        return f"workers run as the service's own unprivileged user (uid {os.geteuid()})"
    return ("NOT applied: the service runs as root and the interpreter's folder "
            f"({Path(sys.executable).resolve().parent}) may not be readable by another user; workers stay uid 0 "
            "but with every capability dropped and Landlock applied (see the executor docs to run as a "
            "dedicated user)")
