"""The pool of pre-started sandboxed worker processes: the executor service's, and Type 1 isolation's pool of one.

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
import itertools
import json
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from .. import sandbox
from ..errors import InputInvalid, PolicyGridError, Unavailable
from ..wire import error_from_envelope
from . import control, identity
from .control import PoolLimits, Worker

logger = logging.getLogger("policygrid.workers")

# Records a worker keeps before the pool makes it forget them all (a worker is bound to one package, but a
# package's record may change many times).
MAX_RECORDS_PER_WORKER = 64
_pool_numbers = itertools.count(1)
_call_ids = itertools.count(1)
# Protections without which policy code is refused (unless POLICYGRID_ALLOW_WEAKER_SANDBOX=true).
REQUIRED_PROTECTIONS = ("filesystem", "network", "seccomp", "call_isolation", "unprivileged_user")


def escape_for_log(text: str) -> str:
    """Printable on one line: newlines and control characters escaped, so a policy can't forge log lines."""
    return repr(text)[1:-1]


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
        # Unique per pool: several pools (Type 1 evaluators) may live in one process.
        self.number = next(_pool_numbers)
        self.name = f"policygrid-{limits.label}-{self.number}-{os.getpid()}"
        self.tmp_root = Path(limits.tmp_root or tempfile.gettempdir()) / self.name
        self.cgroups, cgroup_note = sandbox.CgroupParent.create(self.name)
        self.protections["process_containment"] = cgroup_note

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
                future.set_exception(Unavailable("the worker pool is shutting down"))
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
            process = await control.start_process(tmp, self.limits)
            cgroup = None
            if self.cgroups is not None:
                # The worker waits for its init frame before running anything, so it is inside its cgroup
                # before the first policy instruction; threads count too, hence the worker's own few on top.
                cgroup = self.cgroups.worker(name, self.limits.max_processes + 8)
                if cgroup is not None and not cgroup.add(process.pid):
                    cgroup = None
            worker = Worker(name, process, tmp, cgroup)
            self.workers.add(worker)
            uids = self.limits.sandbox_uids
            uid = identity.pick_uid(uids, self.number, self._counter) if uids and os.geteuid() == 0 else None
            worker_notes = await control.handshake(worker, self.limits, uid)
            if cgroup is None:
                worker_notes["process_containment_worker"] = "no cgroup: leftovers killed by session"
            self.protections.update(worker_notes)
            self.started_total += 1
            return worker
        finally:
            self.starting -= 1

    async def _retire(self, worker: Worker, *, replace: bool = True) -> None:
        if worker in self.idle:
            self.idle.remove(worker)
        await control.kill(worker)
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
            raise Unavailable("the worker pool is shutting down")
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

    def missing_protections(self) -> list[str]:
        return [name for name in REQUIRED_PROTECTIONS
                if str(self.protections.get(name, "NOT reported")).startswith("NOT")]

    async def run(self, digest: str, request: dict[str, Any], record: dict[str, Any], rk: str,
                  timeout: float, output: dict[str, Any] | None = None) -> bytes:
        """Run one call; return the result's JSON bytes or raise the error's PolicyGridError subclass.

        What the policy printed (capped) is logged with the call's id and URI; when ``output`` is a dict it is
        filled with ``{"stdout", "stderr", "truncated"}`` too (and a raised error carries it as ``.output``).
        """
        missing = self.missing_protections()
        if missing and not self.limits.allow_weaker_sandbox:
            refusal = Unavailable(f"this executor refuses to run policy code: protection(s) {', '.join(missing)} "
                                  "not available on this machine (set POLICYGRID_ALLOW_WEAKER_SANDBOX=true to run "
                                  "anyway)")
            refusal.status = 503  # the service is up but can't do this safely: not a bad gateway
            raise refusal
        network = record.get("policy_network")
        if network is not None:
            # Confinement is applied once per worker: a worker is bound to a package *and* a network declaration.
            digest = f"{digest}#net={json.dumps(network, sort_keys=True, default=str)}"
        call_id = next(_call_ids)
        worker = await self.acquire(digest)
        try:
            payload = self._encode(worker, request, record, rk)
        except InputInvalid:
            self.release(worker)
            raise
        try:
            kind, body = await self._call(worker, payload, timeout)
            worker.known_records.add(rk)
        except BaseException:
            if not worker.dead:
                await self._retire(worker)
            raise
        worker.calls += 1
        hit_limit = kind in (b"E", b"e") and control.hit_process_limit(worker)
        head_size = int.from_bytes(body[:4], "big")
        head = json.loads(body[4:4 + head_size]) if head_size else {}
        body = body[4 + head_size:]
        captured = head.get("output")
        worker.keepers = [pid for pid in head.get("keepers") or [] if isinstance(pid, int)]
        # Children the worker killed once their answer was in: it reaps them right after this reply.
        dying = [pid for pid in head.get("dying") or [] if isinstance(pid, int)]
        leftovers = self._clean_after_call(worker, worker.keepers + dying)
        # A worker whose call left processes or threads behind is replaced: its killed children would stay
        # zombies charged to its cgroup, and a thread could run on into the next call.
        if kind in (b"r", b"e") or leftovers:
            await self._retire(worker)
        else:
            self.release(worker)
        if captured:
            logger.info("policy output call=%s uri=%s truncated=%s stdout=%s stderr=%s", call_id,
                        escape_for_log(str(request.get("uri"))), captured.get("truncated"),
                        escape_for_log(captured.get("stdout", "")), escape_for_log(captured.get("stderr", "")))
        if output is not None:
            output.update(captured or {"stdout": "", "stderr": "", "truncated": False})
        if kind in (b"R", b"r"):
            return body
        error = json.loads(body)
        if error.get("error_type") == "policy_error" and hit_limit:
            error = {"error_type": "resource_limit", "exception_type": error.get("exception_type"),
                     "message": f"the policy hit the limit of {self.limits.max_processes} child processes "
                                f"({error.get('message')})"}
        exc = error_from_envelope(error)
        if output is not None:
            exc.output = output
        raise exc

    @staticmethod
    def _encode(worker: Worker, request: dict[str, Any], record: dict[str, Any], rk: str) -> bytes:
        """The call's frame; the record goes along only to a worker that doesn't hold it yet."""
        if rk not in worker.known_records:
            request = {**request, "record": record}
            if len(worker.known_records) >= MAX_RECORDS_PER_WORKER:
                worker.known_records.clear()
                request["forget"] = True
        try:
            return json.dumps(request, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise InputInvalid(f"the call's data is not JSON-serialisable: {exc}") from None

    async def _call(self, worker: Worker, payload: bytes, timeout: float) -> tuple[bytes, bytes]:
        worker.limit_hits_before = worker.cgroup.limit_hits() if worker.cgroup is not None else 0
        try:
            await control.send_frame(worker, payload)
            frame = await asyncio.wait_for(control.read_frame(worker, self.limits), timeout)
        except TimeoutError:
            hit = control.hit_process_limit(worker)
            await self._retire(worker)
            raise control.describe_death(None, self.limits, hit_limit=hit, timed_out=timeout) from None
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError, asyncio.LimitOverrunError):
            code = await control.exit_code(worker)
            hit = control.hit_process_limit(worker)
            await self._retire(worker)
            raise control.describe_death(code, self.limits, hit_limit=hit) from None
        return frame[:1], frame[1:]

    def _clean_after_call(self, worker: Worker, keepers: list[int]) -> str | None:
        """Kill what the call left running; 'threads' when the worker itself must be replaced.

        ``keepers``: the processes of Type 1's kept instances, which live on between calls.
        """
        spare = {worker.pid, *keepers}
        if worker.cgroup is not None:
            if worker.cgroup.task_count() <= len(spare):
                return None
            if worker.cgroup.kill_all(spare=spare):
                return "processes"
            return "threads" if worker.cgroup.task_count() > len(spare) else None
        return "processes" if control.kill_session(worker.pid, spare=spare) else None

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
            "call_children": sorted(pid for w in self.workers for pid in w.keepers),
        }

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self.workers]
