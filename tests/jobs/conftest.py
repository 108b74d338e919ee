"""Fixtures of the job tests: the embedded system (``manage.py run_embedded``: portal, worker, beat, the local
executor service) started for real, its API as the admin, and test policies pushed as drafts."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.portal.embedded_run import production_stack
from tests.portal.test_embedded import start_embedded

# A policy that does what its input says: print, raise, sleep, or answer.
BEHAVING = """
import time

class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters):
        self.settings, self.parameters = settings, parameters

    def eval(self, parameters, input_data, context):
        print("job says", input_data)
        if input_data.get("raise"):
            raise ValueError("the input asked me to fail")
        if input_data.get("sleep"):
            time.sleep(input_data["sleep"])
        return {"echo": input_data, "parameters": parameters}
"""
BEHAVING_URI = "behaving:1.0-draft"


class System:
    """The embedded system: ``api`` is the admin's session, ``executor`` the local executor service's."""

    def __init__(self, started: dict):
        self.base = started["base"]
        self.state: Path = started["state"]
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Token {started['token']}"
        self.token = started["token"]
        self.executor_url = f"http://127.0.0.1:{started['executor_port']}"
        self.executor = requests.Session()
        self.executor.headers["Authorization"] = "Bearer " + (self.state / "executor" / "executor-token").read_text().strip()

    def get(self, path, **kw):
        return self.api.get(self.base + path, timeout=60, **kw)

    def post(self, path, body=None, **kw):
        return self.api.post(self.base + path, json=body, timeout=60, **kw)

    def submit(self, uri, inputs=None, executor="local", **extra):
        body = {"name": "a-job", "policy_rule_uri": uri, "inputs": {} if inputs is None else inputs, **extra}
        if uri == BEHAVING_URI:
            body.setdefault("dry_run", True)  # a draft: its creator (the admin) may dry-run it
        return self.post(f"/jobs/submit/{executor}", body)

    def wait_for(self, job_id, statuses=("completed", "failed", "cancelled", "lost"), timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            record = self.get(f"/jobs/{job_id}").json()["data"]
            if record["job_status"] in statuses:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} is still {record['job_status']}: {record}")
            time.sleep(0.05)

    def runtime_view(self, job_id) -> dict:
        return self.executor.get(f"{self.executor_url}/jobs/{job_id}", timeout=10).json()["data"]

    def runner_pid(self, job_id, timeout=30) -> int:
        """The pid of the job's runner once it is running the policy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.runtime_view(job_id)
            # The runner logs "job <id> started" once it has its job; what the policy prints comes when it ends.
            if seen["state"] == "running" and seen["pid"] and f"job {job_id} started" in self.executor.get(
                    f"{self.executor_url}/jobs/{job_id}/logs", timeout=10).json()["data"]:
                time.sleep(0.5)  # inside the policy's eval by now
                return seen["pid"]
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} never ran: {seen}")


@pytest.fixture(scope="module", params=["embedded", "postgresql+redis"])
def system(request, tmp_path_factory):
    """The embedded system, on ./run.sh's stack (SQLite, the file broker) and on the production one (PostgreSQL,
    Redis as broker and context store): every job test runs on both."""
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(production_stack("jobs")) if request.param != "embedded" else {}
        yield from _system(tmp_path_factory, env)


def _system(tmp_path_factory, env):
    for started in start_embedded(tmp_path_factory.mktemp("jobs-state"), extra_env=env):
        system = System(started)
        folder = tmp_path_factory.mktemp("behaving")
        (folder / "code").mkdir()
        (folder / "code" / "function.py").write_text(BEHAVING)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "POLICYGRID_URL": system.base,
               "POLICYGRID_TOKEN": system.token, "POLICYGRID_CACHE_DIR": str(folder / "cache"),
               "POLICYGRID_ALLOW_PRIVATE_NETWORKS": "true"}
        name, rest = BEHAVING_URI.split(":")
        version, tag = rest.split("-")
        pushed = subprocess.run([sys.executable, "-m", "policygrid.cli", "policy", "push", str(folder), "--name",
                                 name, "--version", version, "--tag", tag], env=env, capture_output=True, text=True,
                                timeout=120)
        assert pushed.returncode == 0, pushed.stderr + pushed.stdout
        yield system


def alive(pid) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_dead(pid, timeout=10) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)
