"""Benchmark of graph runs (Type 5) on the embedded system, on loopback.

    .venv/bin/python bench/bench_graphs.py [--repeat 20] [--concurrent 20] [--async-runs 50] [--replicas 1]

Starts a temporary embedded system as ./run.sh does (``manage.py run_embedded`` with its default web processes and
threads: SQLite, the file broker, a Celery worker of 2 processes, the local executor service), pushes and approves the graph tests' node policy, deploys it as 10 functions and measures:

1. the overhead per node on the critical path: a 10-node chain of trivial functions run synchronously, against
   the sum of its 10 function calls made one by one through the portal (POST /function/call_function/<name>),
   and inside the engine (the run's wall time minus its nodes' call durations);
2. a graph of width 8 whose nodes each sleep 200 ms (the earlier system, strictly sequential: 1.6 s);
3. ``--concurrent`` synchronous runs of the 10-node chain at once: p50/p99 against the single-run time, with
   trivial nodes (CPU-bound: the runs share the machine's CPUs) and with nodes that wait 50 ms (I/O); a
   function's replica serves one call at a time (it keeps its instance), so ``--replicas`` sets how many calls
   of one node run at once;
4. throughput: ``--async-runs`` asynchronous runs of the chain submitted at once, until the last has ended.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_jobs import percentile  # noqa: E402

CHAIN = [f"n{i}" for i in range(10)]


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--async-runs", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=1,
                        help="replicas of each node's function: a replica serves one call at a time (its instance)")
    args = parser.parse_args()
    from bench.machine import calibration, describe
    from tests.executors.conftest import free_port
    from tests.functions.conftest import push_and_approve, user_session
    from tests.graphs.conftest import NODE, NODE_RECORD, NODE_URI, GraphSystem
    from tests.portal.embedded import EmbeddedRun, clean_env

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}   (CPUs: {os.cpu_count()})")
    speed_before = calibration()
    with tempfile.TemporaryDirectory(prefix="bench-graphs-") as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        # As ./run.sh starts it (its default web processes and threads), not the tests' one process of 2 threads.
        port, executor_port = free_port(), free_port()
        embedded = EmbeddedRun(clean_env(POLICYGRID_STATE_DIR=str(state), POLICYGRID_PORT=str(port),
                                         POLICYGRID_EXECUTOR_PORT=str(executor_port)), port)
        try:
            system = GraphSystem({"base": embedded.base, "token": embedded.token, "state": state,
                                  "executor_port": executor_port})
            push_and_approve(system, Path(tmp), NODE, NODE_URI, NODE_RECORD)
            system.reviewer = user_session(system, "demo-reviewer")
            system.deploy_nodes(CHAIN, replicas=args.replicas)
            measure(system, args, embedded.process.pid)
        finally:
            embedded.stop()
    print(describe(speed_before, calibration()))


def measure(system, args, root_pid):
    from bench.machine import tree_cpu_seconds

    chain = system.register(CHAIN, {a: [b] for a, b in zip(CHAIN, CHAIN[1:], strict=False)})
    wide = system.register(CHAIN[:8], {})

    def run_chain(tag=None):
        return system.execute(chain, {"control": {"tag": tag}})

    for _ in range(3):  # warm: connections, record caches, replicas
        assert run_chain().status_code == 200
        for name in CHAIN:
            system.call(name, {"control": {}})

    graph_times, engine_overheads, direct_times = [], [], []
    for _ in range(args.repeat):
        seconds, answer = timed(run_chain)
        assert answer.status_code == 200, answer.text
        graph_times.append(seconds)
        run = system.run(answer.json()["run_id"])
        wall = (datetime.fromisoformat(run["finished_at"].replace("Z", "+00:00"))
                - datetime.fromisoformat(run["started_at"].replace("Z", "+00:00"))).total_seconds() * 1000
        engine_overheads.append((wall - sum(n["duration_ms"] for n in run["nodes"])) / len(CHAIN))
        direct = 0.0
        for name in CHAIN:
            seconds, answer = timed(system.call, name, {"control": {}})
            assert answer.status_code == 200
            direct += seconds
        direct_times.append(direct)
    g50, d50 = percentile(graph_times, .5) * 1000, percentile(direct_times, .5) * 1000
    print(f"1. 10-node chain, sync, n={args.repeat}: execute_graph p50 {g50:.1f} ms; the 10 calls one by one "
          f"through the portal p50 {d50:.1f} ms → overhead per node {(g50 - d50) / 10:.2f} ms")
    print(f"   inside the engine (run wall time − node call durations) per node: "
          f"p50 {percentile(engine_overheads, .5):.2f} ms, p90 {percentile(engine_overheads, .9):.2f} ms")

    sleeping = {"control": {"sleep": {name: 0.2 for name in CHAIN[:8]}}}
    async_spans = []
    for mode in ("sync", "async"):
        wide_times = []
        for _ in range(5):
            if mode == "sync":
                seconds, answer = timed(system.execute, wide, sleeping)
                assert answer.status_code == 200, answer.text
            else:
                started, sent = time.perf_counter(), datetime.now(UTC)
                run_id = system.execute(wide, sleeping, **{"async": True}).json()["run_id"]
                run = system.wait_run(run_id)
                assert run["status"] == "completed"
                seconds = time.perf_counter() - started
                # The run's own clock (same machine): request sent → a worker started it → it ended.
                at = {name: datetime.fromisoformat(run[name].replace("Z", "+00:00")) for name in ("started_at",
                                                                                                  "finished_at")}
                async_spans.append(((at["started_at"] - sent).total_seconds(),
                                    (at["finished_at"] - sent).total_seconds()))
            wide_times.append(seconds)
        print(f"2. width 8 × 200 ms nodes, {mode}, n=5: p50 {percentile(wide_times, .5) * 1000:.0f} ms, "
              f"max {max(wide_times) * 1000:.0f} ms (strictly sequential: 1600 ms)"
              + ("" if mode == "sync" else " as the client saw it, polling every 50 ms"))
    print(f"   async, by the run's timestamps: request → started p50 "
          f"{percentile([a for a, _ in async_spans], .5) * 1000:.0f} ms, request → finished p50 "
          f"{percentile([b for _, b in async_spans], .5) * 1000:.0f} ms, max {max(b for _, b in async_spans) * 1000:.0f} ms")

    # Trivial nodes: every run is CPU (its 10 calls' ~4 ms each across portal, executor and replica), so 20 at
    # once share the machine's CPUs. Nodes that wait 50 ms (a real node's I/O): what the engine itself adds.
    waiting = {"control": {"sleep": {name: 0.05 for name in CHAIN}}}
    for label, given in (("trivial nodes", {"control": {}}), ("nodes waiting 50 ms", waiting)):
        single = percentile([timed(system.execute, chain, given)[0] for _ in range(5)], .5)
        cpu_before = tree_cpu_seconds(root_pid)
        with ThreadPoolExecutor(args.concurrent) as pool:
            results = list(pool.map(lambda _, given=given: timed(system.execute, chain, given), range(args.concurrent)))
        cpu_per_run = (tree_cpu_seconds(root_pid) - cpu_before) / args.concurrent
        assert all(answer.status_code == 200 for _, answer in results), [a.text for _, a in results][:3]
        times = [seconds for seconds, _ in results]
        print(f"3. {args.concurrent} concurrent sync runs of the chain, {label}: p50 {percentile(times, .5) * 1000:.0f} "
              f"ms, p99 {percentile(times, .99) * 1000:.0f} ms = {percentile(times, .99) / single:.1f}× the single run "
              f"({single * 1000:.0f} ms)")
        # The floor no engine goes under: the runs' CPU shared by the machine's CPUs, even with no waiting at all.
        floor = cpu_per_run * args.concurrent / (os.cpu_count() or 1)
        print(f"   the system's CPU per run {cpu_per_run * 1000:.0f} ms: {args.concurrent} runs need at least "
              f"{floor * 1000:.0f} ms of this machine's {os.cpu_count()} CPUs = {floor / single:.1f}× the single run")

    started_at = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: system.execute(chain, {"control": {"tag": i}}, **{"async": True}),
                                range(args.async_runs)))
    ids = [answer.json()["run_id"] for answer in answers]
    ends = [system.wait_run(run_id, timeout=600)["status"] for run_id in ids]
    elapsed = time.perf_counter() - started_at
    print(f"4. {args.async_runs} async runs of the chain at once: all ended in {elapsed:.1f} s "
          f"({args.async_runs / elapsed:.1f} runs/s, {args.async_runs * 10 / elapsed:.0f} nodes/s); "
          f"completed: {ends.count('completed')}")


if __name__ == "__main__":
    main()
