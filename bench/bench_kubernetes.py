"""Benchmark of the Kubernetes runtime against the fake cluster (tests/kubernetes/fakecluster.py), on loopback.

    .venv/bin/python bench/bench_kubernetes.py [--latency-jobs 20] [--concurrent 100] [--max-pods 16]

Starts a temporary embedded system (``manage.py run_embedded``: portal, Celery worker and beat) and two fake
clusters in this process, whose kubelets run the pods' commands as local processes (at most ``--max-pods``
running per cluster, as a node's capacity; the rest wait Pending). Then:

1. create-infra of one executor per cluster: ``POST …/create-infra`` → ``infra_status: ready`` as a client sees it
   (the worker creates the objects and waits for the executor Deployment's readiness probe), after a warm-up one
   (the just-started system's first task also waits for its Celery worker to finish starting);
2. one job at a time on the first cluster: submit → ``completed`` (a real job runner in a pod posting its result);
3. ``--concurrent`` submissions at once (16 client threads) split across the two clusters: how many completed,
   failed, were lost; and the API calls each cluster received, by method and kind (each job must be created once:
   one Job and one Secret; status reads are bounded).
"""
from __future__ import annotations

import argparse
import collections
import os
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_jobs import SAMPLE, percentile, session, start_system  # noqa: E402
from bench.bench_jobs import follow as follow_once  # noqa: E402

RETRIED = collections.Counter()


def follow(s, base, job_id, deadline):
    """bench_jobs.follow, its GETs (idempotent) repeated when a kept-alive connection was closed under them;
    how often is printed."""
    import requests

    while True:
        try:
            return follow_once(s, base, job_id, deadline)
        except requests.ConnectionError:
            RETRIED["GET /jobs/<id>"] += 1
            if time.monotonic() > deadline:
                raise


def create_infra(s, base, executor_id, cluster, namespace="bench") -> str:
    """Seconds to ``ready``, and to ``provisioning`` (a worker took the task) as a client polling every 20 ms sees."""
    assert s.post(f"{base}/executor", json={"executor_id": executor_id}, timeout=30).status_code == 201
    started, taken = time.monotonic(), None
    answer = s.post(f"{base}/executor/{executor_id}/create-infra", timeout=30, json={
        "cluster_config": cluster.kubeconfig, "namespace": namespace, "replicas": 1, "portal_url": base})
    assert answer.status_code == 202, answer.text
    while True:
        record = s.get(f"{base}/executor/{executor_id}", timeout=30).json()["data"]
        if taken is None and record["infra_status"] != "pending":
            taken = time.monotonic() - started
        if record["infra_status"] in ("ready", "failed"):
            assert record["infra_status"] == "ready", record["infra_message"]
            return f"{time.monotonic() - started:.2f} s (a worker took it after {taken:.2f} s)"
        assert time.monotonic() - started < 120, record
        time.sleep(0.02)


def submit(s, base, executor_id, n) -> str:
    answer = s.post(f"{base}/jobs/submit/{executor_id}", timeout=60, json={
        "name": f"bench-{n}", "policy_rule_uri": SAMPLE, "inputs": {"ip": f"10.1.{n // 250}.{n % 250}"}})
    if answer.status_code != 201:
        raise RuntimeError(f"submission {n}: HTTP {answer.status_code} {answer.text[:300]}")
    return answer.json()["job_id"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-jobs", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--max-pods", type=int, default=16, help="pods running at once per fake cluster")
    args = parser.parse_args()
    from bench.machine import calibration, describe
    from tests.kubernetes.conftest import POD_ENV
    from tests.kubernetes.fakecluster import FakeCluster

    speed_before = calibration()

    clusters = [FakeCluster(name, extra_env=POD_ENV, max_pods=args.max_pods) for name in ("alpha", "beta")]
    with tempfile.TemporaryDirectory(prefix="bench-k8s-") as tmp:
        process, base, token = start_system(Path(tmp))
        s = session(token)
        try:
            # The first task of a just-started system waits for its Celery worker to finish starting: shown apart.
            print(f"create-infra → ready, first task of the system: {create_infra(s, base, 'warm-up', clusters[0], 'w')}")
            ready = [create_infra(s, base, f"bench-{c.name}", c) for c in clusters]
            print(f"create-infra → ready: {'; '.join(ready)} (target ≤ 5 s)")

            latencies = []
            for n in range(args.latency_jobs):
                started = time.monotonic()
                record = follow(s, base, submit(s, base, "bench-alpha", n), time.monotonic() + 120)
                assert record["job_status"] == "completed", record
                latencies.append(time.monotonic() - started)
            print(f"job submit → completed, {args.latency_jobs} one at a time: p50 "
                  f"{statistics.median(latencies):.2f} s, p90 {percentile(latencies, 0.9):.2f} s (target p50 ≤ 1.5 s)")

            for cluster in clusters:
                cluster.calls.clear()
            started = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                ids = list(pool.map(lambda n: submit(s, base, f"bench-{clusters[n % 2].name}", 10_000 + n),
                                    range(args.concurrent)))
                submitted = time.monotonic() - started
                records = list(pool.map(lambda job_id: follow(s, base, job_id, time.monotonic() + 300), ids))
            elapsed = time.monotonic() - started
            outcome = collections.Counter(record["job_status"] for record in records)
            print(f"{args.concurrent} concurrent submissions across 2 clusters: submitted in {submitted:.1f} s, all "
                  f"ended in {elapsed:.1f} s: {dict(outcome)}; not ended: {args.concurrent - sum(outcome.values())}")
            for cluster in clusters:
                calls = dict(sorted((f"{m} {k}", n) for (m, k), n in cluster.calls.items()))
                jobs = len([j for j in cluster.objects("Job") if j["metadata"]["labels"]["policygrid.io/job-id"] in ids])
                print(f"  cluster {cluster.name}: {jobs} Jobs of these submissions exist; API calls {calls}")
            print(f"GETs repeated after a closed connection: {dict(RETRIED) or 0}")
            print(describe(speed_before, calibration()))
            print(f"reproduce: .venv/bin/python bench/bench_kubernetes.py --latency-jobs {args.latency_jobs} "
                  f"--concurrent {args.concurrent} --max-pods {args.max_pods}")
            return 0 if outcome.get("completed") == args.concurrent else 1
        finally:
            os.killpg(process.pid, signal.SIGTERM)  # the embedded system's whole process group
            process.wait(timeout=60)
            for cluster in clusters:
                cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
