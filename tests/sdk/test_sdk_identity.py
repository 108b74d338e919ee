"""The user policy code runs as (workers/identity.py): a number of its own per worker when the service is root,
folders it can't enter covered in its mount namespace, and a refusal when it can't switch. Real processes."""
from __future__ import annotations

import asyncio
import json
import os

import pytest
from policygrid.errors import Unavailable
from policygrid.workers import PoolLimits, WorkerPool, identity

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users is what a root service does")

WHO = '''
import os

class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters): pass
    def eval(self, parameters, input_data, context):
        out = {"uid": os.getresuid(), "gid": os.getresgid(), "groups": os.getgroups(), "seen": {}}
        for path in input_data.get("look", []):
            try:
                out["seen"][path] = open(path).read()
            except OSError as exc:
                out["seen"][path] = type(exc).__name__
        return out
'''


def test_uid_range_is_parsed_and_malformed_values_are_named():
    assert identity.uid_range(None) == range(1_800_000_000, 1_801_000_000)
    assert identity.uid_range("70000-70009") == range(70000, 70010)
    assert identity.uid_range("70000") == range(70000, 70001)
    assert identity.uid_range("off") is None
    for bad in ("abc", "0-10", "10-5", "-1", "1-99999999999"):
        with pytest.raises(ValueError, match="POLICYGRID_SANDBOX_UIDS"):
            identity.uid_range(bad)


def test_workers_of_a_pool_get_different_numbers():
    uids = range(70000, 71000)
    numbers = {identity.pick_uid(uids, 3, worker) for worker in range(1, 65)}
    assert len(numbers) == 64 and all(n in uids for n in numbers)


@pytest.fixture
def package(tmp_path):
    # Behind a folder of mode 0700, as a state folder is: the user can't enter it without the covering tmpfs.
    closed = tmp_path / "closed"
    folder = closed / "pkg"
    (folder / "code").mkdir(parents=True)
    (folder / "code" / "function.py").write_text(WHO)
    (closed / "secret.txt").write_text("the signing key")
    os.chmod(closed, 0o700)
    return folder


def call(package, tmp_path, look=(), **limits):
    async def go():
        pool = WorkerPool(PoolLimits(workers=1, timeout_seconds=60, preload=(), tmp_root=tmp_path / "tmp", **limits))
        await pool.start()
        try:
            request = {"rk": "r", "pkg": str(package), "req": None, "uri": "who:1-x", "input_data": {"look": list(look)}}
            body = await pool.run("d", request, {"policy_rule_uri": "who:1-x"}, "r", 60)
            return json.loads(body), pool.protections
        finally:
            await pool.close()

    return asyncio.run(go())


@root_only
@pytest.mark.slow
def test_a_root_pool_runs_policy_code_as_its_own_unprivileged_user(package, tmp_path):
    closed = package.parent
    secret = closed / "secret.txt"
    result, protections = call(package, tmp_path, look=[str(secret), "/root/.bashrc"], sandbox_uids=range(70000, 71000))
    uid = result["uid"][0]
    assert 70000 <= uid < 71000 and result["uid"] == [uid] * 3 and result["gid"] == [uid] * 3
    assert result["groups"] == []
    # The 0700 folder is covered: only the package is in it (Landlock would refuse the read anyway).
    assert result["seen"][str(secret)] == "FileNotFoundError", result["seen"]
    assert result["seen"]["/root/.bashrc"] in {"FileNotFoundError", "PermissionError"}, result["seen"]
    assert protections["unprivileged_user"].startswith(f"uid {uid}"), protections
    assert "dropped" in protections["capabilities"], protections
    # Outside the worker nothing changed.
    assert sorted(p.name for p in closed.iterdir()) == ["pkg", "secret.txt"]
    assert (closed / "secret.txt").read_text() == "the signing key"


@root_only
@pytest.mark.slow
def test_a_root_pool_that_may_not_switch_refuses_unless_the_weaker_mode_is_accepted(package, tmp_path):
    with pytest.raises(Unavailable, match="unprivileged_user"):
        call(package, tmp_path, sandbox_uids=None, allow_weaker_sandbox=False)
    result, protections = call(package, tmp_path, sandbox_uids=None, allow_weaker_sandbox=True)
    assert result["uid"] == [0, 0, 0]
    assert protections["unprivileged_user"].startswith("NOT applied"), protections


@root_only
def test_become_covers_closed_folders_for_that_process_only(tmp_path):
    closed = tmp_path / "closed"
    (closed / "wanted").mkdir(parents=True)
    (closed / "wanted" / "file.txt").write_text("ok")
    (closed / "other.txt").write_text("secret")
    os.chmod(closed, 0o700)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: switch, then report what it sees
        os.close(read_end)
        report = {}
        try:
            report["note"] = identity.become(70123, [closed / "wanted"], [])
            report["file"] = (closed / "wanted" / "file.txt").read_text()
            report["listing"] = sorted(os.listdir(closed))
            report["uid"] = os.getuid()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            report["error"] = repr(exc)
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as handle:
        report = json.loads(handle.read())
    os.waitpid(pid, 0)
    assert "error" not in report, report
    assert report == {"note": report["note"], "file": "ok", "listing": ["wanted"], "uid": 70123}
    assert "behind /tmp" in report["note"] or f"behind {closed}" in report["note"], report["note"]
    assert sorted(p.name for p in closed.iterdir()) == ["other.txt", "wanted"]
