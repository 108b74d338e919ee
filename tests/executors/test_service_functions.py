"""The executor service's /functions routes and the function server, against the service alone (records from a
fake portal): replicas, their secret, their failures, bad requests, and no process left at the service's stop."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from tests.executors.conftest import start_service, stop_service
from tests.jobs.conftest import alive, wait_dead

pytestmark = pytest.mark.slow

COUNTER = """
    import os

    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters):
            self.count = 0
        def eval(self, parameters, input_data, context):
            if input_data.get("reach"):
                import socket
                socket.create_connection(("127.0.0.1", input_data["reach"]), timeout=2).close()
                return {"reached": True}
            self.count += 1
            return {"count": self.count, "pid": os.getpid()}
        def management(self, action, data):
            return {"count": self.count, "action": action, "data": data}
"""
BROKEN_CONSTRUCTOR = """
    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters):
            raise RuntimeError("I refuse to be built")
        def eval(self, parameters, input_data, context):
            return {}
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory, fake_portal):
    started = start_service(tmp_path_factory.mktemp("functions-service"), fake_portal.base, workers=1)
    yield started
    stop_service(started)


def deploy(service, uri, name, replicas=1, **extra):
    body = {"policy_rule_uri": uri, "input_data": None, "function": {"name": name, "replicas": replicas}, **extra}
    return service.session.post(f"{service.url}/functions", json=body, timeout=30)


def wait_state(service, name, states=("ready", "failed"), timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        seen = service.session.get(f"{service.url}/functions/{name}", timeout=10).json()["data"]
        if seen["state"] in states:
            return seen
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)


