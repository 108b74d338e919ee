"""The executor service against hostile policies: each is contained, and the service stays healthy and clean."""
from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from policygrid.samples import sample_archive, sample_record

from tests.executors.conftest import SECRET_CANARIES, processes_with, worker_processes

pytestmark = pytest.mark.slow

OUTSIDE = Path("/tmp/policygrid-hostile-outside-write.txt")
MARKER = "policygrid-hostile-marker"

HOSTILE = {
    "infinite-loop": """
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                while True:
                    pass
    """,
    "cpu-burn": """
        import threading
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                total = 0
                while True:
                    total += sum(range(10000))
    """,
    "big-allocation": """
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                block = bytearray(4 * 1024 ** 3)
                return {"size": len(block)}
    """,
    "fork-bomb": """
        import os
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                while True:
                    os.fork()
    """,
    "exit": """
        import os
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                os._exit(1)
    """,
    "segfault": """
        import ctypes
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                return {"x": ctypes.string_at(0)}
    """,
    "huge-result": """
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                return {"blob": "x" * (100 * 1024 * 1024)}
    """,
    "non-json": """
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                return {"value": object()}
    """,
    "env-reader": """
        import os
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                found = {"env": dict(os.environ), "proc": {}}
                for pid in (*input_data.get("pids", []), os.getppid(), 1):
                    try:
                        with open(f"/proc/{pid}/environ", "rb") as handle:
                            found["proc"][str(pid)] = handle.read().decode(errors="replace")
                    except OSError as exc:
                        found["proc"][str(pid)] = f"refused: {type(exc).__name__}"
                return found
    """,
    "outside-write": f"""
        from pathlib import Path
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                target = Path(input_data.get("target", "{OUTSIDE}"))
                target.write_text("pwned")
                return {{"wrote": str(target)}}
    """,
    "subprocess": f"""
        import subprocess
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                child = subprocess.Popen(["sleep", "300", "{MARKER}"], start_new_session=True)
                return {{"pid": child.pid}}
    """,
    "signal-service": """
        import os, signal
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                os.kill(os.getppid(), signal.SIGKILL)
                return {"killed": True}
    """,
    "long-message": """
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                raise ValueError("boom " * 200000)
    """,
    "temp-files": """
        import tempfile, os
        class AIOSv1PolicyRule:
            def __init__(self, rule_id, settings, parameters): pass
            def eval(self, parameters, input_data, context):
                with open(os.path.join(tempfile.gettempdir(), "left-behind.txt"), "w") as handle:
                    handle.write("x")
                os.makedirs("nested/deeper", exist_ok=True)
                return {"tmp": tempfile.gettempdir(), "cwd": os.getcwd()}
    """,
}

EXPECTED = {
    # name: (status, error_type, extra input, extra body)
    "infinite-loop": (504, "timeout", {}, {"timeout_seconds": 0.5}),
    "cpu-burn": (500, "resource_limit", {}, {"timeout_seconds": 8}),
    "big-allocation": (500, "resource_limit", {}, {}),
    "fork-bomb": (500, "resource_limit", {}, {}),
    "exit": (500, "policy_error", {}, {}),
    "segfault": (500, "policy_error", {}, {}),
    "huge-result": (500, "resource_limit", {}, {}),
    "non-json": (500, "output_invalid", {}, {}),
    "long-message": (500, "policy_error", {}, {}),
    "outside-write": (500, "policy_error", {}, {}),
    "signal-service": (500, "policy_error", {}, {}),
}


@pytest.fixture(scope="module")
def hostile(fake_portal):
    return {name: fake_portal.publish(f"hostile-{name}", source) for name, source in HOSTILE.items()}


@pytest.fixture(scope="module")
def good_uri(fake_portal):
    record = sample_record("ip_allowlist")
    record.pop("code", None)
    return fake_portal.publish("ip_allowlist", data=sample_archive("ip_allowlist"), version="1.0", tag="beta",
                               **{k: v for k, v in record.items() if k not in ("name", "version", "release_tag")})


