"""LocalPolicyEvaluator against a loopback fake portal: local, remote and isolated modes, and the old import name."""

from __future__ import annotations

import json

import pytest
from policygrid.client import PortalClient
from policygrid.errors import (
    IntegrityError,
    NotExecutable,
    NotFound,
    PolicyError,
    ResourceLimit,
    Timeout,
    Unavailable,
)
from policygrid.evaluator import LocalPolicyEvaluator
from policygrid.package import digest_of
from policygrid.workers import IsolationLimits
from policygrid.workers.control import worker_environment
from sdk_helpers import build_archive

URI = "ip_allowlist:1.0-beta"


@pytest.fixture
def portal_env(fake_portal, monkeypatch, tmp_path):
    monkeypatch.setenv("POLICYGRID_URL", fake_portal.base_url)
    monkeypatch.setenv("POLICYGRID_TOKEN", "tok-123")
    monkeypatch.setenv("POLICYGRID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("POLICYGRID_ALLOW_PRIVATE_NETWORKS", raising=False)
    return fake_portal


def test_the_descriptions_example_runs_unchanged(portal_env):
    from aios_policy_sandbox import LocalPolicyEvaluator as CompatEvaluator

    settings = {}  # override the settings if needed
    parameters = {}  # override the parameters if needed
    policy_rule_uri = "ip_allowlist:1.0-beta"
    executor = CompatEvaluator(policy_rule_uri=policy_rule_uri, parameters=parameters, settings=settings, mode="local")
    output = executor.execute_policy_rule({"ip": "192.168.0.109"})
    assert output == {"allowed": False, "input_data": {"ip": "192.168.0.109"}, "reason": "denied"}

    output = executor.execute_mgmt_command("update_local_allowlist", {"ips": ["192.168.0.100", "192.168.0.102"]})
    assert output == {"status": "success", "updated_allowlist": ["192.168.0.100", "192.168.0.102"]}
    assert executor.execute_policy_rule({"ip": "192.168.0.102"})["allowed"] is True


def test_the_portal_is_read_with_the_token_and_the_package_fetched_once(portal_env):
    LocalPolicyEvaluator(URI)
    LocalPolicyEvaluator(URI)
    paths = [r["path"] for r in portal_env.requests]
    # /keys: whether the portal publishes signing keys (this one doesn't), to verify releases by default.
    assert paths == ["/policy/ip_allowlist:1.0-beta", "/keys", "/asset-object/1", "/policy/ip_allowlist:1.0-beta",
                     "/keys"]
    assert all(r["headers"].get("Authorization") == "Token tok-123" for r in portal_env.requests)


def test_caller_parameters_override_the_stored_ones(portal_env):
    evaluator = LocalPolicyEvaluator(URI, parameters={"local_allowlist": ["10.0.0.1"]})
    assert evaluator.execute_policy_rule({"ip": "10.0.0.1"})["allowed"] is True
    assert evaluator.execute_policy_rule({"ip": "192.168.0.1"})["allowed"] is False  # stored list replaced


def test_the_portal_url_of_the_earlier_sdk_is_accepted(fake_portal, monkeypatch, tmp_path):
    monkeypatch.delenv("POLICYGRID_URL", raising=False)
    monkeypatch.setenv("POLICY_SYSTEM_URL", fake_portal.base_url)
    evaluator = LocalPolicyEvaluator(URI, cache_dir=tmp_path / "cache")
    assert evaluator.execute_policy_rule({"ip": "127.0.0.1"})["allowed"] is True


def test_unknown_policy_is_not_found(portal_env):
    with pytest.raises(NotFound):
        LocalPolicyEvaluator("nope:1-x")


def test_portal_down_is_unavailable(closed_port, monkeypatch, tmp_path):
    monkeypatch.setenv("POLICYGRID_URL", f"http://127.0.0.1:{closed_port}")
    with pytest.raises(Unavailable, match="cannot reach the portal"):
        LocalPolicyEvaluator(URI, cache_dir=tmp_path)


def test_a_tampered_package_is_refused(portal_env, tmp_path):
    portal_env.serve("/asset-object/1", build_archive({"code/function.py": "class AIOSv1PolicyRule:\n    def eval(s, p, i, c): return {}\n"}))
    with pytest.raises(IntegrityError, match="digest mismatch"):
        LocalPolicyEvaluator(URI)


def test_portal_errors_map_to_their_classes(http_server):
    http_server.serve("/policy/x:1-a", {"success": False, "message": "no", "error_type": "not_executable"}, status=409)
    with pytest.raises(NotExecutable, match="no"):
        PortalClient(http_server.base_url).get_policy("x:1-a")


# --- remote mode (Type 2) ---------------------------------------------------------------------------------


def test_remote_mode_posts_to_the_executor_route(http_server):
    http_server.serve("/executor/executor-123/execute_policy", {"success": True, "data": {"allowed": True}})
    evaluator = LocalPolicyEvaluator(
        URI, parameters={"local_allowlist": ["1.1.1.1"]}, mode="remote", executor_id="executor-123", portal_url=http_server.base_url
    )
    assert evaluator.execute_policy_rule({"ip": "1.1.1.1"}) == {"allowed": True}
    sent = json.loads(http_server.requests[-1]["body"])
    assert sent == {"policy_rule_uri": URI, "input_data": {"ip": "1.1.1.1"}, "parameters": {"local_allowlist": ["1.1.1.1"]}}


def test_remote_failures_raise_their_error_class(http_server):
    http_server.serve(
        "/executor/e1/execute_policy",
        {"success": False, "message": "ValueError: boom", "error_type": "policy_error"},
        status=500,
    )
    evaluator = LocalPolicyEvaluator(URI, mode="remote", executor_id="e1", portal_url=http_server.base_url)
    with pytest.raises(PolicyError, match="ValueError: boom"):
        evaluator.execute_policy_rule({"ip": "1.1.1.1"})


def test_management_commands_are_refused_in_remote_mode(http_server):
    evaluator = LocalPolicyEvaluator(URI, mode="remote", executor_id="e1", portal_url=http_server.base_url)
    with pytest.raises(NotExecutable, match="stateless"):
        evaluator.execute_mgmt_command("get_state", {})


# --- isolation --------------------------------------------------------------------------------------------

MISBEHAVING = """
import os, time

class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters):
        self.calls = 0

    def eval(self, parameters, input_data, context):
        self.calls += 1
        action = input_data.get("do")
        if action == "sleep":
            time.sleep(30)
        if action == "exit":
            os._exit(3)
        if action == "eat":
            blob = bytearray(2 * 1024 * 1024 * 1024)
        if action == "env":
            return {"env": sorted(os.environ)}
        if action == "print":
            print("noise on stdout")
        if action == "write":
            with open(input_data["path"], "w") as handle:
                handle.write("x")
        return {"calls": self.calls, "pid": os.getpid()}

    def management(self, action, data):
        self.calls += data["by"]
        return {"calls": self.calls}
"""


@pytest.fixture
def misbehaving(http_server, tmp_path):
    data = build_archive({"code/function.py": MISBEHAVING})
    record = {"policy_rule_uri": "bad:1-x", "code": http_server.serve("/bad.zip", data), "code_digest": digest_of(data),
              "management_commands_schema": [{"name": "bump", "schema": {"by": {"type": "integer"}}}]}
    http_server.serve("/policy/bad:1-x", {"success": True, "data": record})

    def make(**limits):
        return LocalPolicyEvaluator(
            "bad:1-x",
            portal_url=http_server.base_url,
            cache_dir=tmp_path / "cache",
            isolate=True,
            isolation_limits=IsolationLimits(**{"timeout_seconds": 5, **limits}),
        )

    return make


@pytest.mark.slow
def test_isolated_policy_keeps_state_in_its_own_process(misbehaving):
    import os

    with misbehaving() as evaluator:
        first = evaluator.execute_policy_rule({})
        second = evaluator.execute_policy_rule({"do": "print"})
        assert first["pid"] != os.getpid()
        assert (first["calls"], second["calls"]) == (1, 2)


@pytest.mark.slow
def test_isolated_call_past_its_timeout_is_killed_and_the_next_call_works(misbehaving):
    with misbehaving(timeout_seconds=1) as evaluator:
        with pytest.raises(Timeout, match="did not answer within 1s"):
            evaluator.execute_policy_rule({"do": "sleep"})
        assert evaluator.execute_policy_rule({})["calls"] == 1  # a fresh instance


@pytest.mark.slow
def test_isolated_process_that_dies_fails_only_that_call(misbehaving):
    with misbehaving() as evaluator:
        with pytest.raises(PolicyError, match="exit code 3"):
            evaluator.execute_policy_rule({"do": "exit"})
        assert evaluator.execute_policy_rule({})["calls"] == 1


@pytest.mark.slow
def test_isolated_management_reaches_the_kept_instance_and_writes_stay_in_the_sandbox(misbehaving, tmp_path):
    with misbehaving() as evaluator:
        assert evaluator.execute_policy_rule({})["calls"] == 1
        assert evaluator.execute_mgmt_command("bump", {"by": 100}) == {"calls": 101}
        assert evaluator.execute_policy_rule({})["calls"] == 102
        target = tmp_path / "outside.txt"
        with pytest.raises(PolicyError, match="PermissionError"):
            evaluator.execute_policy_rule({"do": "write", "path": str(target)})
        assert not target.exists()


@pytest.mark.slow
def test_isolated_memory_limit_is_a_resource_limit(misbehaving):
    with misbehaving(memory_mb=512) as evaluator:
        with pytest.raises(ResourceLimit):
            evaluator.execute_policy_rule({"do": "eat"})


@pytest.mark.slow
def test_isolated_environment_has_no_secrets(misbehaving, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("POLICYGRID_TOKEN", "x")
    with misbehaving() as evaluator:
        names = evaluator.execute_policy_rule({"do": "env"})["env"]
    assert not {"DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "POLICYGRID_TOKEN"} & set(names)


def test_worker_environment_is_an_allow_list(monkeypatch, tmp_path):
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("MY_API_KEY", "x")
    monkeypatch.setenv("SOME_UNUSUAL_NAME", "x")
    env = worker_environment(tmp_path)
    assert env.get("LANG") == "C.UTF-8" and not {"MY_API_KEY", "SOME_UNUSUAL_NAME"} & set(env)
    assert env["TMPDIR"] == env["HOME"] == str(tmp_path / "call")


def test_a_path_only_code_location_is_an_asset_on_the_portal(portal_env):
    portal_env.record["code"] = "/asset-object/1"
    evaluator = LocalPolicyEvaluator(URI)
    assert evaluator.execute_policy_rule({"ip": "127.0.0.1"})["allowed"] is True
    assert portal_env.requests[-1]["path"] == "/asset-object/1"


def test_an_asset_named_by_the_portals_public_address_is_fetched_through_the_clients_address(portal_env, tmp_path):
    """The embedded run's executor reads the portal at an internal address; asset URLs carry the public one."""
    from policygrid.cache import PackageCache
    from policygrid.package import load_record_package

    public = "http://127.0.0.2:9"  # loopback, and nothing listens there: a wrong mapping fails, reaching no one
    client = PortalClient(portal_env.base_url, "tok-123", public_url=public + "/")
    record = dict(portal_env.record, code=f"{public}/asset-object/1")
    package = load_record_package(record, cache=PackageCache(tmp_path / "cache"), client=client, verify=False)
    assert (package.path / "code" / "function.py").exists()
    assert portal_env.requests[-1]["path"] == "/asset-object/1"
    assert portal_env.requests[-1]["headers"].get("Authorization") == "Token tok-123"
    # Only the portal's own addresses are mapped; the same address as base_url means no mapping at all.
    assert client.portal_location("http://127.0.0.3:9/asset-object/1") == "http://127.0.0.3:9/asset-object/1"
    assert client.portal_location("/asset-object/2") == portal_env.base_url + "/asset-object/2"
    assert PortalClient(portal_env.base_url, "t", public_url=portal_env.base_url).public_url is None
