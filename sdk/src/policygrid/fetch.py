"""Fetching policy packages from http(s), S3 and (where allowed) local paths, with caps and an SSRF guard."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from .environment import env_flag
from .errors import PackageError, PackageTooLarge, Unavailable
from .extras import require

MiB = 1024 * 1024
_CHUNK = 64 * 1024


@dataclass
class FetchOptions:
    """How packages may be fetched. Defaults are the safe ones; a deployment loosens them explicitly.

    `headers` (e.g. the portal token) are sent only to `trusted_origins` — never to a third-party host a
    policy's `code` URL might name — and URLs on a trusted origin skip the private-range check, because the
    portal itself usually lives on a private network.
    """

    timeout_seconds: float = 10
    max_bytes: int = 50 * MiB
    max_redirects: int = 3
    allow_private: bool = field(default_factory=lambda: env_flag("POLICYGRID_ALLOW_PRIVATE_NETWORKS"))
    allow_local_paths: bool = field(default_factory=lambda: env_flag("POLICYGRID_ALLOW_LOCAL_PATHS"))
    s3_endpoint_url: str | None = field(
        default_factory=lambda: os.environ.get("POLICYGRID_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    )
    s3_access_key_id: str | None = field(default_factory=lambda: os.environ.get("AWS_ACCESS_KEY_ID"))
    s3_secret_access_key: str | None = field(default_factory=lambda: os.environ.get("AWS_SECRET_ACCESS_KEY"))
    s3_region: str | None = field(
        default_factory=lambda: os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    headers: dict[str, str] = field(default_factory=dict)
    trusted_origins: tuple[str, ...] = ()

    def is_trusted(self, url: str) -> bool:
        return _origin(url) in {_origin(o) for o in self.trusted_origins}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def fetch_bytes(url: str, options: FetchOptions | None = None) -> bytes:
    """Return the bytes at `url` (http(s)://, s3://bucket/key, file:// or a path), within the options' limits."""
    options = options or FetchOptions()
    if not isinstance(url, str) or not url.strip():
        raise PackageError("the package location is empty", errors={"code": ["empty"]})
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme in {"http", "https"}:
        return _fetch_http(url, options)
    if scheme == "s3":
        return _fetch_s3(url, options)
    if scheme == "file" or scheme == "":
        return _fetch_local(url, options)
    raise PackageError(
        f"unsupported package location scheme '{scheme}': use http(s)://, s3://bucket/key or a local path",
        errors={"code": [f"unsupported scheme '{scheme}'"]},
    )


# --- SSRF guard -------------------------------------------------------------------------------------------


def _address_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attribute, label in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_private", "private"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attribute):
            return label
    # Ranges none of the above name (e.g. 100.64.0.0/10, carrier-grade NAT) are still not the public internet.
    return None if ip.is_global else "non-public"


def check_host_allowed(host: str, port: int, options: FetchOptions) -> None:
    """Refuse a host that resolves to a private/loopback/link-local/reserved address, before any connection.

    Every address the name resolves to is checked, so a name with one public and one private address is
    refused too.
    """
    if options.allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unavailable(f"cannot resolve host '{host}': {exc}") from exc
    for info in infos:
        address = info[4][0].split("%", 1)[0]
        refusal = _address_refusal(ipaddress.ip_address(address))
        if refusal:
            raise PackageError(
                f"refusing to fetch from '{host}': it resolves to {refusal} address {address} "
                "(private network ranges are not allowed by this deployment)",
                errors={"code": [f"{refusal} address {address}"]},
            )


# --- http(s) ----------------------------------------------------------------------------------------------


def _fetch_http(url: str, options: FetchOptions) -> bytes:
    import requests

    session = requests.Session()
    current = url
    try:
        for _hop in range(options.max_redirects + 1):
            parts = urlsplit(current)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise PackageError(f"refusing to follow redirect to '{current}'", errors={"code": ["bad redirect"]})
            trusted = options.is_trusted(current)
            if not trusted:
                check_host_allowed(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), options)
            headers = dict(options.headers) if trusted else {}
            try:
                # Redirects are followed by hand so that every hop goes through the private-range check.
                response = session.get(
                    current, headers=headers, timeout=options.timeout_seconds, stream=True, allow_redirects=False
                )
            except requests.Timeout as exc:
                raise Unavailable(f"timed out fetching {current} after {options.timeout_seconds}s") from exc
            except requests.RequestException as exc:
                raise Unavailable(f"cannot fetch {current}: {exc.__class__.__name__}: {exc}") from exc
            with response:
                if response.is_redirect:
                    location = response.headers.get("Location", "")
                    current = urljoin(current, location)
                    continue
                if response.status_code != 200:
                    raise Unavailable(f"fetching {current} answered HTTP {response.status_code}")
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > options.max_bytes:
                    raise _too_large(current, options)
                return _read_capped(response.iter_content(_CHUNK), current, options)
        raise PackageError(
            f"too many redirects fetching {url} (more than {options.max_redirects})",
            errors={"code": ["too many redirects"]},
        )
    finally:
        session.close()


