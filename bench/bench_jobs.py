"""Benchmark of jobs (Type 3) on the local runtime, through the portal, on loopback.

    .venv/bin/python bench/bench_jobs.py [--latency-jobs 100] [--load-jobs 500] [--rate 20]

Starts a temporary embedded system (``manage.py run_embedded``: SQLite, gunicorn, the local executor service;
the shape ``./run.sh`` starts) and submits the sample policy ``ip_allowlist:1.0-beta`` to executor ``local``:

1. one job at a time: submit → ``completed`` as a client sees it (the submit request, then ``GET /jobs/<id>``
   every 10 ms until it is completed), p50/p99; and the server's own view (``finished_at - created_at``);
2. ``--load-jobs`` submissions at ``--rate`` per second (paced, from 16 client threads), then every job is
   followed until it ends: how many completed, failed, were lost, and are stuck (not ended 120 s after the last
   submission), with the completion latencies under that load.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE = "ip_allowlist:1.0-beta"
TERMINAL = ("completed", "failed", "cancelled", "lost")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


def summary(label, seconds):
    ms = [s * 1000 for s in seconds]
    print(f"  {label:<46} n={len(ms):<4} p50 {percentile(ms, .5):7.1f} ms   p90 {percentile(ms, .9):7.1f} ms   "
          f"p99 {percentile(ms, .99):7.1f} ms   max {max(ms):7.1f} ms")


def start_system(tmp: Path):
    from tests.executors.conftest import free_port

    state = tmp / "state"
    state.mkdir()
    port, executor_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYGRID_", "DATABASE_URL", "CELERY_"))}
    env.update(POLICYGRID_STATE_DIR=str(state), POLICYGRID_PORT=str(port), POLICYGRID_EXECUTOR_PORT=str(executor_port))
    process = subprocess.Popen([sys.executable, "manage.py", "run_embedded"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    token = None
    deadline = time.monotonic() + 120
    while token is None and time.monotonic() < deadline and process.poll() is None:
        line = process.stdout.readline().decode()
        if "admin API token:" in line:
            token = line.split(":", 1)[1].strip()
    assert token, "the embedded system did not start"
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # keep its pipe drained
    return process, f"http://127.0.0.1:{port}", token


def session(token):
    import requests

    s = requests.Session()
    s.headers["Authorization"] = f"Token {token}"
    adapter = requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=32)
    s.mount("http://", adapter)
    return s


def submit(s, base, n):
    answer = s.post(f"{base}/jobs/submit/local", timeout=60, json={
        "name": f"bench-{n}", "policy_rule_uri": SAMPLE, "inputs": {"ip": f"10.0.{n // 250}.{n % 250}"}})
    if answer.status_code != 201:
        raise RuntimeError(f"submission {n}: HTTP {answer.status_code} {answer.text[:300]}")
    return answer.json()["job_id"]


def follow(s, base, job_id, deadline):
    while True:
        record = s.get(f"{base}/jobs/{job_id}", timeout=60).json()["data"]
        if record["job_status"] in TERMINAL or time.monotonic() > deadline:
            return record
        time.sleep(0.01)


def server_seconds(record):
    if not record.get("finished_at"):
        return None
    return (datetime.fromisoformat(record["finished_at"]) - datetime.fromisoformat(record["created_at"])).total_seconds()


def executor_pid(root: int) -> int | None:
    """The local executor service among the embedded system's processes."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if b"policygrid.executor" in handle.read():
                        with open(f"/proc/{entry}/stat") as stat:
                            if int(stat.read().rsplit(")", 1)[1].split()[1]) == root:
                                return int(entry)
            except OSError:
                continue
    return None


def bench_latency(s, base, count, root):
    from bench.machine import tree_cpu_seconds

    service = executor_pid(root)
    cpu_before, service_before = tree_cpu_seconds(root), tree_cpu_seconds(service) if service else 0.0
    client, server, submits = [], [], []
    for n in range(count):
        started = time.perf_counter()
        job_id = submit(s, base, n)
        submits.append(time.perf_counter() - started)
        record = follow(s, base, job_id, time.monotonic() + 60)
        if record["job_status"] != "completed":
            raise RuntimeError(f"job {job_id} ended {record['job_status']}: {record['job_error']}")
        client.append(time.perf_counter() - started)
        server.append(server_seconds(record))
    print(f"one job at a time ({count} jobs):")
    summary("submit → completed, as the client sees it", client)
    summary("created_at → finished_at, the portal's record", server)
    summary("the submit request alone (201 once launched)", submits)
    time.sleep(1)  # the last runners are reaped
    cpu = tree_cpu_seconds(root) - cpu_before
    service_cpu = (tree_cpu_seconds(service) - service_before) if service else float("nan")
    print(f"  CPU per job: {cpu / count * 1000:.0f} ms for the whole system (portal, worker, beat, executor), "
          f"of which {service_cpu / count * 1000:.0f} ms in the executor service and its runners")
    return client


def bench_load(s, base, count, rate):
    print(f"{count} submissions at {rate:g}/s:")
    ids: list[str | None] = [None] * count
    submitted_at = [0.0] * count
    errors = []
    start = time.perf_counter()

    def one(n):
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
        submitted_at[n] = time.perf_counter()
        try:
            ids[n] = submit(s, base, 10_000 + n)
        except Exception as exc:  # noqa: BLE001 - counted and shown
            errors.append(str(exc)[:200])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(count)))
    took = time.perf_counter() - start
    print(f"  submitted in {took:.1f} s ({count / took:.1f}/s achieved), {len(errors)} submissions refused"
          + (f": {errors[:3]}" if errors else ""))
    deadline = time.monotonic() + 120
    records = {}
    for job_id in ids:
        if job_id:
            records[job_id] = follow(s, base, job_id, deadline)
    statuses: dict[str, int] = {}
    for record in records.values():
        statuses[record["job_status"]] = statuses.get(record["job_status"], 0) + 1
    stuck = sum(1 for r in records.values() if r["job_status"] not in TERMINAL)
    for record in records.values():
        if record["job_status"] != "completed":
            print(f"  job {record['job_id']} {record['job_status']}: {record['job_error'][:300]}")
    print(f"  outcomes: {statuses}; stuck (not ended 120 s after the last submission): {stuck}; "
          f"lost: {statuses.get('lost', 0)}")
    summary("created_at → finished_at under load", [v for r in records.values() if (v := server_seconds(r)) is not None])
    return statuses, stuck


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-jobs", type=int, default=100)
    parser.add_argument("--load-jobs", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args()
    from bench.machine import calibration, describe

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}   (CPUs: {os.cpu_count()})")
    speed_before = calibration()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        process, base, token = start_system(Path(tmp))
        try:
            s = session(token)
            for n in range(5):  # warm: the package reaches the executor, the runners start
                follow(s, base, submit(s, base, n), time.monotonic() + 60)
            if args.latency_jobs:
                bench_latency(s, base, args.latency_jobs, process.pid)
            if args.load_jobs:
                bench_load(s, base, args.load_jobs, args.rate)
        finally:
            os.killpg(process.pid, 15)
            process.wait(30)
    print(describe(speed_before, calibration()))


if __name__ == "__main__":
    main()
