"""The one loopback HTTP server of the tests and benches.

``FileServer`` serves bytes by name (package archives, policy envelopes); ``LoopbackServer`` runs any handler
class of the caller's (scripted executors, recorders). Both bind 127.0.0.1 only, on a free port, and serve
from a daemon thread until ``close()`` (or the end of a ``with`` block).

Benches import it too (``from tests.fileserver import FileServer`` with the repository root on sys.path):
it depends on the standard library only.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that doesn't log each request to stderr, with ``reply(status, data)``."""

    def reply(self, status: int, data: bytes = b"", content_type: str | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


class LoopbackServer:
    """``handler`` served on 127.0.0.1 from a daemon thread; ``url`` is its base, without a trailing slash."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return self.url

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FileServer(LoopbackServer):
    """``serve(name, data)`` puts ``data`` at ``GET /<name>`` and returns its URL; other paths answer 404."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                data = files.get(self.path.lstrip("/"))
                if data is None:
                    self.reply(404)
                else:
                    self.reply(200, data, "application/octet-stream")

        super().__init__(Handler)

    def serve(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"{self.url}/{name}"
