"""Fetching packages: http(s) with caps and redirects, the private-range guard, local paths, S3 through moto."""

from __future__ import annotations

import socket

import pytest
from policygrid.errors import PackageError, PackageTooLarge, Unavailable
from policygrid.fetch import FetchOptions, fetch_bytes

LOOPBACK = FetchOptions(allow_private=True)


def test_http_fetch_returns_the_bytes(http_server):
    url = http_server.serve("/pkg.zip", b"package-bytes")
    assert fetch_bytes(url, LOOPBACK) == b"package-bytes"


def test_http_error_status_is_unavailable(http_server):
    with pytest.raises(Unavailable, match="HTTP 404"):
        fetch_bytes(http_server.url("/missing.zip"), LOOPBACK)


def test_unreachable_url_is_unavailable(closed_port):
    with pytest.raises(Unavailable, match=f"cannot fetch http://127.0.0.1:{closed_port}/pkg.zip"):
        fetch_bytes(f"http://127.0.0.1:{closed_port}/pkg.zip", LOOPBACK)


def test_download_over_the_size_cap_is_refused_even_without_content_length(http_server):
    def chunked(handler, body):
        # No Content-Length that could be trusted: the cap must hold on the bytes received.
        return 200, {}, b"x" * 5000

    http_server.routes["/big.zip"] = chunked
    with pytest.raises(PackageTooLarge, match="larger than the 1000 bytes allowed"):
        fetch_bytes(http_server.url("/big.zip"), FetchOptions(allow_private=True, max_bytes=1000))


def test_redirects_are_followed_up_to_the_limit(http_server):
    http_server.serve("/final.zip", b"final")
    for i in range(3):
        target = "/final.zip" if i == 0 else f"/hop{i - 1}"
        http_server.serve(f"/hop{i}", b"", status=302, headers={"Location": target})
    assert fetch_bytes(http_server.url("/hop2"), LOOPBACK) == b"final"
    http_server.serve("/hop3", b"", status=302, headers={"Location": "/hop2"})
    with pytest.raises(PackageError, match="too many redirects"):
        fetch_bytes(http_server.url("/hop3"), LOOPBACK)


@pytest.mark.parametrize(
    "url, kind",
    [
        ("http://10.1.2.3/pkg.zip", "private"),
        ("http://192.168.1.20:8080/pkg.zip", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:9/pkg.zip", "loopback"),
        ("http://[::1]/pkg.zip", "loopback"),
        ("http://[::ffff:10.0.0.1]/pkg.zip", "private"),
        ("http://0.0.0.0/pkg.zip", "unspecified"),
    ],
)
def test_private_range_url_is_refused_before_any_connection(url, kind, loopback_only):
    with pytest.raises(PackageError, match=f"resolves to {kind} address"):
        fetch_bytes(url, FetchOptions())
    assert loopback_only == []  # no socket was connected at all


def test_host_name_resolving_to_a_private_address_is_refused(monkeypatch, loopback_only):
    def resolve(host, port, *args, **kwargs):
        assert host == "packages.internal.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(PackageError, match="'packages.internal.example': it resolves to private address 10.20.30.40"):
        fetch_bytes("https://packages.internal.example/pkg.zip", FetchOptions())
    assert loopback_only == []


def test_redirect_to_a_private_address_is_refused(http_server, loopback_only):
    # The first hop is on a trusted origin (like the portal); the redirect target is checked all the same.
    http_server.serve("/redirect", b"", status=302, headers={"Location": "http://10.0.0.7/steal"})
    options = FetchOptions(trusted_origins=(http_server.base_url,))
    with pytest.raises(PackageError, match="10.0.0.7"):
        fetch_bytes(http_server.url("/redirect"), options)
    assert all(address[0] == "127.0.0.1" for address in loopback_only)


def test_headers_go_to_trusted_origins_only(http_server):
    url = http_server.serve("/asset-object/1", b"ok")
    http_server.serve("/elsewhere", b"ok")
    options = FetchOptions(allow_private=True, headers={"Authorization": "Token s3cret"}, trusted_origins=(http_server.base_url,))
    fetch_bytes(url, options)
    assert http_server.requests[-1]["headers"].get("Authorization") == "Token s3cret"
    fetch_bytes(url.replace("127.0.0.1", "localhost"), options)  # another origin
    assert "Authorization" not in http_server.requests[-1]["headers"]


def test_local_paths_are_refused_unless_allowed(tmp_path):
    path = tmp_path / "pkg.zip"
    path.write_bytes(b"local")
    with pytest.raises(PackageError, match="local package paths are not allowed"):
        fetch_bytes(str(path), FetchOptions())
    with pytest.raises(PackageError, match="local package paths are not allowed"):
        fetch_bytes(path.as_uri(), FetchOptions())
    assert fetch_bytes(str(path), FetchOptions(allow_local_paths=True)) == b"local"
    assert fetch_bytes(path.as_uri(), FetchOptions(allow_local_paths=True)) == b"local"


def test_unknown_scheme_is_refused():
    with pytest.raises(PackageError, match="unsupported package location scheme 'ftp'"):
        fetch_bytes("ftp://example.com/pkg.zip", FetchOptions())


# --- S3 through a moto server on loopback ------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_options(moto_endpoint):
    return FetchOptions(
        s3_endpoint_url=moto_endpoint, s3_access_key_id="testing", s3_secret_access_key="testing", s3_region="us-east-1"
    )


def test_s3_fetch_goes_through_boto3_and_the_configured_endpoint(s3_options):
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3_options.s3_endpoint_url, aws_access_key_id="testing",
        aws_secret_access_key="testing", region_name="us-east-1",
    )  # fmt: skip
    client.create_bucket(Bucket="policies")
    client.put_object(Bucket="policies", Key="ip/allowlist 1.0.zip", Body=b"s3-bytes")
    assert fetch_bytes("s3://policies/ip/allowlist%201.0.zip", s3_options) == b"s3-bytes"
    assert fetch_bytes("s3://policies/ip/allowlist 1.0.zip", s3_options) == b"s3-bytes"
    with pytest.raises(Unavailable, match="NoSuchKey"):
        fetch_bytes("s3://policies/missing.zip", s3_options)
    with pytest.raises(PackageTooLarge):
        fetch_bytes("s3://policies/ip/allowlist 1.0.zip", FetchOptions(**{**s3_options.__dict__, "max_bytes": 3}))


def test_s3_url_without_a_key_is_refused(s3_options):
    with pytest.raises(PackageError, match="not of the form s3://bucket/key"):
        fetch_bytes("s3://only-a-bucket", s3_options)
