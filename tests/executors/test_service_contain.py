"""Containment of policy code by a real executor service: reads, network, metadata, limits, per-call isolation,
forged frames and floods of output. Real workers, the real kernel (Landlock, seccomp), loopback only."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from tests.executors.conftest import as_caller, start_service, stop_service

pytestmark = pytest.mark.slow

PROBE = """
    import os, socket, resource, errno

    def attempt(fn):
        try:
            return "ok: " + str(fn())
        except BaseException as exc:
            return f"refused: {type(exc).__name__}: {exc}"

    def read(path):
        with open(path, "rb") as handle:
            return len(handle.read())

    def connect(port):
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        sock.close()
        return port

    def connect_unix(path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return path

    def listen():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        return sock.getsockname()

    def udp():
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    COUNTER = {"calls": 0}

    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters): pass
        def eval(self, parameters, input_data, context):
            COUNTER["calls"] += 1
            out = {"calls": COUNTER["calls"], "read": {}, "meta": {}}
            for path in input_data.get("read", []):
                out["read"][path] = attempt(lambda: read(path))
            if "port" in input_data:
                out["connect"] = attempt(lambda: connect(input_data["port"]))
            if "unix" in input_data:
                out["unix"] = attempt(lambda: connect_unix(input_data["unix"]))
            if input_data.get("listen"):
                out["listen"] = attempt(listen)
                out["udp"] = attempt(udp)
            target = input_data.get("meta")
            if target:
                out["meta"]["chmod"] = attempt(lambda: os.chmod(target, 0o777))
                out["meta"]["chown"] = attempt(lambda: os.chown(target, 1, 1))
                out["meta"]["utime"] = attempt(lambda: os.utime(target, (0, 0)))
                out["meta"]["setxattr"] = attempt(lambda: os.setxattr(target, "user.x", b"1"))
            if input_data.get("rlimit"):
                out["rlimit"] = attempt(lambda: resource.setrlimit(
                    resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)))
                out["rlimit_as"] = attempt(lambda: resource.setrlimit(
                    resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)))
            if input_data.get("own"):
                out["own"] = attempt(lambda: read(__file__))
            if input_data.get("who"):
                out["who"] = {"uid": os.getresuid(), "gid": os.getresgid(), "groups": os.getgroups()}
                out["become_root"] = attempt(lambda: os.setuid(0))
                out["listdir"] = {p: attempt(lambda: sorted(os.listdir(p))) for p in input_data.get("listdir", [])}
                out["kill"] = {str(pid): attempt(lambda: os.kill(pid, 0)) for pid in input_data.get("kill", [])}
            return out
"""

FORGER = """
    import os, json, struct, sys

    def frame(obj):
        data = json.dumps(obj).encode()
        return struct.pack(">I", len(data)) + data

    def spray(data):
        for fd in range(3, 256):
            try:
                os.write(fd, data)
            except OSError:
                pass

    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters): pass
        def eval(self, parameters, input_data, context):
            how = input_data.get("how")
            forged = {"allowed": "forged"}
            if how == "frame-then-exit":
                spray(frame({"ok": forged}))
                os._exit(0)
            if how == "extra-frame":
                spray(frame({"ok": forged}))
                return {"allowed": True}
            if how == "garbage":
                spray(b"\\xff" * 100)
                os._exit(0)
            if how == "half-frame":
                spray(struct.pack(">I", 1000) + b"{")
                os._exit(0)
            if how == "pool-frame":
                # The old protocol to the pool: 'R' + JSON on every descriptor, and on stdout.
                data = b"R" + json.dumps({"allowed": "forged"}).encode()
                spray(struct.pack(">I", len(data)) + data)
                sys.stdout.buffer.write(struct.pack(">I", len(data)) + data)
                return {"allowed": False}
            if how == "flood":
                chunk = "x" * (1 << 20) + "\\n"
                for _ in range(100):
                    sys.stdout.write(chunk)
                sys.stderr.write("evil\\n2099-01-01 00:00:00 CRITICAL forged log line\\n")
                return {"allowed": True}
            return {"allowed": True}