def assert_clean(service):
    """The pool is full and healthy, no process is left behind, every call folder is empty."""
    health = service.settled_health()
    assert health["status"] == "ok", health
    # The workers, and the children they keep between calls (the spare forked for the next call, Type 1's).
    pids = set(health["pool"]["pids"]) | set(health["pool"].get("call_children", []))
    deadline = time.monotonic() + 3  # killed processes take a moment to vanish from /proc
    while (set(worker_processes(service.tmp_dir)) != pids or processes_with(MARKER)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(worker_processes(service.tmp_dir)) == pids, "a process outlived its call"
    assert processes_with(MARKER) == []
    for worker_dir in service.tmp_dir.glob("policygrid-executor-*/*"):
        assert [p.name for p in worker_dir.iterdir()] == ["call"], f"leftovers in {worker_dir}"
        assert list((worker_dir / "call").iterdir()) == [], f"leftovers in {worker_dir}/call"
    assert service.process.poll() is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_policy_is_contained(executor_service, hostile, good_uri, name):
    status, error_type, input_data, extra = EXPECTED[name]
    started = time.monotonic()
    code, body = executor_service.execute(hostile[name], input_data, **extra)
    assert (code, body.get("error_type")) == (status, error_type), body
    assert body["success"] is False and body["message"]
    assert time.monotonic() - started < 10
    assert_clean(executor_service)
    # The service still serves good calls right after.
    code, body = executor_service.execute(good_uri, {"ip": "127.0.0.1"})
    assert code == 200 and body["data"]["allowed"] is True


def test_timeout_kills_the_worker_and_says_so(executor_service, hostile):
    code, body = executor_service.execute(hostile["infinite-loop"], timeout_seconds=0.3)
    assert code == 504 and "0.3s" in body["message"]


def test_crash_messages_name_the_cause(executor_service, hostile):
    _, body = executor_service.execute(hostile["segfault"])
    assert "SIGSEGV" in body["message"] and body["exception_type"] == "SIGSEGV"
    _, body = executor_service.execute(hostile["exit"])
    assert "exit code 1" in body["message"]
    _, body = executor_service.execute(hostile["fork-bomb"])
    assert "child processes" in body["message"]


def test_long_exception_message_is_truncated_with_its_type(executor_service, hostile):
    _, body = executor_service.execute(hostile["long-message"])
    assert body["exception_type"] == "ValueError"
    assert body["message"].startswith("ValueError: boom boom")
    assert len(body["message"]) < 3000 and "truncated" in body["message"]


def test_environment_holds_no_secret(executor_service, hostile):
    # The policy runs in a child of its warm worker, itself a child of the service: it is given the service's pid.
    code, body = executor_service.execute(hostile["env-reader"], {"pids": [executor_service.process.pid]})
    assert code == 200, body
    text = json.dumps(body["data"])
    for name, value in {**SECRET_CANARIES, "POLICYGRID_EXECUTOR_TOKEN": executor_service.token}.items():
        assert name not in body["data"]["env"]
        assert value not in text, f"the secret {name} leaked"
    # The service's own environment can't be read through /proc either (Landlock scopes ptrace access).
    assert body["data"]["proc"][str(executor_service.process.pid)].startswith("refused")
    assert_clean(executor_service)


def test_writes_outside_the_temporary_folder_are_refused(executor_service, hostile):
    targets = [OUTSIDE, executor_service.tmp_dir / "escape.txt", Path(executor_service.log_path).parent / "x.txt"]
    for target in targets:
        code, body = executor_service.execute(hostile["outside-write"], {"target": str(target)})
        # Refused by Landlock, or its folder hidden from the worker's mount namespace.
        assert code == 500 and body["exception_type"] in {"PermissionError", "FileNotFoundError"}, body
        assert not target.exists()
    assert_clean(executor_service)


def test_subprocess_does_not_outlive_its_call(executor_service, hostile):
    code, body = executor_service.execute(hostile["subprocess"])
    assert code == 200, body
    pid = body["data"]["pid"]
    time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert_clean(executor_service)


def test_temporary_files_are_private_and_removed(executor_service, hostile):
    code, first = executor_service.execute(hostile["temp-files"])
    assert code == 200, first
    assert first["data"]["tmp"].startswith(str(executor_service.tmp_dir))
    assert first["data"]["cwd"] == first["data"]["tmp"]
    assert not list(Path(first["data"]["tmp"]).iterdir())
    assert_clean(executor_service)


def test_the_service_survives_a_policy_signalling_it(executor_service, hostile):
    code, body = executor_service.execute(hostile["signal-service"])
    assert code == 500 and body["exception_type"] == "PermissionError"
    assert executor_service.process.poll() is None


def test_health_reports_protections(executor_service):
    health = executor_service.health()
    protections = health["protections"]
    assert protections["core_files"] == "disabled"
    assert "RLIMIT_AS 512 MiB" in protections["memory_limit"]
    for key in ("filesystem", "process_containment", "unprivileged_user", "process_limit_rlimit", "capabilities"):
        assert protections[key]
    if os.geteuid() == 0:
        assert "not enforced" in protections["process_limit_rlimit"]
    # Without the secret, /health tells only the public counters.
    import requests

    public = requests.get(f"{executor_service.url}/health", timeout=5).json()
    assert set(public) >= {"status", "version", "workers", "busy", "queued", "cache"}
    assert "protections" not in public


def test_two_hundred_concurrent_calls_mixing_hostile_and_good(executor_service, hostile, good_uri):
    rng = random.Random(4)
    hostile_cases = ["exit", "segfault", "non-json", "long-message", "big-allocation", "infinite-loop", "fork-bomb"]
    calls = []
    for index in range(200):
        if index % 5 == 0:
            name = hostile_cases[(index // 5) % len(hostile_cases)]
            status, error_type, input_data, extra = EXPECTED[name]
            calls.append(("hostile", name, hostile[name], input_data, extra, (status, error_type)))
        else:
            ip = f"10.0.{index // 256}.{index % 256}"
            allowed = rng.random() < 0.5
            calls.append(("good", ip, good_uri, {"ip": ip},
                          {"parameters": {"local_allowlist": [ip] if allowed else ["127.0.0.1"]}}, allowed))

    def run(call):
        kind, label, uri, input_data, extra, expected = call
        code, body = executor_service.execute(uri, input_data, **extra)
        return call, code, body

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(run, calls))
    for (kind, label, _, input_data, _, expected), code, body in results:
        if kind == "good":
            assert code == 200, (label, body)
            assert body["data"] == {"allowed": expected, "input_data": input_data,
                                    "reason": "allowed" if expected else "denied"}
        else:
            assert (code, body.get("error_type")) == expected, (label, body)
    assert_clean(executor_service)
