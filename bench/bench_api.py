"""Benchmark of the query API over HTTP: 100,000 policies in PostgreSQL, served by gunicorn (issue 2's figures).

Creates its own database (``policygrid_bench``, dropped at the end unless ``--keep``), bulk-inserts the
policies, builds the search index in bulk (COPY), starts ``gunicorn portal.wsgi -w 2`` and times, over HTTP
with keep-alive, each answering a 50-record page:

* ``POST /policy/query {"release_tag": …}``          equality on a top-level column
* ``POST /policy/query {"metadata.priority": {"$gte": …}}``  a range on a dotted path into a JSON field
* ``GET /policy?page=N``                             the paginated list

then prints p50/p95/p99 against the 50 ms p50 target and the ``EXPLAIN ANALYZE`` plans of both query SQLs.

    .venv/bin/python bench/bench_api.py [--records 100000] [--requests 200] [--keep]
"""
import argparse
import json
import os
import random
import shlex
import signal
import statistics
import subprocess
import sys
import time
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_P50_MS = 50.0
RELEASE_TAGS = [f"r{i}" for i in range(20)]
TEAMS = ["net", "ops", "sec", "data", "edge"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per scenario")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    parser.add_argument("--database", default="policygrid_bench")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the database (and reuse it next time)")
    parser.add_argument("--parallel", action="store_true",
                        help="leave PostgreSQL's parallel query on (the recommended API setting turns it off)")
    args = parser.parse_args()

    database_url = f"{args.server.rstrip('/')}/{args.database}"
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    sys.path.insert(0, str(ROOT))

    reuse = args.keep and database_exists(args.server, args.database)
    if not reuse:
        recreate_database(args.server, args.database)
        run([sys.executable, "manage.py", "migrate", "--verbosity", "0"])

    import django

    django.setup()
    if reuse and count_policies() != args.records:
        print(f"database {args.database} holds another record count: recreating it")
        from django.db import connections

        connections.close_all()
        recreate_database(args.server, args.database)
        run([sys.executable, "manage.py", "migrate", "--verbosity", "0"])
        reuse = False
    if not reuse:
        seed(args.records)
    token = make_token()
    set_parallel_query(args.server, args.database, args.parallel)

    from bench.machine import calibration, describe

    speed_before = calibration()
    server = start_gunicorn(args.port, args.workers, database_url)
    try:
        scenarios = [
            ("POST /policy/query release_tag equality", "POST", "/policy/query",
             lambda i: {"release_tag": RELEASE_TAGS[i % len(RELEASE_TAGS)]}),
            ("POST /policy/query metadata.priority $gte", "POST", "/policy/query",
             lambda i: {"metadata.priority": {"$gte": 80 + i % 20}}),
            ("GET /policy?page=N", "GET", None,
             lambda i: f"/policy?page={1 + (i * 37) % (args.records // 50)}"),
        ]
        results = []
        for name, method, path, make in scenarios:
            results.append((name, measure(args.port, token, method, path, make, args.requests)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    speed_after = calibration()

    print()
    print(f"{args.records} policies in PostgreSQL, gunicorn -w {args.workers}, {args.requests} requests each, "
          f"50-record pages, keep-alive HTTP/1.1 on loopback, parallel query {'on' if args.parallel else 'off'}")
    print(describe(speed_before, speed_after))
    print(f"{'scenario':45} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  target p50 <= {TARGET_P50_MS:.0f} ms")
    ok = True
    for name, timings in results:
        p50, p95, p99 = percentile(timings, 50), percentile(timings, 95), percentile(timings, 99)
        ok &= p50 <= TARGET_P50_MS
        print(f"{name:45} {p50:8.1f} {p95:8.1f} {p99:8.1f}  {'ok' if p50 <= TARGET_P50_MS else 'MISSED'}")
    print()
    explain_plans()
    print("reproduce with:")
    print(f"  cd {ROOT} && .venv/bin/python bench/bench_api.py --records {args.records} --requests {args.requests}"
          + (" --parallel" if args.parallel else ""))

    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database(args.server, args.database)
    return 0 if ok else 1


# --- database -----------------------------------------------------------------------------------------------

def admin_connection(server: str):
    import psycopg

    return psycopg.connect(f"{server.rstrip('/')}/postgres", autocommit=True)


def database_exists(server: str, name: str) -> bool:
    with admin_connection(server) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def recreate_database(server: str, name: str) -> None:
    drop_database(server, name)
    with admin_connection(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(server: str, name: str) -> None:
    with admin_connection(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(command: list[str]) -> None:
    subprocess.run(command, cwd=ROOT, check=True)


def set_parallel_query(server: str, name: str, enabled: bool) -> None:
    """Short API queries shouldn't pay for parallel workers: the planner's row estimates on the search index
    are a few times too low for selective ranges, and it then prefers a Gather over a cheap ordered scan."""
    value = "DEFAULT" if enabled else "0"
    with admin_connection(server) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET max_parallel_workers_per_gather = {value}')


def count_policies() -> int:
    from policies.models import PolicyRule

    return PolicyRule.objects.count()


def seed(records: int) -> None:
    """Bulk-inserts the policies (no save() signal), then builds their search index in bulk."""
    from django.db import connection

    from policies.models import PolicyRule
    from records.search import reindex

    rng = random.Random(2)
    started = time.perf_counter()
    batch = []
    for n in range(records):
        tag = RELEASE_TAGS[n % len(RELEASE_TAGS)]
        policy = PolicyRule(
            name=f"policy{n:06d}", version=f"1.{n % 7}", release_tag=tag, code="https://example.org/p.zip",
            description=f"benchmark policy {n}", tags="network,bench",
            metadata={"priority": rng.randrange(100), "team": rng.choice(TEAMS), "author_name": f"author{n % 300}",
                      "labels": rng.sample(["ip", "dns", "geo", "fw", "rate"], 2),
                      "limits": {"rps": rng.randrange(1, 1000), "burst": rng.randrange(1, 50)}},
            policy_parameters={"local_allowlist": [f"10.0.{n % 256}.{k}" for k in range(3)]},
            policy_settings_schema={"type": "object"},
        )
        policy.compute_derived_fields()
        batch.append(policy)
        if len(batch) == 5000:
            PolicyRule.objects.bulk_create(batch)
            batch = []
    if batch:
        PolicyRule.objects.bulk_create(batch)
    inserted = time.perf_counter()
    rows = reindex(PolicyRule)
    indexed = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"seeded {records} policies in {inserted - started:.1f} s; search index: {rows} rows in "
          f"{indexed - inserted:.1f} s ({rows / max(indexed - inserted, 1e-9):,.0f} rows/s)")


def make_token() -> str:
    from django.contrib.auth.models import Group, User

    from accounts.services import issue_token

    user, _ = User.objects.get_or_create(username="bench-viewer")
    group = Group.objects.filter(name="viewer").first()
    if group is not None:
        user.groups.add(group)
    return issue_token(user, name="bench")[1]


# --- HTTP ----------------------------------------------------------------------------------------------------

def start_gunicorn(port: int, workers: int, database_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_DEBUG": "false"}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "portal.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    print("starting:", shlex.join(command))
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not answer /health within 30 s")


def measure(port, token, method, path, make, count: int) -> list[float]:
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    timings = []
    for i in range(count + 20):  # the first 20 warm both workers' connections and caches
        if method == "POST":
            url, body = path, json.dumps(make(i))
        else:
            url, body = make(i), None
        started = time.perf_counter()
        conn.request(method, url, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"{method} {url} answered {response.status}: {payload[:300]!r}")
        data = json.loads(payload)["data"]
        if len(data) != 50:
            raise SystemExit(f"{method} {url} answered {len(data)} records, not a page of 50")
        if i >= 20:
            timings.append(elapsed)
    conn.close()
    return timings


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if p < 100 else max(values)


# --- plans ----------------------------------------------------------------------------------------------------

def explain_plans() -> None:
    """EXPLAIN ANALYZE of the SQL the query route runs for one page: the page's rows and the page count."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from policies.models import PolicyRule
    from records.query import filter_and_count

    connection.close()  # a new session picks up the database's parallel-query setting, as gunicorn's did
    for document in ({"release_tag": "r7"}, {"metadata.priority": {"$gte": 90}}):
        # The route's own pair: the count by the cheapest query (from the index alone for the $gte), then
        # a first page read directly (pages from offset 1000 go through the deferred join).
        queryset, count = filter_and_count(PolicyRule.objects.select_related("created_by"), document)
        queryset = queryset.order_by(*PolicyRule._meta.ordering)
        with CaptureQueriesContext(connection) as captured:
            count()
            list(queryset[:50])
        for label, query in zip(("count", "page"), captured.captured_queries, strict=True):
            print(f"-- POST /policy/query {json.dumps(document)}: {label}")
            print(query["sql"] if len(query["sql"]) < 700 else query["sql"][:300] + " … " + query["sql"][-380:])
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                print("\n".join("   " + row[0] for row in cursor.fetchall()))
            print()


if __name__ == "__main__":
    sys.exit(main())
