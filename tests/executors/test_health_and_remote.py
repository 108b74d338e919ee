"""Health probes against a live, a stopped and a slow executor; the description's remote-mode example."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from tests.executors.conftest import free_port, start_service, stop_service
from tests.fileserver import LoopbackServer, QuietHandler


class SlowHealth(LoopbackServer):
    def __init__(self, delay):
        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802
                time.sleep(delay)
                self.reply(200, b'{"status": "ok", "version": "x", "workers": 1, "busy": 0, "queued": 0, "cache": {}}')

        super().__init__(Handler)


@pytest.mark.django_db
def test_probe_sets_status_and_records_transitions(executor_service, settings):
    from audit.models import AuditEntry
    from executors import services
    from executors.models import PolicyExecutor

    settings.EXECUTOR_TOKEN = executor_service.token
    settings.EXECUTOR_DEGRADED_LATENCY_MS = 300
    settings.EXECUTOR_PROBE_TIMEOUT = 2
    slow = SlowHealth(0.5)
    live = PolicyExecutor.objects.create(executor_id="live", executor_host_uri=executor_service.url,
                                         executor_status="unknown")
    PolicyExecutor.objects.create(executor_id="stopped", executor_host_uri=f"http://127.0.0.1:{free_port()}")
    PolicyExecutor.objects.create(executor_id="slow", executor_host_uri=slow.url)
    PolicyExecutor.objects.create(executor_id="no-address")

    assert services.probe_executors() == {"live": "healthy", "stopped": "unreachable", "slow": "degraded"}
    live.refresh_from_db()
    assert live.last_seen and live.latency_ms >= 0 and live.health_data["workers"] == 4
    assert live.health_data["protections"]
    stopped = PolicyExecutor.objects.get(executor_id="stopped")
    assert stopped.last_seen is None and "ConnectFailed" in stopped.health_data["probe"]["reason"]
    assert "slow" in PolicyExecutor.objects.get(executor_id="slow").health_data["probe"]["reason"]
    assert PolicyExecutor.objects.get(executor_id="no-address").executor_status == "unknown"

    changes = {e.target_key: e.data for e in AuditEntry.objects.filter(action="executor.status_change")}
    assert changes["live"]["from"] == "unknown" and changes["live"]["to"] == "healthy"
    assert changes["stopped"] == {**changes["stopped"], "from": "healthy", "to": "unreachable"}
    # No change, no new entry.
    count = AuditEntry.objects.filter(action="executor.status_change").count()
    services.probe_executors()
    assert AuditEntry.objects.filter(action="executor.status_change").count() == count
    slow.close()


def test_beat_schedules_the_probe(settings):
    from portal.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["probe-executors"]
    assert entry["task"] == "executors.probe_executors" and entry["schedule"] == settings.EXECUTOR_PROBE_INTERVAL
    app.loader.import_default_modules()
    assert "executors.probe_executors" in app.tasks


REMOTE_EXAMPLE = '''
from aios_policy_sandbox import LocalPolicyEvaluator

settings={} # override the settings if needed
parameters={} # override the parameters if needed

policy_rule_uri="ip_allowlist:1.0-beta"

executor = LocalPolicyEvaluator(
    policy_rule_uri=policy_rule_uri,
    parameters=parameters,
    settings=settings,
    mode="remote",
    executor_id="executor-123"
)

output = executor.execute_policy_rule({
   "ip": "192.168.0.109"
})

print(output)
'''


@pytest.mark.django_db(transaction=True)
def test_description_remote_mode_example_runs_as_written(live_server, settings, policy_payload, make_user,
                                                          token_for, tmp_path):
    from executors.models import PolicyExecutor
    from policies.models import PolicyRule
    from policies.registration import register_package

    admin = make_user("remote-admin", "admin", superuser=True)
    viewer = make_user("remote-executor", "viewer")
    policy = PolicyRule(**policy_payload(), created_by=admin)
    policy.full_clean()
    register_package(policy)  # fetch the package and pin its digest, as registration does
    policy.save()
    PolicyRule.objects.filter(pk=policy.pk).update(status="approved")
    service = start_service(tmp_path, live_server.url, portal_token=token_for(viewer), workers=2)
    try:
        settings.EXECUTOR_TOKEN = service.token
        PolicyExecutor.objects.create(executor_id="executor-123", executor_host_uri=service.url)
        env = {"POLICYGRID_URL": live_server.url, "POLICYGRID_TOKEN": token_for(admin),
               "PATH": "/usr/bin:/bin"}
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(REMOTE_EXAMPLE)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == ("{'allowed': False, 'input_data': {'ip': '192.168.0.109'}, "
                                         "'reason': 'denied'}")
        # The caller's parameters win, through the portal and the service.
        remote = subprocess.run([sys.executable, "-c", textwrap.dedent(REMOTE_EXAMPLE).replace(
            "parameters={}", 'parameters={"local_allowlist": ["192.168.0.109"]}')], env=env,
            capture_output=True, text=True, timeout=60)
        assert "'allowed': True" in remote.stdout, remote.stderr
    finally:
        stop_service(service)


class InternalPage(LoopbackServer):
    """Stands for an internal service an operator registered as an executor: its /health answer holds data
    that must never be stored for viewers to read."""

    def __init__(self, body: bytes):
        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802
                self.reply(200, body)

        super().__init__(Handler)


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    b'{"secret": "s3cr3t-canary", "rows": [1, 2, 3]}',
    b'{"status": "ok", "workers": 2, "secret": "s3cr3t-canary", "cache": {"root": "s3cr3t-canary"}}',
    b'{"status": "ok", "version": "s3cr3t-canary' + b"x" * 500 + b'", "trouble": ["a", {"s3cr3t-canary": 1}]}',
])
def test_a_probe_keeps_only_the_fields_of_a_health_document(api, body):
    from executors import services
    from executors.models import PolicyExecutor

    page = InternalPage(body)
    try:
        executor = PolicyExecutor.objects.create(executor_id="inside", executor_host_uri=page.url)
        services.probe_executor(executor)
        stored = json.dumps(PolicyExecutor.objects.get(executor_id="inside").health_data)
        shown = api.get("/executor/inside/health").content.decode()
    finally:
        page.close()
    assert "secret" not in stored and "rows" not in stored and "cache" not in stored
    assert stored.count("s3cr3t-canary") <= 1 and "x" * 100 not in stored  # a version is kept, cut to 64
    assert "secret" not in shown and "x" * 100 not in shown
