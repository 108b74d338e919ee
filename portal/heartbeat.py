"""Liveness of the embedded Celery worker, for portal/supervisor.py: is its pool still running tasks?

A worker whose master lives but whose pool no longer takes tasks (issue 13: a SIGKILLed pool process left both
pool processes waiting on a lock for minutes, probes stopped and nothing said so) looks alive to any process
check. So the supervisor sends the ``portal.heartbeat`` task every ``EVERY`` seconds through the broker, and
the worker is stalled when none has run for ``POLICYGRID_WORKER_STALL_SECONDS`` (default 8) while heartbeats
were being sent, and none of its pool processes is in the middle of a task (``<state>/worker-busy/<pid>``,
written by portal/tasks.py while a task runs: a pool busy with long tasks queues the heartbeat, it has not
stalled; a pool stuck on a lock is between tasks): the supervisor then kills and restarts it. Under Kubernetes the same check is the worker's
liveness probe (docs/operations.md).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

EVERY = 3.0
STARTUP_GRACE = 15.0
BUSY_FOLDER = "worker-busy"


class WorkerHeartbeat:
    def __init__(self, state_dir: Path, stall_seconds: float | None = None):
        self.file = Path(state_dir) / "worker-heartbeat"
        self.stall_seconds = stall_seconds or float(os.environ.get("POLICYGRID_WORKER_STALL_SECONDS", "8"))
        self.last_sent = 0.0
        self.sending_since: float | None = None  # heartbeats have reached the broker since then

    def __call__(self, child) -> bool:
        """True while the worker's pool runs tasks (or it is too early to say)."""
        now = time.time()
        if now - self.last_sent >= EVERY:
            self.last_sent = now
            if not self.send():
                self.sending_since = None
            elif self.sending_since is None:
                self.sending_since = now
        if self.sending_since is None:
            return True
        try:
            beat = self.file.stat().st_mtime
        except FileNotFoundError:
            beat = 0.0
        # A worker just started (imports, broker connection) is given STARTUP_GRACE on top.
        return (now - max(beat, self.sending_since, child.started_at + STARTUP_GRACE) < self.stall_seconds
                or self.running_a_task())

    def running_a_task(self) -> bool:
        """Whether a live pool process is in a task now (marks of dead processes are cleared)."""
        busy = False
        for mark in (self.file.parent / BUSY_FOLDER).glob("*"):
            if not mark.name.isdigit():
                continue
            if _running(int(mark.name)):
                busy = True
            else:
                mark.unlink(missing_ok=True)
        return busy

    def send(self) -> bool:
        from portal.celery import app

        try:
            app.send_task("portal.heartbeat", expires=self.stall_seconds, ignore_result=True)
        except Exception:  # noqa: BLE001 - a broker hiccup is not the worker's stall
            return False
        return True


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that still runs: a killed one its parent has not reaped yet is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])
