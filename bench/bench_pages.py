"""Benchmark of the portal pages (issue 18's figure: every page's server time ≤ 100 ms at 10,000 policies and
1,000 jobs/runs, on PostgreSQL): the lists, each record's page, and the graph run pages over 1,000 runs of a
4-node graph (the runs list filtered, sorted and paged, a run's page, the version page's runs panel).

Run:  .venv/bin/python bench/bench_pages.py
      BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_pages .venv/bin/python bench/bench_pages.py

By default it uses the database ``bench_pages`` of the PostgreSQL at 127.0.0.1:5432 (user postgres), created if
missing; its tables are migrated and its records replaced — never point it at a database you care about. Each
page is fetched in-process through Django's test client (the whole request: session, middleware, view,
template), REPEAT times after a warm-up; the figures are the median and p95 of the server time, and the
number of queries of one request.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STATE = Path(tempfile.mkdtemp(prefix="bench-pages-"))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_pages"
os.environ["POLICYGRID_STATE_DIR"] = str(STATE)
os.environ["POLICYGRID_ALLOW_PRIVATE_NETWORKS"] = "true"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

POLICIES = 10_000
JOBS = 1_000
RUNS = 1_000  # graph runs, each with a node run per node of the graph
REPEAT = 15
TARGET_MS = 100


def fresh_database(url: str) -> None:
    """The bench's own database, dropped and created again: every run starts from the same records."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


fresh_database(os.environ["DATABASE_URL"])

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from policygrid.samples import sample_archive, sample_record  # noqa: E402

from tests.fileserver import FileServer  # noqa: E402


def fill() -> dict:
    from executors.models import PolicyExecutor
    from functions.models import Function
    from governance import lifecycle
    from graphs.models import Graph
    from jobs.models import Job
    from policies.models import PolicyRule
    from policies.registration import register_package
    from records.search import reindex

    author = User.objects.create_user("bench-author", password="bench-pw-1")
    author.groups.add(Group.objects.get(name="author"))
    reviewer = User.objects.create_user("bench-reviewer", password="bench-pw-1")
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    admin = User.objects.create_user("bench-admin", password="bench-pw-1", is_superuser=True, is_staff=True)
    record = {k: v for k, v in sample_record("ip_allowlist").items() if k != "policy_rule_uri"}
    url = FileServer().serve("ip_allowlist.zip", sample_archive("ip_allowlist"))
    real = PolicyRule(**{**record, "name": "ip_allowlist", "version": "1.0", "code": url}, created_by=author)
    real.full_clean()
    register_package(real)
    real.save()
    real = lifecycle.approve(lifecycle.submit(real, author, "bench"), reviewer, "ok")
    started = time.perf_counter()
    batch = []
    for i in range(POLICIES - 1):
        policy = PolicyRule(**{**record, "name": f"policy-{i % 500}", "version": f"{i // 500}.{i % 7}",
                               "description": f"bench policy {i}", "tags": "bench,security" if i % 3 else "bench"},
                            created_by=author, status="approved" if i % 4 else "draft")
        policy.compute_derived_fields()
        batch.append(policy)
    PolicyRule.objects.bulk_create(batch, batch_size=2000)
    reindex(PolicyRule)
    executor = PolicyExecutor.objects.create(executor_id="local", executor_host_uri="http://127.0.0.1:9")
    for fid in ("fetch-ip", "score-ip", "geo-ip", "decide"):
        Function.objects.create(function_id=fid, function_executor_id="local", executor=executor,
                                function_policy_rule_uri=real.key, policy=real, function_status="ready")
    graph = Graph(graph_name="ip-pipeline", graph_version="1.0", graph_release_tag="beta", created_by=author,
                  graph_function_ids=["fetch-ip", "score-ip", "geo-ip", "decide"],
                  graph_connection_data={"fetch-ip": ["score-ip", "geo-ip"], "score-ip": ["decide"], "geo-ip": ["decide"]})
    graph.save()
    jobs = [Job(job_name=f"job-{i}", job_policy_rule_uri=real.key, job_executor_id="local", policy=real,
                executor=executor, job_status=("completed", "failed", "running")[i % 3], job_inputs={"ip": f"10.0.0.{i % 250}"})
            for i in range(JOBS)]
    Job.objects.bulk_create(jobs)
    reindex(Job)
    from executors.services import record_probe

    for i in range(300):
        record_probe(executor, {"status": "healthy" if i % 10 else "degraded", "latency_ms": 2.0 + i % 5, "health": {}})
    run = fill_runs(graph, admin)
    print(f"filled {POLICIES} policies, {JOBS} jobs, {RUNS} graph runs, 300 probes "
          f"in {time.perf_counter() - started:.1f} s")
    return {"real": real, "graph": graph, "job": Job.objects.first(), "run": run, "admin": admin}


