"""Jobs and functions end to end on the production stack: PostgreSQL for the records, Redis as Celery's broker and
as the context store of jobs and functions. Skipped, with the reason, where either server is missing."""
import os
import signal
import time
import uuid

import pytest

from tests.functions.conftest import STATEFUL, STATEFUL_RECORD, STATEFUL_URI, FunctionSystem, push_and_approve
from tests.jobs.conftest import wait_dead
from tests.portal.embedded_run import production_stack
from tests.portal.test_embedded import start_embedded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    with production_stack("e2e") as env:
        for started in start_embedded(tmp_path_factory.mktemp("production-state"), extra_env=env):
            system = FunctionSystem(started)
            push_and_approve(system, tmp_path_factory.mktemp("stateful"), STATEFUL, STATEFUL_URI, STATEFUL_RECORD)
            yield system


def test_the_stack_really_is_postgresql_and_redis(production):
    health = production.get("/health").json()
    assert health["database"]["vendor"] == "postgresql" and health["database"]["status"] == "ok", health
    assert health["broker"] == {"status": "ok", "transport": "redis"}, health
    executor = production.executor.get(f"{production.executor_url}/health", timeout=10).json()
    assert executor["context_store"] == "redis", executor


def test_a_job_completes_fails_and_is_queried_on_the_production_stack(production):
    done = production.wait_for(production.submit("ip_allowlist:1.0-beta", {"ip": "127.0.0.1"}).json()["job_id"])
    assert done["job_status"] == "completed" and done["job_output_data"]["allowed"] is True, done
    marker = uuid.uuid4().hex
    failed = production.wait_for(production.submit(STATEFUL_URI, {"raise": True, "marker": marker}).json()["job_id"])
    assert failed["job_status"] == "failed" and "the input asked me to fail" in failed["job_error"], failed
    found = production.post("/jobs/query", {"job_policy_rule_uri": STATEFUL_URI, "job_inputs.marker": marker})
    assert found.status_code == 200 and [j["job_id"] for j in found.json()["data"]] == [failed["job_id"]]


def test_a_functions_context_survives_a_replica_restart_on_redis(production):
    assert production.deploy("remembering").status_code == 202
    assert production.wait_ready("remembering")["function_status"] == "ready"
    marker = uuid.uuid4().hex
    first = production.call("remembering", {"remember": marker}).json()["data"]
    assert first["remembered"] == marker and first["count"] == 1
    [replica] = production.replicas("remembering")
    os.kill(replica["pid"], signal.SIGKILL)
    assert wait_dead(replica["pid"])
    deadline = time.monotonic() + 30
    while (answer := production.call("remembering", {})).status_code != 200:
        assert time.monotonic() < deadline, answer.json()
        time.sleep(0.2)
    after = answer.json()["data"]
    assert after["count"] == 1, after  # a new instance: its own state starts again...
    assert after["remembered"] == marker, after  # ...but the context store kept what the old one wrote
    other = production.deploy("forgetful")
    assert other.status_code == 202 and production.wait_ready("forgetful")["function_status"] == "ready"
    assert production.call("forgetful", {}).json()["data"]["remembered"] is None  # namespaced per function
