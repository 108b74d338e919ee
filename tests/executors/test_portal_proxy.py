"""``POST /executor/<id>/execute_policy`` and ``GET /executor/<id>/health`` against a scripted executor."""
from __future__ import annotations

import time

import pytest

from tests.executors.conftest import free_port
from tests.executors.scripted import ERROR_STATUS, body_for, call


def test_success_forwards_the_call_with_the_secret_and_the_record(setup, clients, scripted):
    from policies.models import PolicyRule

    response = call(clients["operator"], body_for(parameters={"local_allowlist": ["10.0.0.1"]}, timeout_seconds=3))
    assert response.status_code == 200, response.json()
    assert response.json() == {"success": True, "data": {"echo": {"case": "ok"}}}
    auth, sent = scripted.received[-1]
    assert auth == f"Bearer {scripted.token}" and len(scripted.token) >= 40
    assert sent["parameters"] == {"local_allowlist": ["10.0.0.1"]} and sent["timeout_seconds"] == 3
    policy = PolicyRule.objects.get(policy_rule_uri="ip_allowlist:1.0-beta")
    # The executor gets the record with the call and never reads it from the portal.
    assert sent["record"]["policy_rule_uri"] == policy.policy_rule_uri
    assert sent["record"]["code_digest"] == policy.code_digest
    assert sent["record"]["policy_input_schema"] == policy.policy_input_schema
    assert sent["release"] is None  # approved behind the lifecycle's back: no signed release to send
    # ... and the portal's signed grant of exactly this call, which the executor checks before loading.
    from policygrid.signing import check_grant

    from governance.signing import published_keys

    statement = check_grant(sent["grant"], sent["record"], False, published_keys(), time.time())
    assert statement["uri"] == policy.policy_rule_uri and statement["expires_at"] <= time.time() + 61


def test_a_package_the_executor_lacks_is_uploaded_by_digest_then_the_call_repeated(setup, api, scripted):
    import hashlib

    from policies.models import PolicyRule

    policy = PolicyRule.objects.get(policy_rule_uri="ip_allowlist:1.0-beta")
    scripted.packages.clear()
    before = len(scripted.received)
    response = call(api, body_for("needs-package"))
    assert response.status_code == 200, response.json()
    assert response.json()["data"] == {"ran": policy.code_digest}
    exchange = scripted.received[before:]
    assert [("PUT" in sent) for _, sent in exchange] == [False, True, False]
    assert exchange[1][1] == {"PUT": f"/packages/{policy.code_digest}", "content_type": "application/octet-stream"}
    uploaded = scripted.packages[policy.code_digest]
    assert "sha256:" + hashlib.sha256(uploaded).hexdigest() == policy.code_digest


@pytest.mark.parametrize("error_type", sorted(ERROR_STATUS))
def test_every_error_type_is_mapped(setup, api, error_type):
    response = call(api, body_for(error_type))
    body = response.json()
    assert response.status_code == ERROR_STATUS[error_type]
    assert body["success"] is False and body["error_type"] == error_type
    assert body["message"] == f"ValueError: {error_type} happened" and body["exception_type"] == "ValueError"


def test_executor_answering_nonsense_is_502(setup, api):
    response = call(api, body_for("nonsense"))
    assert response.status_code == 502 and response.json()["error_type"] == "unavailable"


def test_executor_refusing_the_credential_is_502(setup, api, scripted):
    rotated = api.post("/executor/scripted/rotate-credential", format="json")
    assert rotated.status_code == 200 and rotated.json()["data"]["executor_token"] != scripted.token
    response = call(api, body_for())  # the service still holds the old credential
    assert response.status_code == 502 and "POLICYGRID_EXECUTOR_TOKEN" in response.json()["message"]
    scripted.token = rotated.json()["data"]["executor_token"]
    assert call(api, body_for()).status_code == 200


def test_each_executor_gets_its_own_credential_shown_once(setup, api, clients, anon, scripted):
    from audit.models import AuditEntry
    from executors.models import PolicyExecutor

    other = api.post("/executor", {"executor_id": "other", "executor_host_uri": scripted.url}, format="json")
    token = other.json()["data"]["executor_token"]
    assert token and token != scripted.token
    for shown in (api.get("/executor/other"), api.get("/executor"), api.post("/executor/query", {}, format="json"),
                  api.get("/audit")):
        assert token not in shown.content.decode() and "credential" not in shown.content.decode()
    assert clients["viewer"].post("/executor/other/rotate-credential").status_code == 403
    assert anon.post("/executor/other/rotate-credential").status_code == 401
    missing = api.post("/executor/nope/rotate-credential")
    assert missing.status_code == 404 and "nope" in missing.json()["message"]
    assert PolicyExecutor.objects.get(executor_id="other").credential == token  # refusals changed nothing
    rotated = api.post("/executor/other/rotate-credential").json()["data"]["executor_token"]
    entry = AuditEntry.objects.get(action="executor.credential_issue", target_key="other")
    assert rotated not in str(entry.data) and rotated != token


def test_slow_executor_is_504(setup, api):
    response = call(api, body_for("slow", timeout_seconds=0.3))
    assert response.status_code == 504 and response.json()["error_type"] == "timeout"


def test_executor_down_is_502(setup, api):
    setup.executor_host_uri = f"http://127.0.0.1:{free_port()}"
    setup.save()
    started = time.monotonic()
    response = call(api, body_for())
    assert response.status_code == 502 and response.json()["error_type"] == "unavailable"
    assert time.monotonic() - started < 3


