"""The SDK's packaging (issue 14 item 13): the core installs what a Type 1 run needs; the executor service, S3
and Redis are extras, and a feature whose extra is missing names it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from policygrid.extras import MissingExtra

SDK = Path(__file__).resolve().parents[2] / "sdk"
EXTRA_PACKAGES = ("uvicorn", "uvloop", "httptools", "boto3", "botocore", "redis")


def project():
    return tomllib.loads((SDK / "pyproject.toml").read_text())["project"]


def names(requirements):
    return {r.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip() for r in requirements}


def test_the_core_holds_none_of_the_extras_packages():
    core = names(project()["dependencies"])
    assert not core & {"uvicorn", "uvloop", "httptools", "aiohttp", "boto3", "redis"}, core
    extras = project()["optional-dependencies"]
    assert names(extras["executor"]) == {"uvicorn", "uvloop", "httptools", "aiohttp"}
    assert names(extras["s3"]) == {"boto3"} and names(extras["redis"]) == {"redis"}
    assert names(extras["kubernetes"]) == {"kubernetes"}
    assert not core & {"kubernetes"}


def test_the_data_plane_image_installs_the_kubernetes_extra():
    """An executor created in a cluster routes its functions' calls to their pods through the Kubernetes API."""
    assert "./sdk[executor,s3,redis,kubernetes]" in (SDK / "Dockerfile").read_text()


def test_run_and_test_scripts_install_the_extras_the_portal_uses():
    for script in ("run.sh", "test.sh"):
        assert "-e './sdk[executor,s3,redis]'" in (SDK.parent / script).read_text(), script


def test_a_type1_run_needs_no_extra(ip_allowlist_record, sample_zip, tmp_path):
    """In a process where none of the extras' packages can be imported."""
    data, digest = sample_zip
    (tmp_path / "p.zip").write_bytes(data)
    code = f"""
import sys
for name in {EXTRA_PACKAGES!r}:
    sys.modules[name] = None
import json
from aios_policy_sandbox import LocalPolicyEvaluator
import policygrid.cli
from policygrid.fetch import FetchOptions
record = json.loads(sys.argv[1])
evaluator = LocalPolicyEvaluator(record["policy_rule_uri"], record=record, cache_dir=sys.argv[2],
                                 fetch_options=FetchOptions(allow_local_paths=True))
print(evaluator.execute_policy_rule({{"ip": "127.0.0.1"}})["allowed"])
"""
    import json

    record = dict(ip_allowlist_record, code=str(tmp_path / "p.zip"), code_digest=digest)
    done = subprocess.run([sys.executable, "-c", code, json.dumps(record), str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_an_s3_package_without_the_s3_extra_names_it(monkeypatch):
    from policygrid.fetch import fetch_bytes

    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingExtra, match=r"pip install 'policygrid\[s3\]'"):
        fetch_bytes("s3://bucket/key.zip")


def test_the_executor_service_without_its_extra_names_it(monkeypatch):
    from policygrid.executor.cli import serve
    from policygrid.executor.config import ExecutorConfig

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(MissingExtra, match=r"pip install 'policygrid\[executor\]'"):
        serve(ExecutorConfig(token="t"))


def test_the_redis_context_store_without_its_extra_names_it(monkeypatch):
    from policygrid.executor.cli import serve
    from policygrid.executor.config import ExecutorConfig

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingExtra, match=r"pip install 'policygrid\[redis\]'"):
        serve(ExecutorConfig(token="t", redis_url="redis://127.0.0.1:1/0"))


def test_the_cli_prints_the_missing_extra_in_one_line(monkeypatch, capsys):
    from policygrid.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["executor", "serve", "--port", "1"]) == 1
    assert "pip install 'policygrid[executor]'" in capsys.readouterr().err
