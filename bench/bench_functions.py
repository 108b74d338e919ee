"""Benchmark of functions (Type 4) on the local runtime, on loopback.

    .venv/bin/python bench/bench_functions.py [--seconds 5] [--repeat 3] [--replicas 2]

Starts a temporary embedded system (``manage.py run_embedded``: SQLite, ./run.sh's web server, the local executor
service), deploys the sample policy ``ip_allowlist:1.0-beta`` as a function with ``--replicas`` replicas, and
drives it with the keep-alive load generator of bench_executor.py:

1. calls through the portal (``POST /function/call_function/<name>``: token auth, the record, the executor),
   at concurrency 1 and 8;
2. calls to the executor service alone (``POST /functions/<name>/call`` with the executor's secret), c=1 and 8;
3. a management command broadcast to 4 replicas (``POST /function/<name>/management``), one at a time: p50/p99.

Each load figure also gives the CPU milliseconds per call of the whole server tree (portal, executor, replicas).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_executor import measure  # noqa: E402
from bench.bench_jobs import percentile, session, start_system  # noqa: E402

SAMPLE = "ip_allowlist:1.0-beta"


def deploy(s, base, name, replicas):
    answer = s.post(f"{base}/function/deployments/create/local", timeout=60,
                    json={"name": name, "policy_rule_uri": SAMPLE, "replicas": replicas})
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        record = s.get(f"{base}/function/{name}", timeout=30).json()["data"]
        if record["function_status"] == "failed":
            raise RuntimeError(f"function {name} failed: {record['function_message']}")
        replicas_seen = s.get(f"{base}/function/{name}/replicas", timeout=30).json()["data"]["replicas"]
        if record["function_status"] == "ready" and sum(r["state"] == "ready" for r in replicas_seen) == replicas:
            return
        time.sleep(0.1)
    raise RuntimeError(f"function {name} was not ready in time")


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--broadcasts", type=int, default=200)
    args = parser.parse_args()
    from bench.machine import calibration, describe

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}   (CPUs: {os.cpu_count()})")
    speed_before = calibration()
    with tempfile.TemporaryDirectory(prefix="bench-functions-") as tmp:
        process, base, token = start_system(Path(tmp))
        try:
            s = session(token)
            port = int(base.rsplit(":", 1)[1])
            deploy(s, base, "bench", args.replicas)
            body = {"ip": "127.0.0.1"}
            headers = {"Authorization": f"Token {token}"}
            print(f"through the portal (POST /function/call_function/bench; {args.replicas} replicas):")
            for concurrency in (1, 8):
                measure("POST /function/call_function/bench", port, "/function/call_function/bench", body, headers,
                        concurrency, args, server_pid=process.pid)
            state = Path(tmp) / "state"
            secret = (state / "executor" / "executor-token").read_text().strip()
            executor = s.get(f"{base}/executor/local", timeout=30).json()["data"]["executor_host_uri"]
            executor_port = int(executor.rstrip("/").rsplit(":", 1)[1])
            print("the executor service alone (POST /functions/bench/call with its secret):")
            for concurrency in (1, 8):
                measure("POST /functions/bench/call", executor_port, "/functions/bench/call",
                        {"input_data": body}, {"Authorization": f"Bearer {secret}"}, concurrency, args,
                        server_pid=process.pid)
            deploy(s, base, "broadcast", 4)
            times = []
            for _ in range(args.broadcasts):
                started = time.perf_counter()
                answer = s.post(f"{base}/function/broadcast/management", timeout=30, json={"action": "get_state"})
                times.append(time.perf_counter() - started)
                results = answer.json()["data"]
                assert answer.status_code == 200 and len(results) == 4 and all(r["success"] for r in results), results
            ms = [t * 1000 for t in times]
            print(f"management broadcast to 4 replicas through the portal: n={len(ms)} p50 {percentile(ms, .5):.1f} ms"
                  f"   p99 {percentile(ms, .99):.1f} ms   max {max(ms):.1f} ms")
        finally:
            os.killpg(process.pid, 15)
            process.wait(30)
    print(describe(speed_before, calibration()))


if __name__ == "__main__":
    main()
