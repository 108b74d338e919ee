"""Starts and stops ``manage.py run_embedded`` for real, in a state folder and on ports of the test's own."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without PolicyGrid's, the database's or Celery's settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYGRID_", "DATABASE_URL", "CELERY_"))}
    env.update(extra)
    return env


class EmbeddedRun:
    """One ``run_embedded`` process group; ``printed`` is what it printed up to its banner's end."""

    def __init__(self, env: dict[str, str], port: int, prefix: tuple[str, ...] = ()) -> None:
        """``prefix``: a command that runs the rest (e.g. as another user)."""
        self.env, self.base = env, f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([*prefix, sys.executable, "manage.py", "run_embedded"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        printed, self.token = [], None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            line = self.process.stdout.readline().decode()
            printed.append(line)
            if "admin API token:" in line:
                self.token = line.split(":", 1)[1].strip()
            if "Press Ctrl-C" in line:
                break
        self.printed = "".join(printed)
        if self.token is None:
            self.stop()
            raise AssertionError("run_embedded printed no API token:\n" + self.printed)
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.3)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
