"""The portal's HTTP server: uvicorn (httptools, uvloop) with a bounded, timed request head, then portal/front.py.

    python -m portal.server --bind 127.0.0.1:8000 --workers 4 --threads 8 --access-log state/logs/access.log

uvicorn's own httptools protocol reads a request head of any size for as long as the client likes; this one
answers the JSON envelope (docs/api.md §1) and closes the connection when the request line is over
``MAX_URL_BYTES`` (414), a header over ``MAX_FIELD_BYTES`` or the head over ``MAX_FIELDS`` fields or
``MAX_HEAD_BYTES`` (431), the head is not in within ``HEAD_SECONDS`` of its first byte or of the connection
(408), and for any request the parser can't read (400), where uvicorn answered plain text.

**One listening socket per worker process.** uvicorn's own workers share one socket, and an event loop takes
every connection waiting when it wakes: a client that opens eight keep-alive connections at once had all eight
served by one process (one CPU, under its GIL) while the others idled. Here each worker process has a socket of
its own, all bound to the address with ``SO_REUSEPORT``, and the kernel spreads new connections across them.
With several workers this process supervises them (``portal.supervisor``: restarted with backoff, stopped with
it) and holds their sockets, so that connections coming while one restarts wait in its backlog.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_URL_BYTES = 8190
MAX_FIELD_BYTES = 8190
MAX_FIELDS = 100
MAX_HEAD_BYTES = 64 * 1024
HEAD_SECONDS = float(os.environ.get("POLICYGRID_WEB_HEAD_SECONDS", "10"))


class HeadRefused(Exception):
    """Raised from a parser callback: the parser stops, and uvicorn calls ``send_400_response``."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.refusal: tuple[int, str] | None = None
        self.head_timer = None
        self.start_head_timer()

    def connection_lost(self, exc) -> None:
        self.stop_head_timer()
        super().connection_lost(exc)

    def start_head_timer(self) -> None:
        self.stop_head_timer()
        self.head_bytes = 0
        self.head_fields = 0
        self.head_timer = self.loop.call_later(HEAD_SECONDS, self.head_timed_out)

    def stop_head_timer(self) -> None:
        if getattr(self, "head_timer", None) is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if not self.head_bytes:
            self.transport.close()  # an idle connection (no request begun): nobody to answer
            return
        self.refusal = (408, f"the request head did not arrive within {HEAD_SECONDS:g} s")
        self.send_400_response("")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.start_head_timer()  # the head is timed from its first byte

    def on_url(self, url: bytes) -> None:
        self.head_bytes += len(url)
        if len(self.url) + len(url) > MAX_URL_BYTES:
            self.refuse(414, f"the request target is over {MAX_URL_BYTES} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_fields += 1
        self.head_bytes += len(name) + len(value) + 4
        if len(name) + len(value) > MAX_FIELD_BYTES:
            self.refuse(431, f"a request header is over {MAX_FIELD_BYTES} bytes")
        if self.head_fields > MAX_FIELDS or self.head_bytes > MAX_HEAD_BYTES:
            self.refuse(431, f"the request head is over {MAX_FIELDS} headers or {MAX_HEAD_BYTES} bytes")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.stop_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's head is timed from now: an idle keep-alive connection is closed by uvicorn's own
        # keep-alive timeout, one that starts a head and dribbles it by this timer.
        if not self.transport.is_closing():
            self.start_head_timer()

    def refuse(self, status: int, message: str) -> None:
        self.refusal = (status, message)
        raise HeadRefused(message)

    def send_400_response(self, msg: str) -> None:
        from portal.front import envelope

        self.stop_head_timer()
        status, message = self.refusal or (400, "the request is not valid HTTP/1.1")
        start, body = envelope(status, message)
        reason = {400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long",
                  431: b"Request Header Fields Too Large"}[status]
        head = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        head += [name + b": " + value + b"\r\n" for name, value in start["headers"]]
        self.transport.write(b"".join(head) + b"\r\n" + body["body"])
        self.transport.close()


def listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket for a worker to inherit (``--fd``); with ``reuse_port``, one of a group bound to the
    same address, among which the kernel spreads new connections.

    TCP_NODELAY is set here because accepted connections inherit it: uvicorn takes an inherited descriptor for a
    Unix socket and so never sets it, and with Nagle's algorithm each small answer waited 40 ms for a delayed
    ACK (the execute route fell from ~150 to 20 calls/s at one client).
    """
    listener = socket.create_server((host, port), backlog=2048, reuse_port=reuse_port)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.set_inheritable(True)
    return listener


def worker_sockets(host: str, port: int, workers: int) -> list[socket.socket]:
    """``workers`` sockets bound to ``host:port`` with SO_REUSEPORT (port 0: the first one's port)."""
    first = listening_socket(host, port, reuse_port=True)
    port = first.getsockname()[1]
    return [first, *(listening_socket(host, port, reuse_port=True) for _ in range(workers - 1))]


def serve_workers(fds: list[int], args) -> None:
    """One worker process per socket, supervised until SIGTERM or SIGINT, then stopped gracefully."""
    from portal.supervisor import Supervisor

    supervisor = Supervisor(None, dict(os.environ), say=lambda line: print(line, file=sys.stderr, flush=True))
    for number, fd in enumerate(fds, 1):
        command = [sys.executable, "-m", "portal.server", "--fd", str(fd), "--workers", "1",
                   "--threads", str(args.threads), "--graceful-timeout", str(args.graceful_timeout)]
        if args.access_log:
            command += ["--access-log", args.access_log]
        supervisor.add(f"web worker {number}", command, pass_fds=(fd,))
    supervisor.run_until_stopped(grace=args.graceful_timeout + 5)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m portal.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default="127.0.0.1:8000", help="host:port")
    parser.add_argument("--fd", type=int, action="append",
                        help="serve this inherited listening socket instead of binding (the embedded run's supervisor "
                             "holds it, so a restart refuses no connection); repeated: one worker process per socket "
                             "(sockets bound with SO_REUSEPORT to one address)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes, each with its own socket (ignored with --fd: one per socket)")
    parser.add_argument("--threads", type=int, default=8, help="threads per process running Django")
    parser.add_argument("--access-log", help="file the access log is appended to")
    parser.add_argument("--graceful-timeout", type=int, default=5)
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    fds = args.fd or []
    if not fds and args.workers > 1:
        fds = [sock.detach() for sock in worker_sockets(host, int(port), args.workers)]
    if len(fds) > 1:
        serve_workers(fds, args)
        return
    # The worker builds the application from these (portal/asgi.py): uvicorn imports it by name.
    os.environ["POLICYGRID_WEB_THREADS"] = str(args.threads)
    if args.access_log:
        os.environ["POLICYGRID_ACCESS_LOG"] = args.access_log
    where = {"fd": fds[0]} if fds else {"host": host, "port": int(port)}
    uvicorn.run("portal.asgi:application", **where, http=f"{__name__}:BoundedHttpToolsProtocol", loop="uvloop",
                lifespan="off", access_log=False, timeout_keep_alive=int(HEAD_SECONDS),
                timeout_graceful_shutdown=args.graceful_timeout, backlog=2048,
                log_level=os.environ.get("POLICYGRID_WEB_LOG_LEVEL", "warning"))


if __name__ == "__main__":
    main()
