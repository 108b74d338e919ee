"""The portal's server with several worker processes (portal/server.py): a listening socket per worker, bound
with SO_REUSEPORT, so that a client's connections opened at once are spread across the processes instead of all
being taken by whichever event loop woke first; workers are supervised (a killed one is restarted while its
connections wait) and stop with the server."""
import os
import signal
import socket
import time

import pytest
import requests

from portal.supervisor import children_of
from tests.liveportal import live_portal

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux's /proc")

WORKERS = 3


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with live_portal(tmp_path_factory.mktemp("workers-state"), workers=WORKERS, threads=2) as live:
        live["port"] = int(live["base"].rsplit(":", 1)[1])
        live["server_pid"] = server_pid(live["port"])
        yield live


def server_pid(port: int) -> int:
    """The server process: the parent of the processes holding listening sockets on ``port``."""
    owners = socket_owners()
    listening = {inode for inode, (local, _remote, state) in tcp_table().items() if local == port and state == "0A"}
    parents = {parent_of(pid) for inode, pid in owners.items() if inode in listening}
    assert len(parents) == 1, parents
    return parents.pop()


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rpartition(")")[2].split()[1])


def tcp_table() -> dict[int, tuple[int, int, str]]:
    """inode -> (local port, remote port, state) of every IPv4 TCP socket."""
    table = {}
    with open("/proc/net/tcp") as handle:
        for line in handle.readlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            table[inode] = (int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state)
    return table


def socket_owners() -> dict[int, int]:
    """socket inode -> pid of a process holding it."""
    owners = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    owners[int(target[8:-1])] = int(pid)
        except OSError:
            continue
    return owners


def workers_of(portal) -> set[int]:
    return children_of(portal["server_pid"])


def listening_inodes(pid: int, port: int) -> set[int]:
    table = tcp_table()
    return {inode for inode, owner in socket_owners().items()
            if owner == pid and inode in table and table[inode][0] == port and table[inode][2] == "0A"}


def served_by(portal, count: int) -> dict[int, int]:
    """Open ``count`` connections at once, send a request on each, and say how many each worker serves."""
    port = portal["port"]
    clients = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
    try:
        request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        for client in clients:
            client.sendall(request)
        for client in clients:
            assert client.recv(64).startswith(b"HTTP/1.1 "), "no answer"
        table, owners = tcp_table(), socket_owners()
        counts: dict[int, int] = {}
        for client in clients:
            mine = client.getsockname()[1]
            inode = next(i for i, (local, remote, _state) in table.items() if local == port and remote == mine)
            counts[owners[inode]] = counts.get(owners[inode], 0) + 1
        return counts
    finally:
        for client in clients:
            client.close()


def test_each_worker_process_listens_on_a_socket_of_its_own(portal):
    workers = workers_of(portal)
    assert len(workers) == WORKERS
    sockets = [listening_inodes(pid, portal["port"]) for pid in workers]
    assert all(len(held) == 1 for held in sockets), sockets
    assert len(set().union(*sockets)) == WORKERS, "workers share a listening socket"
    for pid in workers:
        inode = next(iter(listening_inodes(pid, portal["port"])))
        fd = next(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]")
        with _dup(pid, fd) as sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1


def _dup(pid: int, fd: int) -> socket.socket:
    """A duplicate of another process's descriptor (pidfd_getfd), to read its socket options."""
    pidfd = os.pidfd_open(pid)
    try:
        return socket.socket(fileno=_pidfd_getfd(pidfd, fd))
    finally:
        os.close(pidfd)


def _pidfd_getfd(pidfd: int, fd: int) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    got = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd on x86_64 and aarch64
    if got < 0:
        raise OSError(ctypes.get_errno(), "pidfd_getfd")
    return got


def test_connections_opened_at_once_are_spread_across_the_workers(portal):
    counts = served_by(portal, 36)
    assert sum(counts.values()) == 36
    assert set(counts) <= workers_of(portal)
    # By the kernel's hash of each connection: not an even split, but never one process taking them all.
    assert len(counts) >= 2 and max(counts.values()) <= 30, counts


def test_a_killed_worker_is_restarted_and_no_connection_is_refused_meanwhile(portal):
    before = workers_of(portal)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # Connections the kernel hands to the dead worker's socket wait in its backlog (the server holds it).
    session = requests.Session()
    for _ in range(30):
        assert session.get(f"{portal['base']}/health", timeout=30).status_code in (200, 503)
        session.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = workers_of(portal)
        if len(now) == WORKERS and victim not in now:
            break
        time.sleep(0.2)
    now = workers_of(portal)
    assert victim not in now and len(now) == WORKERS, (before, now)
    assert served_by(portal, 12)  # the restarted worker serves its socket


def test_stopping_the_server_stops_every_worker(tmp_path):
    with live_portal(tmp_path / "state", workers=2, threads=1) as live:
        server = server_pid(int(live["base"].rsplit(":", 1)[1]))
        workers = children_of(server)
        assert len(workers) == 2
    # live_portal has sent SIGTERM to the server alone (the workers are in sessions of their own) and reaped it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_state(pid) not in ("gone", "Z") for pid in workers):
        time.sleep(0.1)
    assert all(_state(pid) in ("gone", "Z") for pid in workers), "workers outlived the server"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"
