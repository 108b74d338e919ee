"""One worker process from the outside: its limits, environment, start, frames, kill, and what its death means."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import lifetime, sandbox
from ..errors import PolicyError, PolicyGridError, ResourceLimit, Timeout, Unavailable
from . import identity
from .confine import control_plane_ports

logger = logging.getLogger("policygrid.workers")

# Variables a worker may see. Everything else (tokens, database URLs, cloud keys, the service's own
# configuration) stays in the parent: an allow-list, so that a secret with an unusual name can't leak.
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
            "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")
# Room for a reply's frame header and error text on top of the result cap.
FRAME_SLACK = 65536


@dataclass
class PoolLimits:
    """Limits of docs/runtime.md §4 for every worker of a pool; ``timeout_seconds`` is wall clock per call."""

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
    # Names the pool's temporary folder and cgroup (``policygrid-<label>-…``), so an operator sees whose they are.
    label: str = "executor"
    file_size_mb: int = 1024
    open_files: int = 1024
    # Ports policy code may never connect to, whatever its record declares (the service's, the portal's, ...).
    deny_ports: tuple[int, ...] = field(default_factory=control_plane_ports)
    # The user numbers a root service gives its workers (POLICYGRID_SANDBOX_UIDS; None: stay root, weaker).
    sandbox_uids: range | None = field(default_factory=lambda: identity.uid_range(
        os.environ.get("POLICYGRID_SANDBOX_UIDS")))
    # Run policy code even when Landlock, seccomp or the per-call fork can't be applied (POLICYGRID_ALLOW_WEAKER_SANDBOX).
    allow_weaker_sandbox: bool = field(default_factory=lambda: os.environ.get(
        "POLICYGRID_ALLOW_WEAKER_SANDBOX", "").strip().lower() in {"1", "true", "yes", "on"})


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
    limit_hits_before: int = 0
    # The worker's own children between calls (Type 1's kept instances, the spare forked for the next call).
    keepers: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid


def worker_environment(tmp: Path, pass_env: tuple[str, ...] = ()) -> dict[str, str]:
    """The whole environment of a worker: the allow-list, its own temporary folder, this package importable."""
    env = {k: v for k, v in os.environ.items() if k in SAFE_ENV or k in pass_env}
    env.update({"TMPDIR": str(tmp / "call"), "HOME": str(tmp / "call"), "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONNOUSERSITE": "1"})
    # The worker imports this very package, wherever the parent was installed from.
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


async def start_process(tmp: Path, limits: PoolLimits) -> asyncio.subprocess.Process:
    (tmp / "call").mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(tmp, 0o700)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policygrid.workers.process",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
        cwd=str(tmp), env=worker_environment(tmp, limits.pass_env), start_new_session=True,
        limit=limits.max_result_bytes + FRAME_SLACK,
        # Dies with the service (issue 13): a SIGKILLed service must not leave its workers running.
        preexec_fn=functools.partial(lifetime.die_with_parent, os.getpid()),
    )


async def handshake(worker: Worker, limits: PoolLimits, uid: int | None = None) -> dict[str, Any]:
    """Send the init frame; return the protections the worker reports, or raise Unavailable."""
    init = {
        "uid": uid,
        "tmp_base": str(worker.tmp), "memory_mb": limits.memory_mb, "max_processes": limits.max_processes,
        "cpu_seconds": limits.cpu_seconds, "max_result_bytes": limits.max_result_bytes,
        "max_message_chars": limits.max_message_chars, "redis_url": limits.redis_url,
        "landlock": limits.landlock, "preload": list(limits.preload), "file_size_mb": limits.file_size_mb,
        "open_files": limits.open_files, "deny_ports": list(limits.deny_ports),
        "allow_weaker": limits.allow_weaker_sandbox,
    }
    try:
        await send_frame(worker, json.dumps(init).encode())
        reply = await asyncio.wait_for(read_frame(worker, limits), limits.start_timeout_seconds)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
        await kill(worker)
        raise Unavailable(f"a worker process failed to start: {type(exc).__name__}") from exc
    return json.loads(reply).get("protections", {})


async def send_frame(worker: Worker, data: bytes) -> None:
    stdin = worker.process.stdin
    assert stdin is not None
    stdin.write(len(data).to_bytes(4, "big") + data)
    await stdin.drain()


async def read_frame(worker: Worker, limits: PoolLimits) -> bytes:
    stdout = worker.process.stdout
    assert stdout is not None
    size = int.from_bytes(await stdout.readexactly(4), "big")
    if size > limits.max_result_bytes + FRAME_SLACK:
        raise asyncio.LimitOverrunError("reply too large", size)
    return await stdout.readexactly(size)


def hit_process_limit(worker: Worker) -> bool:
    """Whether the worker's cgroup refused a fork since the current call began."""
    return worker.cgroup is not None and worker.cgroup.limit_hits() > worker.limit_hits_before


async def kill(worker: Worker) -> None:
    """SIGKILL the worker and everything it started (its cgroup, else its session); wait for it."""
    worker.dead = True
    if worker.cgroup is not None:
        worker.cgroup.kill_all()
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if worker.cgroup is None:
        kill_session(worker.pid)
    try:
        await asyncio.wait_for(worker.process.wait(), 5)
    except TimeoutError:
        logger.warning("worker %s (pid %s) did not exit after SIGKILL", worker.name, worker.pid)


def kill_session(sid: int, spare: int | None = None) -> int:
    return sandbox.kill_until_gone(lambda: sandbox.session_members(sid), spare, rounds=20)


async def exit_code(worker: Worker) -> int | None:
    """The exit status of a worker that closed its end of the protocol (None if it lingers on)."""
    try:
        return await asyncio.wait_for(worker.process.wait(), 5)
    except TimeoutError:
        return None


def describe_death(code: int | None, limits: PoolLimits, *, hit_limit: bool = False,
                   timed_out: float | None = None) -> PolicyGridError:
    """The error of a call whose worker died or was killed: timeout, process limit, CPU, memory, crash, exit."""
    if hit_limit:
        late = f" and did not finish within {timed_out:g}s; its processes were killed" if timed_out is not None else ""
        return ResourceLimit(f"the policy hit the limit of {limits.max_processes} child processes{late}")
    if timed_out is not None:
        return Timeout(f"the policy did not answer within {timed_out:g}s; its process was killed and replaced")
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        if -code == signal.SIGXCPU:
            return ResourceLimit(f"the policy exceeded its CPU-time limit of {limits.cpu_seconds:g}s ({name})")
        if -code == signal.SIGKILL:
            return ResourceLimit(f"the policy's process was killed ({name}), probably for memory")
        return PolicyError(f"the policy's process died with signal {name}", exception_type=name)
    return PolicyError(f"the policy's process exited unexpectedly (exit code {code})", exception_type="ProcessExit")
