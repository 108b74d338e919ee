"""The portal's HTTP client for executors (executors/transport.py), against real servers on loopback."""
import json
import socket
import threading
import time

import pytest

from executors import transport
from tests.executors.conftest import free_port
from tests.fileserver import LoopbackServer, QuietHandler


class Recorder(LoopbackServer):
    """An HTTP/1.1 keep-alive server that records requests and counts connections."""

    def __init__(self):
        self.requests, self.connections = [], 0
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                outer.connections += 1
                super().setup()

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                if self.path == "/slow":
                    time.sleep(1.0)
                if self.path == "/hangup":
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.reply(201, json.dumps({"path": self.path, "echo": body.decode()}).encode())

            do_GET = do_POST  # noqa: N815

        super().__init__(Handler)


@pytest.fixture
def server():
    recorder = Recorder()
    yield recorder
    recorder.close()


def call(url, method="POST", body=b'{"a": 1}', connect_timeout=2.0, read_timeout=5.0, **headers):
    return transport.request(method, url, headers={"Authorization": "Bearer s3cret", **headers},
                             connect_timeout=connect_timeout, read_timeout=read_timeout, body=body)


def test_a_call_sends_headers_and_body_and_returns_status_and_body(server):
    reply = call(server.url + "/execute_policy")
    assert reply.status == 201 and reply.json() == {"path": "/execute_policy", "echo": '{"a": 1}'}
    method, path, headers, body = server.requests[0]
    assert (method, path, body) == ("POST", "/execute_policy", b'{"a": 1}')
    assert headers["Authorization"] == "Bearer s3cret" and "Expect" not in headers
    assert call(server.url + "/health", method="GET", body=None).json()["path"] == "/health"
    # The path as written, query included, fragment not; an address alone is "/".
    assert call(server.url + "/jobs?state=running#top", method="GET", body=None).json()["path"] == "/jobs?state=running"
    assert call(server.url, method="GET", body=None).json()["path"] == "/"


def test_calls_reuse_one_connection_and_concurrent_calls_have_their_own(server):
    for _ in range(5):
        call(server.url + "/x")
    assert server.connections == 1
    other = threading.Thread(target=call, args=(server.url + "/x",))
    other.start()
    other.join()
    assert server.connections == 1 and len(server.requests) == 6  # the process's pool, shared by its threads
    both = [threading.Thread(target=call, args=(server.url + "/slow",)) for _ in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join()
    assert server.connections == 2 and len(server.requests) == 8  # one connection serves one call at a time


def test_a_slow_answer_on_a_reused_connection_is_a_read_timeout(server):
    call(server.url + "/fast")
    started = time.monotonic()
    with pytest.raises(transport.ReadTimeoutError, match="Read timed out"):
        call(server.url + "/slow", read_timeout=0.3)
    assert time.monotonic() - started < 0.9
    assert call(server.url + "/after").status == 201  # the pool recovers on a new connection


def test_a_listener_that_never_accepts_is_a_connect_timeout():
    # A loopback listener whose accept queue is full drops further SYNs: the connection never completes.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    try:
        started = time.monotonic()
        with pytest.raises(transport.ConnectTimeoutError):
            call(f"http://127.0.0.1:{listener.getsockname()[1]}/x", connect_timeout=0.3)
        assert 0.25 < time.monotonic() - started < 2
    finally:
        for sock in (*fillers, listener):
            sock.close()


def test_a_closed_port_is_a_connect_failure():
    with pytest.raises(transport.ConnectFailed):
        call(f"http://127.0.0.1:{free_port()}/x")


def test_a_hang_up_without_an_answer_is_a_transport_error_not_a_reply(server):
    with pytest.raises(transport.TransportError) as caught:
        call(server.url + "/hangup")
    assert not isinstance(caught.value, transport.ReadTimeoutError | transport.ConnectTimeoutError)


def test_only_http_urls_and_no_proxy_from_the_environment(server, monkeypatch):
    with pytest.raises(transport.ConnectFailed, match="not an http"):
        call("file:///etc/passwd")
    proxy = Recorder()
    try:
        for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        assert call(server.url + "/direct").status == 201
        assert proxy.requests == [] and server.requests[-1][1] == "/direct"
    finally:
        proxy.close()
