"""The executor service verifies signed releases before loading (docs/governance.md §5), through the portal."""
import pytest
from django.core.cache import caches
from django.utils import timezone

from tests.executors.conftest import start_service, stop_service

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_setup(live_server, settings, tmp_path, policy_payload, make_user, token_for):
    from executors.models import PolicyExecutor
    from governance import lifecycle
    from governance.signing import create_signing_key
    from policies.models import PolicyRule
    from policies.registration import register_package

    settings.SIGNING_KEY_DIR = tmp_path / "keys"
    settings.SIGNING_ENABLED = True
    settings.RELAX_EXECUTION_GATE = False
    create_signing_key()
    author, reviewer = make_user("sig-author", "author"), make_user("sig-reviewer", "reviewer")
    operator, reader = make_user("sig-operator", "operator"), make_user("sig-executor", "viewer")
    policy = PolicyRule(**policy_payload(), created_by=author)
    policy.full_clean()
    register_package(policy)  # fetch the package and pin its digest, as registration does
    policy.save()
    lifecycle.submit(policy, author, "ready")
    lifecycle.approve(PolicyRule.objects.get(pk=policy.pk), reviewer, "ok")
    service = start_service(tmp_path, live_server.url, portal_token=token_for(reader), workers=2,
                            extra_env={"POLICYGRID_VERIFY_SIGNATURES": "true"})
    settings.EXECUTOR_TOKEN = service.token
    PolicyExecutor.objects.create(executor_id="signed", executor_host_uri=service.url)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(operator)}")
    yield client, PolicyRule.objects.get(pk=policy.pk)
    stop_service(service)


def execute(client):
    return client.post("/executor/signed/execute_policy",
                       {"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {"ip": "127.0.0.1"}}, format="json")


def test_a_signed_release_runs_and_an_edited_record_is_refused(signed_setup):
    from policies.models import PolicyRule

    client, policy = signed_setup
    ok = execute(client)
    assert ok.status_code == 200, ok.content
    assert ok.json()["data"]["allowed"] is True
    # Someone with database access widens the stored parameters of the approved version behind the API's back.
    PolicyRule.objects.filter(pk=policy.pk).update(
        policy_parameters={"local_allowlist": ["127.0.0.1", "10.6.6.6"]}, updated_at=timezone.now())
    # QuerySet.update() sends no signal: until the portal's cached columns of the record expire
    # (RECORD_CACHE_SECONDS, records/cache.py) it still sends the signed version's stamp. The edit never runs
    # meanwhile: the executor runs its verified copy (10.6.6.6 denied), or refetches and refuses the edit.
    meanwhile = client.post("/executor/signed/execute_policy",
                            {"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {"ip": "10.6.6.6"}},
                            format="json")
    assert (meanwhile.status_code == 200 and meanwhile.json()["data"]["allowed"] is False) or (
        meanwhile.status_code == 500 and meanwhile.json()["error_type"] == "integrity"), meanwhile.content
    caches["default"].clear()  # the entry's expiry
    refused = execute(client)
    assert refused.status_code == 500, refused.content
    assert refused.json()["error_type"] == "integrity"


def test_an_approved_status_without_a_release_is_refused(signed_setup, policy_payload):
    from policies.models import PolicyRule
    from policies.registration import register_package

    client, _policy = signed_setup
    forged = PolicyRule(**policy_payload(version="6.6"))
    forged.full_clean()
    register_package(forged)  # fetch the package and pin its digest, as registration does
    forged.save()
    PolicyRule.objects.filter(pk=forged.pk).update(status="approved")
    response = client.post("/executor/signed/execute_policy",
                           {"policy_rule_uri": "ip_allowlist:6.6-beta", "input_data": {"ip": "127.0.0.1"}}, format="json")
    assert response.status_code == 500, response.content
    assert response.json()["error_type"] == "integrity"
