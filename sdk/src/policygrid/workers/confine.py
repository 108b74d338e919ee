"""What confines policy code inside a worker: Landlock (read/write allow-list, TCP ports) and a seccomp filter.

Applied by the warm worker once, when it is bound to its package (before the package is imported, so the
package's module-level code is confined too); every per-call child inherits both (docs/runtime.md §4):

* Landlock filesystem: read (and execute) only the Python runtime, the SDK, the package and its requirements
  folder, and a few system files (certificates, resolver, time zones, shared libraries); read and write only the
  call's temporary folder (and ``/dev/null``). The project's tree, the state folder, ``/proc`` (so every other
  process's ``environ``), ``/etc/shadow``: refused.
* Landlock network (ABI ≥ 4): TCP ``connect`` only to the ports the record declares (``policy_network``), never
  a control-plane port; TCP ``bind`` never.
* seccomp: ``socket()`` refused for every family, except AF_INET/AF_INET6 ``SOCK_STREAM`` (TCP) when the record
  declares outbound network (no AF_UNIX, no UDP, no raw sockets, no netlink); ``bind``/``listen`` refused;
  metadata changes (chmod/chown/utime/xattr families) refused everywhere; namespaces, io_uring (which would
  bypass the socket filter), ptrace, bpf, perf, keyrings, userfaultfd, mounts, modules refused.

Only x86_64 has the seccomp syscall table here: elsewhere the filter is reported as NOT applied.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import sandbox

# --- the network a record declares ------------------------------------------------------------------------

ALWAYS_DENIED_PORTS = (5432, 6379)


def control_plane_ports(environ: dict[str, str] | None = None) -> tuple[int, ...]:
    """Ports policy code may never connect to: the service's, the portal's, PostgreSQL's, Redis's, any extra."""
    env = os.environ if environ is None else environ
    ports = set(ALWAYS_DENIED_PORTS)
    for name in ("POLICYGRID_EXECUTOR_PORT", "POLICYGRID_PORT"):
        if (env.get(name) or "").isdigit():
            ports.add(int(env[name]))
    if not (env.get("POLICYGRID_EXECUTOR_PORT") or "").isdigit():
        ports.add(8900)
    for name in ("POLICYGRID_URL", "POLICY_SYSTEM_URL", "POLICYGRID_EXECUTOR_URL"):
        try:
            port = urlsplit(env.get(name) or "").port
        except ValueError:
            port = None
        if port:
            ports.add(port)
    for item in (env.get("POLICYGRID_SANDBOX_DENY_PORTS") or "").split(","):
        if item.strip().isdigit():
            ports.add(int(item.strip()))
    return tuple(sorted(ports))


def declared_ports(record: dict[str, Any], denied: tuple[int, ...]) -> tuple[int, ...] | None:
    """The TCP ports the record may connect to: None (no network at all) unless its ``policy_network`` names
    them (``{"outbound_ports": [443]}``; ``{}``, the portal's default, is no network)."""
    network = record.get("policy_network")
    if not isinstance(network, dict):
        return None
    ports = network.get("outbound_ports")
    if not isinstance(ports, list | tuple):
        return None
    allowed = sorted({p for p in ports if type(p) is int and 0 < p < 65536 and p not in denied})
    return tuple(allowed) if allowed else None


# --- Landlock ---------------------------------------------------------------------------------------------

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE = 1 << 4, 1 << 5
_MAKE_ALL = sum(1 << bit for bit in range(6, 13))
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_RULE_NET_PORT = 2
_SCOPE_ALL = (1 << 0) | (1 << 1)


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


SYSTEM_READ = ("/etc/ssl", "/etc/ca-certificates", "/usr/share/ca-certificates", "/etc/pki", "/etc/resolv.conf",
               "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/services",
               "/etc/protocols", "/usr/share/zoneinfo", "/etc/localtime", "/etc/ld.so.cache", "/dev/urandom",
               "/dev/random", "/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",
               # Programs a policy may start (they inherit every restriction): nothing secret in them.
               "/bin", "/usr/bin")


def runtime_paths() -> list[Path]:
    """The interpreter, the standard library, the installed libraries and this SDK — not the project's tree.

    ``sys.prefix``/``base_prefix`` cover the venv and the interpreter's installation; the SDK's own root is
    added only when it lives elsewhere (installed editable: ``sdk/src``, never the repository). Other
    ``sys.path`` entries (an editable project's ``.pth`` adds the repository) are not granted.
    """
    paths = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    paths |= {p.resolve() for p in list(paths)}
    paths.add(Path(sys.executable).resolve().parent)
    paths.add(Path(__file__).resolve().parents[2])  # the folder holding the policygrid package
    return sorted(paths)


def apply_landlock(read: list[Path], write: list[Path], ports: tuple[int, ...] | None) -> tuple[bool, str]:
    """One Landlock layer: read-only ``read``, read-write ``write``, TCP connect to ``ports`` only, no bind."""
    abi = sandbox.landlock_abi()
    if abi < 1:
        return False, "NOT applied: Landlock is not available in this kernel"
    libc = sandbox.libc()
    handled = _EXECUTE | _WRITE_FILE | _READ_FILE | _READ_DIR | _REMOVE_DIR | _REMOVE_FILE | _MAKE_ALL
    handled |= (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0) | (_IOCTL_DEV if abi >= 5 else 0)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    attr = sandbox._RulesetAttr(handled, net, _SCOPE_ALL if abi >= 6 else 0)
    size = ctypes.sizeof(attr) if abi >= 6 else (16 if abi >= 4 else 8)
    fd = libc.syscall(sandbox._SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                      ctypes.c_uint32(0))
    if fd < 0:
        return False, f"NOT applied: landlock_create_ruleset failed ({os.strerror(ctypes.get_errno())})"
    readable = _READ_FILE | _READ_DIR | _EXECUTE
    rules = [(p, readable) for p in read] + [(p, handled) for p in write]
    rules += [(Path(p), readable) for p in SYSTEM_READ] + [(Path("/dev/null"), _READ_FILE | _WRITE_FILE | _TRUNCATE)]
    try:
        for path, rights in rules:
            try:
                target = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    rights &= _FILE_RIGHTS
                rule = sandbox._PathBeneathAttr(rights & handled, target)
                if libc.syscall(sandbox._SYS_LANDLOCK_ADD_RULE, fd, sandbox._RULE_PATH_BENEATH, ctypes.byref(rule),
                                0) != 0:
                    return False, f"NOT applied: landlock_add_rule({path}) failed ({os.strerror(ctypes.get_errno())})"
            finally:
                os.close(target)
        for port in ports or ():
            rule = _NetPortAttr(_NET_CONNECT_TCP, port)
            if libc.syscall(sandbox._SYS_LANDLOCK_ADD_RULE, fd, _RULE_NET_PORT, ctypes.byref(rule), 0) != 0:
                return False, f"NOT applied: landlock_add_rule(port {port}) failed ({os.strerror(ctypes.get_errno())})"
        if not sandbox.set_no_new_privs():
            return False, "NOT applied: PR_SET_NO_NEW_PRIVS failed"
        if libc.syscall(sandbox._SYS_LANDLOCK_RESTRICT_SELF, fd, 0) != 0:
            return False, f"NOT applied: landlock_restrict_self failed ({os.strerror(ctypes.get_errno())})"
    finally:
        os.close(fd)
    net_note = ("TCP connect only to ports " + ",".join(map(str, ports)) if ports else "no TCP connect") + ", no bind"
    return abi >= 4, (f"Landlock ABI {abi}: reads only the runtime, the package and a few system files; writes "
                      f"only the call's folder; {net_note if abi >= 4 else 'network NOT restricted (ABI < 4)'}"
                      f"{'; signals and abstract unix sockets scoped' if abi >= 6 else ''}")


# --- seccomp ----------------------------------------------------------------------------------------------

_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000


def _ret_errno(code: int) -> int:
    return 0x00050000 | code


# x86_64 numbers. Refused outright (EPERM): metadata changes, bind/listen, namespaces, io_uring, tracing and
# other kernel interfaces a policy has no use for.
_DENY_X86_64 = {
    "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93, "lchown": 94, "utime": 132, "utimes": 235,
    "futimesat": 261, "fchownat": 260, "fchmodat": 268, "utimensat": 280, "fchmodat2": 452, "setxattr": 188,
    "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197, "lremovexattr": 198, "fremovexattr": 199,
    "setxattrat": 463, "removexattrat": 466, "bind": 49, "listen": 50, "unshare": 272, "setns": 308,
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    "keyctl": 250, "add_key": 248, "request_key": 249, "mount": 165, "umount2": 166, "pivot_root": 155,
    "chroot": 161, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "acct": 163, "swapon": 167, "swapoff": 168, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "pidfd_getfd": 438, "fsopen": 430, "fsmount": 432, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "reboot": 169, "settimeofday": 164, "clock_settime": 227,
}
_SYS_SOCKET, _SYS_CLONE, _SYS_CLONE3 = 41, 56, 435
_SYS_SENDTO, _SYS_SENDMSG, _SYS_SENDMMSG = 44, 46, 307
_AF_INET, _AF_INET6, _SOCK_STREAM, _IPPROTO_TCP = 2, 10, 1, 6
_MSG_FASTOPEN = 0x20000000
_CLONE_NAMESPACES = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


_LD, _JEQ, _JGE, _JSET, _RET, _AND = 0x20, 0x15, 0x35, 0x45, 0x06, 0x54


def _arg(index: int) -> int:
    return 16 + 8 * index  # low 32 bits of args[index] (little-endian)


def build_filter(allow_tcp: bool) -> list[tuple[int, int, int, int]]:
    deny = _ret_errno(errno.EPERM)
    prog: list[tuple[int, int, int, int]] = [
        (_LD, 0, 0, 4), (_JEQ, 1, 0, _AUDIT_ARCH_X86_64), (_RET, 0, 0, _RET_KILL_PROCESS),
        (_LD, 0, 0, 0), (_JGE, 0, 1, 0x40000000), (_RET, 0, 0, deny),  # x32 ABI: refused
    ]
    for number in sorted(_DENY_X86_64.values()):
        prog += [(_JEQ, 0, 1, number), (_RET, 0, 0, deny)]
    prog += [(_JEQ, 0, 1, _SYS_CLONE3), (_RET, 0, 0, _ret_errno(errno.ENOSYS))]  # libc falls back to clone
    # clone: no new namespaces
    prog += [(_JEQ, 0, 4, _SYS_CLONE), (_LD, 0, 0, _arg(0)), (_JSET, 0, 1, _CLONE_NAMESPACES),
             (_RET, 0, 0, deny), (_RET, 0, 0, _RET_ALLOW)]
    # sendto/sendmsg/sendmmsg with MSG_FASTOPEN would connect without connect()
    for number, index in ((_SYS_SENDTO, 3), (_SYS_SENDMSG, 2), (_SYS_SENDMMSG, 3)):
        prog += [(_JEQ, 0, 4, number), (_LD, 0, 0, _arg(index)), (_JSET, 0, 1, _MSG_FASTOPEN),
                 (_RET, 0, 0, deny), (_RET, 0, 0, _RET_ALLOW)]
    refuse_socket = _ret_errno(errno.EACCES)
    if allow_tcp:
        prog += [
            (_JEQ, 0, 11, _SYS_SOCKET),
            (_LD, 0, 0, _arg(0)), (_JEQ, 1, 0, _AF_INET), (_JEQ, 0, 7, _AF_INET6),
            (_LD, 0, 0, _arg(1)), (_AND, 0, 0, 0xF), (_JEQ, 0, 4, _SOCK_STREAM),
            (_LD, 0, 0, _arg(2)), (_JEQ, 1, 0, 0), (_JEQ, 0, 1, _IPPROTO_TCP),
            (_RET, 0, 0, _RET_ALLOW), (_RET, 0, 0, refuse_socket),
        ]
    else:
        prog += [(_JEQ, 0, 1, _SYS_SOCKET), (_RET, 0, 0, refuse_socket)]
    prog.append((_RET, 0, 0, _RET_ALLOW))
    return prog


def apply_seccomp(allow_tcp: bool) -> tuple[bool, str]:
    if os.uname().machine != "x86_64":
        return False, f"NOT applied: no syscall table for {os.uname().machine}"
    prog = build_filter(allow_tcp)
    filters = (_SockFilter * len(prog))(*[_SockFilter(*insn) for insn in prog])
    fprog = _SockFprog(len(prog), filters)
    if not sandbox.set_no_new_privs():
        return False, "NOT applied: PR_SET_NO_NEW_PRIVS failed"
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC): every thread of the worker, not only this one
    if sandbox.libc().syscall(317, 1, 1, ctypes.byref(fprog)) != 0:
        return False, f"NOT applied: seccomp failed ({os.strerror(ctypes.get_errno())})"
    sockets = "TCP sockets only (AF_INET/AF_INET6 stream)" if allow_tcp else "no socket of any family"
    return True, f"seccomp filter: {sockets}; no bind/listen; no chmod/chown/utime/xattr; no namespaces/io_uring/ptrace"


def seccomp_available() -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Seccomp:"):
                return os.uname().machine == "x86_64"
    except OSError:
        pass
    return False


def scope_child(ports: tuple[int, ...] | None = None) -> bool:
    """A Landlock layer of the call's own (ABI >= 6): it can't signal its warm worker, or any process outside,
    and connects over TCP only to ``ports`` (the policy's declared ports: not the context store's, which only
    its warm worker reaches), binds none."""
    abi = sandbox.landlock_abi()
    if abi < 6:
        return False
    libc = sandbox.libc()
    attr = sandbox._RulesetAttr(0, _NET_BIND_TCP | _NET_CONNECT_TCP, _SCOPE_ALL)
    fd = libc.syscall(sandbox._SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                      ctypes.c_uint32(0))
    if fd < 0:
        return False
    try:
        for port in ports or ():
            rule = _NetPortAttr(_NET_CONNECT_TCP, port)
            if libc.syscall(sandbox._SYS_LANDLOCK_ADD_RULE, fd, _RULE_NET_PORT, ctypes.byref(rule), 0) != 0:
                return False
        return libc.syscall(sandbox._SYS_LANDLOCK_RESTRICT_SELF, fd, 0) == 0
    finally:
        os.close(fd)
