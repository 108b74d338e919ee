"""Fixtures of the executor tests: a real executor service in a subprocess, a fake portal serving policies."""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import requests
from policygrid import lifetime

from tests.executors.scripted import scripted, setup  # noqa: F401  (fixtures of the portal-route tests)

SECRET_CANARIES = {
    "POLICYGRID_TOKEN": "portal-token-canary-" + secrets.token_hex(4),
    "DATABASE_URL": "postgres://admin:db-password-canary@127.0.0.1:5432/prod",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-canary-" + secrets.token_hex(4),
    "SOME_UNUSUAL_NAME": "unusual-canary-" + secrets.token_hex(4),
}


def as_caller(caller: str) -> dict:
    """A grant naming its caller (this service doesn't verify signatures: the portal's signed grant in production)."""
    return {"grant": {"statement": {"caller": caller}, "key_id": "k", "signature": "s"}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def policy_zip(source: str, extra: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("code/function.py", textwrap.dedent(source))
        for name, text in (extra or {}).items():
            archive.writestr(f"code/{name}", text)
    return buffer.getvalue()


class FakePortal:
    """Serves ``GET /policy/<uri>`` envelopes and packages from the session's loopback file server."""

    def __init__(self, file_server):
        self.file_server = file_server
        self.base = file_server.base

    def publish(self, name: str, source: str | None = None, *, data: bytes | None = None, version="1.0",
                tag="test", updated_at="2025-01-01T00:00:00+00:00", **record) -> str:
        data = data if data is not None else policy_zip(source or "")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        url = self.file_server.serve(f"packages/{digest[7:]}.zip", data)
        uri = f"{name}:{version}-{tag}"
        body = {"name": name, "version": version, "release_tag": tag, "policy_rule_uri": uri, "code": url,
                "code_digest": digest, "updated_at": updated_at, "status": "approved", **record}
        self.file_server.serve(f"policy/{uri}", json.dumps({"success": True, "data": body}).encode())
        return uri


@pytest.fixture(scope="session")
def fake_portal(file_server):
    return FakePortal(file_server)


class ServiceProcess:
    def __init__(self, process, port, token, tmp_dir, log_path):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.token = token
        self.tmp_dir = tmp_dir
        self.log_path = log_path
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def execute(self, uri, input_data=None, timeout=60, **extra):
        body = {"policy_rule_uri": uri, "input_data": {} if input_data is None else input_data, **extra}
        response = self.session.post(f"{self.url}/execute_policy", json=body, timeout=timeout)
        return response.status_code, response.json()

    def health(self):
        return self.session.get(f"{self.url}/health", timeout=10).json()

    def settled_health(self, timeout=15):
        """The health once the pool is full again (replacements start in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            pool = health["pool"]
            if pool["live"] == pool["workers"] and pool["idle"] == pool["workers"] and not pool["starting"]:
                return health
            if time.monotonic() > deadline:
                raise AssertionError(f"the pool did not settle: {health}")
            time.sleep(0.05)

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")


def start_service(tmp_path: Path, portal_url: str, *, port: int | None = None, portal_token: str = "",
                  workers: int = 4, extra_env: dict[str, str] | None = None) -> ServiceProcess:
    port = port or free_port()
    token = "executor-secret-" + secrets.token_hex(8)
    tmp_dir = tmp_path / "executor-tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("POLICYGRID_", "DJANGO_"))},
        **SECRET_CANARIES,
        "POLICYGRID_EXECUTOR_TOKEN": token,
        "POLICYGRID_URL": portal_url,
        "POLICYGRID_TOKEN": portal_token or SECRET_CANARIES["POLICYGRID_TOKEN"],
        "POLICYGRID_CACHE_DIR": str(tmp_path / "executor-cache"),
        "POLICYGRID_ALLOW_PRIVATE_NETWORKS": "true",
        "POLICYGRID_EXECUTOR_TIMEOUT": "5",
        "POLICYGRID_EXECUTOR_CPU_SECONDS": "1",
        "POLICYGRID_EXECUTOR_MEMORY_MB": "512",
        "POLICYGRID_EXECUTOR_MAX_PROCESSES": "8",
        "POLICYGRID_EXECUTOR_MAX_RESULT_BYTES": str(1024 * 1024),
        # Most tests run unsigned drafts; test_signed_releases turns verification back on.
        "POLICYGRID_VERIFY_SIGNATURES": "false",
        **(extra_env or {}),
    }
    log_path = tmp_path / f"executor-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "policygrid.executor", "serve", "--port", str(port), "--workers", str(workers),
         "--tmp-dir", str(tmp_dir)],
        env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115 - closed with the process
        # A test run or bench that is killed takes its services with it (they stop their workers on SIGTERM).
        preexec_fn=functools.partial(lifetime.die_with_parent, os.getpid(), signal.SIGTERM),
    )
    service = ServiceProcess(process, port, token, tmp_dir, log_path)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the executor service exited with {process.returncode}:\n{service.log()}")
        try:
            if requests.get(f"{service.url}/health", timeout=1).status_code == 200:
                return service
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the executor service did not start:\n{service.log()}")
        time.sleep(0.1)


def stop_service(service: ServiceProcess) -> None:
    service.process.terminate()
    try:
        service.process.wait(10)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


@pytest.fixture(scope="module")
def executor_service(tmp_path_factory, fake_portal):
    service = start_service(tmp_path_factory.mktemp("executor"), fake_portal.base)
    yield service
    stop_service(service)


def worker_processes(tmp_dir: Path) -> list[int]:
    """Processes running a worker's code of the service whose temporary folders are in ``tmp_dir``.

    Forked children are included (they inherit the command line and the working folder), orphans too.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if b"policygrid.workers.process" in cmdline and cwd.startswith(str(tmp_dir)):
                found.append(int(entry.name))
    return found


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found

