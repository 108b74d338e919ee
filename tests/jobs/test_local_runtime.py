"""Jobs end to end on the embedded system: the portal, the local executor service, real runner processes."""
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.jobs.conftest import BEHAVING_URI, wait_dead

pytestmark = pytest.mark.slow
SAMPLE = "ip_allowlist:1.0-beta"  # approved and signed by the demo data


def test_job_completes_with_the_policys_output_and_the_overrides_win(system):
    submitted = system.submit(SAMPLE, {"ip": "10.0.0.9"}, policy_rule_parameters={"local_allowlist": ["10.0.0.9"]})
    assert submitted.status_code == 201, submitted.json()
    body = submitted.json()
    assert body["success"] is True and body["job_id"] == body["data"]["job_id"]
    assert body["data"]["job_status"] in ("running", "completed")
    job = system.wait_for(body["job_id"])
    assert job["job_status"] == "completed", job
    assert job["job_output_data"] == {"allowed": True, "input_data": {"ip": "10.0.0.9"}, "reason": "allowed"}
    assert job["started_at"] and job["finished_at"] and job["job_executor_id"] == "local"
    stored = system.wait_for(system.submit(SAMPLE, {"ip": "10.0.0.9"}).json()["job_id"])
    assert stored["job_output_data"]["allowed"] is False  # the stored allowlist, without the override


def test_a_policy_that_raises_fails_the_job_with_its_error(system):
    job = system.wait_for(system.submit(BEHAVING_URI, {"raise": True}).json()["job_id"])
    assert job["job_status"] == "failed", job
    assert "ValueError: the input asked me to fail" in job["job_error"] and job["job_output_data"] is None


def test_input_failing_the_schema_fails_the_job_as_input_invalid(system):
    job = system.wait_for(system.submit(SAMPLE, {"ip": "not an address"}).json()["job_id"])
    assert job["job_status"] == "failed" and job["job_error"].startswith("input_invalid"), job


def test_a_job_past_its_timeout_is_killed_and_failed(system):
    started = time.monotonic()
    job_id = system.submit(BEHAVING_URI, {"sleep": 60}, timeout_seconds=1).json()["job_id"]
    job = system.wait_for(job_id)
    assert job["job_status"] == "failed" and "timeout" in job["job_error"], job
    assert time.monotonic() - started < 15
    deadline = time.monotonic() + 10
    while (seen := system.runtime_view(job_id))["state"] != "exited" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen["state"] == "exited" and wait_dead(seen["pid"]), seen


def test_a_job_killed_with_sigkill_is_failed_with_the_signal(system):
    job_id = system.submit(BEHAVING_URI, {"sleep": 60}).json()["job_id"]
    os.kill(system.runner_pid(job_id), signal.SIGKILL)
    job = system.wait_for(job_id)
    assert job["job_status"] == "failed" and "SIGKILL" in job["job_error"], job
    assert system.runtime_view(job_id)["signal"] == "SIGKILL"


def test_cancel_kills_the_job_and_a_second_cancel_conflicts(system):
    job_id = system.submit(BEHAVING_URI, {"sleep": 60}).json()["job_id"]
    pid = system.runner_pid(job_id)
    cancelled = system.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["data"]["job_status"] == "cancelled"
    assert wait_dead(pid)
    again = system.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["message"]
    time.sleep(0.5)
    assert system.get(f"/jobs/{job_id}").json()["data"]["job_status"] == "cancelled"
    entries = system.get("/audit", params={"action": "job.cancel"}).json()["data"]
    assert any(entry["target_key"] == job_id and entry["actor"] == "admin" for entry in entries), entries


def test_logs_show_what_the_policy_printed_and_tail_limits_them(system):
    job_id = system.submit(BEHAVING_URI, {"say": "hello-from-the-job"}).json()["job_id"]
    assert system.wait_for(job_id)["job_status"] == "completed"
    # The executor's last note (the runner exited) may follow the job's completion by a moment: the log is
    # compared whole once it is there.
    deadline = time.monotonic() + 15
    while True:
        logs = system.get(f"/jobs/{job_id}/logs")
        assert logs.status_code == 200
        text = logs.json()["data"]
        if "exited" in text.strip().splitlines()[-1] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "hello-from-the-job" in text and logs.json()["logs"] == text
    tail = system.get(f"/jobs/{job_id}/logs?tail=2").json()["data"]
    assert len(tail.strip().splitlines()) == 2 and tail.strip().splitlines() == text.strip().splitlines()[-2:]
    assert system.get(f"/jobs/{job_id}/logs?tail=-1").status_code == 400


def test_the_job_query_finds_jobs_by_policy_and_input(system):
    ids = [system.submit(SAMPLE, {"ip": ip}).json()["job_id"] for ip in ("10.1.1.1", "10.2.2.2")]
    for job_id in ids:
        system.wait_for(job_id)
    found = system.post("/jobs/query", {"policy_rule_uri": SAMPLE, "inputs.ip": "10.2.2.2"})
    assert found.status_code == 200, found.json()
    assert [job["job_id"] for job in found.json()["data"]] == [ids[1]]


def test_a_forged_result_post_is_refused_and_changes_nothing(system):
    job_id = system.submit(BEHAVING_URI, {"sleep": 2}).json()["job_id"]
    forged = system.api.post(f"{system.base}/jobs/{job_id}/result", json={"status": "completed", "output": "forged"},
                             headers={"X-Job-Token": "not-the-token"}, timeout=10)
    assert forged.status_code == 403
    as_admin = system.post(f"/jobs/{job_id}/result", {"status": "completed", "output": "forged"})
    assert as_admin.status_code == 403  # a user's credentials are not the job's token
    job = system.wait_for(job_id)
    assert job["job_status"] == "completed" and job["job_output_data"]["echo"] == {"sleep": 2}


def test_concurrent_submissions_each_get_their_own_job_and_all_complete(system):
    def one(n):
        return system.submit(BEHAVING_URI, {"n": n}, name=f"job-{n}")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert [a.status_code for a in answers] == [201] * 8
    assert len({a.json()["job_id"] for a in answers}) == 8
    for answer in answers:
        job = system.wait_for(answer.json()["job_id"])
        assert job["job_status"] == "completed" and job["job_output_data"]["echo"] == job["job_inputs"]


def test_the_executor_refuses_a_job_without_the_portals_grant(system):
    """The service authorises a job as it does an execute call: its credential and the portal's signed grant."""
    record = system.get(f"/policy/{SAMPLE}").json()["data"]
    body = {"policy_rule_uri": SAMPLE, "input_data": {"ip": "1.2.3.4"}, "record": record, "release": None,
            "job": {"job_id": "forged-job", "token": "t" * 32}}
    refused = system.executor.post(f"{system.executor_url}/jobs", json=body, timeout=10)
    assert refused.status_code in (400, 500) and refused.json()["success"] is False
    unauthenticated = system.executor.post(f"{system.executor_url}/jobs", json=body, timeout=10,
                                           headers={"Authorization": "Bearer wrong"})
    assert unauthenticated.status_code == 401
    assert system.executor.get(f"{system.executor_url}/jobs/forged-job", timeout=10).status_code == 404
