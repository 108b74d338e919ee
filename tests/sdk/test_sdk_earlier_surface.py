"""The earlier SDK's surface and one name per setting (issue 14 items 6, 7 and 11), against a loopback fake
portal: its environment variables as aliases of ours, ``custom_class``, remote mode straight to an executor
service, management commands in remote mode, and Type 1's lifecycle rule."""

from __future__ import annotations

import json

import pytest
from policygrid.cli import main as cli_main
from policygrid.errors import InputInvalid, NotExecutable
from policygrid.evaluator import LocalPolicyEvaluator
from policygrid.fetch import FetchOptions

URI = "ip_allowlist:1.0-beta"


@pytest.fixture
def portal_env(fake_portal, monkeypatch, tmp_path):
    monkeypatch.setenv("POLICYGRID_URL", fake_portal.base_url)
    monkeypatch.setenv("POLICYGRID_CACHE_DIR", str(tmp_path / "cache"))
    return fake_portal


# --- item 6: one name for the private-network setting -------------------------------------------------------

def test_the_sdk_reads_the_portals_name_for_private_networks(monkeypatch):
    monkeypatch.setenv("POLICYGRID_ALLOW_PRIVATE_NETWORKS", "true")
    assert FetchOptions().allow_private is True
    monkeypatch.setenv("POLICYGRID_ALLOW_PRIVATE_NETWORKS", "false")
    assert FetchOptions().allow_private is False
    monkeypatch.setenv("POLICYGRID_ALLOW_LOCAL_PATHS", "1")
    assert FetchOptions().allow_local_paths is True


def test_the_sdks_old_name_is_refused_naming_the_new_one(monkeypatch):
    monkeypatch.setenv("POLICYGRID_FETCH_ALLOW_PRIVATE", "true")
    with pytest.raises(InputInvalid, match="renamed POLICYGRID_ALLOW_PRIVATE_NETWORKS"):
        FetchOptions()


def test_a_flag_that_is_no_boolean_is_refused(monkeypatch):
    monkeypatch.setenv("POLICYGRID_ALLOW_PRIVATE_NETWORKS", "maybe")
    with pytest.raises(InputInvalid, match="POLICYGRID_ALLOW_PRIVATE_NETWORKS must be true or false"):
        FetchOptions()


# --- item 7: Type 1 runs what Types 2-5 would run -----------------------------------------------------------

@pytest.mark.parametrize("status", ["draft", "in_review"])
def test_an_unreleased_version_runs_only_as_a_dry_run(portal_env, status):
    portal_env.serve(f"/policy/{URI}", {"success": True, "data": {**portal_env.record, "status": status}})
    with pytest.raises(NotExecutable, match=f"is {status}: only approved or deprecated versions run.*dry_run=True"):
        LocalPolicyEvaluator(URI)
    assert LocalPolicyEvaluator(URI, dry_run=True).execute_policy_rule({"ip": "127.0.0.1"})["allowed"] is True


def test_a_retired_version_never_runs(portal_env):
    portal_env.serve(f"/policy/{URI}", {"success": True, "data": {**portal_env.record, "status": "retired"}})
    with pytest.raises(NotExecutable, match="retired"):
        LocalPolicyEvaluator(URI, dry_run=True)


def test_policygrid_policy_run_refuses_a_draft_unless_dry_run(portal_env, capsys):
    portal_env.serve(f"/policy/{URI}", {"success": True, "data": {**portal_env.record, "status": "draft"}})
    assert cli_main(["policy", "run", URI, "--input", '{"ip": "127.0.0.1"}']) == 1
    assert "--dry-run" in capsys.readouterr().err
    assert cli_main(["policy", "run", URI, "--dry-run", "--input", '{"ip": "127.0.0.1"}']) == 0
    assert json.loads(capsys.readouterr().out)["allowed"] is True


def test_an_approved_version_is_verified_when_the_portal_publishes_keys(portal_env):
    """Signatures are checked by default once the portal publishes keys: an unsigned approved record is refused."""
    from policygrid.errors import IntegrityError

    portal_env.serve(f"/policy/{URI}", {"success": True, "data": {**portal_env.record, "status": "approved"}})
    assert LocalPolicyEvaluator(URI).execute_policy_rule({"ip": "127.0.0.1"})["allowed"] is True  # no keys: no check
    portal_env.serve("/keys", {"success": True, "data": [
        {"key_id": "k1", "algorithm": "ed25519", "public_key": "MCowBQYDK2VwAyEA" + "A" * 44, "revoked": False}]})
    with pytest.raises(IntegrityError):
        LocalPolicyEvaluator(URI)
    assert LocalPolicyEvaluator(URI, verify_signatures=False).execute_policy_rule({"ip": "127.0.0.1"})["allowed"]


