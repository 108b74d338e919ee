"""The portal's HTTP client for executor services: one urllib3 connection pool per executor address.

Every Type 2 call and every health probe crosses this client. A pool keeps connections alive between calls
(urllib3 checks that an idle connection is still open before it reuses one) and is shared by the process's
threads (urllib3's pools are thread-safe: a connection serves one request at a time). A process made by
``fork`` builds its own pools instead of sharing its parent's sockets.

The pools are urllib3's ``HTTPConnectionPool``/``HTTPSConnectionPool``, made once per scheme, host and port by
``urllib3.connection_from_url`` and kept by this module: a ``PoolManager`` would rebuild its pool key from the
URL on every request, which cost about 40 % of this client's CPU per call (``bench/bench_executor.py``).

Nothing is read from the environment: urllib3's pools never look at proxy variables or ``.netrc`` (that is
``requests``), redirects are not followed, only http(s) URLs are accepted. Failures are told apart by urllib3's
own exception classes, never by their messages.
"""
from __future__ import annotations

import json
import os
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3 import exceptions as urllib3_errors


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


# CA certificates for https executors: SSL_CERT_FILE wins (as for Python's ssl module), then the system's
# OpenSSL store, else certifi's bundle.
_CA_FILE = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
if not _CA_FILE or not os.path.exists(_CA_FILE):
    try:
        import certifi

        _CA_FILE = certifi.where()
    except ImportError:  # pragma: no cover - certifi comes with requests
        _CA_FILE = None

# Connections kept per executor (host, port): as many as the process has threads calling at once, usually.
POOL_CONNECTIONS = 16
# Addresses whose pools are kept; past this many (executors re-registered at new addresses), all are dropped.
MAX_POOLS = 64

_lock = threading.Lock()
_pools: dict[str, urllib3.HTTPConnectionPool] = {}
_pools_pid: int | None = None


def _pool_for(origin: str) -> urllib3.HTTPConnectionPool:
    """The pool of ``origin`` (``scheme://host:port``), made on first use; a forked process makes its own."""
    global _pools_pid
    pool = _pools.get(origin)
    if pool is not None and _pools_pid == os.getpid():
        return pool
    with _lock:
        if _pools_pid != os.getpid() or len(_pools) >= MAX_POOLS:
            _pools.clear()  # a fork's inherited pools hold its parent's sockets: not closed, not used
            _pools_pid = os.getpid()
        pool = _pools.get(origin)
        if pool is None:
            # No retries: a POST is not repeated behind the caller's back, and failures come out as urllib3's
            # own exceptions rather than wrapped in MaxRetryError.
            options: dict[str, Any] = {"maxsize": POOL_CONNECTIONS, "block": False, "retries": False}
            if origin.startswith("https:"):
                options.update(ca_certs=_CA_FILE, cert_reqs="CERT_REQUIRED")
            pool = _pools[origin] = urllib3.connection_from_url(origin, **options)
    return pool


def _split(url: str) -> tuple[str, str]:
    """``(scheme://host:port, /path?query)`` of an http(s) URL; ConnectFailed for anything else."""
    if not url.startswith(("http://", "https://")):
        raise ConnectFailed(f"not an http(s) URL: {url[:100]}")
    at = url.find("/", url.index("//") + 2)
    origin, path = (url, "/") if at < 0 else (url[:at], url[at:])
    if "#" in path:
        path = path[:path.index("#")]
    return origin, path


def request(method: str, url: str, *, headers: dict[str, str], connect_timeout: float, read_timeout: float,
            body: bytes | None = None) -> Reply:
    """Send one request and read the whole answer; raises a ``TransportError`` when none comes back.

    ``read_timeout`` bounds the exchange, connecting included (urllib3's ``total``; the executor answers a
    call in one piece, so the time to its first byte is the time to its last); ``connect_timeout`` bounds the
    connection alone.
    """
    origin, path = _split(url)
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout, total=read_timeout)
    try:
        response = _pool_for(origin).urlopen(method, path, body=body, headers=headers, timeout=timeout,
                                             redirect=False, retries=False, preload_content=True)
    except (urllib3_errors.NewConnectionError, urllib3_errors.SSLError, urllib3_errors.LocationValueError) as exc:
        # Refusal, no route, a name that doesn't resolve (NameResolutionError), a failed TLS handshake. First:
        # urllib3 derives NewConnectionError from ConnectTimeoutError.
        raise ConnectFailed(str(exc)) from None
    except urllib3_errors.ConnectTimeoutError as exc:
        raise ConnectTimeoutError(str(exc)) from None
    except urllib3_errors.ReadTimeoutError as exc:
        raise ReadTimeoutError(str(exc)) from None
    except (urllib3_errors.ProtocolError, urllib3_errors.HTTPError) as exc:
        # ProtocolError: the connection broke or was closed before a complete answer.
        raise TransportError(str(exc)) from None
    return Reply(response.status, response.data)