def _too_large(url: str, options: FetchOptions) -> PackageTooLarge:
    return PackageTooLarge(
        f"the package at {url} is larger than the {options.max_bytes} bytes allowed",
        errors={"code": [f"larger than {options.max_bytes} bytes"]},
    )


def _read_capped(chunks, url: str, options: FetchOptions) -> bytes:
    # Content-Length can lie or be absent: the cap is enforced on the bytes actually received.
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > options.max_bytes:
            raise _too_large(url, options)
    return bytes(buffer)


# --- s3 ---------------------------------------------------------------------------------------------------


def _s3_client(options: FetchOptions):
    boto3 = require("boto3", "s3", "an s3:// package location")
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=options.s3_endpoint_url or None,
        aws_access_key_id=options.s3_access_key_id or None,
        aws_secret_access_key=options.s3_secret_access_key or None,
        region_name=options.s3_region or "us-east-1",
        config=Config(
            connect_timeout=options.timeout_seconds,
            read_timeout=options.timeout_seconds,
            retries={"max_attempts": 2},
        ),
    )


def _fetch_s3(url: str, options: FetchOptions) -> bytes:
    require("boto3", "s3", "an s3:// package location")
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(url)
    bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
    if not bucket or not key:
        raise PackageError(f"'{url}' is not of the form s3://bucket/key", errors={"code": ["bad s3 URL"]})
    try:
        response = _s3_client(options).get_object(Bucket=bucket, Key=key)
        if int(response.get("ContentLength") or 0) > options.max_bytes:
            raise _too_large(url, options)
        body = response["Body"]
        try:
            return _read_capped(iter(lambda: body.read(_CHUNK), b""), url, options)
        finally:
            body.close()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise Unavailable(f"cannot fetch {url}: S3 answered {code or exc}") from exc
    except BotoCoreError as exc:
        raise Unavailable(f"cannot fetch {url}: {exc}") from exc


# --- local ------------------------------------------------------------------------------------------------


def _fetch_local(url: str, options: FetchOptions) -> bytes:
    if not options.allow_local_paths:
        raise PackageError(
            f"local package paths are not allowed by this deployment: '{url}'",
            errors={"code": ["local paths not allowed"]},
        )
    path = Path(unquote(urlsplit(url).path)) if url.lower().startswith("file:") else Path(url)
    try:
        size = path.stat().st_size
        if size > options.max_bytes:
            raise _too_large(url, options)
        with path.open("rb") as handle:
            return _read_capped(iter(lambda: handle.read(_CHUNK), b""), url, options)
    except OSError as exc:
        raise Unavailable(f"cannot read package file '{path}': {exc.strerror or exc}") from exc
