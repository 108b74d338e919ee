"""The portal's HTTP client for executor services: one libcurl handle per thread, through pycurl.

Every Type 2 call crosses this client, so its cost is on the hot path of ``POST /executor/<id>/execute_policy``.
urllib3 (and ``http.client`` under it) spent 250–350 µs of CPU per call on this project's 2-core machines —
header parsing through the ``email`` package, two ``sendall`` calls for head and body, pool bookkeeping —
about a tenth of a warm request; libcurl does the same exchange in 90–110 µs, and sends a small request in
one write, so the executor wakes once per call instead of twice.

Each thread keeps its own handle, and with it its own keep-alive connections (libcurl's connection cache checks
a connection before it reuses it). A handle is never shared across threads or inherited across ``fork``.
Nothing is read from the environment: no proxy, no ``.netrc``, no redirects followed.
"""
from __future__ import annotations

import io
import json
import os
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import pycurl


class TransportError(Exception):
    """The request did not complete: nothing usable came back."""


class ConnectFailed(TransportError):
    """No connection: refused, no route, name not resolved, TLS handshake failed."""


class ConnectTimeoutError(TransportError):
    """No connection within the connect timeout."""


class ReadTimeoutError(TransportError):
    """Connected, but no complete answer within the call's timeout."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


# Where libcurl finds CA certificates for https executors: the system's OpenSSL store (as urllib3 used),
# else certifi's bundle; SSL_CERT_FILE wins, as it does for Python's ssl module.
_CA_FILE = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
if not _CA_FILE or not os.path.exists(_CA_FILE):
    try:
        import certifi

        _CA_FILE = certifi.where()
    except ImportError:  # pragma: no cover - certifi comes with requests
        _CA_FILE = None

_CONNECT_FAILURES = {pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_RESOLVE_PROXY,
                     pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION}
_local = threading.local()


def _handle() -> pycurl.Curl:
    pid = os.getpid()
    handle = getattr(_local, "handle", None)
    if handle is None or _local.pid != pid:
        handle = pycurl.Curl()
        _local.handle, _local.pid = handle, pid
    return handle


def request(method: str, url: str, *, headers: dict[str, str], connect_timeout: float, read_timeout: float,
            body: bytes | None = None) -> Reply:
    """Send one request and read the whole answer; raises a ``TransportError`` when none comes back.

    ``read_timeout`` bounds the whole exchange, connecting included (the executor answers a call in one piece,
    so the time to its first byte is the time to its last); ``connect_timeout`` bounds the connection alone.
    """
    if not url.startswith(("http://", "https://")):
        raise ConnectFailed(f"not an http(s) URL: {url[:100]}")
    handle = _handle()
    handle.reset()  # options only: the connection cache stays
    buffer = io.BytesIO()
    handle.setopt(pycurl.URL, url)
    handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: required with threads
    handle.setopt(pycurl.PROXY, "")  # never a proxy from the environment
    handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(connect_timeout * 1000)))
    handle.setopt(pycurl.TIMEOUT_MS, max(1, int(read_timeout * 1000)))
    if _CA_FILE:
        handle.setopt(pycurl.CAINFO, _CA_FILE)
    # "Expect:" turns off libcurl's 100-continue round trip for larger bodies.
    handle.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in headers.items()] + ["Expect:"])
    if method in ("POST", "PUT"):
        handle.setopt(pycurl.POSTFIELDS, body or b"")
    if method not in ("GET", "POST"):
        handle.setopt(pycurl.CUSTOMREQUEST, method)
    handle.setopt(pycurl.WRITEDATA, buffer)
    try:
        handle.perform()
    except pycurl.error as exc:
        code, message = exc.args[0], str(exc.args[1] if len(exc.args) > 1 else exc)
        if code == pycurl.E_OPERATION_TIMEDOUT:
            # libcurl names the phase its state machine was in: "Resolving timed out" or "Connection timed
            # out" before a connection was ready, "Operation timed out" after (a reused connection included:
            # its CONNECT_TIME is 0 as well, so the timings can't tell). tests/executor/test_transport.py
            # holds libcurl to these words.
            if message.startswith("Operation timed out"):
                raise ReadTimeoutError(message) from None
            raise ConnectTimeoutError(message) from None
        if code in _CONNECT_FAILURES:
            raise ConnectFailed(message) from None
        raise TransportError(message) from None
    return Reply(handle.getinfo(pycurl.RESPONSE_CODE), buffer.getvalue())
