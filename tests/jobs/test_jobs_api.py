"""The jobs API's refusals, permissions, result posts and reconciliation, without a runtime process
(the runtime is replaced where a test needs one to answer; tests/jobs/test_local_runtime.py runs the real one)."""
import hashlib
import json
import secrets
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from executors.runtime import RUNTIMES, RuntimeJob
from jobs.models import Job

URI = "ip_allowlist:1.0-beta"


class FakeRuntime:
    """Stands in for the local runtime: records launches, answers a scripted status."""

    def __init__(self):
        self.launched, self.cancelled, self.status = [], [], None
        self.fail_launch = None

    def launch_job(self, executor, launch):
        if self.fail_launch:
            raise self.fail_launch
        self.launched.append(launch)
        return RuntimeJob(state="queued", node="node-1")

    def cancel_job(self, executor, job_id):
        self.cancelled.append(job_id)

    def job_status(self, executor, job_id):
        return self.status

    def job_logs(self, executor, job_id, tail=None):
        lines = ["one", "two", "three"]
        return "\n".join(lines[-tail:] if tail is not None else lines)


@pytest.fixture
def runtime(monkeypatch):
    fake = FakeRuntime()
    monkeypatch.setitem(RUNTIMES, "local", fake)
    return fake


@pytest.fixture
def setup(db, api, policy_payload, runtime):
    from policies.models import PolicyRule

    assert api.post("/policy", policy_payload(), format="json").status_code == 201
    PolicyRule.objects.filter(policy_rule_uri=URI).update(status="approved")
    assert api.post("/executor", {"executor_id": "local", "executor_host_uri": "http://127.0.0.1:9"},
                    format="json").status_code == 201
    return runtime


def submit(client, body=None, executor="local", **extra):
    body = {"name": "nightly", "policy_rule_uri": URI, "inputs": {"ip": "10.0.0.1"}, **extra} if body is None else body
    return client.post(f"/jobs/submit/{executor}" if executor else "/jobs/submit", body, format="json")


def test_submission_creates_the_record_and_launches_it_with_a_token_of_its_own(setup, api):
    answer = submit(api, timeout_seconds=5, policy_rule_settings={"a": 1})
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    job = Job.objects.get(job_id=body["job_id"])
    assert body["data"]["job_status"] == job.job_status == "running"
    assert job.node_id == "node-1" and job.deadline_at > job.started_at
    launch = setup.launched[0]
    assert launch.job_id == body["job_id"] and launch.call.timeout_seconds == 5 and launch.call.settings == {"a": 1}
    assert hashlib.sha256(launch.token.encode()).hexdigest() == job.result_token_hash
    assert "result_token_hash" not in body["data"] and launch.token not in json.dumps(body)
    entries = api.get("/audit", {"action": "job.submit"}).json()["data"]
    assert [e["target_key"] for e in entries] == [body["job_id"]] and entries[0]["actor"] == "admin-user"


@pytest.mark.parametrize(("body", "field"), [
    ({"policy_rule_uri": URI}, "name"),
    ({"name": "x"}, "policy_rule_uri"),
    ({"name": "Not_A_Label", "policy_rule_uri": URI}, "job_name"),
    ({"name": "x", "policy_rule_uri": URI, "timeout_seconds": 0}, "timeout_seconds"),
    ({"name": "x", "policy_rule_uri": URI, "timeout_seconds": "soon"}, "timeout_seconds"),
    ({"name": "x", "policy_rule_uri": URI, "timeout_seconds": 10**9}, "timeout_seconds"),
    ({"name": "x", "policy_rule_uri": URI, "policy_rule_parameters": [1]}, "policy_rule_parameters"),
    ({"name": "x", "policy_rule_uri": URI, "node_selector": "gpu"}, "node_selector"),
    ({"name": "x", "policy_rule_uri": URI, "node_selector": {"gpu": 1}}, "node_selector.gpu"),  # label strings only
    ({"name": "x", "policy_rule_uri": URI, "surprise": 1}, "surprise"),
    ([1, 2], "(body)"),
])
def test_malformed_submissions_are_400_naming_the_field_and_create_nothing(setup, api, body, field):
    answer = submit(api, body)
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()["errors"], answer.json()
    assert not Job.objects.exists() and not setup.launched


def test_a_body_that_is_not_json_or_too_large_is_refused(setup, api):
    assert api.post("/jobs/submit/local", "{nope", content_type="application/json").status_code == 400
    assert api.post("/jobs/submit/local", "name=x", content_type="text/plain").status_code == 415
    big = {"name": "x", "policy_rule_uri": URI, "inputs": {"blob": "x" * (1024 * 1024 + 10)}}
    assert api.post("/jobs/submit/local", json.dumps(big), content_type="application/json").status_code == 413
    assert not Job.objects.exists()