def fill_runs(graph, user):
    """RUNS runs of the graph as the engine leaves them (a plan, a node run per node with its times and output),
    in a mix of end states: the run pages read exactly these rows. Returns a failed one, for its page."""
    from datetime import timedelta

    from django.utils import timezone

    from graphs.models import GraphRun, NodeRun
    from graphs.services import run_plan

    ids, plan = list(graph.graph_function_ids), run_plan(graph)
    now = timezone.now()
    runs = []
    for i in range(RUNS):
        status = ("completed", "completed", "failed", "running", "cancelled")[i % 5]
        started_at = now - timedelta(minutes=RUNS - i)
        runs.append(GraphRun(graph=graph, graph_uri=graph.graph_uri, status=status, input_data={"ip": f"10.0.1.{i % 250}"},
                             plan=plan, timeout_seconds=60, created_by=user,
                             started_at=started_at, finished_at=None if status == "running" else started_at + timedelta(seconds=2),
                             failed_node="decide" if status == "failed" else "",
                             error="decide was told to fail" if status == "failed" else ""))
    runs = GraphRun.objects.bulk_create(runs, batch_size=500)
    nodes = []
    for run in runs:
        for position, node in enumerate(ids):
            state = run.status if node == "decide" and run.status != "completed" else "completed"
            nodes.append(NodeRun(run=run, node_id=node, position=position, status=state, attempt=1,
                                 started_at=run.started_at + timedelta(milliseconds=300 * position),
                                 finished_at=run.started_at + timedelta(milliseconds=300 * position + 250),
                                 duration_ms=250.0, output={"node": node, "allowed": True}))
    NodeRun.objects.bulk_create(nodes, batch_size=2000)
    return next(run for run in runs if run.status == "failed")


def measure(client: Client, url: str) -> tuple[float, float, int, int]:
    queries = []
    # A query per row shows here before it shows in time. (An execute wrapper, not CaptureQueriesContext: the
    # request_started signal empties the query log that one slices.)
    with connection.execute_wrapper(lambda execute, sql, *args: queries.append(sql) or execute(sql, *args)):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95) - 1] * 1000, len(response.content), len(queries)


def main() -> None:
    call_command("migrate", verbosity=0)
    world = fill()
    client = Client()
    client.force_login(world["admin"])
    real, graph, job, run = world["real"], world["graph"], world["job"], world["run"]
    pages = [
        "/portal/dashboard/", "/portal/review/", "/portal/policies/", "/portal/policies/?q=bench+policy+42",
        "/portal/policies/?status=approved&sort=-policy_rule_uri", "/portal/policies/?page=200",
        '/portal/policies/?filter={"tags": {"$regex": "security"}, "version": "3.2"}',
        "/portal/graphs/", "/portal/functions/", "/portal/executors/", "/portal/jobs/",
        '/portal/jobs/?filter={"inputs.ip": "10.0.0.7"}', "/portal/assets/", "/portal/audit/",
        f"/portal/policy/{real.key}/", f"/portal/graph/{graph.key}/", "/portal/executors/local/",
        f"/portal/jobs/{job.job_id}/", "/portal/functions/decide/", f"/portal/playground/{real.key}/",
        "/portal/graphs/editor/", f"/portal/graphs/editor/{graph.key}/",
        "/portal/graphs/runs/", "/portal/graphs/runs/?status=failed", "/portal/graphs/runs/?sort=graph_uri",
        f"/portal/graphs/runs/?graph_uri={graph.key}&sort=-status", "/portal/graphs/runs/?page=30",
        f"/portal/graphs/runs/{run.run_id}/",
    ]
    print(f"server time per page ({connection.vendor}, {POLICIES} policies, {JOBS} jobs, {RUNS} graph runs; "
          f"median / p95 of {REPEAT}):")
    worst = 0.0
    for url in pages:
        median, p95, size, queries = measure(client, url)
        worst = max(worst, median)
        print(f"  {median:7.1f} ms  {p95:7.1f} ms  {size / 1024:6.1f} KiB  {queries:3d} queries  {url}")
    print(f"slowest median {worst:.1f} ms: target ≤ {TARGET_MS} ms {'met' if worst <= TARGET_MS else 'MISSED'}")
    print("command: .venv/bin/python bench/bench_pages.py   (BENCH_DATABASE_URL to choose the database)")


if __name__ == "__main__":
    main()
