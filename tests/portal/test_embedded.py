"""The README's first command, ``manage.py run_embedded``, started for real: every process, demo data, and
concurrent first calls of a package through the portal (which the executor answers by calling back into it)."""
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.executors.conftest import free_port
from tests.portal.embedded import ROOT, EmbeddedRun, clean_env

WEB_THREADS = 2


ORDINARY_UID = 4242


def start_embedded(state: Path, as_uid: int | None = None, extra_env: dict[str, str] | None = None):
    """``manage.py run_embedded`` on free ports with its state in ``state``; as root, or as ``as_uid``;
    ``extra_env`` for a production-like start (DATABASE_URL, CELERY_BROKER_URL, POLICYGRID_REDIS_URL)."""
    port, executor_port = free_port(), free_port()
    # One web worker with two threads: the deadlock this guards against needs only as many concurrent first
    # calls as web threads.
    env = clean_env(POLICYGRID_STATE_DIR=str(state), POLICYGRID_PORT=str(port),
                    POLICYGRID_EXECUTOR_PORT=str(executor_port), POLICYGRID_WEB_WORKERS="1",
                    POLICYGRID_WEB_THREADS=str(WEB_THREADS), POLICYGRID_EXECUTOR_WORKERS="2", **(extra_env or {}))
    prefix = ()
    if as_uid is not None:
        os.chown(state, as_uid, as_uid)
        env.update(HOME=str(state), USER="ordinary", LOGNAME="ordinary")
        prefix = (sys.executable, str(Path(__file__).with_name("as_ordinary_user.py")), str(as_uid), str(state),
                  str(ROOT), "--")
    run = EmbeddedRun(env, port, prefix)
    try:
        yield {"base": run.base, "token": run.token, "printed": run.printed, "state": state,
               "executor_port": executor_port, "extra_env": dict(extra_env or {})}
    finally:
        run.stop()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    yield from start_embedded(tmp_path_factory.mktemp("embedded-state"))


@pytest.fixture(scope="module")
def embedded_as_ordinary_user(tmp_path_factory):
    """The same system started by an ordinary user (uid 4242), as an operator without root would run it."""
    if os.geteuid() != 0:
        pytest.skip("this run is not root: the root run above already is the ordinary user's")
    yield from start_embedded(tmp_path_factory.mktemp("embedded-ordinary-state"), as_uid=ORDINARY_UID)


def test_it_prints_where_everything_is_and_how_to_log_in(embedded):
    printed = embedded["printed"]
    for expected in ("API:", "portal:", "admin:", "API docs:", "admin API token:", "executor:", "login"):
        assert expected in printed, expected
    assert requests.get(f"{embedded['base']}/policy", timeout=5,
                        headers={"Authorization": f"Token {embedded['token']}"}).json()["success"] is True


def test_concurrent_first_calls_of_a_package_all_succeed(embedded):
    """The executor used to read a record and package it had not seen from the portal while the portal's
    request waited on it: with as many concurrent first calls as web threads, every call failed with 502. Now
    the portal sends the record with the call, and the executor never reads the portal on the request path."""
    url = f"{embedded['base']}/executor/local/execute_policy"
    headers = {"Authorization": f"Token {embedded['token']}"}
    body = {"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {"ip": "127.0.0.1"}}
    calls = 6 * WEB_THREADS

    def call(_):
        started = time.monotonic()
        response = requests.post(url, json=body, headers=headers, timeout=30)
        return response.status_code, response.json(), time.monotonic() - started

    with ThreadPoolExecutor(calls) as pool:
        results = list(pool.map(call, range(calls)))
    for status, envelope, _ in results:
        assert status == 200 and envelope["success"] is True, envelope
        assert envelope["data"]["allowed"] is True
    assert max(seconds for _, _, seconds in results) < 8, results
    # No read of the record or the package from the portal: only the signing keys, in the background.
    public = (embedded["state"] / "logs" / "access.log").read_text()
    assert "GET /policy/ip_allowlist" not in public and "GET /asset-object/" not in public
    assert "GET /keys" in public
    assert not (embedded["state"] / "logs" / "access-internal.log").exists()


def test_the_access_log_names_each_request_with_its_time_and_request_id(embedded):
    """gunicorn's own access log: the combined format, plus the duration and the id audit entries carry; a quote
    the client chose is escaped, so it can't end the field."""
    response = requests.get(f"{embedded['base']}/health?probe=1", timeout=5,
                            headers={"User-Agent": 'evil" 200 \\forged', "X-Request-ID": "trace-42"})
    assert response.headers["X-Request-ID"] == "trace-42"
    log = embedded["state"] / "logs" / "access.log"
    deadline = time.monotonic() + 5
    while "trace-42" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(line for line in log.read_text().splitlines() if line.endswith(" trace-42"))
    assert line.startswith("127.0.0.1 - - [")
    assert '"GET /health?probe=1 HTTP/1.1" 200 ' in line
    assert '"evil\\" 200 ' in line  # the quote escaped
    assert re.search(r" \d+ms trace-42$", line), line


@pytest.mark.django_db
def test_a_database_of_the_earlier_layout_is_refused_with_one_line():
    from django.core.management.base import CommandError
    from django.db import connection

    from portal.management.commands.run_embedded import refuse_earlier_layout

    refuse_earlier_layout()  # this layout's database passes
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('portal', '0001_initial', %s)",
                       ["2026-01-01 00:00:00"])
    with pytest.raises(CommandError, match="earlier PolicyGrid layout: move the state folder aside"):
        refuse_earlier_layout()