def test_submitting_needs_the_operator_role(setup, clients, anon):
    assert submit(anon).status_code == 401
    for role in ("viewer", "author", "reviewer", "norole"):
        assert submit(clients[role]).status_code == 403, role
    assert submit(clients["operator"]).status_code == 201
    job_id = Job.objects.get().job_id
    assert clients["viewer"].post(f"/jobs/{job_id}/cancel").status_code == 403
    assert anon.get(f"/jobs/{job_id}/logs").status_code == 401
    assert clients["viewer"].get(f"/jobs/{job_id}/logs").status_code == 200


def test_without_an_executor_and_no_allocator_installed_the_answer_names_the_allocator(setup, api):
    answer = submit(api, executor=None)
    assert answer.status_code == 404 and "resource_allocator:1.0-default" in answer.json()["message"]
    assert "install_allocator" in answer.json()["message"]
    assert api.post("/jobs/submit/", {"name": "x", "policy_rule_uri": URI}, format="json").status_code == 404
    assert "name" in submit(api, {"policy_rule_uri": URI}, executor=None).json()["errors"]  # the body first
    assert not Job.objects.exists()


def test_unknown_executor_or_policy_is_404_and_a_kubernetes_executor_without_a_cluster_409(setup, api):
    assert submit(api, executor="nowhere").status_code == 404
    assert submit(api, policy_rule_uri="nope:1.0-x").status_code == 404
    assert api.post("/executor", {"executor_id": "cluster", "executor_host_uri": "http://127.0.0.1:9",
                                  "executor_runtime": "kubernetes"}, format="json").status_code == 201
    answer = submit(api, executor="cluster")  # through the one interface: no cluster was given (create-infra)
    assert answer.status_code == 409 and "create-infra" in answer.json()["message"]
    assert Job.objects.get(job_id=answer.json()["job_id"]).job_status == "failed"


def test_the_execution_gate_runs_drafts_only_as_dry_runs(setup, api, clients, users):
    from policies.models import PolicyRule

    PolicyRule.objects.filter(policy_rule_uri=URI).update(status="draft", created_by=users["admin"])
    refused = submit(api)
    assert refused.status_code == 409 and "dry_run" in refused.json()["message"]
    assert submit(clients["operator"], dry_run=True).status_code == 409  # not its author nor a reviewer
    assert submit(api, dry_run=True).status_code == 201
    assert setup.launched[-1].call.dry_run is True
    PolicyRule.objects.filter(policy_rule_uri=URI).update(status="retired")
    assert submit(api, dry_run=True).status_code == 409


def test_a_launch_the_runtime_refuses_leaves_the_job_failed_and_names_it(setup, api):
    from policygrid.errors import Unavailable

    setup.fail_launch = Unavailable("cannot reach executor local")
    answer = submit(api)
    assert answer.status_code == 502 and answer.json()["error_type"] == "unavailable"
    job = Job.objects.get(job_id=answer.json()["job_id"])
    assert job.job_status == "failed" and "cannot reach executor local" in job.job_error


def make_job(users, status="running", **extra):
    token = secrets.token_urlsafe(32)
    job = Job.objects.create(job_name="j", job_policy_rule_uri=URI, job_executor_id="local", job_status=status,
                             timeout_seconds=5, result_token_hash=hashlib.sha256(token.encode()).hexdigest(),
                             created_by=users["admin"], **extra)
    return job, token


def post_result(client, job, token, body):
    headers = {"HTTP_X_JOB_TOKEN": token} if token is not None else {}
    return client.post(f"/jobs/{job.job_id}/result", body, format="json", **headers)


def test_only_the_jobs_token_may_post_its_result_and_only_once(setup, anon, api, users):
    job, token = make_job(users)
    other, other_token = make_job(users)
    assert post_result(anon, job, None, {"status": "completed", "output": 1}).status_code == 403
    assert post_result(anon, job, "guess", {"status": "completed", "output": 1}).status_code == 403
    assert post_result(anon, job, other_token, {"status": "completed", "output": 1}).status_code == 403
    assert post_result(api, job, None, {"status": "completed", "output": 1}).status_code == 403  # a user is no runner
    assert post_result(anon, job, token, {"status": "done"}).status_code == 400
    assert post_result(anon, job, token, {"status": "completed", "output": {"ok": True}}).status_code == 200
    replay = post_result(anon, job, token, {"status": "failed", "error": "late"})
    assert replay.status_code == 409 and "completed" in replay.json()["message"]
    job.refresh_from_db()
    assert job.job_status == "completed" and job.job_output_data == {"ok": True} and job.finished_at
    assert post_result(anon, other, other_token, {"status": "failed", "error": "boom", "error_type": "policy_error"}
                       ).status_code == 200
    other.refresh_from_db()
    assert other.job_status == "failed" and other.job_error == "policy_error: boom"
    assert post_result(anon, job, token, {"status": "completed"}).status_code == 409
    assert anon.post("/jobs/not-a-uuid/result", {"status": "completed"}, format="json",
                     HTTP_X_JOB_TOKEN=token).status_code == 404


