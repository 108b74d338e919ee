"""Policy code runs as an unprivileged user of its own when the service runs as root (docs/runtime.md §4).

A worker started by a root service switches, when it is bound to its package and before the package is
imported, to a numeric user and group of its own, taken from ``POLICYGRID_SANDBOX_UIDS`` (a range, default
``1800000000-1800999999``: numbers no account on the machine uses, so the user owns nothing but the call's
folder). As that user it has no capability, can't raise a hard limit, and the files of other users are closed
to it by their modes, beside Landlock's allow-list.

The folders a policy needs may lie behind a folder the new user may not enter (the interpreter under
``/root``, mode 0700; a state folder of mode 0700). The worker then makes a private mount namespace in which
each such folder is covered by an empty tmpfs holding only the paths the policy needs, bound back in place
(same paths, same files): everything else behind it is gone from the policy's view. Nothing changes outside
the worker.

Set ``POLICYGRID_SANDBOX_UIDS=off`` to keep root (without capabilities); the worker then reports the user
protection as NOT applied, and the service refuses policy code unless the weaker mode is accepted.
"""

from __future__ import annotations

import ctypes
import os
import stat
from pathlib import Path

from .. import sandbox

DEFAULT_UIDS = "1800000000-1800999999"

_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MS_REC, _MS_PRIVATE = 0x4000, 1 << 18
_AT_FDCWD = -100
_OPEN_TREE_CLONE, _AT_RECURSIVE = 1, 0x8000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT = 428, 429  # the same number on every architecture (asm-generic)


def uid_range(value: str | None) -> range | None:
    """The user numbers a pool may give its workers; None when switching is turned off. ValueError if malformed."""
    text = (DEFAULT_UIDS if value is None else value).strip().lower()
    if text in {"off", "false", "no", "0", "none"}:
        return None
    first, _, last = text.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        low = high = 0
    if not 0 < low <= high < 2**31 - 1:
        raise ValueError(f"POLICYGRID_SANDBOX_UIDS must be 'first-last' with 0 < first <= last < 2^31-1, not {value!r}")
    return range(low, high + 1)


def pick_uid(uids: range, pool_number: int, worker_number: int) -> int:
    """A number for one worker: different for the workers of a pool, and spread across pools and processes."""
    return uids[(os.getpid() * 4096 + pool_number * 256 + worker_number) % len(uids)]


def _can_enter(info: os.stat_result, uid: int) -> bool:
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    return bool(info.st_mode & stat.S_IXOTH)  # the user is in no group but its own, which owns nothing


def _can_read(info: os.stat_result, uid: int) -> bool:
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IRUSR)
    return bool(info.st_mode & stat.S_IROTH)


def blocked_ancestor(path: Path, uid: int) -> Path | None:
    """The first folder on the way to ``path`` that ``uid`` may not enter, or None."""
    current = Path("/")
    for part in path.parts[1:-1] if path.parts else ():
        current = current / part
        if not _can_enter(os.stat(current), uid):
            return current
    return None


def _syscall(number: int, *args) -> int:
    libc = sandbox.libc()
    result = libc.syscall(number, *args)
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result


def _mount(source: bytes, target: str, fstype: bytes | None, flags: int, data: bytes | None) -> None:
    if sandbox.libc().mount(source, target.encode(), fstype, ctypes.c_ulong(flags), data) != 0:
        errno_ = ctypes.get_errno()
        raise OSError(errno_, f"mount on {target}: {os.strerror(errno_)}")


