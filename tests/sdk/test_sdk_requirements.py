"""requirements.txt: installed with pip into a folder per requirements, never into the running interpreter."""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

import pytest
from policygrid.errors import PackageError
from policygrid.loader import load_rule_class
from policygrid.requirements import ensure_requirements, parse_requirements

POLICY_USING_TINYREQ = """
import pgtinyreq

class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters):
        pass

    def eval(self, parameters, input_data, context):
        return {"version": pgtinyreq.VERSION}
"""


def build_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel, written by hand so the test needs neither network nor a build backend."""
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record_lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record_lines.append(f"{path},sha256={digest},{len(text.encode())}")
    record_path = f"{name}-{version}.dist-info/RECORD"
    files[record_path] = "\n".join([*record_lines, f"{record_path},,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture
def wheelhouse(tmp_path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    build_wheel(folder, "pgtinyreq", "0.1")
    build_wheel(folder, "pgtinyreq", "0.2")
    return folder


def make_package(tmp_path: Path, name: str, requirements: str, source: str = POLICY_USING_TINYREQ) -> Path:
    package = tmp_path / name
    (package / "code").mkdir(parents=True)
    (package / "code" / "function.py").write_text(source)
    (package / "code" / "requirements.txt").write_text(requirements)
    return package


def offline(wheelhouse: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheelhouse)]


@pytest.mark.slow
def test_requirements_are_installed_into_their_own_folder_and_importable(tmp_path, wheelhouse):
    package = make_package(tmp_path, "pkg", "pgtinyreq==0.1\n")
    root = tmp_path / "req-root"
    folder = ensure_requirements(package, root=root, pip_args=offline(wheelhouse))
    assert folder is not None and folder.parent == root and folder.name.startswith("req-")
    assert (folder / "pgtinyreq" / "__init__.py").is_file()
    rule = load_rule_class(package, folder)
    assert rule(None, {}, {}).eval({}, {}, None) == {"version": "0.1"}
    assert not any(Path(p, "pgtinyreq").exists() for p in sys.path if p and p != str(folder))


@pytest.mark.slow
def test_requirements_are_installed_once_per_machine(tmp_path, wheelhouse, monkeypatch):
    package = make_package(tmp_path, "pkg", "pgtinyreq==0.1\n")
    root = tmp_path / "req-root"
    first = ensure_requirements(package, root=root, pip_args=offline(wheelhouse))
    import policygrid.requirements as requirements_module

    requirements_module._memo.clear()  # as a new process would start

    def no_pip(*args, **kwargs):
        raise AssertionError("pip ran a second time")

    monkeypatch.setattr(requirements_module.subprocess, "run", no_pip)
    assert ensure_requirements(package, root=root, pip_args=offline(wheelhouse)) == first


@pytest.mark.slow
def test_conflicting_requirements_each_get_their_own_folder(tmp_path, wheelhouse):
    root = tmp_path / "req-root"
    one = ensure_requirements(make_package(tmp_path, "a", "pgtinyreq==0.1\n"), root=root, pip_args=offline(wheelhouse))
    two = ensure_requirements(make_package(tmp_path, "b", "pgtinyreq==0.2\n"), root=root, pip_args=offline(wheelhouse))
    assert one != two
    assert "VERSION = '0.1'" in (one / "pgtinyreq" / "__init__.py").read_text()
    assert "VERSION = '0.2'" in (two / "pgtinyreq" / "__init__.py").read_text()


@pytest.mark.slow
def test_pip_failure_reports_pips_last_lines_and_leaves_nothing(tmp_path, wheelhouse):
    package = make_package(tmp_path, "pkg", "pgtinyreq-does-not-exist==9.9\n")
    root = tmp_path / "req-root"
    with pytest.raises(PackageError, match="pip install of the requirements failed") as caught:
        ensure_requirements(package, root=root, pip_args=offline(wheelhouse))
    assert "pgtinyreq-does-not-exist" in caught.value.message
    assert "No matching distribution" in caught.value.message or "Could not find" in caught.value.message
    assert [p.name for p in root.iterdir()] == ["locks"]


def test_pip_timeout_is_an_error(tmp_path, wheelhouse):
    package = make_package(tmp_path, "pkg", "pgtinyreq==0.1\n")
    with pytest.raises(PackageError, match="timed out after 0.01s"):
        ensure_requirements(package, root=tmp_path / "r", pip_args=offline(wheelhouse), timeout=0.01)


def test_standard_library_and_already_installed_requirements_are_skipped():
    # The description's sample lists `logging`; `requests` is installed with the SDK.
    assert parse_requirements("logging\nrequests\n# comment\n\n") == []
    assert parse_requirements("requests>=999\n") == ["requests>=999"]
    assert parse_requirements("requests\n", use_installed=False) == ["requests"]
    assert parse_requirements('pgtinyreq; python_version < "3"\n') == []


def test_the_sample_needs_no_install(ip_allowlist_dir, tmp_path):
    assert ensure_requirements(ip_allowlist_dir, root=tmp_path / "r") is None


def test_pip_options_in_requirements_are_refused():
    for line in ("--index-url https://evil.example/simple", "-r /etc/passwd", "-e ."):
        with pytest.raises(PackageError, match="pip options are not allowed"):
            parse_requirements(line + "\n")


def test_no_requirements_file_means_nothing_to_do(tmp_path):
    (tmp_path / "code").mkdir()
    assert ensure_requirements(tmp_path, root=tmp_path / "r") is None
