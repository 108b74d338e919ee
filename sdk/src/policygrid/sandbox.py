"""The protections of a sandboxed policy process (docs/runtime.md §4) — executor workers and Type 1 isolation — and what this machine lets us apply.

Applied inside each worker, before any policy code is imported:

* resource limits, hard = soft: ``RLIMIT_AS`` (memory), ``RLIMIT_CORE = 0``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``,
  ``RLIMIT_NPROC`` (only meaningful for a non-root user: the kernel never enforces it for root); the per-call
  ``RLIMIT_CPU`` is set in each call's child (``workers/child.py``);
* ``PR_SET_NO_NEW_PRIVS``; Landlock and seccomp are ``workers/confine.py``'s (read/write allow-list, TCP ports,
  socket families, metadata changes), applied when the worker is bound to its package;
* every Linux capability dropped, so that a worker running as root is a root without powers;
* ``PR_SET_DUMPABLE = 0``: no core file, and no other process of the same user may attach to it.

Applied by the service from outside: a cgroup (v1 ``pids`` controller) per worker whose ``pids.max`` caps
the processes and threads it may create, even as root, and through which every process a call left behind
is killed. Where a protection is unavailable the worker says so; the service reports it at start-up and in
``/health``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import shutil
import signal
from pathlib import Path
from typing import Any

# --- resource limits --------------------------------------------------------------------------------------


def _lower(which: int, value: int) -> bool:
    """soft = hard = ``value`` (or the current hard limit, if lower): without CAP_SYS_RESOURCE, never raised again."""
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    try:
        resource.setrlimit(which, (value, value))
        return True
    except (ValueError, OSError):
        return False


# RLIMIT_NPROC's room, beyond the policy's own allowance, for the service's processes started after a worker.
NPROC_ROOM = 32


def apply_rlimits(memory_mb: int, max_processes: int, file_size_mb: int = 1024,
                  open_files: int = 1024) -> dict[str, Any]:
    """Hard limits equal to the soft ones (the capabilities are dropped afterwards, so none can be raised)."""
    report: dict[str, Any] = {}
    fsize = _lower(resource.RLIMIT_FSIZE, file_size_mb * 1024 * 1024)
    nofile = _lower(resource.RLIMIT_NOFILE, open_files)
    report["file_limits"] = (f"RLIMIT_FSIZE {file_size_mb} MiB, RLIMIT_NOFILE {open_files} (hard = soft)"
                             if fsize and nofile else "NOT applied (setrlimit refused)")
    report["core_files"] = "disabled" if _lower(resource.RLIMIT_CORE, 0) else "NOT disabled (setrlimit refused)"
    report["memory_limit"] = (
        f"RLIMIT_AS {memory_mb} MiB" if _lower(resource.RLIMIT_AS, memory_mb * 1024 * 1024) else "NOT applied"
    )
    if os.geteuid() == 0:
        _lower(resource.RLIMIT_NPROC, 4096)
        report["process_limit_rlimit"] = "not enforced: RLIMIT_NPROC is ignored for root (the pids cgroup is)"
    else:
        uid = os.geteuid()
        running = sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == uid)
        # The kernel counts every process of the user, the service's own included (and those started after this
        # one: other workers, their per-call children): room for those on top of the policy's own allowance.
        room = max_processes + NPROC_ROOM
        applied = _lower(resource.RLIMIT_NPROC, running + room)
        report["process_limit_rlimit"] = f"RLIMIT_NPROC {running}+{room}" if applied else "NOT applied"
    return report


def lower_process_limit(count: int) -> bool:
    """RLIMIT_NPROC = ``count`` for a process that has just become a user of its own (so ``count`` is all it
    and its children may ever run at once)."""
    return _lower(resource.RLIMIT_NPROC, count)


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None


# --- prctl, capabilities ----------------------------------------------------------------------------------

PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

_libc: Any = None


def libc() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def _prctl(option: int, arg: int) -> bool:
    return libc().prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0


def set_no_new_privs() -> bool:
    return _prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_non_dumpable() -> bool:
    return _prctl(PR_SET_DUMPABLE, 0)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> str:
    """Drop every capability from the bounding, effective, permitted and inheritable sets."""
    if os.geteuid() != 0 and not _has_any_capability():
        return "none held"
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text()) if Path("/proc/sys/kernel/cap_last_cap").exists() else 40
    for cap in range(last + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if libc().capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        return f"NOT dropped: capset failed ({os.strerror(ctypes.get_errno())})"
    return "all dropped" if not _has_any_capability() else "NOT fully dropped"


def _has_any_capability() -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16) != 0
    except OSError:
        pass
    return False


# --- Landlock ---------------------------------------------------------------------------------------------

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_RULE_PATH_BENEATH = 1

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_REMOVE_DIR = 1 << 4
_FS_REMOVE_FILE = 1 << 5
_FS_MAKE_ALL = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1  # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    if os.uname().machine not in ("x86_64", "aarch64", "riscv64"):  # syscall numbers above are the generic ones
        return 0
    try:
        version = libc().syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except Exception:  # noqa: BLE001 - no libc syscall(): no landlock
        return 0
    return max(0, int(version))


# --- cgroups (the service's side) -------------------------------------------------------------------------

CGROUP_V1_PIDS = Path("/sys/fs/cgroup/pids")


class CgroupParent:
    """``<pids cgroup of this process>/<name>/`` (``policygrid-<label>-<n>-<pid>``): one child cgroup per worker."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(cls, name: str) -> tuple[CgroupParent | None, str]:
        if not (CGROUP_V1_PIDS / "cgroup.procs").exists():
            return None, "no cgroup v1 pids controller at /sys/fs/cgroup/pids (fork bombs are contained only by the timeout and the process-group kill)"
        own = "/"
        try:
            for line in Path("/proc/self/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                if "pids" in controllers.split(","):
                    own = path
        except OSError:
            pass
        base = CGROUP_V1_PIDS / own.lstrip("/")
        _remove_stale(base)
        root = base / name
        try:
            root.mkdir(exist_ok=True)
            (root / "test-write").mkdir(exist_ok=True)
            (root / "test-write").rmdir()
        except OSError as exc:
            return None, f"cannot create a pids cgroup under {base}: {exc.strerror}"
        return cls(root), f"pids cgroup per worker under {root}"

    def worker(self, name: str, pids_max: int) -> WorkerCgroup | None:
        path = self.root / name
        try:
            path.mkdir(exist_ok=True)
            (path / "pids.max").write_text(str(pids_max))
        except OSError:
            return None
        return WorkerCgroup(path)

    def remove(self) -> None:
        if not self.root.exists():
            return
        for child in self.root.iterdir():
            if child.is_dir():
                WorkerCgroup(child).remove()
        try:
            self.root.rmdir()
        except OSError:
            pass


def _remove_stale(base: Path) -> None:
    """Cgroups left by a service that was killed (SIGKILL leaves no chance to clean up)."""
    try:
        for entry in base.glob("policygrid-*-*"):
            pid = entry.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                CgroupParent(entry).remove()
    except OSError:
        pass


class WorkerCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path
        # pids.current and pids.events are read around every call: kept open and read with one pread each
        # (open/read/close through pathlib cost ~25 µs a read on the service's event loop).
        self._fds: dict[str, int] = {}

    def add(self, pid: int) -> bool:
        try:
            (self.path / "cgroup.procs").write_text(str(pid))
            return True
        except OSError:
            return False

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def _read(self, name: str) -> str:
        fd = self._fds.get(name)
        if fd is None:
            fd = self._fds[name] = os.open(self.path / name, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(fd, 4096, 0).decode()

    def _close_files(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

    def task_count(self) -> int:
        try:
            return int(self._read("pids.current"))
        except (OSError, ValueError):
            return 0

    def limit_hits(self) -> int:
        try:
            for line in self._read("pids.events").splitlines():
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def kill_all(self, spare: int | None = None) -> int:
        """SIGKILL every process in the cgroup except ``spare``; repeat until none is left (forks race)."""
        return kill_until_gone(self.pids, spare)

    def remove(self) -> None:
        self._close_files()  # an open file keeps nothing alive, but the folder's removal is cleaner without
        self.kill_all()
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                import time

                time.sleep(0.01)  # killed tasks leave the cgroup a moment after SIGKILL


def kill_until_gone(members, spare=None, rounds: int = 50) -> int:
    """SIGKILL every pid ``members()`` lists except ``spare`` (a pid or a set), again until none is left."""
    killed = 0
    spared = set(spare) if isinstance(spare, set | frozenset | list | tuple) else {spare}
    for _ in range(rounds):
        victims = [pid for pid in members() if pid not in spared]
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def session_members(sid: int) -> list[int]:
    """Processes of session ``sid`` (the fallback cleanup where no cgroup is available)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def empty_folder(path: str) -> None:
    """Remove what a call left in its folder (the folder itself stays: Landlock's rule is bound to its inode)."""
    try:
        with os.scandir(path) as entries:
            found = list(entries)
    except OSError:
        return
    for entry in found:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass
