"""Django's WSGI handler as an ASGI application, in a fixed pool of threads, for a request whose body is whole.

portal/front.py has read the body before this runs, so a thread is never held by a slow client. The pool's
threads live as long as the process, so Django's database connections persist between requests
(DATABASE_CONN_MAX_AGE) as they did under gunicorn's threads; Django's own ASGI handler gives each request a
thread of its own, and so a new connection.

One hop to a thread and back per request: the application runs and its answer is collected in the thread, and
the event loop writes it. (a2wsgi, tried first, crossed between the loop and the thread three times per
request, each time waiting for the loop, and served the execute route about a quarter slower than gunicorn.)
An answer over ``STREAM_AFTER`` bytes (an asset download) is streamed, a batch of chunks per hop.
"""
from __future__ import annotations

import asyncio
import io
import sys
from concurrent.futures import ThreadPoolExecutor

STREAM_AFTER = 1024 * 1024


class ThreadedWSGI:
    def __init__(self, app, threads: int):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send):
        message = await receive()  # portal/front.py gives the whole body in one message
        environ = wsgi_environ(scope, message.get("body", b""))
        loop = asyncio.get_running_loop()
        status, headers, chunks, rest = await loop.run_in_executor(self.pool, self.run, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        try:
            while rest is not None:
                await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
                chunks, rest = await loop.run_in_executor(self.pool, more, rest)
        finally:
            if rest is not None:  # the client went away mid-stream
                await loop.run_in_executor(self.pool, close, rest[0])
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    def run(self, environ):
        """In a pool thread: the whole WSGI call, or its first ``STREAM_AFTER`` bytes and the rest to come."""
        answer: dict = {}
        written: list[bytes] = []

        def start_response(status, headers, exc_info=None):
            if exc_info is not None and answer.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            answer["status"] = int(status.split(" ", 1)[0])
            answer["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
            return written.append

        iterable = self.app(environ, start_response)
        iterator = iter(iterable)
        chunks, rest = written, None
        try:
            size = sum(len(chunk) for chunk in chunks)
            for chunk in iterator:
                if chunk:
                    chunks.append(chunk)
                    size += len(chunk)
                if size >= STREAM_AFTER:
                    rest = (iterable, iterator)
                    break
        finally:
            if rest is None:
                close(iterable)  # Django's request_finished, in the request's own thread
        return answer["status"], answer["headers"], chunks, rest


def more(rest):
    iterable, iterator = rest
    chunks, size = [], 0
    for chunk in iterator:
        chunks.append(chunk)
        size += len(chunk)
        if size >= STREAM_AFTER:
            return chunks, rest
    close(iterable)
    return chunks, None


def close(iterable) -> None:
    getattr(iterable, "close", lambda: None)()


def wsgi_environ(scope, body: bytes) -> dict:
    """PEP 3333's environ for an ASGI HTTP scope (paths as the bytes they were, decoded as latin-1)."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1] or 80),
        "REMOTE_ADDR": client[0], "REMOTE_PORT": str(client[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"), "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    for name, value in scope.get("headers", ()):
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ
