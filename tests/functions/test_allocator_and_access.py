"""The resource allocator (a custom one, a broken one, the default for jobs) and who may do what with functions,
on the embedded system."""
import threading

import pytest

from tests.functions.conftest import ALLOCATOR_URI, STATEFUL_URI, user_session

pytestmark = pytest.mark.slow


def alloc(**parameters):
    return {"resource_allocator_policy_uri": ALLOCATOR_URI, "parameters": parameters}


def test_a_custom_allocator_places_a_function_and_chooses_its_replicas(functions_system):
    placed = functions_system.deploy("custom-placed", executor=None, alloc=alloc())
    assert placed.status_code == 202, placed.json()
    record = placed.json()["data"]
    assert record["function_executor_id"] == "local" and record["replicas"] == 2
    assert functions_system.wait_ready("custom-placed")["function_status"] == "ready"


@pytest.mark.parametrize(("how", "status", "needle"), [
    ("raise", 502, "this allocator is broken"),
    ("unknown", 502, "no-such-executor"),
    ("none", 409, "everything is full"),
    ("garbage", 502, "not {\"executor_id\""),
])
def test_a_broken_allocator_gives_a_clear_error_and_creates_nothing(functions_system, how, status, needle):
    answer = functions_system.deploy(f"broken-{how}", executor=None, alloc=alloc(how=how))
    assert answer.status_code == status, answer.json()
    assert needle in answer.json()["message"] and ALLOCATOR_URI in answer.json()["message"]
    assert functions_system.get(f"/function/broken-{how}").status_code == 404
    job = functions_system.post("/jobs/submit", {"name": "placed-job", "policy_rule_uri": "ip_allowlist:1.0-beta",
                                                 "inputs": {"ip": "127.0.0.1"}, "alloc": alloc(how=how)})
    assert job.status_code == status and needle in job.json()["message"], job.json()


def test_an_allocator_naming_an_unhealthy_executor_is_refused(functions_system):
    assert functions_system.post("/executor", {"executor_id": "asleep"}).status_code == 201  # no address: unknown
    answer = functions_system.deploy("on-asleep", executor=None, alloc=alloc(pick="asleep"))
    assert answer.status_code == 502 and "asleep" in answer.json()["message"] and "not healthy" in answer.json()["message"]


def test_the_default_allocator_places_a_job(functions_system):
    submitted = functions_system.post("/jobs/submit", {"name": "placed-job", "policy_rule_uri": "ip_allowlist:1.0-beta",
                                                       "inputs": {"ip": "127.0.0.1"}})
    assert submitted.status_code == 201, submitted.json()
    job = functions_system.wait_for(submitted.json()["job_id"])
    assert job["job_status"] == "completed" and job["job_executor_id"] == "local", job


def test_only_operators_deploy_remove_manage_and_call(functions_system):
    assert functions_system.deploy("guarded").status_code == 202
    assert functions_system.wait_ready("guarded")["function_status"] == "ready"
    for username in ("demo-viewer", "demo-author", "demo-reviewer"):
        session = user_session(functions_system, username)
        base = functions_system.base
        created = session.post(f"{base}/function/deployments/create/local",
                               json={"name": f"by-{username}", "policy_rule_uri": STATEFUL_URI}, timeout=30)
        assert created.status_code == 403, (username, created.json())
        assert session.post(f"{base}/function/guarded/management", json={"action": "get_state"},
                            timeout=30).status_code == 403
        assert session.delete(f"{base}/function/deployments/remove/guarded", timeout=30).status_code == 403
        assert session.post(f"{base}/function/call_function/guarded", json={}, timeout=30).status_code == 403
        assert session.get(f"{base}/function/guarded", timeout=30).status_code == 200  # every role reads
    operator = user_session(functions_system, "demo-operator")
    assert operator.post(f"{functions_system.base}/function/guarded/management", json={"action": "get_state"},
                         timeout=30).status_code == 200
    assert operator.post(f"{functions_system.base}/function/call_function/guarded", json={},
                         timeout=30).status_code == 200
    anonymous = functions_system.base + "/function/call_function/guarded"
    import requests

    assert requests.post(anonymous, json={}, timeout=30).status_code == 401


def test_concurrent_creates_of_one_name_exactly_one_wins(functions_system):
    answers = []

    def create():
        answers.append(functions_system.deploy("contested").status_code)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [202] + [409] * 5, answers
    assert functions_system.wait_ready("contested")["function_status"] == "ready"
    assert len(functions_system.replicas("contested")) == 1


def test_malformed_and_oversized_bodies(functions_system):
    base = functions_system.base
    raw = functions_system.api.post(f"{base}/function/deployments/create/local", data="{not json",
                                    headers={"Content-Type": "application/json"}, timeout=30)
    assert raw.status_code == 400
    huge = functions_system.api.post(f"{base}/function/call_function/guarded", data="[" + "1," * 800_000 + "1]",
                                     headers={"Content-Type": "application/json"}, timeout=30)
    assert huge.status_code == 413, huge.text[:300]
    unknown = functions_system.deploy("extra-field", colour="blue")
    assert unknown.status_code == 400 and unknown.json()["errors"] == {"colour": ["unknown field"]}
    management = functions_system.post("/function/guarded/management", {"action": "get_state", "target": "some"})
    assert management.status_code == 400 and "target" in management.json()["errors"]
