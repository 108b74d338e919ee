"""The SDK and its CLI against a live portal: the description's example as written, and push/show/pull/run."""
import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE_LOCAL = textwrap.dedent('''
    from aios_policy_sandbox import LocalPolicyEvaluator

    settings={} # override the settings if needed
    parameters={} # override the parameters if needed

    policy_rule_uri="ip_allowlist:1.0-beta"

    executor = LocalPolicyEvaluator(
        policy_rule_uri=policy_rule_uri,
        parameters=parameters,
        settings=settings,
        mode="local"
    )

    output = executor.execute_policy_rule({
       "ip": "192.168.0.109"
    })

    print(output)
    output = executor.execute_policy_rule({"ip": "127.0.0.1"})
    print(output)
    output = executor.execute_mgmt_command("update_local_allowlist", {
       "ips": ["192.168.0.100", "192.168.0.102"]
    })

    print(output)
''')


@pytest.fixture
def portal(live_server, settings, users, token_for, tmp_path):
    """A live portal whose own URL is its public URL (asset links point back at it)."""
    settings.PUBLIC_BASE_URL = live_server.url
    return {"url": live_server.url, "token": token_for(users["admin"]), "author_token": token_for(users["author"]),
            "env": {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "POLICYGRID_CACHE_DIR": str(tmp_path / "cache"),
                    "POLICYGRID_ALLOW_PRIVATE_NETWORKS": "true"}}


def run(code_or_args, portal, token, *, cli=False):
    env = {**portal["env"], "POLICYGRID_URL": portal["url"], "POLICYGRID_TOKEN": token}
    command = [sys.executable, "-m", "policygrid.cli", *code_or_args] if cli else [sys.executable, "-c", code_or_args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def release(uri, users):
    """Approve (and sign) a version through the real lifecycle: Type 1 runs only what the portal would run."""
    from policies.models import PolicyRule
    from policies.services import release_for_demo

    release_for_demo(PolicyRule.objects.get(policy_rule_uri=uri), users["admin"])


def test_the_descriptions_local_example_runs_as_written(portal, api, policy_payload, users):
    assert api.post("/policy", policy_payload(), format="json").status_code == 201
    release("ip_allowlist:1.0-beta", users)
    result = run(EXAMPLE_LOCAL, portal, portal["token"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    denied, allowed, managed = (eval(line) for line in lines)  # noqa: S307 - our own print() of dicts
    assert denied == {"allowed": False, "input_data": {"ip": "192.168.0.109"}, "reason": "denied"}
    assert allowed["allowed"] is True  # 127.0.0.1 is in the stored local_allowlist
    assert managed == {"status": "success", "updated_allowlist": ["192.168.0.100", "192.168.0.102"]}


def test_cli_push_registers_then_show_pull_and_run(portal, tmp_path):
    from policygrid.samples import sample_path

    pushed = run(["policy", "push", str(sample_path("ip_allowlist")), "--name", "pushed", "--version", "2.0",
                  "--tag", "rc"], portal, portal["author_token"], cli=True)
    assert pushed.returncode == 0, pushed.stderr + pushed.stdout
    shown = run(["policy", "show", "pushed:2.0-rc"], portal, portal["token"], cli=True)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["policy_rule_uri"] == "pushed:2.0-rc" and record["code_digest"].startswith("sha256:")
    pulled = run(["policy", "pull", "pushed:2.0-rc", "-o", str(tmp_path / "pulled")], portal, portal["token"], cli=True)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "pulled" / "code" / "function.py").is_file()
    ran = run(["policy", "run", "pushed:2.0-rc", "--dry-run", "--input", '{"ip": "192.168.0.1"}'], portal,
              portal["token"], cli=True)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["allowed"] is False
    ran = run(["policy", "run", "pushed:2.0-rc", "--dry-run", "--input", '{"ip": "192.168.0.1"}',
               "--parameters", '{"local_allowlist": ["192.168.0.1"]}'], portal, portal["token"], cli=True)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["allowed"] is True


def test_the_sdk_reports_an_unknown_policy_as_not_found(portal):
    result = run("from aios_policy_sandbox import LocalPolicyEvaluator\n"
                 "LocalPolicyEvaluator(policy_rule_uri='nope:1-x', mode='local')", portal, portal["token"])
    assert result.returncode != 0
    assert "NotFound" in result.stderr or "not_found" in result.stderr or "no policy" in result.stderr.lower()
