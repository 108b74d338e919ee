"""Fixtures of the function tests: the embedded system (portal, worker, beat, the local executor service) started
for real, with a stateful test policy pushed, submitted by the admin and approved by the demo reviewer."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from tests.jobs.conftest import System
from tests.portal.embedded import ROOT, clean_env
from tests.portal.test_embedded import start_embedded

# A stateful policy: counts its calls, keeps a label that a management command changes, crashes or fails on
# request, and remembers a value in its context store.
STATEFUL = """
import os
import time


class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters):
        self.count = 0
        self.label = parameters.get("label", "")

    def eval(self, parameters, input_data, context):
        if input_data.get("crash"):
            os._exit(3)
        if input_data.get("raise"):
            raise ValueError("the input asked me to fail")
        if input_data.get("sleep"):
            time.sleep(input_data["sleep"])
        if "remember" in input_data:
            context.set("remembered", input_data["remember"])
        self.count += 1
        print("function says", input_data)
        return {"count": self.count, "label": self.label, "pid": os.getpid(),
                "remembered": context.get("remembered"), "echo": input_data}

    def management(self, action, data):
        if action == "set_label":
            self.label = data["label"]
            return {"label": self.label}
        return {"count": self.count, "label": self.label, "pid": os.getpid()}
"""
STATEFUL_RECORD = {
    "policy_parameters_schema": {"label": {"type": "string"}},
    "policy_parameters": {"label": "initial"},
    "management_commands_schema": [
        {"name": "set_label", "description": "change the label", "schema": {"label": {"type": "string", "required": True}}},
        {"name": "get_state", "description": "the count and the label", "schema": {}},
    ],
}
STATEFUL_URI = "stateful:1.0-test"


class FunctionSystem(System):
    def __init__(self, started: dict):
        super().__init__(started)
        self.extra_env = started.get("extra_env") or {}

    def deploy(self, name, uri=STATEFUL_URI, executor="local", **extra):
        path = "/function/deployments/create" + (f"/{executor}" if executor else "")
        return self.post(path, {"name": name, "policy_rule_uri": uri, **extra})

    def wait_ready(self, name, statuses=("ready", "failed"), timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            record = self.get(f"/function/{name}").json()["data"]
            if record["function_status"] in statuses:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"function {name} is still {record['function_status']}: {record}")
            time.sleep(0.05)

    def call(self, name, input_data):
        return self.post(f"/function/call_function/{name}", input_data)

    def replicas(self, name):
        return self.executor.get(f"{self.executor_url}/functions/{name}", timeout=10).json()["data"]["replicas"]

    def remove(self, name):
        return self.api.delete(f"{self.base}/function/deployments/remove/{name}", timeout=60)


def manage(system, *args) -> str:
    """``manage.py`` against the system's own database (its state folder, or its DATABASE_URL)."""
    env = clean_env(POLICYGRID_STATE_DIR=str(system.state), **getattr(system, "extra_env", {}))
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def push_and_approve(system: System, folder, source: str, uri: str, record: dict) -> None:
    (folder / "code").mkdir()
    (folder / "code" / "function.py").write_text(source)
    (folder / "record.json").write_text(json.dumps(record))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "POLICYGRID_URL": system.base,
           "POLICYGRID_TOKEN": system.token, "POLICYGRID_CACHE_DIR": str(folder / "cache"),
           "POLICYGRID_ALLOW_PRIVATE_NETWORKS": "true"}
    name, rest = uri.split(":")
    version, tag = rest.split("-")
    pushed = subprocess.run([sys.executable, "-m", "policygrid.cli", "policy", "push", str(folder), "--name", name,
                             "--version", version, "--tag", tag, "--record", str(folder / "record.json")], env=env,
                            capture_output=True, text=True, timeout=120)
    assert pushed.returncode == 0, pushed.stderr + pushed.stdout
    assert system.post(f"/policy/{uri}/submit", {"comment": "for the function tests"}).status_code == 200
    reviewer = user_session(system, "demo-reviewer")
    approved = reviewer.post(f"{system.base}/policy/{uri}/approve", json={"comment": "ok"}, timeout=60)
    assert approved.status_code == 200, approved.text


@pytest.fixture(scope="module")
def functions_system(tmp_path_factory):
    for started in start_embedded(tmp_path_factory.mktemp("functions-state")):
        system = FunctionSystem(started)
        push_and_approve(system, tmp_path_factory.mktemp("stateful"), STATEFUL, STATEFUL_URI, STATEFUL_RECORD)
        push_and_approve(system, tmp_path_factory.mktemp("allocator"), ALLOCATOR, ALLOCATOR_URI, ALLOCATOR_RECORD)
        yield system


# An allocator whose behaviour its parameters choose: pick an executor, raise, name an unknown one, or none.
ALLOCATOR = """
class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters):
        self.parameters = parameters

    def eval(self, parameters, input_data, context):
        how = parameters.get("how", "pick")
        if how == "raise":
            raise RuntimeError("this allocator is broken")
        if how == "unknown":
            return {"executor_id": "no-such-executor", "reason": "made up"}
        if how == "none":
            return {"executor_id": None, "reason": "everything is full"}
        if how == "garbage":
            return ["not", "an", "object"]
        seen = sorted(e["executor_id"] for e in input_data["executors"])
        return {"executor_id": parameters.get("pick", "local"), "replicas": 2, "reason": f"saw {seen}"}
"""
ALLOCATOR_RECORD = {"policy_parameters_schema": {"how": {"type": "string"}, "pick": {"type": "string"}},
                    "policy_parameters": {"how": "pick", "pick": "local"}}
ALLOCATOR_URI = "custom_allocator:1.0-test"


def user_session(system, username: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = "Token " + manage(system, "create_api_token", username).split()[-1]
    return session
