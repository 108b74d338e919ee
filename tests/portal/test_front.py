"""The portal's server faces slow and odd clients (issue 13): over-long targets and heads, bodies over the limit,
stalled heads and bodies and unreadable requests answer the JSON envelope; chunked bodies are read; and a
hundred slow connections don't keep good clients waiting."""
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.portal.embedded_run import GOOD_CALL, Embedded

HEAD_SECONDS, BODY_IDLE_SECONDS = 3, 2


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    # Few threads, so that a server which gives a thread to each slow client runs out of them at once.
    run = Embedded(tmp_path_factory.mktemp("front"), POLICYGRID_WEB_WORKERS="2", POLICYGRID_WEB_THREADS="4",
                   POLICYGRID_WEB_HEAD_SECONDS=str(HEAD_SECONDS),
                   POLICYGRID_WEB_BODY_IDLE_SECONDS=str(BODY_IDLE_SECONDS))
    try:
        yield run.start()
    finally:
        run.stop()


def exchange(port: int, data: bytes, *, timeout: float = 10, then=None) -> tuple[int, dict, bytes]:
    """Send raw bytes (then call ``then(sock)``), read the answer until the server closes; status and envelope."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if then:
            then(sock)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if (length and len(body) >= length[0]) or body.endswith(b"\r\n0\r\n\r\n"):
                break
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), received[:200]
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return int(head.split()[1]), json.loads(body), head


def dechunk(data: bytes) -> bytes:
    body = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        length = int(size.split(b";")[0], 16)
        if not length:
            break
        body, data = body + data[:length], data[length + 2:]
    return body


def request(method: str, path: str, token: str, headers: dict | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Token {token}",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def refused(envelope: dict, *words: str) -> None:
    assert envelope["success"] is False and set(envelope) == {"success", "message"}, envelope
    for word in words:
        assert word in envelope["message"], envelope


def test_an_over_long_target_answers_414_in_the_envelope(embedded):
    status, envelope, head = exchange(embedded.port, request("GET", "/policy?q=" + "a" * 20000, embedded.token))
    assert status == 414
    assert b"content-type: application/json" in head.lower()
    refused(envelope, "request target", "8190")


@pytest.mark.parametrize("headers", [{"X-Big": "b" * 10000}, {f"X-Many-{i}": "v" for i in range(150)}],
                         ids=["one header over 8190 bytes", "150 headers"])
def test_an_over_large_head_answers_431_in_the_envelope(embedded, headers):
    status, envelope, _ = exchange(embedded.port, request("GET", "/policy", embedded.token, headers))
    assert status == 431
    refused(envelope, "header")


def test_a_declared_body_over_the_limit_answers_413_before_it_is_sent(embedded):
    started = time.monotonic()
    status, envelope, _ = exchange(embedded.port, request(
        "POST", "/policy/query", embedded.token, {"Content-Type": "application/json", "Content-Length": 5 * 1024 * 1024}))
    assert status == 413 and time.monotonic() - started < 2
    refused(envelope, "limit is 1048576 bytes")


def test_a_chunked_body_over_the_limit_answers_413(embedded):
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    status, envelope, _ = exchange(embedded.port, request(
        "POST", "/policy/query", embedded.token, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        body))
    assert status == 413
    refused(envelope, "over the limit")


def test_a_chunked_body_is_read_whole(embedded):
    """A chunked filter used to be dropped, and every record came back."""
    def chunks(document):
        text = json.dumps(document).encode()
        yield from (text[i:i + 5] for i in range(0, len(text), 5))

    url = f"{embedded.base}/policy/query"
    headers = {**embedded.headers, "Content-Type": "application/json"}
    everything = requests.post(url, data=chunks({}), headers=headers, timeout=10).json()
    assert everything["success"] and len(everything["data"]) >= 1
    none = requests.post(url, data=chunks({"name": "no-such-policy"}), headers=headers, timeout=10).json()
    assert none == {**none, "success": True, "data": []}
    one = requests.post(url, data=chunks({"name": "ip_allowlist"}), headers=headers, timeout=10).json()
    assert [record["name"] for record in one["data"]] == ["ip_allowlist"]


def test_a_stalled_body_answers_408(embedded):
    started = time.monotonic()
    status, envelope, _ = exchange(embedded.port, request(
        "POST", "/policy/query", embedded.token, {"Content-Type": "application/json", "Content-Length": 100}, b"{"))
    assert status == 408 and BODY_IDLE_SECONDS - 0.5 < time.monotonic() - started < BODY_IDLE_SECONDS + 3
    refused(envelope, "did not arrive in time")


def test_a_dribbled_head_answers_408(embedded):
    def dribble(sock):
        for _ in range(2 * HEAD_SECONDS + 4):  # one byte a second, never finishing the head
            try:
                sock.sendall(b"X")
            except OSError:
                return
            time.sleep(0.5)

    started = time.monotonic()
    status, envelope, _ = exchange(embedded.port, b"GET /policy HTTP/1.1\r\nX-Slow: ", then=dribble)
    assert status == 408 and time.monotonic() - started < HEAD_SECONDS + 5
    refused(envelope, "request head")


def test_an_unreadable_request_answers_400_in_the_envelope(embedded):
    status, envelope, _ = exchange(embedded.port, b"GET /policy HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
    assert status == 400
    refused(envelope)


@pytest.mark.timeout(120)
def test_a_hundred_slow_connections_leave_good_clients_served_within_a_second(embedded):
    stop = threading.Event()

    def slow_client(index: int) -> None:
        """Half send their head a byte at a time, half a body of 100 bytes one byte at a time."""
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", embedded.port), timeout=30) as sock:
                    if index % 2:
                        sock.sendall(request("POST", "/policy/query", embedded.token,
                                             {"Content-Type": "application/json", "Content-Length": 100})[:-2])
                        sock.sendall(b"\r\n{")
                    else:
                        sock.sendall(b"GET /policy HTTP/1.1\r\n")
                    while not stop.is_set():
                        sock.sendall(b" " if index % 2 else b"X")
                        time.sleep(1)
            except OSError:
                time.sleep(0.1)  # answered (408) and closed: come back

    slow = [threading.Thread(target=slow_client, args=(i,), daemon=True) for i in range(100)]
    for thread in slow:
        thread.start()
    time.sleep(2)  # every slow connection open and holding whatever it can

    def good_client(_):
        timings, failures = [], 0
        session = requests.Session()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                answer = session.post(f"{embedded.base}/executor/local/execute_policy", json=GOOD_CALL,
                                      headers=embedded.headers, timeout=5)
                failures += not answer.json().get("success")
            except (requests.RequestException, ValueError):
                failures += 1
            timings.append(time.monotonic() - started)
        return timings, failures

    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(good_client, range(4)))
    finally:
        stop.set()
    timings = sorted(t for result, _ in results for t in result)
    failures = sum(failed for _, failed in results)
    p99 = timings[int(len(timings) * 0.99) - 1]
    assert failures == 0 and len(timings) >= 20, (failures, len(timings))
    assert p99 <= 1.0, f"p99 {p99:.2f} s over {len(timings)} good calls"
