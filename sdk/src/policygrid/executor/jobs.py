"""The local runtime's jobs (Type 3, docs/runtime.md §6): each job is a supervised ``python -m policygrid.job``.

* From the first job on, runners are started ahead (``SPARES`` of them), their sandbox already up, so a job
  starts by writing one line to a waiting process. At most ``max_jobs`` run at once; the others wait in order (``queued``).
* Each runner and its sandbox workers are killed past the job's timeout (plus ``GRACE_SECONDS`` for the runner
  to post its own timeout), on ``DELETE /jobs/<id>``, and when the service stops: nothing is left behind.
* A runner that ends without posting its outcome (exit status not 0: a signal, a crash, out of memory, killed
  at its timeout) is reported ``failed`` to the portal here, with the reason seen, using the job's token.
* ``status`` and ``logs`` answer ``GET /jobs/<id>`` and ``GET /jobs/<id>/logs?tail=N``: what the portal's
  reconciliation and its logs route read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

from ..errors import InputInvalid, NotFound, PolicyGridError
from ..job import EXIT_NOT_POSTED, limits_to_json, post_result
from ..workers import PoolLimits

logger = logging.getLogger("policygrid.executor.jobs")

SPARES = 2
GRACE_SECONDS = 2.0
MAX_LOG_LINES = 5000
MAX_LINE_CHARS = 4096
KEEP_FINISHED = 2000
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
# Variables a runner never needs (the sandbox's workers get an allow-listed environment of their own anyway).
RUNNER_SECRETS = ("POLICYGRID_EXECUTOR_TOKEN", "POLICYGRID_EXECUTOR_TOKEN_FILE", "POLICYGRID_TOKEN")


def log_line(message: str) -> str:
    """``message`` stamped as the runners stamp their own lines (UTC, milliseconds), so logs sort by time."""
    now = time.time()
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now))}.{int(now % 1 * 1000):03d} {message}"


class JobState:
    """A job as this service sees it::

        queued ──▶ running ──▶ exited      (exit_code 0: the runner posted the outcome; else `reason`)
           └──────────┴──────▶ cancelled
    """

    QUEUED, RUNNING, EXITED, CANCELLED = "queued", "running", "exited", "cancelled"


class _Runner:
    """One ``python -m policygrid.job`` process and what it printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: deque[str] = deque(maxlen=MAX_LOG_LINES)
        self.worker_pids: list[int] = []
        self.readers = [asyncio.ensure_future(self._read_control()), asyncio.ensure_future(self._read_log())]

    async def _read_control(self) -> None:
        async for line in self.process.stdout:
            try:
                self.worker_pids.extend(int(pid) for pid in json.loads(line).get("worker_pids", []))
            except (ValueError, AttributeError, TypeError):
                self.lines.append("(unexpected line on the runner's stdout)")

    async def _read_log(self) -> None:
        while True:
            try:
                line = await self.process.stderr.readline()
            except ValueError:  # a line longer than the stream's limit: skip it
                continue
            if not line:
                return
            self.lines.append(line.decode(errors="replace").rstrip("\n")[:MAX_LINE_CHARS])

    def kill(self, tmp_root: Path) -> None:
        """SIGKILL the runner's session and each sandbox worker's (its forked call processes are in it)."""
        for group in (self.process.pid, *self.worker_pids):
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        # A runner killed before it closed its pool leaves the pool's folder (policygrid.workers names it).
        shutil.rmtree(tmp_root / f"policygrid-job-1-{self.process.pid}", ignore_errors=True)


class LocalJob:
    def __init__(self, job_id: str, token: str, spec: dict[str, Any], timeout: float) -> None:
        self.job_id = job_id
        self.token = token
        self.spec = spec
        self.timeout = timeout
        self.state = JobState.QUEUED
        self.runner: _Runner | None = None
        self.exit_code: int | None = None
        self.signal: str | None = None
        self.reason = ""
        self.submitted_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.own_lines: deque[str] = deque(maxlen=100)
        self.task: asyncio.Task | None = None

    def note(self, message: str) -> None:
        self.own_lines.append(log_line(f"[executor] {message}"))

    def describe(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "state": self.state, "pid": self.runner.process.pid if self.runner else None,
                "exit_code": self.exit_code, "signal": self.signal, "reason": self.reason,
                "node": socket.gethostname(), "submitted_at": self.submitted_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "timeout_seconds": self.timeout}