def test_of_concurrent_outcomes_exactly_one_is_kept(setup, users):
    """Conditional transitions: every writer asks for 'still unfinished', so exactly one outcome wins."""
    from jobs.services import finish_job

    job, _ = make_job(users)
    results = [finish_job(Job.objects.get(pk=job.pk), status) for status in ("completed", "failed", "cancelled")]
    assert results == [True, False, False]
    job.refresh_from_db()
    assert job.job_status == "completed"


def test_cancel_ends_the_job_kills_it_on_its_runtime_and_conflicts_once_ended(setup, api, users):
    job, _ = make_job(users)
    job.save()  # resolves the executor reference
    answer = api.post(f"/jobs/{job.job_id}/cancel")
    assert answer.status_code == 200 and answer.json()["data"]["job_status"] == "cancelled"
    assert setup.cancelled == [str(job.job_id)]
    assert api.post(f"/jobs/{job.job_id}/cancel").status_code == 409
    done, _ = make_job(users, status="completed")
    assert api.post(f"/jobs/{done.job_id}/cancel").status_code == 409
    assert api.post("/jobs/00000000-0000-0000-0000-000000000000/cancel").status_code == 404
    assert api.get("/jobs/not-a-uuid").status_code == 404


def test_logs_come_from_the_runtime_with_tail(setup, api, users):
    job, _ = make_job(users)
    job.save()
    assert api.get(f"/jobs/{job.job_id}/logs?tail=2").json() == {"success": True, "data": "two\nthree",
                                                                  "logs": "two\nthree"}
    for bad in ("-1", "x", "1e3", "100000000"):
        assert api.get(f"/jobs/{job.job_id}/logs?tail={bad}").status_code == 400, bad


def test_reconciliation_fails_a_job_that_died_and_loses_one_nobody_knows_past_its_deadline(setup, users):
    from jobs.services import reconcile_jobs

    died, _ = make_job(users)
    died.save()
    setup.status = RuntimeJob(state="exited", exit_code=-9, signal="SIGKILL",
                              reason="the job's process was killed by signal 9 (SIGKILL)")
    assert reconcile_jobs()["failed"] == 1
    died.refresh_from_db()
    assert died.job_status == "failed" and "SIGKILL" in died.job_error

    setup.status = None  # the runtime doesn't know it
    young, _ = make_job(users, deadline_at=timezone.now() + timedelta(minutes=5))
    old, _ = make_job(users, deadline_at=timezone.now() - timedelta(seconds=1))
    young.save(), old.save()
    counts = reconcile_jobs()
    assert counts["lost"] == 1
    young.refresh_from_db(), old.refresh_from_db()
    assert young.job_status == "running" and old.job_status == "lost" and "no sign of life" in old.job_error

    setup.status = RuntimeJob(state="running")
    assert reconcile_jobs() == {"checked": 1, "failed": 0, "cancelled": 0, "lost": 0}


def test_the_reconciliation_runs_on_the_beat_schedule(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE["reconcile-jobs"]
    assert schedule["task"] == "jobs.reconcile_jobs" and schedule["schedule"] == settings.JOB_RECONCILE_INTERVAL
    from portal.celery import app

    app.loader.import_default_modules()
    assert "jobs.reconcile_jobs" in app.tasks


def test_jobs_are_read_only_in_the_admin(setup, users, client):
    job, _ = make_job(users)
    client.force_login(users["admin"])
    page = client.get(f"/admin/jobs/job/{job.pk}/change/")
    assert page.status_code == 200
    assert b'name="job_status"' not in page.content and b'name="job_output_data"' not in page.content
    assert client.get("/admin/jobs/job/add/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_of_a_jobs_result_give_one_200_and_the_rest_409(users, runtime):
    from django.db import connection, connections
    from rest_framework.test import APIClient

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises them (the sequential replay test covers it)")
    job, token = make_job(users)
    barrier = threading.Barrier(6)
    statuses = []

    def post(n):
        barrier.wait()
        try:
            statuses.append(post_result(APIClient(), job, token, {"status": "completed", "output": n}).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [409] * 5
    job.refresh_from_db()
    assert job.job_status == "completed"
