"""The worker pool's per-call containment seen from its API: captured output (capped, flagged, escaped in the
log), and Type 1's kept instance surviving nothing it shouldn't. Real worker processes, no mocks."""
from __future__ import annotations

import asyncio
import logging

import pytest
from policygrid.errors import PolicyError
from policygrid.workers import PoolLimits, WorkerPool
from policygrid.workers.pool import escape_for_log

LOUD = '''
import sys

class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters): pass
    def eval(self, parameters, input_data, context):
        sys.stdout.write("o" * input_data["out"])
        sys.stderr.write(input_data.get("err", ""))
        if input_data.get("fail"):
            raise RuntimeError("failed after printing")
        return {"ok": True}
'''


@pytest.fixture
def package(tmp_path):
    folder = tmp_path / "pkg"
    (folder / "code").mkdir(parents=True)
    (folder / "code" / "function.py").write_text(LOUD)
    return folder


def run_calls(package, calls):
    async def go():
        pool = WorkerPool(PoolLimits(workers=1, timeout_seconds=60, preload=()))
        await pool.start()
        record = {"policy_rule_uri": "loud:1-x"}
        results = []
        try:
            for input_data in calls:
                output = {}
                request = {"rk": "r", "pkg": str(package), "req": None, "uri": "loud:1-x", "input_data": input_data}
                try:
                    results.append((await pool.run("d", request, record, "r", 60, output=output), output))
                except PolicyError as exc:
                    results.append((exc, exc.output))
        finally:
            await pool.close()
        return results

    return asyncio.run(go())


@pytest.mark.slow
def test_captured_output_is_capped_flagged_and_logged_escaped(package, caplog):
    caplog.set_level(logging.INFO, logger="policygrid.workers")
    (small, small_out), (big, big_out), (failed, failed_out) = run_calls(package, [
        {"out": 5, "err": "line\n2099-01-01 CRITICAL forged"},
        {"out": 100 * 1024 * 1024},
        {"out": 3, "fail": True},
    ])
    assert small == b'{"ok":true}' and small_out == {"stdout": "ooooo", "stderr": "line\n2099-01-01 CRITICAL forged",
                                                       "truncated": False}
    assert big == b'{"ok":true}' and big_out["truncated"] is True and len(big_out["stdout"]) == 64 * 1024
    assert isinstance(failed, PolicyError) and failed_out["stdout"] == "ooo"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("policy output")]
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert "uri=loud:1-x" in lines[0] and "line\\n2099-01-01 CRITICAL forged" in lines[0]
    assert sum(len(line) for line in lines) < 200 * 1024  # 100 MB printed: the log stays bounded


def test_escape_for_log_leaves_no_control_character():
    assert escape_for_log("a\nb\r\x1b[31m\x00") == "a\\nb\\r\\x1b[31m\\x00"
