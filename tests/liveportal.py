"""A real portal process on loopback, for the tests that need an HTTP server rather than Django's test client
(chunked bodies, schemathesis): the web server command that ``manage.py run_embedded`` starts, on a state
folder of its own (SQLite) with the demo data."""
import ctypes
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.executors.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, however it dies (no orphaned server)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def portal_env(state: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYGRID_", "DATABASE_URL", "CELERY_"))}
    env.update(POLICYGRID_STATE_DIR=str(state), DJANGO_SETTINGS_MODULE="portal.settings")
    return env


@contextmanager
def live_portal(state: Path, *, workers: int = 1, threads: int = 4):
    """Yields ``{"base", "token", "state"}`` of a portal serving on 127.0.0.1; stops it (and its workers) after."""
    from portal.management.commands.run_embedded import Command

    env = portal_env(state)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True, timeout=300)
    printed = subprocess.run([*manage, "demo_data"], cwd=ROOT, env=env, check=True, timeout=120,
                             capture_output=True, text=True).stdout
    token = next(line.split(":", 1)[1].strip() for line in printed.splitlines() if "admin API token:" in line)
    port = free_port()
    command = Command.web_command(f"127.0.0.1:{port}", threads, str(state / "logs" / "access.log"), workers=workers)
    with open(state / "logs" / "web.log", "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=die_with_parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/health", timeout=2).status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, (state / "logs" / "web.log").read_text()
            assert time.monotonic() < deadline, "the portal did not answer /health within 60 s"
            time.sleep(0.2)
        yield {"base": base, "token": token, "state": state}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