class JobSupervisor:
    def __init__(self, limits: PoolLimits, *, portal_url: str | None, max_jobs: int, env: dict[str, str]) -> None:
        self.limits = limits
        self.portal_url = portal_url
        self.max_jobs = max(1, max_jobs)
        self.env = {k: v for k, v in env.items() if k not in RUNNER_SECRETS}
        self.jobs: OrderedDict[str, LocalJob] = OrderedDict()
        self.queue: deque[LocalJob] = deque()
        self.running = 0
        self.spares: deque[_Runner] = deque()
        self.closed = False
        self.started_total = 0

    # --- runners ------------------------------------------------------------------------------------------

    async def _start_runner(self) -> _Runner:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "policygrid.job", "--limits", limits_to_json(self.limits),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self.env, start_new_session=True, limit=MAX_LINE_CHARS * 4,
        )
        return _Runner(process)

    async def _refill(self) -> None:
        while not self.closed and len(self.spares) < SPARES:
            runner = await self._start_runner()
            if self.closed:
                runner.kill(self._tmp_root)
                return
            self.spares.append(runner)

    async def _take_runner(self) -> _Runner:
        """A spare whose sandbox is up if there is one, else the oldest spare (raised to normal priority, where
        this service may), else a new runner; a replacement spare is started behind it."""
        live = [runner for runner in self.spares if runner.process.returncode is None]
        self.spares = deque(live)
        runner = next((r for r in live if r.worker_pids), live[0] if live else None)
        if runner is not None:
            self.spares.remove(runner)
            if not runner.worker_pids:
                try:
                    os.setpriority(os.PRIO_PROCESS, runner.process.pid, 0)
                except OSError:
                    pass
        else:
            runner = await self._start_runner()
        asyncio.ensure_future(self._refill())
        return runner

    @property
    def _tmp_root(self) -> Path:
        import tempfile

        return Path(self.limits.tmp_root or tempfile.gettempdir())

    async def start(self) -> None:
        """Nothing runs ahead until the first job: a service that never runs jobs has no runner process."""

    async def close(self) -> None:
        self.closed = True
        for job in list(self.jobs.values()):
            if job.state in (JobState.QUEUED, JobState.RUNNING):
                job.state = JobState.CANCELLED
                job.reason = "the executor service stopped"
                if job.runner is not None:
                    job.runner.kill(self._tmp_root)
        for runner in self.spares:
            runner.kill(self._tmp_root)
        for runner in [*self.spares, *(job.runner for job in self.jobs.values() if job.runner)]:
            try:
                await asyncio.wait_for(runner.process.wait(), 5)
            except TimeoutError:
                pass
        self.spares.clear()

    # --- jobs ---------------------------------------------------------------------------------------------

    def submit(self, job_id: str, token: str, spec: dict[str, Any], timeout: float) -> LocalJob:
        if not self.portal_url:
            raise PolicyGridError("this executor has no portal to report jobs to: set POLICYGRID_URL", status=503,
                                  error_type="unavailable")
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise InputInvalid("invalid request: job.job_id: letters, digits and '-', at most 64",
                               errors={"job.job_id": ["letters, digits and '-', at most 64"]})
        if not isinstance(token, str) or not 16 <= len(token) <= 200:
            raise InputInvalid("invalid request: job.token: a string of 16 to 200 characters",
                               errors={"job.token": ["a string of 16 to 200 characters"]})
        if job_id in self.jobs:
            raise PolicyGridError(f"job {job_id} was already submitted to this executor", status=409,
                                  error_type="conflict")
        job = LocalJob(job_id, token, {**spec, "job_id": job_id, "token": token, "portal_url": self.portal_url},
                       timeout)
        self.jobs[job_id] = job
        while len(self.jobs) > KEEP_FINISHED:
            oldest = next(iter(self.jobs.values()))
            if oldest.state in (JobState.QUEUED, JobState.RUNNING):
                break
            self.jobs.popitem(last=False)
        job.note(f"submitted: {spec['record']['policy_rule_uri']}, timeout {timeout:g}s")
        self.queue.append(job)
        self._dispatch()
        return job

    def _dispatch(self) -> None:
        while self.queue and self.running < self.max_jobs and not self.closed:
            job = self.queue.popleft()
            if job.state != JobState.QUEUED:
                continue
            self.running += 1
            job.task = asyncio.ensure_future(self._supervise(job))

    async def _supervise(self, job: LocalJob) -> None:
        try:
            await self._run(job)
        except Exception as exc:  # noqa: BLE001 - the bookkeeping of one job must not stop the others
            logger.exception("supervising job %s failed", job.job_id)
            job.reason = job.reason or f"the executor could not run the job: {type(exc).__name__}: {exc}"
            if job.state != JobState.CANCELLED:
                job.state = JobState.EXITED
                await self._report_failure(job)
        finally:
            job.finished_at = job.finished_at or time.time()
            self.running -= 1
            self._dispatch()

    async def _run(self, job: LocalJob) -> None:
        runner = await self._take_runner()
        job.runner = runner
        if job.state == JobState.CANCELLED:  # cancelled while its runner was being taken
            runner.kill(self._tmp_root)
            return
        job.state = JobState.RUNNING
        job.started_at = time.time()
        job.note(f"started: runner pid {runner.process.pid}")
        runner.process.stdin.write(json.dumps(job.spec).encode() + b"\n")
        await runner.process.stdin.drain()
        runner.process.stdin.close()
        try:
            code = await asyncio.wait_for(runner.process.wait(), job.timeout + GRACE_SECONDS)
        except TimeoutError:
            job.reason = f"killed: the job ran past its timeout of {job.timeout:g}s (timeout)"
            job.note(job.reason)
            runner.kill(self._tmp_root)
            code = await runner.process.wait()
        runner.kill(self._tmp_root)  # whatever the runner's sandbox left
        await asyncio.gather(*runner.readers, return_exceptions=True)
        job.finished_at = time.time()
        if job.state == JobState.CANCELLED:
            return
        job.state = JobState.EXITED
        job.exit_code = code
        if code == 0:
            job.note("the runner posted the job's outcome and exited")
            return
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            job.signal = name
            if not job.reason:
                hint = " (killed from outside, or out of memory)" if name == "SIGKILL" else ""
                job.reason = f"the job's process was killed by signal {-code} ({name}){hint}"
        elif not job.reason:
            job.reason = (f"the job's runner could not post its outcome (exit code {code})" if code == EXIT_NOT_POSTED
                          else f"the job's process exited with code {code} without posting its outcome")
        job.note(job.reason)
        await self._report_failure(job)

    async def _report_failure(self, job: LocalJob) -> None:
        outcome = {"status": "failed", "error": job.reason, "error_type": "timeout" if "(timeout)" in job.reason
                   else "policy_error", "exit_code": job.exit_code, "signal": job.signal}
        posted = await asyncio.to_thread(post_result, job.spec, outcome)
        job.note("failure reported to the portal" if posted else "the failure could not be reported to the portal")

    def cancel(self, job_id: str) -> LocalJob:
        job = self.get(job_id)
        if job.state in (JobState.QUEUED, JobState.RUNNING):
            job.state = JobState.CANCELLED
            job.reason = "cancelled"
            job.finished_at = time.time()
            job.note("cancelled: its processes are killed")
            if job.runner is not None:
                job.runner.kill(self._tmp_root)
        return job

    def get(self, job_id: str) -> LocalJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id} on this executor")
        return job

    def logs(self, job_id: str, tail: int | None) -> str:
        job = self.get(job_id)
        lines = [*(job.runner.lines if job.runner else ()), *job.own_lines]
        if tail is not None:
            lines = lines[-tail:] if tail else []
        return "\n".join(lines) + ("\n" if lines else "")

    def stats(self) -> dict[str, Any]:
        return {"running": self.running, "queued": len(self.queue), "max_jobs": self.max_jobs,
                "spares": len(self.spares), "known": len(self.jobs)}


def parse_tail(query: bytes) -> int | None:
    """``?tail=N`` of a logs request (a non-negative integer), or None."""
    from urllib.parse import parse_qs

    values = parse_qs(query.decode(errors="replace")).get("tail")
    if not values:
        return None
    if not values[0].isdigit() or len(values[0]) > 9:
        raise InputInvalid("invalid request: tail: a non-negative integer", errors={"tail": ["a non-negative integer"]})
    return int(values[0])
