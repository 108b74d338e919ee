"""Benchmark of Type 2 execution on loopback: the executor service alone, and through the portal's route.

    .venv/bin/python bench/bench_executor.py [--seconds 5] [--repeat 3] [--workers 4] [--skip-portal]

Starts everything it measures on free loopback ports (a fake portal serving the sample ``ip_allowlist``
record, the executor service; then a temporary SQLite portal under ./run.sh's web server with its own executor) and drives
them with a keep-alive HTTP/1.1 load generator (asyncio, one connection per concurrent client). Prints
calls/s and latency percentiles at concurrency 1, 8 and 32 (each run ``--repeat`` times: the runs and the median
run), the cold first call of a new package, and one
isolation round trip against an in-process call.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import tree_cpu_seconds  # noqa: E402


async def _client(port, request, deadline, latencies, failures):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lower = head.lower()
        at = lower.find(b"content-length:")
        size = int(lower[at + 15: lower.index(b"\r\n", at)])
        body = await reader.readexactly(size)
        latencies.append(time.perf_counter() - started)
        if b'"success":true' not in body.replace(b" ", b""):
            failures.append(body[:200])
        if b"connection: close" in lower:
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()


def load(port, path, body, headers, concurrency, seconds):
    payload = json.dumps(body).encode()
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
               + "\r\n").encode() + payload
    latencies, failures = [], []

    async def run():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_client(port, request, deadline, latencies, failures) for _ in range(concurrency)))

    started = time.perf_counter()
    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000  # noqa: E731
    return {"concurrency": concurrency, "calls": len(latencies), "calls_per_s": round(len(latencies) / elapsed),
            "p50_ms": round(pick(0.50), 2), "p99_ms": round(pick(0.99), 2), "failures": len(failures)}


def measure(label, port, path, body, headers, concurrency, args, server_pid=None):
    """``args.repeat`` runs at one concurrency, each shown; returns the run of median throughput.

    With ``server_pid``, each run also says the CPU milliseconds per call spent by that process and all its
    descendants (the service, its workers, their per-call children)."""
    def one_run():
        cpu_before = tree_cpu_seconds(server_pid) if server_pid else 0
        figures = load(port, path, body, headers, concurrency, args.seconds)
        if server_pid and figures["calls"]:
            figures["cpu_ms"] = round((tree_cpu_seconds(server_pid) - cpu_before) * 1000 / figures["calls"], 3)
        return figures

    runs = sorted((one_run() for _ in range(args.repeat)), key=lambda figures: figures["calls_per_s"])
    for figures in runs if args.repeat > 1 else ():
        show(label + " (run)", figures)
    median = runs[len(runs) // 2]
    show(label + (f" median of {args.repeat}" if args.repeat > 1 else ""), median)
    return median


def show(label, figures):
    print(f"  {label:<45} c={figures['concurrency']:<3} {figures['calls_per_s']:>6} calls/s   "
          f"p50 {figures['p50_ms']:>6} ms   p99 {figures['p99_ms']:>6} ms   failures {figures['failures']}"
          + (f"   CPU {figures['cpu_ms']:.2f} ms/call (server side)" if "cpu_ms" in figures else ""))


def bench_service(args, tmp: Path):
    import requests
    from policygrid.samples import sample_archive, sample_record

    from tests.executors.conftest import FakePortal, start_service, stop_service
    from tests.fileserver import FileServer

    server = FileServer()
    portal = FakePortal(server)
    record = {k: v for k, v in sample_record("ip_allowlist").items() if k not in ("name", "version", "release_tag", "code")}
    uri = portal.publish("ip_allowlist", data=sample_archive("ip_allowlist"), version="1.0", tag="beta", **record)
    service = start_service(tmp, portal.base, workers=args.workers,
                            extra_env={"POLICYGRID_EXECUTOR_CPU_SECONDS": "30", "POLICYGRID_EXECUTOR_MEMORY_MB": "1024"})
    try:
        headers = {"Authorization": f"Bearer {service.token}"}
        body = {"policy_rule_uri": uri, "input_data": {"ip": "127.0.0.1"}}
        # The cold first call of a package: record fetch, download, digest check, unpack, first import.
        from policygrid.samples import sample_path

        from tests.executors.conftest import policy_zip

        fresh = (sample_path("ip_allowlist") / "code" / "function.py").read_text() + f"\n# cold {time.time()}\n"
        cold_uri = portal.publish("cold", data=policy_zip(fresh), version="1.0", tag="cold", **record)
        started = time.perf_counter()
        cold = requests.post(f"{service.url}/execute_policy", json={**body, "policy_rule_uri": cold_uri},
                             headers=headers, timeout=30)
        cold_ms = (time.perf_counter() - started) * 1000
        assert cold.json()["success"], cold.text
        requests.post(f"{service.url}/execute_policy", json=body, headers=headers, timeout=30)
        load(service.port, "/execute_policy", body, headers, 8, 1)  # warm every worker
        print(f"executor service alone ({args.workers} workers, uvicorn + httptools + uvloop):")
        print(f"  cold first call of a new package  {cold_ms:.1f} ms (record fetch, download, digest check, "
              "unpack, checks, import in a fresh worker)")
        results = {}
        for concurrency in (1, 8, 32):
            results[concurrency] = measure("POST /execute_policy", service.port, "/execute_policy", body, headers,
                                           concurrency, args, server_pid=service.process.pid)
        return results
    finally:
        stop_service(service)
        server.close()


def bench_isolation():
    """One isolated round trip (Type 2 worker, no HTTP) against the same call in-process."""
    from policygrid.context import MemoryContext
    from policygrid.loader import load_rule_class
    from policygrid.rule_runner import PolicyRunner
    from policygrid.samples import sample_path, sample_record

    record = sample_record("ip_allowlist")
    rule_class = load_rule_class(sample_path("ip_allowlist"))
    n = 3000
    started = time.perf_counter()
    for _ in range(n):
        PolicyRunner(record, rule_class, None, None, MemoryContext()).eval({"ip": "127.0.0.1"})
    in_process = (time.perf_counter() - started) / n * 1e6

    async def through_pool():
        from policygrid.workers import PoolLimits, WorkerPool

        pool = WorkerPool(PoolLimits(workers=1))
        await pool.start()
        request = {"rk": "r", "pkg": str(sample_path("ip_allowlist")), "req": None, "uri": "ip_allowlist:1.0-beta",
                   "input_data": {"ip": "127.0.0.1"}, "settings": None, "parameters": None}
        timings = []
        for _ in range(n):
            t = time.perf_counter()
            await pool.run("d", request, record, "r", 10)
            timings.append(time.perf_counter() - t)
        await pool.close()
        return statistics.median(timings[100:]) * 1e6

    isolated = asyncio.run(through_pool())
    print("isolation round trip (fresh PolicyRunner per call, ip_allowlist):")
    print(f"  in-process call                {in_process:.0f} µs")
    print(f"  through a sandboxed worker     {isolated:.0f} µs (median; pipe + JSON + cgroup check both ways)")


def bench_portal(args, tmp: Path):
    """A temporary embedded portal (SQLite, ./run.sh's web server) with a local executor, driven on its route."""
    import requests

    from tests.executors.conftest import free_port

    state = tmp / "portal-state"
    state.mkdir()
    port, executor_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYGRID_", "DATABASE_URL", "CELERY_"))}
    env.update(POLICYGRID_STATE_DIR=str(state), POLICYGRID_PORT=str(port), POLICYGRID_EXECUTOR_PORT=str(executor_port),
               POLICYGRID_EXECUTOR_WORKERS=str(args.workers))
    # The server's shape is what ./run.sh starts unless asked otherwise.
    from portal.management.commands.run_embedded import default_web_workers

    workers = args.web_workers or default_web_workers()
    threads = args.web_threads or int(os.environ.get("POLICYGRID_WEB_THREADS", "8"))
    env.update(POLICYGRID_WEB_WORKERS=str(workers), POLICYGRID_WEB_THREADS=str(threads))
    process = subprocess.Popen([sys.executable, "manage.py", "run_embedded"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        token = None
        deadline = time.monotonic() + 120
        while token is None and time.monotonic() < deadline:
            line = process.stdout.readline().decode()
            if "admin API token:" in line:
                token = line.split(":", 1)[1].strip()
        assert token, "the embedded portal did not start"
        url = f"http://127.0.0.1:{port}/executor/local/execute_policy"
        headers = {"Authorization": f"Token {token}"}
        body = {"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {"ip": "127.0.0.1"}}
        while time.monotonic() < deadline:
            try:
                if requests.post(url, json=body, headers=headers, timeout=10).json().get("success"):
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        load(port, "/executor/local/execute_policy", body, headers, 8, 1)
        print(f"through the portal (./run.sh's web server: {workers} processes × {threads} threads; SQLite; token auth, "
              "gate, audit entry):")
        results = {}
        for concurrency in (1, 8, 32):
            results[concurrency] = measure("POST /executor/local/execute_policy", port,
                                           "/executor/local/execute_policy", body, headers, concurrency, args,
                                           server_pid=process.pid)
        return results
    finally:
        os.killpg(process.pid, 15)
        process.wait(30)


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--workers", type=int, default=4, help="executor worker processes")
    parser.add_argument("--web-workers", type=int, default=None, help="web server processes of the portal (default: ./run.sh's)")
    parser.add_argument("--web-threads", type=int, default=None, help="threads per web server process (default: ./run.sh's)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per concurrency; the median run is reported")
    parser.add_argument("--skip-portal", action="store_true")
    parser.add_argument("--skip-service", action="store_true", help="measure only the portal's route")
    args = parser.parse_args()
    from bench.machine import calibration, describe

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}   (CPUs: {os.cpu_count()})")
    speed_before = calibration()
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
        if not args.skip_service:
            bench_service(args, Path(tmp))
            bench_isolation()
        if not args.skip_portal:
            bench_portal(args, Path(tmp))
    print(describe(speed_before, calibration()))


if __name__ == "__main__":
    main()
