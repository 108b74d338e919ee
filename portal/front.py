"""The portal's face to clients: an ASGI layer that reads each request whole, with limits and timeouts, before
Django's WSGI handler sees it (in a fixed pool of threads), and writes the access log.

Why: under gunicorn's threads a client that sent a body slowly held a thread until it finished, and 40 such
clients left no thread for anyone else (issue 13). Here the body is read by the event loop, which a slow client
costs a few hundred bytes of memory; a thread is taken only once the whole request is in. A body that stalls
or takes too long answers 408, one over the limit 413 (before it is read when Content-Length says so), and a
chunked body reaches Django with its length, like any other. The threads are kept for the life of the process,
so the database connections persist as they did under gunicorn (DATABASE_CONN_MAX_AGE).
"""
from __future__ import annotations

import asyncio
import json
import os
import time

# Bodies of these paths may be as large as an upload (multipart forms); every other one as an API body.
UPLOAD_PATHS = ("/upload_asset", "/admin/", "/portal/")


def envelope(status: int, message: str, extra_headers=()) -> tuple[dict, dict]:
    """The ASGI messages of a JSON error envelope (docs/api.md §1) that also ends the connection."""
    body = json.dumps({"success": False, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *extra_headers]
    return ({"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body})


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Front:
    """ASGI application: limits, whole-body reading, access log; then ``app`` (ASGI, e.g. a WSGI adapter)."""

    def __init__(self, app, *, max_body: int, max_upload: int, body_idle_seconds: float = 10,
                 body_total_seconds: float = 60, access_log: str | None = None):
        self.app = app
        self.max_body, self.max_upload = max_body, max_upload
        self.body_idle_seconds, self.body_total_seconds = body_idle_seconds, body_total_seconds
        self.access_fd = os.open(access_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640) if access_log else None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here
        started = time.perf_counter()
        seen = {"status": 0, "size": 0, "request_id": "-"}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"x-request-id":
                        seen["request_id"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                seen["size"] += len(message.get("body", b""))
            await send(message)

        try:
            body = await self.read_body(scope, receive)
        except Refused as refusal:
            for message in envelope(refusal.status, refusal.message):
                await counting_send(message)
        else:
            await self.app(with_length(scope, len(body)), replay(body, receive), counting_send)
        finally:
            self.log(scope, seen, time.perf_counter() - started)

    async def read_body(self, scope, receive) -> bytes:
        path = scope.get("path", "")
        limit = self.max_upload if path.rstrip("/").startswith(UPLOAD_PATHS) else self.max_body
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise Refused(400, "invalid Content-Length header")
            if int(declared) > limit:
                raise Refused(413, f"the request body is {int(declared)} bytes; the limit is {limit} bytes")
        chunks, size = [], 0
        deadline = time.monotonic() + self.body_total_seconds
        while True:
            wait = min(self.body_idle_seconds, deadline - time.monotonic())
            try:
                async with asyncio.timeout(max(wait, 0.001)):  # no task of its own, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise Refused(408, f"the request body did not arrive in time (a pause of {self.body_idle_seconds:g} s "
                                   f"at most, {self.body_total_seconds:g} s in all)") from None
            if message["type"] == "http.disconnect":
                raise Refused(400, "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refused(413, f"the request body is over the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def log(self, scope, seen, seconds) -> None:
        if self.access_fd is None:
            return
        os.write(self.access_fd, access_line(scope, seen, seconds).encode("utf-8", "backslashreplace"))


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def with_length(scope, length: int) -> dict:
    """The scope with the body's real length and no Transfer-Encoding: Django reads exactly the body read here."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"content-length", b"transfer-encoding")]
    headers.append((b"content-length", str(length).encode()))
    return {**scope, "headers": headers}


def replay(body: bytes, receive):
    """A ``receive`` that gives the whole body at once, then whatever the connection says (a disconnect)."""
    given = False

    async def receive_again():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


def _quoted(text: str) -> str:
    return "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else
                   ("\\" + c if c in '"\\' else f"\\x{ord(c):02x}") for c in text)


def access_line(scope, seen, seconds) -> str:
    """Apache's combined format, then the time taken in ms and the request id (README, "What ./run.sh starts")."""
    client = (scope.get("client") or ("-",))[0]
    target = scope.get("raw_path", b"").decode("latin-1") or scope.get("path", "")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    request = f"{scope.get('method', '-')} {target} HTTP/{scope.get('http_version', '1.1')}"
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    return (f'{client} - - [{stamp}] "{_quoted(request)}" {seen["status"]} {seen["size"] or "-"} '
            f'"{_quoted(header(scope, b"referer") or "-")}" "{_quoted(header(scope, b"user-agent") or "-")}" '
            f'{round(seconds * 1000)}ms {_quoted(seen["request_id"])}\n')