"""

OUTPUT_SCHEMA = {"type": "object", "required": ["allowed"], "properties": {"allowed": {"type": "boolean"}},
                 "additionalProperties": False}


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def policies(fake_portal, listener, executor_service):
    return {
        "probe": fake_portal.publish("contain-probe", PROBE),
        "probe-net": fake_portal.publish("contain-probe-net", PROBE,
                                         policy_network={"outbound_ports": [listener]}),
        "probe-deny": fake_portal.publish("contain-probe-deny", PROBE,
                                          policy_network={"outbound_ports": [executor_service.port, 5432]}),
        "forger": fake_portal.publish("contain-forger", FORGER, policy_output_schema=OUTPUT_SCHEMA),
    }


@pytest.fixture(scope="module")
def fake_state(tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    (state / "credentials.txt").write_text("credential-canary")
    (state / "keys").mkdir()
    (state / "keys" / "signing.pem").write_text("private-key-canary")
    return state


READ_REFUSED = ("refused: PermissionError", "refused: FileNotFoundError")


def test_reads_outside_the_grant_are_refused(executor_service, policies, fake_state):
    paths = [str(fake_state / "credentials.txt"), str(fake_state / "keys" / "signing.pem"), "/etc/shadow",
             f"/proc/{executor_service.process.pid}/environ", "/proc/1/environ", str(executor_service.log_path),
             str(Path(__file__).resolve()), str(Path(__file__).resolve().parents[2] / "pyproject.toml")]
    code, body = executor_service.execute(policies["probe"], {"read": paths, "own": True})
    assert code == 200, body
    for path in paths:
        # Refused by Landlock, or hidden outright (the folder it lies in is covered in the worker's mount namespace).
        assert body["data"]["read"][path].startswith(READ_REFUSED), (path, body["data"]["read"][path])
    assert body["data"]["own"].startswith("ok"), body["data"]["own"]  # its own package is readable
    # What a policy legitimately reads: the standard library, certificates, time zones.
    ok_paths = [os.__file__, "/etc/hosts", "/dev/null"]
    code, body = executor_service.execute(policies["probe"], {"read": [p for p in ok_paths if Path(p).exists()]})
    assert all(v.startswith("ok") for v in body["data"]["read"].values()), body["data"]["read"]


def test_no_network_without_a_declaration(executor_service, policies, listener, tmp_path):
    unix_path = tmp_path / "service.sock"
    unix_server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix_server.bind(str(unix_path))
    unix_server.listen(1)
    try:
        code, body = executor_service.execute(policies["probe"], {"port": listener, "unix": str(unix_path),
                                                                  "listen": True})
    finally:
        unix_server.close()
    assert code == 200, body
    data = body["data"]
    assert data["connect"].startswith("refused: PermissionError"), data["connect"]
    assert data["unix"].startswith("refused: PermissionError"), data["unix"]
    assert data["listen"].startswith("refused"), data["listen"]
    assert data["udp"].startswith("refused"), data["udp"]


def test_declared_port_connects_and_nothing_else(executor_service, policies, listener):
    code, body = executor_service.execute(policies["probe-net"], {"port": listener, "listen": True})
    assert code == 200, body
    assert body["data"]["connect"] == f"ok: {listener}"
    assert body["data"]["listen"].startswith("refused"), body["data"]["listen"]  # no bind, even with network
    assert body["data"]["udp"].startswith("refused"), body["data"]["udp"]
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    try:
        code, body = executor_service.execute(policies["probe-net"], {"port": other.getsockname()[1]})
    finally:
        other.close()
    assert body["data"]["connect"].startswith("refused: PermissionError"), body["data"]["connect"]


def test_control_plane_ports_are_refused_even_when_declared(executor_service, policies):
    code, body = executor_service.execute(policies["probe-deny"], {"port": executor_service.port})
    assert code == 200, body
    assert body["data"]["connect"].startswith("refused: PermissionError"), body["data"]["connect"]


def test_metadata_changes_outside_fail(executor_service, policies, tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("x")
    os.chmod(target, 0o644)
    before = target.stat()
    code, body = executor_service.execute(policies["probe"], {"meta": str(target)})
    assert code == 200, body
    for name, outcome in body["data"]["meta"].items():
        assert outcome.startswith("refused"), (name, outcome)
    after = target.stat()
    assert (after.st_mode, after.st_uid, after.st_mtime) == (before.st_mode, before.st_uid, before.st_mtime)


def test_limits_cannot_be_raised(executor_service, policies):
    code, body = executor_service.execute(policies["probe"], {"rlimit": True})
    assert code == 200, body
    assert body["data"]["rlimit"].startswith("refused: ValueError"), body["data"]["rlimit"]
    assert body["data"]["rlimit_as"].startswith("refused: ValueError"), body["data"]["rlimit_as"]


def test_a_module_global_set_by_one_callers_call_is_never_seen_by_another_callers(executor_service, policies):
    """No shared process state between calls of different callers; one caller's calls may share a process (each
    with a fresh instance): docs/runtime.md §4."""
    seen = {caller: [] for caller in ("alice", "bob", "carol")}
    for _ in range(6):
        for caller in seen:
            code, body = executor_service.execute(policies["probe"], {}, **as_caller(caller))
            assert code == 200, body
            seen[caller].append(body["data"]["calls"])
    for caller, counts in seen.items():
        # A caller's module state counts that caller's calls only (18 calls ran in all, spread over 2 workers),
        # and its process is reused between its own calls (the counter goes past 1).
        assert max(counts) <= 6 and max(counts) > 1, (caller, counts)
    # With more callers than a worker keeps processes for, each still sees only its own calls.
    many = [f"user-{n}" for n in range(12)]
    for caller in many:
        assert executor_service.execute(policies["probe"], {}, **as_caller(caller))[1]["data"]["calls"] == 1


@pytest.mark.parametrize("how", ["frame-then-exit", "extra-frame", "garbage", "half-frame", "pool-frame"])
def test_forged_frames_forge_nothing_and_the_next_call_works(executor_service, policies, how):
    code, body = executor_service.execute(policies["forger"], {"how": how})
    assert body.get("data", {}).get("allowed") != "forged", body
    if how == "extra-frame":
        # Whichever frame comes first is the answer, and the warm worker checks it; a second one is a violation.
        assert code == 500 and (body["error_type"] == "output_invalid" or "protocol violation" in body["message"])
    elif how == "frame-then-exit":
        # A well-formed frame is the policy's answer like any other: the warm worker still checks it.
        assert (code, body["error_type"]) == (500, "output_invalid"), body
    else:
        assert (code, body["error_type"]) == (500, "policy_error"), body
        assert "protocol violation" in body["message"], body
    code, body = executor_service.execute(policies["forger"], {"how": "fine"})
    assert (code, body["data"]) == (200, {"allowed": True}), body


def test_a_flood_of_output_leaves_the_log_bounded(executor_service, policies):
    before = executor_service.log_path.stat().st_size
    code, body = executor_service.execute(policies["forger"], {"how": "flood"}, timeout=120)
    assert (code, body["data"]) == (200, {"allowed": True}), body
    time.sleep(0.2)
    grown = executor_service.log_path.stat().st_size - before
    assert grown < 512 * 1024, grown
    log = executor_service.log()
    assert "contain-forger" in log and "truncated=True" in log
    # The forged line is escaped inside the output record, never a line of its own.
    assert not any(line.startswith("2099-01-01") for line in log.splitlines())


def test_health_lists_every_protection_as_active(executor_service):
    protections = executor_service.health()["protections"]
    for name in ("filesystem", "network", "seccomp", "call_isolation", "capabilities"):
        assert name in protections and not protections[name].startswith("NOT"), (name, protections)


def test_a_missing_protection_refuses_policy_code_unless_allowed(tmp_path, fake_portal, policies):
    service = start_service(tmp_path / "weak", fake_portal.base, workers=1,
                            extra_env={"POLICYGRID_EXECUTOR_LANDLOCK": "false"})
    try:
        code, body = service.execute(policies["probe"], {})
        assert (code, body["error_type"]) == (503, "unavailable"), body
        assert "filesystem" in body["message"] and "POLICYGRID_ALLOW_WEAKER_SANDBOX" in body["message"]
        assert service.health()["protections"]["filesystem"].startswith("NOT")
    finally:
        stop_service(service)
    service = start_service(tmp_path / "weak-allowed", fake_portal.base, workers=1,
                            extra_env={"POLICYGRID_EXECUTOR_LANDLOCK": "false",
                                       "POLICYGRID_ALLOW_WEAKER_SANDBOX": "true"})
    try:
        code, body = service.execute(policies["probe"], {})
        assert code == 200, body
    finally:
        stop_service(service)


def test_policy_code_runs_as_an_unprivileged_user_of_its_own(executor_service, policies, fake_state):
    """As root, each worker switches to a user number of its own before the package is imported; folders the
    user can't enter are covered, in the worker's mount namespace, by an empty one holding only what it needs."""
    if os.geteuid() != 0:
        pytest.skip("the switch of user is what a root service does; this run is not root")
    secret_dir = fake_state / "keys"
    code, body = executor_service.execute(policies["probe"], {
        "who": True, "listdir": [str(fake_state), "/root", str(secret_dir)],
        "kill": [executor_service.process.pid, 1], "read": [str(secret_dir / "signing.pem")]})
    assert code == 200, body
    data = body["data"]
    uid = data["who"]["uid"][0]
    assert uid >= 1_800_000_000 and data["who"]["uid"] == [uid] * 3 and data["who"]["gid"] == [uid] * 3, data["who"]
    assert data["who"]["groups"] == []
    assert data["become_root"].startswith("refused: PermissionError"), data["become_root"]
    for path, outcome in data["listdir"].items():
        assert Path(path).is_dir() and outcome.startswith("refused"), (path, outcome)
    for pid, outcome in data["kill"].items():
        assert outcome.startswith("refused"), (pid, outcome)
    # The service says so in its health answer.
    health = executor_service.health()
    assert health["protections"]["unprivileged_user"].startswith(f"uid {uid}") or \
        "switched to when bound" in health["protections"]["unprivileged_user"], health["protections"]