def _cover(folder: Path, keep: list[Path]) -> None:
    """An empty tmpfs over ``folder``, then each of ``keep`` (all below it) bound back at its own path."""
    clones = []
    try:
        for path in keep:
            fd = _syscall(_SYS_OPEN_TREE, _AT_FDCWD, str(path).encode(),
                          _OPEN_TREE_CLONE | _AT_RECURSIVE | os.O_CLOEXEC)
            clones.append((path, fd))
        _mount(b"tmpfs", str(folder), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, b"mode=0755,size=1m")
        for path, fd in clones:
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                path.mkdir(mode=0o755, exist_ok=True)
            else:
                path.touch(mode=0o644, exist_ok=True)
            _syscall(_SYS_MOVE_MOUNT, fd, b"", _AT_FDCWD, str(path).encode(), _MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        for _, fd in clones:
            os.close(fd)


def make_reachable(paths: list[Path], uid: int) -> list[str]:
    """Give ``uid`` a way to every one of ``paths`` in a mount namespace of this process's own; returns the
    folders covered. OSError when the kernel refuses (no mount namespace here)."""
    wanted = sorted({Path(os.path.realpath(p)) for p in paths if os.path.exists(p)})
    # A path inside another wanted path comes along with it.
    wanted = [p for p in wanted if not any(q != p and p.is_relative_to(q) for q in wanted)]
    covered: list[str] = []
    unshared = False
    for _ in range(16):  # each round opens one blocked folder (nested blocked folders take several rounds)
        blocked = [(p, a) for p in wanted if (a := blocked_ancestor(p, uid)) is not None]
        if not blocked:
            return covered
        if not unshared:
            if sandbox.libc().unshare(_CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), f"unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}")
            _mount(b"none", "/", None, _MS_REC | _MS_PRIVATE, None)  # nothing propagates back to the machine
            unshared = True
        folder = min((a for _, a in blocked), key=lambda a: len(a.parts))
        _cover(folder, [p for p in wanted if p.is_relative_to(folder)])
        covered.append(str(folder))
    raise OSError(f"could not open a way to {', '.join(map(str, wanted))} for uid {uid}")


def become(uid: int, read: list[Path], write: list[Path]) -> str:
    """Switch this (root) process to ``uid``/``uid`` with no supplementary group and no capability, after making
    ``read`` and ``write`` reachable and ``write`` its own. Returns the protection's note; raises OSError."""
    for path in write:
        os.chown(path, uid, uid)
        os.chmod(path, 0o700)
    covered = make_reachable([*read, *write], uid)
    unreadable = [str(p) for p in read if os.path.exists(p) and not _can_read(os.stat(p), uid)]
    if unreadable:
        raise OSError(f"not readable by other users: {', '.join(unreadable)}")
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        sandbox._prctl(sandbox.PR_CAPBSET_DROP, cap)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getgroups() or sandbox.drop_capabilities() not in {"none held",
                                                                                                  "all dropped"}:
        raise OSError("the switch of user did not take")
    hidden = f"; behind {', '.join(covered)} only the paths it needs are visible" if covered else ""
    return f"uid {uid}, gid {uid}, no supplementary groups, no capabilities{hidden}"


def _off_note() -> str:
    return "NOT applied: runs as root (without capabilities): POLICYGRID_SANDBOX_UIDS is off"


def at_start(uid: int | None) -> dict[str, str]:
    """The worker's notes when it starts; drops every capability now unless the switch of user will need them
    (kept until the worker is bound to its package: no policy code has run before that)."""
    if os.geteuid() == 0 and uid is not None:
        return {"capabilities": f"all dropped when bound to a package, with the switch to uid {uid}",
                "unprivileged_user": f"uid {uid} (no groups, no capabilities), switched to when bound to a package, "
                                     "before its code is imported"}
    return {"capabilities": sandbox.drop_capabilities(),
            "unprivileged_user": _off_note() if os.geteuid() == 0 else
            f"runs as the service's own unprivileged user (uid {os.geteuid()})"}


def when_bound(uid: int | None, max_processes: int, read: list[Path], write: list[Path]) -> dict[str, str]:
    """As root: become ``uid`` (or say why not) and drop every capability; the notes that changed."""
    if os.geteuid() != 0:
        return {}
    notes = {}
    if uid is None:
        notes["unprivileged_user"] = _off_note()
    else:
        try:
            notes["unprivileged_user"] = become(uid, read, write)
            # A user of its own: the kernel counts its processes (root's are never counted). A backstop above the
            # pids cgroup's limit, which is the one read to name the error.
            sandbox.lower_process_limit(2 * (max_processes + 8))
        except OSError as exc:
            notes["unprivileged_user"] = f"NOT applied: could not switch to uid {uid} ({exc})"
    if os.geteuid() == 0:
        notes["capabilities"] = sandbox.drop_capabilities()
    sandbox.set_non_dumpable()  # a change of user resets it
    return notes
