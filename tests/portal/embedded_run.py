"""``manage.py run_embedded`` started for real on free loopback ports, for the tests that kill its processes or
face it as a hostile client: start, read the banner, and the pids the supervisor reports."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from portal.supervisor import children_of
from tests.executors.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
GOOD_CALL = {"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {"ip": "127.0.0.1"}}


class Embedded:
    def __init__(self, state: Path, **env: str):
        self.state = state
        self.port, self.executor_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYGRID_", "DATABASE_URL", "CELERY_"))}
        self.env.update(POLICYGRID_STATE_DIR=str(state), POLICYGRID_PORT=str(self.port),
                        POLICYGRID_EXECUTOR_PORT=str(self.executor_port), POLICYGRID_EXECUTOR_WORKERS="2", **env)
        self.process: subprocess.Popen | None = None
        self.token = ""
        self.printed = ""

    def start(self, seconds: float = 150) -> Embedded:
        self.process = subprocess.Popen([sys.executable, "manage.py", "run_embedded"], cwd=ROOT, env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        printed = []
        deadline = time.monotonic() + seconds
        while not self.token and time.monotonic() < deadline and self.process.poll() is None:
            line = self.process.stdout.readline().decode()
            printed.append(line)
            if "admin API token:" in line:
                self.token = line.split(":", 1)[1].strip()
        self.printed = "".join(printed)
        assert self.token, "run_embedded printed no API token:\n" + self.printed
        # The rest of the output (restart notes) goes on being read, so the pipe never fills.
        import threading

        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        assert self.wait_for(lambda: self.good_call(timeout=5), 60), "no good call succeeded after start"
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def good_call(self, timeout: float = 10) -> bool:
        """One execute_policy call through the portal, answered rightly."""
        try:
            answer = requests.post(f"{self.base}/executor/local/execute_policy", json=GOOD_CALL, headers=self.headers,
                                   timeout=timeout)
            return answer.status_code == 200 and answer.json() == {
                "success": True, "data": {"allowed": True, "input_data": {"ip": "127.0.0.1"}, "reason": "allowed"}}
        except (requests.RequestException, ValueError):
            return False

    @staticmethod
    def wait_for(check, seconds: float, every: float = 0.25) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(every)
        return False

    def supervision(self) -> dict:
        return json.loads((self.state / "supervisor.json").read_text())

    def what_happened(self, *names: str, lines: int = 30) -> str:
        """For a failure's message: the supervisor's view of each process and the last lines of their logs."""
        report = [json.dumps(self.supervision().get("processes", {}), indent=1)]
        for name in names:
            log = self.state / "logs" / f"{name}.log"
            tail = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else ["(no log)"]
            report += [f"--- {log.name}", *tail]
        return "\n".join(report)

    def pid(self, name: str) -> int:
        """The pid of one of the run's own processes, found by its command line among the run's children."""
        marker = {"web": ("portal.server", "gunicorn"), "worker": (" worker ",), "beat": (" beat ",),
                  "executor": ("policygrid.executor",)}[name]
        found = [pid for pid in children(self.process.pid) if any(m in command_of(pid) for m in marker)]
        assert len(found) == 1, (name, [(pid, command_of(pid)) for pid in children(self.process.pid)])
        return found[0]

    def descendants(self, pid: int | None = None) -> set[int]:
        """Every live process under ``pid`` (default: the supervisor), by parent links."""
        root = pid or self.process.pid
        found, frontier = set(), [root]
        while frontier:
            current = frontier.pop()
            for child in children(current):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
        return found

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


# One reader of a process's children: the supervisor's own.
children = children_of


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@contextlib.contextmanager
def production_stack(label: str):
    """The environment of an embedded run on the production stack: a database of its own on the PostgreSQL of
    POSTGRES_URL (dropped after), Redis databases 12 and 13 of REDIS_URL's server (emptied first) as Celery's
    broker and the context store. Skips the test, with the reason, where either server is missing."""
    import psycopg
    import pytest
    import redis

    base = REDIS.rsplit("/", 1)[0]
    try:
        redis.Redis.from_url(base + "/12", socket_connect_timeout=1).flushdb()
        redis.Redis.from_url(base + "/13", socket_connect_timeout=1).flushdb()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis not reachable at {base}: {exc}")
    try:
        admin = psycopg.connect(POSTGRES.replace("postgres://", "postgresql://"), autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES}: {exc}")
    name = f"test_{label}_{os.getpid()}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": POSTGRES.rsplit("/", 1)[0] + "/" + name, "CELERY_BROKER_URL": base + "/12",
               "POLICYGRID_REDIS_URL": base + "/13"}
    finally:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