def test_unreachable_executor_is_tried_with_a_short_connect_timeout(setup, api, settings, monkeypatch):
    from executors import services

    seen = {}

    def no_route(executor, method, url, **kwargs):  # the transport: an address that never answers, without a packet sent
        seen["connect_timeout"] = kwargs["connect_timeout"]
        raise services.ConnectTimeoutError("no route")

    monkeypatch.setattr(services, "_http", no_route)
    setup.executor_status = "unreachable"
    setup.save()
    response = call(api, body_for())
    assert response.status_code == 502 and "did not accept a connection within" in response.json()["message"]
    assert seen["connect_timeout"] == settings.EXECUTOR_UNREACHABLE_CONNECT_TIMEOUT


def test_unknown_executor_and_unknown_policy_are_404(setup, api):
    assert call(api, body_for(), executor="nope").status_code == 404
    response = call(api, {"policy_rule_uri": "nope:1.0-x", "input_data": {}})
    assert response.status_code == 404 and response.json()["error_type"] == "not_found"


def test_policy_that_may_not_run_is_409(setup, api, clients, users):
    from policies.models import PolicyRule

    PolicyRule.objects.filter(policy_rule_uri="ip_allowlist:1.0-beta").update(status="draft", created_by=users["author"])
    response = call(api, body_for())
    assert response.status_code == 409 and response.json()["error_type"] == "not_executable"
    # Its author may dry-run it; another author may not.
    assert call(clients["author"], body_for(dry_run=True)).status_code == 200
    # Retired through save(), as every writer does: QuerySet.update() sends no signal to invalidate the record
    # cache's entry (records/cache.py), which the calls above filled.
    policy = PolicyRule.objects.get(policy_rule_uri="ip_allowlist:1.0-beta")
    policy.status = "retired"
    policy.save(update_fields=["status", "updated_at"])
    assert call(api, body_for(dry_run=True)).status_code == 409


def test_executor_without_address_is_409_saying_how(setup, api):
    assert api.post("/executor", {"executor_id": "bare"}, format="json").status_code == 201
    response = call(api, body_for(), executor="bare")
    assert response.status_code == 409 and "executor_host_uri" in response.json()["message"]


@pytest.mark.parametrize("body,field", [
    ({"input_data": {}}, "policy_rule_uri"),
    ({"policy_rule_uri": "ip_allowlist:1.0-beta"}, "input_data"),
    ({"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {}, "parameters": [1]}, "parameters"),
    ({"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {}, "settings": "x"}, "settings"),
    ({"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {}, "timeout_seconds": 0}, "timeout_seconds"),
    ({"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {}, "dry_run": "yes"}, "dry_run"),
    ({"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {}, "surprise": 1}, "surprise"),
])
def test_malformed_bodies_are_400_naming_the_field(setup, api, body, field):
    response = call(api, body)
    assert response.status_code == 400 and field in response.json()["errors"], response.json()


def test_body_that_is_not_json_is_400(setup, api):
    response = api.post("/executor/scripted/execute_policy", "{nope", content_type="application/json")
    assert response.status_code == 400 and response.json()["success"] is False


def test_who_may_execute(setup, clients, anon):
    assert call(anon, body_for()).status_code == 401
    assert call(clients["viewer"], body_for()).status_code == 403
    assert call(clients["author"], body_for()).status_code == 403
    assert call(clients["reviewer"], body_for()).status_code == 403
    assert call(clients["operator"], body_for()).status_code == 200
    assert call(clients["admin"], body_for()).status_code == 200


def test_executions_are_audited(setup, api):
    from audit.models import AuditEntry

    call(api, body_for())
    call(api, body_for("policy_error"))
    entries = list(AuditEntry.objects.filter(action="policy.execute").order_by("seq"))
    assert [e.data["success"] for e in entries[-2:]] == [True, False]
    assert entries[-1].data["error_type"] == "policy_error" and entries[-1].data["executor_id"] == "scripted"


def test_health_route_reports_the_last_probe(setup, api, clients, anon):
    from executors import services

    services.probe_executor(setup)
    response = clients["viewer"].get("/executor/scripted/health")
    assert response.status_code == 200
    data = response.json()["data"]
    # The scripted executor has no /health route: it answers, but with trouble.
    assert data["executor_status"] == "degraded" and data["last_seen"] and data["latency_ms"] >= 0
    assert anon.get("/executor/scripted/health").status_code == 401
    assert api.get("/executor/nope/health").status_code == 404


# --- the record cache of the hot route (records/cache.py) ------------------------------------------------


def test_what_the_policy_printed_is_answered_only_when_asked(setup, api, scripted):
    plain = call(api, body_for("prints"))
    assert plain.status_code == 200 and "output" not in plain.json() and "capture_output" not in scripted.received[-1][1]
    asked = call(api, body_for("prints", capture_output=True))
    assert asked.status_code == 200 and scripted.received[-1][1]["capture_output"] is True
    assert asked.json() == {"success": True, "data": {}, "output": {"stdout": "hello\n", "stderr": "", "truncated": False}}
    refused = call(api, body_for("prints", capture_output="yes"))
    assert refused.status_code == 400 and refused.json()["errors"] == {"capture_output": ["must be true or false"]}

