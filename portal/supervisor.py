"""The embedded run's process supervisor: starts each child, restarts one that dies, and leaves no orphan.

* **Restart with backoff.** A child that exits is started again after 1 s, then 2, 4 … up to 30 s while it
  keeps dying; the delay resets once it has stayed up a minute. Each exit and restart is a line of the
  supervisor's log and of the console, and ``<state>/supervisor.json`` (read by ``/health``) says, per child,
  its state, pid, restarts and last exit.
* **Liveness.** A child may have a probe (``alive``) that the supervisor calls every few seconds; one that says
  no (a Celery worker whose pool stopped taking tasks) is killed and restarted like a dead one.
* **No orphans.** Every child runs in a process group of its own and gets SIGTERM if the supervisor dies
  (``PR_SET_PDEATHSIG``); stopping or restarting a child signals its whole group. The supervisor is a *child
  subreaper* (``PR_SET_CHILD_SUBREAPER``): a process whose parent died — a sandbox worker of a SIGKILLed executor,
  a pool process of a SIGKILLed Celery master, a web worker of a killed server — becomes the supervisor's child
  instead of init's, and is killed and reaped at the next tick, whatever session or group it moved to.

Under systemd or Kubernetes the same is done by the platform (docs/operations.md).
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
FIRST_BACKOFF, MAX_BACKOFF, STABLE_SECONDS = 1.0, 30.0, 60.0
PROBE_EVERY = 2.0
ORPHAN_GRACE = 5.0
STATUS_EVERY = 5.0  # /health shows when the supervisor last wrote: a stale time means it is gone

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: no subreaper, no parent-death signal
    _prctl = None


def prctl(option: int, value: int) -> bool:
    if _prctl is None:
        return False
    return _prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0


@dataclass(eq=False)
class Child:
    name: str
    command: list[str]
    alive: Callable[[Child], bool] | None = None  # the liveness probe, called while the child runs
    pass_fds: tuple[int, ...] = ()  # descriptors it inherits (the web server's listening socket)
    process: subprocess.Popen | None = None
    state: str = "stopped"  # running, backoff (waiting to restart), stopped
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = FIRST_BACKOFF
    restart_at: float = 0.0
    last_exit: dict | None = None
    last_probe: float = 0.0
    notes: list[str] = field(default_factory=list)


class Supervisor:
    def __init__(self, state_dir: Path | None, env: dict[str, str], say: Callable[[str], None] = print):
        """``state_dir``: where the children's logs, the supervisor's log and ``supervisor.json`` go; None (the
        portal's server supervising its worker processes) leaves the children the supervisor's own output and
        writes no status."""
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.env = env
        self.say = say
        self.children: dict[str, Child] = {}
        self.status_file = self.state_dir / "supervisor.json" if self.state_dir else None
        self.log_file = self.state_dir / "logs" / "supervisor.log" if self.state_dir else None
        self.orphans_killed = 0
        self.orphans: dict[int, float] = {}  # pid -> when first seen
        self.subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1)
        self.status_written = 0.0

    # --- starting ----------------------------------------------------------------------------------------------

    def add(self, name: str, command: list[str], alive: Callable[[Child], bool] | None = None,
            pass_fds: tuple[int, ...] = ()) -> Child:
        child = Child(name, command, alive, pass_fds)
        self.children[name] = child
        return child

    def start(self, child: Child) -> None:
        log = open(self.child_log(child), "ab") if self.state_dir else None  # noqa: SIM115 - closed below
        parent = os.getpid()

        def in_child():
            os.setsid()  # a group of its own: stopping the child reaches everything it started in it
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:
                os._exit(1)

        try:
            child.process = subprocess.Popen(child.command, env=self.env, stdout=log,
                                             stderr=subprocess.STDOUT if log else None, stdin=subprocess.DEVNULL,
                                             preexec_fn=in_child, pass_fds=child.pass_fds)
        finally:
            if log is not None:
                log.close()
        child.state, child.started_at, child.last_probe = "running", time.time(), time.monotonic()
        self.write_status()

    def run_until_stopped(self, started: Callable[[Child], None] | None = None,
                          ready: Callable[[], None] | None = None, grace: float = 10.0) -> None:
        """Start every child (``started`` is called after each), call ``ready``, then watch them (``tick``) until
        SIGTERM or SIGINT; stop them all (``stop_all``), however it ends."""
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            for child in self.children.values():
                self.start(child)
                if started is not None:
                    started(child)
            if ready is not None and not stopping:
                ready()
            while not stopping:
                self.tick()
                time.sleep(0.25)
        finally:
            self.stop_all(grace)

    # --- watching ----------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """One round: reap and kill orphans, notice exits, probe liveness, restart what is due."""
        self.kill_orphans()
        now = time.monotonic()
        changed = False
        for child in self.children.values():
            if child.state == "running" and child.process.poll() is not None:
                self.exited(child, f"exited with {describe(child.process.returncode)}")
                changed = True
            elif child.state == "running" and child.alive and now - child.last_probe >= PROBE_EVERY:
                child.last_probe = now
                if not child.alive(child):
                    self.kill_group(child, signal.SIGKILL)
                    child.process.wait()
                    self.exited(child, "was stalled (its liveness check failed) and was killed")
                    changed = True
            if child.state == "backoff" and now >= child.restart_at:
                child.restarts += 1
                self.start(child)
                self.note(f"{child.name} restarted (restart {child.restarts}, pid {child.process.pid})")
        if changed or now - self.status_written >= STATUS_EVERY:
            self.write_status()

    def exited(self, child: Child, what: str) -> None:
        up = time.time() - child.started_at
        if up >= STABLE_SECONDS:
            child.backoff = FIRST_BACKOFF
        child.last_exit = {"at": iso(time.time()), "what": what, "after_seconds": round(up, 1)}
        child.state, child.restart_at = "backoff", time.monotonic() + child.backoff
        self.note(f"{child.name} (pid {child.process.pid}) {what} after {up:.1f} s; restarting in "
                  f"{child.backoff:g} s" + (f" — see {self.child_log(child)}" if self.state_dir else ""))
        self.kill_group(child, signal.SIGKILL)  # whatever it left in its group
        child.backoff = min(MAX_BACKOFF, child.backoff * 2)

    def kill_orphans(self, force: bool = False) -> None:
        """End every process the kernel handed to this subreaper (its parent, one of ours, died): SIGTERM first, so
        that a web worker finishes the requests it took, then SIGKILL after ``ORPHAN_GRACE`` seconds; reap them."""
        ours = {child.process.pid for child in self.children.values() if child.process is not None}
        now = time.monotonic()
        orphans = children_of(os.getpid()) - ours
        for pid in orphans:
            first_seen = self.orphans.setdefault(pid, now)
            sig = signal.SIGKILL if force or now - first_seen >= ORPHAN_GRACE else signal.SIGTERM
            if first_seen == now or sig == signal.SIGKILL:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                del self.orphans[pid]
                self.orphans_killed += 1
        for pid in set(self.orphans) - orphans:
            del self.orphans[pid]

    # --- stopping ----------------------------------------------------------------------------------------------

    def stop_all(self, grace: float = 10.0) -> None:
        """SIGTERM to each child's own process, which stops what it started (Celery's warm shutdown ends its pool;
        SIGTERM to the pool processes as well deadlocked the master's shutdown, which then took the whole
        ``grace``), then SIGKILL to each child's process group once it has stopped or ``grace`` has passed."""
        running = [c for c in self.children.values() if c.process is not None and c.process.poll() is None]
        for child in running:
            try:
                child.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.note(f"{child.name} did not stop within {grace:g} s: killed")
        for child in self.children.values():
            if child.process is not None:
                self.kill_group(child, signal.SIGKILL)
                if child.process.poll() is None:
                    child.process.wait()
            child.state = "stopped"
        # Orphans of the children's last moments: repeat until none is left.
        for _ in range(40):
            if not children_of(os.getpid()):
                break
            self.kill_orphans(force=True)
            time.sleep(0.05)
        self.write_status()

    @staticmethod
    def kill_group(child: Child, sig: int) -> None:
        try:
            os.killpg(child.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    # --- reporting ---------------------------------------------------------------------------------------------

    def note(self, line: str) -> None:
        stamped = f"{iso(time.time())} supervisor: {line}"
        try:
            self.say(stamped)
        except (OSError, ValueError):
            pass  # a closed terminal or pipe: the log file still has it, and stopping goes on
        if self.log_file is not None:
            with open(self.log_file, "a", encoding="utf-8") as log:
                log.write(stamped + "\n")

    def status(self) -> dict:
        processes = {}
        for child in self.children.values():
            processes[child.name] = {
                "state": child.state, "pid": child.process.pid if child.process is not None else None,
                "started_at": iso(child.started_at) if child.started_at else None, "restarts": child.restarts,
                "last_exit": child.last_exit,
            }
        healthy = all(p["state"] == "running" for p in processes.values())
        return {"status": "ok" if healthy else "degraded", "supervisor_pid": os.getpid(), "updated_at": iso(time.time()),
                "orphans_killed": self.orphans_killed, "processes": processes}

    def child_log(self, child: Child) -> Path:
        return self.state_dir / "logs" / f"{child.name}.log"

    def write_status(self) -> None:
        self.status_written = time.monotonic()
        if self.status_file is None:
            return
        partial = self.status_file.with_name(f".{self.status_file.name}.partial")
        partial.write_text(json.dumps(self.status(), indent=1))
        os.replace(partial, self.status_file)


def children_of(pid: int) -> set[int]:
    """Pids whose parent is ``pid`` (zombies included), from /proc."""
    found = set()
    if os.path.exists(f"/proc/{pid}/task/{pid}/children"):
        # One file per thread: a child is listed under the thread that started (or adopted) it.
        for thread in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{thread}/children") as handle:
                    found.update(int(p) for p in handle.read().split())
            except OSError:
                continue
        return found
    # Kernels without the children file: scan every process's parent.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry))
    return found


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"code {returncode}"


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
