"""A/B of the portal's execute route between checkouts, in the same minutes: the figure of containment's cost.

    .venv/bin/python bench/ab_execute_route.py . /tmp/before [--rounds 8] [--seconds 3] [--concurrency 8]

Each argument is a checkout with its own ``.venv`` (the code to compare, e.g. ``git worktree add /tmp/before
<rev>`` and a venv installed there: an editable install points at one checkout), optionally ``@WxT`` for the web
server's shape (``./run.sh``'s: two processes per CPU, 8 threads). All the embedded systems are started at
once (SQLite, local executor, demo data) and then loaded in turn, a round at a time with the order reversed
each round, with bench_executor's keep-alive load generator on ``POST /executor/local/execute_policy``: this
machine's speed drifts by half within an hour, and alternating short runs compares the checkouts under the
same drift. Prints each checkout's calls/s per round, the median, and each one's ratio to the last checkout.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_executor import load  # noqa: E402
from tests.executors.conftest import free_port  # noqa: E402

ROUTE = "/executor/local/execute_policy"
BODY = {"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {"ip": "127.0.0.1"}}


def start(spec: str) -> dict:
    path, _, shape = spec.partition("@")
    checkout = Path(path).resolve()
    workers, _, threads = (shape or f"{min(8, max(2, 2 * (os.cpu_count() or 1)))}x8").partition("x")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYGRID_", "DATABASE_URL", "CELERY_"))}
    env.update(POLICYGRID_STATE_DIR=tempfile.mkdtemp(prefix="ab-state-"), POLICYGRID_PORT=str(port := free_port()),
               POLICYGRID_EXECUTOR_PORT=str(free_port()), POLICYGRID_WEB_WORKERS=workers,
               POLICYGRID_WEB_THREADS=threads)
    process = subprocess.Popen([str(checkout / ".venv" / "bin" / "python"), "manage.py", "run_embedded"], cwd=checkout,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    return {"spec": spec, "process": process, "port": port, "token": None}


def wait_ready(system: dict) -> None:
    import requests

    deadline = time.monotonic() + 180
    while system["token"] is None:
        line = system["process"].stdout.readline().decode()
        if not line or time.monotonic() > deadline:
            raise SystemExit(f"{system['spec']}: the embedded system did not start")
        if "admin API token:" in line:
            system["token"] = line.split(":", 1)[1].strip()
    url = f"http://127.0.0.1:{system['port']}{ROUTE}"
    while time.monotonic() < deadline:
        try:
            if requests.post(url, json=BODY, headers=headers(system), timeout=10).json().get("success"):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{system['spec']}: the route never answered success")


def headers(system: dict) -> dict:
    return {"Authorization": f"Token {system['token']}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="+")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    systems = [start(spec) for spec in args.checkouts]
    try:
        for system in systems:
            wait_ready(system)
            load(system["port"], ROUTE, BODY, headers(system), args.concurrency, 2)  # warm
        runs: dict[str, list[dict]] = {system["spec"]: [] for system in systems}
        for round_ in range(args.rounds):
            for system in systems if round_ % 2 == 0 else systems[::-1]:
                runs[system["spec"]].append(load(system["port"], ROUTE, BODY, headers(system), args.concurrency,
                                                 args.seconds))
        print(f"command: python bench/ab_execute_route.py {' '.join(sys.argv[1:])}   (CPUs: {os.cpu_count()})")
        print(f"POST {ROUTE}, c={args.concurrency}, {args.rounds} alternated rounds of {args.seconds:g} s:")
        for spec, figures in runs.items():
            rates = [f["calls_per_s"] for f in figures]
            print(f"  {spec:30s} median {statistics.median(rates):5.0f} calls/s   rounds {rates}   "
                  f"p99 median {statistics.median(f['p99_ms'] for f in figures):.1f} ms   "
                  f"failures {sum(f['failures'] for f in figures)}")
        last = runs[systems[-1]["spec"]]
        for spec, figures in list(runs.items())[:-1]:
            ratios = [a["calls_per_s"] / b["calls_per_s"] for a, b in zip(figures, last, strict=True)]
            print(f"  {spec} / {systems[-1]['spec']}: median ratio {statistics.median(ratios):.2f} "
                  f"(per round {[round(r, 2) for r in ratios]})")
    finally:
        for system in systems:
            os.killpg(system["process"].pid, signal.SIGTERM)
        for system in systems:
            system["process"].wait(60)


if __name__ == "__main__":
    main()
