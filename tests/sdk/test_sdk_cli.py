"""The `policygrid` command line: validate and run on the sample, pull, push, and failures."""

from __future__ import annotations

import json
import zipfile

import pytest
from policygrid.cli import main
from policygrid.package import digest_of
from sdk_helpers import build_archive


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_the_sample_folder(capsys, ip_allowlist_dir):
    code, out, _ = run(capsys, "policy", "validate", str(ip_allowlist_dir))
    assert code == 0
    assert json.loads(out)["valid"] is True


def test_validate_with_record_and_input_runs_the_policy(capsys, ip_allowlist_dir):
    code, out, _ = run(
        capsys, "policy", "validate", str(ip_allowlist_dir), "--record", str(ip_allowlist_dir / "record.json"),
        "--input", '{"ip": "192.168.0.1"}',
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["output"] == {"allowed": True, "input_data": {"ip": "192.168.0.1"}, "reason": "allowed"}


def test_validate_an_archive_reports_its_digest(capsys, tmp_path, sample_zip):
    data, digest = sample_zip
    archive = tmp_path / "ip.tar.gz"
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as z:
        files = {name: z.read(name) for name in z.namelist()}
    archive.write_bytes(build_archive(files, "tar.gz"))
    code, out, _ = run(capsys, "policy", "validate", str(archive))
    assert code == 0 and json.loads(out)["digest"] == digest_of(archive.read_bytes())


def test_validate_refuses_a_bad_archive_with_a_non_zero_exit(capsys, tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(build_archive({"code/function.py": "x", "../evil.py": "x"}))
    code, out, err = run(capsys, "policy", "validate", str(archive))
    assert code == 1 and out == ""
    assert "error (package_invalid): refused archive member '../evil.py'" in err


def test_validate_reports_invalid_input(capsys, ip_allowlist_dir):
    code, _, err = run(
        capsys, "policy", "validate", str(ip_allowlist_dir), "--record", str(ip_allowlist_dir / "record.json"),
        "--input", '{"ip": "x"}',
    )  # fmt: skip
    assert code == 1 and "input_data.ip" in err


def test_validate_reports_a_malformed_record(capsys, ip_allowlist_dir, tmp_path):
    record = json.loads((ip_allowlist_dir / "record.json").read_text())
    record["policy_input_schema"]["ip"]["pattern"] = "(["
    record["policy_settings"]["allowlist_api"] = "ftp://x"
    (tmp_path / "r.json").write_text(json.dumps(record))
    code, _, err = run(capsys, "policy", "validate", str(ip_allowlist_dir), "--record", str(tmp_path / "r.json"))
    assert code == 1
    assert "policy_input_schema.ip.pattern" in err and "policy_settings.allowlist_api" in err


def test_run_against_a_portal(capsys, fake_portal, tmp_path):
    code, out, _ = run(
        capsys, "--portal-url", fake_portal.base_url, "--cache-dir", str(tmp_path / "c"),
        "policy", "run", "ip_allowlist:1.0-beta", "--input", '{"ip": "127.0.0.1"}',
    )  # fmt: skip
    assert code == 0 and json.loads(out)["allowed"] is True


def test_show_and_pull(capsys, fake_portal, tmp_path):
    code, out, _ = run(capsys, "--portal-url", fake_portal.base_url, "policy", "show", "ip_allowlist:1.0-beta")
    assert code == 0 and json.loads(out)["name"] == "ip_allowlist"
    target = tmp_path / "pulled"
    code, out, _ = run(capsys, "--portal-url", fake_portal.base_url, "policy", "pull", "ip_allowlist:1.0-beta", "-o", str(target))
    assert code == 0
    assert (target / "code" / "function.py").is_file()
    assert json.loads((target / "record.json").read_text())["code_digest"] == json.loads(out)["digest"]


def test_pull_refuses_a_tampered_package(capsys, fake_portal, tmp_path):
    fake_portal.serve("/asset-object/1", build_archive({"code/function.py": "tampered"}))
    code, _, err = run(capsys, "--portal-url", fake_portal.base_url, "policy", "pull", "ip_allowlist:1.0-beta", "-o", str(tmp_path / "p"))
    assert code == 1 and "error (integrity): digest mismatch" in err
    assert not (tmp_path / "p").exists()


def test_push_uploads_the_archive_and_registers_the_policy(capsys, http_server, ip_allowlist_dir):
    created = {}

    def upload(handler, body):
        assert b'name="asset"' in body and b'"asset_name": "ip_allowlist"' in body
        return 201, {}, {"success": True, "public_url": http_server.url("/asset-object/9"), "digest": "x", "asset_uri": "a"}

    def create(handler, body):
        created.update(json.loads(body))
        return 201, {}, {"success": True, "data": {**created, "policy_rule_uri": "ip_allowlist:2.0-rc"}}

    http_server.routes["/upload_asset"] = upload
    http_server.routes["/policy"] = create
    code, out, _ = run(
        capsys, "--portal-url", http_server.base_url, "policy", "push", str(ip_allowlist_dir),
        "--name", "ip_allowlist", "--version", "2.0", "--tag", "rc", "--record", str(ip_allowlist_dir / "record.json"),
    )  # fmt: skip
    assert code == 0
    assert created["code"] == http_server.url("/asset-object/9")
    assert created["code_digest"].startswith("sha256:") and (created["version"], created["release_tag"]) == ("2.0", "rc")
    assert json.loads(out)["policy_rule_uri"] == "ip_allowlist:2.0-rc"


def test_missing_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["policy"])
    assert caught.value.code == 2