# --- item 11: the earlier SDK's surface ---------------------------------------------------------------------

class CustomRule:
    """What an earlier service passes as custom_class: its own class, run with the record's values."""

    def __init__(self, rule_id, settings, parameters):
        self.rule_id, self.parameters = rule_id, parameters

    def eval(self, parameters, input_data, context):
        return {"allowed": True, "input_data": input_data, "reason": f"custom {self.rule_id}"}


def test_custom_class_runs_instead_of_the_package_with_the_records_schemas(portal_env):
    evaluator = LocalPolicyEvaluator(URI, custom_class=CustomRule)
    assert evaluator.execute_policy_rule({"ip": "10.0.0.1"})["reason"] == f"custom {URI}"
    assert "/asset-object/1" not in [r["path"] for r in portal_env.requests]  # the package isn't loaded
    with pytest.raises(InputInvalid):
        evaluator.execute_policy_rule({"ip": 5})  # the record's input schema still applies
    with pytest.raises(InputInvalid, match="isolate"):
        LocalPolicyEvaluator(URI, custom_class=CustomRule, isolate=True)


def test_the_earlier_sdks_environment_names_are_aliases_of_ours(http_server, monkeypatch, tmp_path):
    monkeypatch.delenv("POLICYGRID_URL", raising=False)
    monkeypatch.setenv("POLICY_DB_URL", http_server.base_url)
    monkeypatch.setenv("POLICY_EXECUTION_MODE", "remote")
    monkeypatch.setenv("POLICY_SYSTEM_EXECUTOR_ID", "executor-123")
    http_server.serve("/executor/executor-123/execute_policy", {"success": True, "data": {"allowed": True}})
    evaluator = LocalPolicyEvaluator(URI)
    assert evaluator.mode == "remote" and evaluator.executor_id == "executor-123"
    assert evaluator.execute_policy_rule({"ip": "1.1.1.1"}) == {"allowed": True}
    assert http_server.requests[-1]["path"] == "/executor/executor-123/execute_policy"


def test_ours_win_over_the_earlier_names(monkeypatch):
    from policygrid.environment import env

    monkeypatch.setenv("POLICY_EXECUTION_MODE", "remote")
    monkeypatch.setenv("POLICYGRID_EXECUTION_MODE", "local")
    assert env("POLICYGRID_EXECUTION_MODE") == "local"


def test_remote_mode_with_only_an_executor_host_calls_the_service(http_server, monkeypatch):
    monkeypatch.setenv("POLICY_EXECUTOR_HOST_URL", http_server.base_url)
    monkeypatch.setenv("POLICYGRID_EXECUTOR_TOKEN", "secret-1")
    monkeypatch.delenv("POLICYGRID_EXECUTOR_ID", raising=False)
    http_server.serve("/execute_policy", {"success": True, "data": {"allowed": False}})
    evaluator = LocalPolicyEvaluator(URI, mode="remote")
    assert evaluator.execute_policy_rule({"ip": "1.1.1.1"}) == {"allowed": False}
    assert http_server.requests[-1]["headers"]["Authorization"] == "Bearer secret-1"


def test_remote_mode_without_a_target_says_what_to_set(monkeypatch):
    for name in ("POLICYGRID_EXECUTOR_ID", "POLICY_SYSTEM_EXECUTOR_ID", "POLICYGRID_EXECUTOR_URL",
                 "POLICY_EXECUTOR_HOST_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InputInvalid, match="POLICYGRID_EXECUTOR_ID"):
        LocalPolicyEvaluator(URI, mode="remote")


def test_management_in_remote_mode_is_a_clear_error_until_functions_deploy(http_server):
    evaluator = LocalPolicyEvaluator(URI, mode="remote", executor_id="e1", portal_url=http_server.base_url)
    with pytest.raises(NotExecutable, match="mode='local'.*") as refused:
        evaluator.execute_mgmt_command("update_local_allowlist", {"ips": []})
    assert "function" in refused.value.message
