"""Cost of per-call process isolation: a warm Type 2 call through the worker pool (fork per call, Landlock,
seccomp, output checked by the warm worker), p50/p99, on the sample ip_allowlist policy.

Run:  .venv/bin/python bench/bench_isolation.py [calls]
Before/after: run it once more against a checkout of the earlier commit, e.g.
      git worktree add /tmp/base <commit> && PYTHONPATH=/tmp/base/sdk/src .venv/bin/python bench/bench_isolation.py
(the workers import the SDK the script imported).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import policygrid
from policygrid.samples import sample_path, sample_record
from policygrid.workers import PoolLimits, WorkerPool

INPUT = {"ip": "192.168.0.109"}
EXTRA: dict = {}


async def measure(calls: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="bench-isolation-"))
    package = folder / "pkg"
    shutil.copytree(sample_path("ip_allowlist"), package)
    record = {"policy_rule_uri": "ip_allowlist:1.0-beta", **sample_record("ip_allowlist")}
    request = {"rk": "r", "pkg": str(package), "req": None, "uri": record["policy_rule_uri"], "input_data": INPUT}
    pool = WorkerPool(PoolLimits(workers=1, cpu_seconds=10, preload=("requests",), **EXTRA))
    await pool.start()
    try:
        for _ in range(20):  # warm: bound, imported, spare forked
            await pool.run("d", request, record, "r", 10)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            await pool.run("d", request, record, "r", 10)
            times.append(time.perf_counter() - start)
    finally:
        await pool.close()
        shutil.rmtree(folder, ignore_errors=True)
    times.sort()
    return {"p50_ms": times[len(times) // 2] * 1e3, "p99_ms": times[int(len(times) * 0.99)] * 1e3,
            "mean_ms": sum(times) / len(times) * 1e3}


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    figures = asyncio.run(measure(calls))
    print(f"SDK {Path(policygrid.__file__).parent}: warm Type 2 call through the pool, {calls} calls: "
          + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
