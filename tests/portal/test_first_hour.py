"""A newcomer's first hour (issue 14), automated: a fresh state folder, ./run.sh's command on a port other than
8000, the README's commands in order (curl, manage.py beside the running system, the SDK snippet, the
``policygrid`` command, a new version of the sample) and a restart that keeps the logins and the token."""
import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import requests

from tests.executors.conftest import free_port
from tests.portal.embedded import ROOT, EmbeddedRun, clean_env

pytestmark = pytest.mark.slow

README_SNIPPET = '''
from aios_policy_sandbox import LocalPolicyEvaluator      # or: from policygrid.evaluator import LocalPolicyEvaluator

executor = LocalPolicyEvaluator(policy_rule_uri="ip_allowlist:1.0-beta", parameters={}, settings={}, mode="local")
print(executor.execute_policy_rule({"ip": "192.168.0.109"}))
print(executor.execute_mgmt_command("update_local_allowlist", {"ips": ["192.168.0.100"]}))
'''

MYPOLICY = '''
class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters):
        self.rule_id, self.settings, self.parameters = rule_id, settings, parameters

    def eval(self, parameters, input_data, context):
        return {"allowed": input_data.get("ip") in parameters.get("local_allowlist", [])}
'''


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    folder = tmp_path_factory.mktemp("first-hour")
    state = folder / "state"  # not made: the run makes it
    port, executor_port = free_port(), free_port()
    assert port != 8000
    env = clean_env(POLICYGRID_STATE_DIR=str(state), POLICYGRID_PORT=str(port),
                    POLICYGRID_EXECUTOR_PORT=str(executor_port), POLICYGRID_WEB_WORKERS="1",
                    POLICYGRID_WEB_THREADS="4", POLICYGRID_EXECUTOR_WORKERS="1")
    walk = SimpleNamespace(env=env, state=state, folder=folder, port=port, run=EmbeddedRun(env, port))
    try:
        yield walk
    finally:
        walk.run.stop()


def headers(walk, token=None):
    return {"Authorization": f"Token {token or walk.run.token}"}


def user_env(walk, **extra):
    """A user's shell: no state folder of the portal's, the exports the README names, nothing else loosened."""
    return clean_env(POLICYGRID_URL=walk.run.base, POLICYGRID_TOKEN=walk.run.token, HOME=str(walk.folder),
                     POLICYGRID_CACHE_DIR=str(walk.folder / "sdk-cache"), **extra)


def run(command, env, **kwargs):
    done = subprocess.run(command, env=env, cwd=kwargs.pop("cwd", ROOT), capture_output=True, text=True,
                          timeout=180, **kwargs)
    assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_readme_curl_examples_answer(walk):
    base = walk.run.base
    got = requests.get(f"{base}/policy/ip_allowlist:1.0-beta", headers=headers(walk), timeout=10).json()
    assert got["success"] is True and got["data"]["code"].startswith(base + "/asset-object/"), got
    found = requests.post(f"{base}/policy/query", headers=headers(walk), timeout=10,
                          json={"release_tag": "beta", "tags": {"$regex": "security"}}).json()
    assert found["success"] is True and [p["name"] for p in found["data"]] == ["ip_allowlist"], found
    executed = requests.post(f"{base}/executor/local/execute_policy", headers=headers(walk), timeout=30,
                             json={"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {"ip": "127.0.0.1"}})
    assert executed.json()["data"]["allowed"] is True, executed.text


def test_manage_py_beside_the_running_system_as_the_banner_says(walk):
    """Issue 14 item 3: the banner names how to run commands against this run's database."""
    hint = re.search(r"commands:\s+(.*) <command>", walk.run.printed).group(1)
    assert f"POLICYGRID_STATE_DIR={walk.state}" in hint, hint
    env = {**clean_env(), "POLICYGRID_STATE_DIR": str(walk.state)}
    key = run([sys.executable, "manage.py", "create_api_token", "demo-author"], env).strip().splitlines()[-1]
    mine = requests.get(f"{walk.run.base}/tokens", headers=headers(walk, key), timeout=10)
    assert mine.status_code == 200, mine.text
    assert "audit chain intact" in run([sys.executable, "manage.py", "verify_audit"], env)


def test_the_token_routes_of_the_readme(walk):
    base = walk.run.base
    created = requests.post(f"{base}/tokens", headers=headers(walk), json={"name": "ci"}, timeout=10).json()
    assert created["success"] is True, created
    listed = requests.get(f"{base}/tokens", headers=headers(walk), timeout=10).json()["data"]
    assert created["data"]["id"] in [token["id"] for token in listed]
    assert requests.delete(f"{base}/tokens/{created['data']['id']}", headers=headers(walk), timeout=10).ok


def test_the_sdk_snippet_runs_the_sample_on_a_port_other_than_8000(walk):
    """Issue 14 item 1: the sample's package was stored as http://127.0.0.1:8000/asset-object/…"""
    printed = run([sys.executable, "-c", README_SNIPPET], user_env(walk))
    assert "'allowed': False" in printed.splitlines()[0], printed


def test_policygrid_policy_run_runs_the_sample(walk):
    printed = run([sys.executable, "-m", "policygrid.cli", "policy", "run", "ip_allowlist:1.0-beta", "--input",
                   '{"ip": "10.0.0.1"}'], user_env(walk))
    assert '"allowed"' in printed, printed


def test_writing_a_policy_validate_push_show_pull_run(walk):
    package = walk.folder / "mypolicy"
    (package / "code").mkdir(parents=True)
    (package / "code" / "function.py").write_text(MYPOLICY)
    env, cli = user_env(walk), [sys.executable, "-m", "policygrid.cli", "policy"]
    run([*cli, "validate", "mypolicy", "--input", '{"ip": "10.0.0.1"}'], env, cwd=walk.folder)
    run([*cli, "push", "mypolicy", "--name", "mypolicy", "--version", "1.0", "--tag", "beta"], env, cwd=walk.folder)
    assert "mypolicy" in run([*cli, "show", "mypolicy:1.0-beta"], env)
    run([*cli, "pull", "mypolicy:1.0-beta", "-o", str(walk.folder / "pulled")], env)
    printed = run([*cli, "run", "mypolicy:1.0-beta", "--dry-run", "--input", '{"ip": "10.0.0.1"}', "--parameters",
                   '{"local_allowlist": ["10.0.0.1"]}'], env)
    assert json.loads(printed)["allowed"] is True, printed


def test_a_new_version_of_the_sample_is_made_and_submitted(walk):
    base, uri = walk.run.base, "ip_allowlist:1.0-beta"
    made = requests.post(f"{base}/policy/{uri}/new-version", headers=headers(walk), timeout=30,
                         json={"version": "1.1", "release_tag": "beta"})
    assert made.status_code == 201, made.text
    submitted = requests.post(f"{base}/policy/ip_allowlist:1.1-beta/submit", headers=headers(walk), timeout=30,
                              json={"comment": "ready"})
    assert submitted.status_code == 200, submitted.text


def login(base, username, password) -> bool:
    session = requests.Session()
    page = session.get(f"{base}/portal/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(f"{base}/portal/login/", timeout=10, allow_redirects=False,
                          data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
                          headers={"Referer": f"{base}/portal/login/"})
    return answer.status_code == 302


def test_a_restart_keeps_the_logins_and_the_token(walk):
    """Issue 14 item 2: the second start rewrote credentials.txt without the passwords and minted one more token."""
    credentials = (walk.state / "credentials.txt").read_text()
    first_token = walk.run.token
    walk.run.stop()
    walk.run = EmbeddedRun(walk.env, walk.port)
    assert (walk.state / "credentials.txt").read_text() == credentials
    assert walk.run.token == first_token
    demo_tokens = [t for t in requests.get(f"{walk.run.base}/tokens", headers=headers(walk), timeout=10).json()["data"]
                   if t["name"] == "demo" and not t.get("revoked_at")]
    assert len(demo_tokens) == 1, demo_tokens
    for username, password in re.findall(r"login:\s+(\S+) / (\S+)", credentials):
        assert login(walk.run.base, username, password), username
    printed = run([sys.executable, "-c", README_SNIPPET], user_env(walk))
    assert "'allowed': False" in printed.splitlines()[0], printed
