"""The portal's HTTP client for executor services: one urllib3 ``PoolManager`` per process.

Every Type 2 call and every health probe crosses this client. The pool keeps connections alive between calls
(urllib3 checks that an idle connection is still open before it reuses one) and is shared by the process's
threads (urllib3's pools are thread-safe: a connection serves one request at a time). A process made by
``fork`` builds its own pool instead of sharing its parent's sockets.

Nothing is read from the environment: ``PoolManager`` never looks at proxy variables or ``.netrc`` (that is
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

_lock = threading.Lock()
_pool: urllib3.PoolManager | None = None
_pool_pid: int | None = None


def _pool_manager() -> urllib3.PoolManager:
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is None or _pool_pid != pid:
        with _lock:
            if _pool is None or _pool_pid != pid:
                # No retries: a POST is not repeated behind the caller's back, and failures come out as
                # urllib3's own exceptions rather than wrapped in MaxRetryError.
                _pool = urllib3.PoolManager(num_pools=64, maxsize=POOL_CONNECTIONS, block=False, retries=False,
                                            ca_certs=_CA_FILE, cert_reqs="CERT_REQUIRED")
                _pool_pid = pid
    return _pool


def request(method: str, url: str, *, headers: dict[str, str], connect_timeout: float, read_timeout: float,
            body: bytes | None = None) -> Reply:
    """Send one request and read the whole answer; raises a ``TransportError`` when none comes back.

    ``read_timeout`` bounds the exchange, connecting included (urllib3's ``total``; the executor answers a
    call in one piece, so the time to its first byte is the time to its last); ``connect_timeout`` bounds the
    connection alone.
    """
    if not url.startswith(("http://", "https://")):
        raise ConnectFailed(f"not an http(s) URL: {url[:100]}")
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout, total=read_timeout)
    try:
        response = _pool_manager().request(method, url, body=body, headers=headers, timeout=timeout,
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