def test_a_function_serves_calls_with_state_and_management_on_every_replica(service, fake_portal):
    uri = fake_portal.publish("counter", COUNTER)
    assert deploy(service, uri, "counter", replicas=2).status_code == 200
    assert wait_state(service, "counter")["state"] == "ready"
    deadline = time.monotonic() + 30
    while sum(r["state"] == "ready" for r in wait_state(service, "counter")["replicas"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    counts = [service.session.post(f"{service.url}/functions/counter/call", json={"input_data": {}},
                                   timeout=30).json()["data"] for _ in range(4)]
    assert sorted(c["count"] for c in counts) == [1, 1, 2, 2] and len({c["pid"] for c in counts}) == 2  # round robin
    managed = service.session.post(f"{service.url}/functions/counter/management",
                                   json={"action": "peek", "data": {"x": 1}}, timeout=30).json()["data"]
    assert sorted(r["replica"] for r in managed) == ["counter-0", "counter-1"]
    assert all(r["success"] and r["data"]["count"] == 2 and r["data"]["data"] == {"x": 1} for r in managed)
    described = json.dumps(wait_state(service, "counter"))
    assert "token" not in described and "http://" not in described  # the replicas' secret and address stay inside


def test_a_policy_in_a_function_cant_reach_its_own_or_the_services_port(service, fake_portal):
    uri = fake_portal.publish("reacher", COUNTER)
    assert deploy(service, uri, "reacher").status_code == 200
    assert wait_state(service, "reacher")["state"] == "ready"
    answer = service.session.post(f"{service.url}/functions/reacher/call",
                                  json={"input_data": {"reach": service.port}}, timeout=30)
    assert answer.status_code == 500 and answer.json()["error_type"] == "policy_error", answer.json()
    assert "reached" not in answer.text


def test_a_constructor_that_raises_fails_the_function_without_retrying(service, fake_portal):
    uri = fake_portal.publish("unbuildable", BROKEN_CONSTRUCTOR)
    assert deploy(service, uri, "unbuildable").status_code == 200
    seen = wait_state(service, "unbuildable")
    assert seen["state"] == "failed" and "I refuse to be built" in seen["message"], seen
    assert seen["replicas"][0]["restarts"] == 0
    call = service.session.post(f"{service.url}/functions/unbuildable/call", json={"input_data": {}}, timeout=30)
    assert call.status_code == 409 and "no ready replica" in call.json()["message"]


def test_bad_requests_to_the_functions_routes(service, fake_portal):
    uri = fake_portal.publish("counter2", COUNTER)
    url = service.url
    assert requests.post(f"{url}/functions", json={}, timeout=10).status_code == 401
    assert requests.post(f"{url}/functions/x/call", json={}, timeout=10).status_code == 401
    assert deploy(service, uri, "Not_A_Label").status_code == 400
    for replicas in (0, 17, "2", True):
        assert deploy(service, uri, "counter2", replicas=replicas).status_code == 400, replicas
    bad = service.session.post(f"{url}/functions", data=b"{nope", timeout=10)
    assert bad.status_code == 400
    assert service.session.post(f"{url}/functions", json={"policy_rule_uri": uri, "input_data": None},
                                timeout=10).status_code == 400
    assert deploy(service, uri, "counter2").status_code == 200
    assert deploy(service, uri, "counter2").status_code == 409
    for method, path in (("POST", "/functions/ghost/call"), ("POST", "/functions/ghost/management"),
                         ("GET", "/functions/ghost/logs"), ("DELETE", "/functions/ghost"), ("GET", "/functions/ghost")):
        assert service.session.request(method, url + path, json={}, timeout=10).status_code == 404, path
    assert service.session.get(f"{url}/functions/counter2/call", timeout=10).status_code == 405
    assert service.session.put(f"{url}/functions", timeout=10).status_code == 405
    assert wait_state(service, "counter2")["state"] == "ready"
    for body in ({"input_data": {}, "timeout_seconds": 0}, {"input_data": {}, "timeout_seconds": "x"}, {}, []):
        answer = service.session.post(f"{url}/functions/counter2/call", json=body, timeout=10)
        assert answer.status_code == 400, (body, answer.json())
    answer = service.session.post(f"{url}/functions/counter2/management", json={"action": "", "target": "all"},
                                  timeout=10).json()
    assert answer["data"][0]["success"] is False and answer["data"][0]["error_type"] == "input_invalid"
    assert service.session.post(f"{url}/functions/counter2/management", json={"action": "a", "target": "x"},
                                timeout=10).status_code == 400
    assert service.session.get(f"{url}/functions/counter2/logs?tail=x", timeout=10).status_code == 400


def test_the_function_server_answers_only_its_secret(fake_portal, tmp_path):
    from policygrid.samples import sample_path, sample_record

    record = {**sample_record(), "policy_rule_uri": "ip_allowlist:1.0-beta", "code_digest": "sha256:" + "0" * 64}
    spec = {"name": "direct", "replica": "direct-0", "token": "replica-secret-0123456789",
            "record": record, "package_dir": str(sample_path()), "requirements_dir": None}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("POLICYGRID_")},
           "POLICYGRID_ALLOW_WEAKER_SANDBOX": "false"}
    process = subprocess.Popen([sys.executable, "-m", "policygrid.function",
                                "--limits", json.dumps({"tmp_root": str(tmp_path)})],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        process.stdin.write((json.dumps(spec) + "\n").encode())
        process.stdin.close()
        first = json.loads(process.stdout.readline())
        assert "port" in first, (first, process.stderr.read(2000))
        base = f"http://127.0.0.1:{first['port']}"
        assert requests.get(f"{base}/health", timeout=10).json()["status"] == "ready"
        body = {"input_data": {"ip": "127.0.0.1"}}
        assert requests.post(f"{base}/call", json=body, timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer replica-secret-0123456788"}
        assert requests.post(f"{base}/call", json=body, headers=wrong, timeout=10).status_code == 401
        right = {"Authorization": "Bearer replica-secret-0123456789"}
        answer = requests.post(f"{base}/call", json=body, headers=right, timeout=10)
        assert answer.status_code == 200 and answer.json()["data"]["allowed"] is True, answer.text
        workers = first["worker_pids"]
    finally:
        process.terminate()
        process.wait(10)
    assert all(wait_dead(pid) for pid in workers)


def test_stopping_the_service_stops_every_replica(tmp_path, fake_portal):
    uri = fake_portal.publish("mortal", COUNTER)
    started = start_service(tmp_path, fake_portal.base, workers=1)
    try:
        assert deploy(started, uri, "mortal", replicas=2).status_code == 200
        assert wait_state(started, "mortal")["state"] == "ready"
        time.sleep(1)
        pids = [r["pid"] for r in wait_state(started, "mortal")["replicas"] if r["pid"]]
        assert pids
    finally:
        stop_service(started)
    assert all(wait_dead(pid) for pid in pids), [pid for pid in pids if alive(pid)]


SLEEPER = """
    import time

    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters):
            self.count = 0
        def eval(self, parameters, input_data, context):
            self.count += 1
            time.sleep(input_data.get("sleep", 0))
            return {"count": self.count}
"""


def test_a_call_past_its_timeout_answers_504_and_the_next_call_gets_a_fresh_instance(service, fake_portal):
    uri = fake_portal.publish("sleeper", SLEEPER)
    assert deploy(service, uri, "sleeper").status_code == 200
    assert wait_state(service, "sleeper")["state"] == "ready"
    call = f"{service.url}/functions/sleeper/call"
    assert service.session.post(call, json={"input_data": {}}, timeout=30).json()["data"] == {"count": 1}
    slow = service.session.post(call, json={"input_data": {"sleep": 10}, "timeout_seconds": 1}, timeout=30)
    assert slow.status_code == 504 and slow.json()["error_type"] == "timeout", slow.json()
    assert service.session.post(call, json={"input_data": {}}, timeout=30).json()["data"] == {"count": 1}


def test_deploying_a_deployed_name_again_is_a_conflict_that_names_it(service, fake_portal):
    """What a redelivered deployment task meets: the portal then watches the deployment already there."""
    uri = fake_portal.publish("twice", COUNTER)
    assert deploy(service, uri, "twice").status_code == 200
    again = deploy(service, uri, "twice")
    assert again.status_code == 409 and "already deployed" in again.json()["message"]
    assert wait_state(service, "twice")["state"] == "ready"
