"""Shared fixtures of the SDK tests: archive builders, a loopback HTTP server, the sample policy, a network guard."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
from policygrid.cache import PackageCache
from policygrid.package import digest_of
from policygrid.samples import sample_archive, sample_path, sample_record
from sdk_helpers import MINIMAL_POLICY, LoopbackServer, build_archive


@pytest.fixture(autouse=True)
def _loopback_packages():
    """Overrides the Django-settings fixture of tests/conftest.py: the SDK tests run without Django."""
    yield


# --- network guard ----------------------------------------------------------------------------------------


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # unix sockets
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail any test that tries to open a connection to anything but loopback; record every attempt."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self, address):
        attempts.append(address)
        if not _is_loopback(address):
            pytest.fail(f"test tried to connect to non-loopback address {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self, address):
        attempts.append(address)
        if not _is_loopback(address):
            pytest.fail(f"test tried to connect to non-loopback address {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    return attempts


@pytest.fixture
def policy_archive():
    """Build a policy archive from `function.py` source: `policy_archive(source, fmt="zip", extra={...})`."""

    def build(source: str = MINIMAL_POLICY, fmt: str = "zip", extra: dict[str, str | bytes] | None = None) -> bytes:
        files: dict[str, str | bytes] = {"code/function.py": source}
        files.update(extra or {})
        return build_archive(files, fmt)

    return build


@pytest.fixture
def cache(tmp_path) -> PackageCache:
    return PackageCache(tmp_path / "cache")


@pytest.fixture
def http_server():
    server = LoopbackServer()
    yield server
    server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# --- the sample policy ------------------------------------------------------------------------------------


@pytest.fixture
def sample_zip() -> tuple[bytes, str]:
    data = sample_archive("ip_allowlist")
    return data, digest_of(data)


@pytest.fixture
def ip_allowlist_record() -> dict[str, Any]:
    record = sample_record("ip_allowlist")
    record["policy_rule_uri"] = "ip_allowlist:1.0-beta"
    return record


@pytest.fixture
def ip_allowlist_dir() -> Path:
    return sample_path("ip_allowlist")


@pytest.fixture
def fake_portal(http_server, sample_zip, ip_allowlist_record):
    """A loopback server answering `GET /policy/ip_allowlist:1.0-beta` in the envelope, and the package."""
    data, digest = sample_zip
    record = dict(ip_allowlist_record, code=http_server.url("/asset-object/1"), code_digest=digest)
    http_server.serve("/asset-object/1", data)
    http_server.serve("/policy/ip_allowlist:1.0-beta", {"success": True, "data": record})
    http_server.record = record
    return http_server
