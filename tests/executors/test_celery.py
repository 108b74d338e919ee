"""The probe task through a real Celery worker: on the embedded filesystem broker and on this machine's Redis."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

SEND = """
import json, django
django.setup()
from executors.models import PolicyExecutor
from executors.tasks import probe_executors
PolicyExecutor.objects.update_or_create(executor_id="celery-live", defaults={"executor_host_uri": "%(url)s"})
result = probe_executors.delay().get(timeout=60)
executor = PolicyExecutor.objects.get(executor_id="celery-live")
print(json.dumps({"result": result, "status": executor.executor_status, "last_seen": str(executor.last_seen)}))
"""


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    folder = tmp_path_factory.mktemp("celery-state")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYGRID_", "CELERY_", "DATABASE_URL"))}
    env["POLICYGRID_STATE_DIR"] = str(folder)
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True,
                   timeout=300)
    return folder, env


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_worker_runs_the_probe_task(state, broker, executor_service):
    folder, env = state
    env = dict(env, POLICYGRID_EXECUTOR_TOKEN=executor_service.token)
    if broker == "redis":
        if not redis_reachable():
            pytest.skip("SKIPPED LOUDLY: no Redis at 127.0.0.1:6379, the Redis broker is not tested")
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
        env.update(CELERY_BROKER_URL=url, CELERY_RESULT_BACKEND=url)
    else:
        for sub in ("broker/out", "broker/processed"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "solo", "--loglevel", "INFO",
         "--without-mingle", "--without-gossip", "-n", f"test-{broker}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        sent = subprocess.run([sys.executable, "-c", SEND % {"url": executor_service.url}], cwd=ROOT, env=dict(
            env, DJANGO_SETTINGS_MODULE="portal.settings"), capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stderr[-3000:]
        outcome = json.loads(sent.stdout.strip().splitlines()[-1])
        assert outcome["result"]["celery-live"] == "healthy"
        assert outcome["status"] == "healthy" and outcome["last_seen"] != "None"
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=15)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0].decode(errors="replace")
    assert "executors.probe_executors" in output and "succeeded" in output, output[-3000:]