HOSTILE_DRAFT = '''
import glob, os, socket

def attempt(fn):
    try:
        return "ok: " + str(fn())
    except BaseException as exc:
        return f"refused: {type(exc).__name__}"

def read(path):
    with open(path, "rb") as handle:
        return len(handle.read())

def connect(port):
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    return port

class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters): pass
    def eval(self, parameters, input_data, context):
        out = {"read": {path: attempt(lambda: read(path)) for path in input_data["paths"]}}
        out["glob_keys"] = attempt(lambda: os.listdir(input_data["keys"]))
        out["connect"] = {str(port): attempt(lambda: connect(port)) for port in input_data["ports"]}
        out["uid"] = os.getuid()
        return out
'''


@pytest.mark.slow
@pytest.mark.parametrize("started_by", ["root", "ordinary user"])
def test_a_hostile_draft_run_dry_can_read_no_secret_and_reach_no_port(started_by, request, tmp_path):
    """The finding this guards: a draft registered by an author and run with dry_run read the state folder's
    credentials, the signing keys, the executor's token and the database, then called the portal on loopback.
    The system as root starts it (policy code then runs as a user of its own) and as an ordinary user does."""
    embedded = request.getfixturevalue("embedded" if started_by == "root" else "embedded_as_ordinary_user")
    state = embedded["state"]
    package = tmp_path / "hostile"
    (package / "code").mkdir(parents=True)
    (package / "code" / "function.py").write_text(HOSTILE_DRAFT)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "POLICYGRID_URL": embedded["base"],
           "POLICYGRID_TOKEN": embedded["token"], "POLICYGRID_CACHE_DIR": str(tmp_path / "cache"),
           "POLICYGRID_ALLOW_PRIVATE_NETWORKS": "true"}
    pushed = subprocess.run([sys.executable, "-m", "policygrid.cli", "policy", "push", str(package), "--name",
                             "hostile-draft", "--version", "1.0", "--tag", "draft"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert pushed.returncode == 0, pushed.stderr + pushed.stdout
    secrets_ = [state / "credentials.txt", *sorted((state / "keys").glob("*")), state / "executor" / "executor-token",
                state / "policygrid.sqlite3"]
    secrets_ = [str(p) for p in secrets_ if p.exists()]
    assert len(secrets_) >= 3, sorted(p.name for p in state.iterdir())
    portal_port = int(embedded["base"].rsplit(":", 1)[1])
    # The portal, the executor service, PostgreSQL and Redis (refused inside the policy's process: no traffic).
    control_ports = [portal_port, embedded["executor_port"], 5432, 6379]
    body = {"policy_rule_uri": "hostile-draft:1.0-draft", "dry_run": True,
            "input_data": {"paths": [*secrets_, "/etc/shadow"], "keys": str(state / "keys"), "ports": control_ports}}
    response = requests.post(f"{embedded['base']}/executor/local/execute_policy", json=body, timeout=60,
                             headers={"Authorization": f"Token {embedded['token']}"})
    envelope = response.json()
    assert response.status_code == 200 and envelope["success"] is True, envelope
    data = envelope["data"]
    for path, outcome in data["read"].items():
        # Refused by Landlock, or hidden (the state folder is covered in the worker's mount namespace).
        assert Path(path).exists() and outcome.startswith(("refused: PermissionError", "refused: FileNotFoundError")), (
            path, outcome)
    assert data["glob_keys"].startswith("refused"), data["glob_keys"]
    for port in control_ports:
        assert data["connect"][str(port)].startswith("refused: PermissionError"), data["connect"]
    # As root, policy code runs as a user of its worker's own; as an ordinary user, as that user.
    expected_uid = ORDINARY_UID if started_by == "ordinary user" else None
    assert data["uid"] == expected_uid if expected_uid else data["uid"] >= 1_800_000_000, data["uid"]
