"""Checks PostgreSQL and Redis on loopback, starting them (as this machine's packages install them) if stopped.

Used by test.sh: a service that can't be reached is reported with the reason, and the tests that need it
are skipped by the suite with that reason.
"""
import argparse
import os
import shutil
import socket
import subprocess
import time
from urllib.parse import urlsplit

START_COMMANDS = {
    "postgres": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -1) main start",
    "redis": "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no",
}


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port), timeout=1):
            return True
    except OSError:
        return False


def ensure(name: str, url: str, start: bool) -> bool:
    if reachable(url):
        return True
    binary = "pg_ctlcluster" if name == "postgres" else "redis-server"
    if start and shutil.which(binary):
        print(f"{name} is not answering at {url}: starting it")
        subprocess.run(START_COMMANDS[name], shell=True, check=False)
        for _ in range(30):
            if reachable(url):
                return True
            time.sleep(0.5)
    print(f"{name} unavailable at {url}: the tests that need it will be skipped")
    return False


def drop_stale_test_databases(url: str) -> None:
    """Drop test databases whose run is over (a live-server thread can keep pytest-django from dropping them)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        names = [row[0] for row in connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%\\_%' ESCAPE '\\'")]
        for name in names:
            pid = name.rsplit("_", 1)[-1]
            if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
                continue  # a test run that is still going
            connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", choices=["postgres", "redis"])
    parser.add_argument("--drop-test-databases", action="store_true")
    args = parser.parse_args()
    if args.drop_test_databases:
        drop_stale_test_databases(os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"))
        return 0
    urls = {"postgres": os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"),
            "redis": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")}
    if args.check:
        return 0 if reachable(urls[args.check]) else 1
    ok = [ensure(name, url, start=True) for name, url in urls.items()]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
