"""A chunked request body (``Transfer-Encoding: chunked``) is never read as empty (issue 13: the filter was
dropped and every record came back). The project's server (portal/front.py) reads it whole and hands it to
Django with its length, so it is answered like any other; a server that would pass a chunked body through to
Django's WSGI handler (gunicorn) gets 411 in the envelope from records/middleware.py. Tested through a real
server process: the test client has no transfer encoding."""
import http.client
import json

import pytest

from tests.liveportal import live_portal


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with live_portal(tmp_path_factory.mktemp("chunked-state")) as live:
        yield live


def send(portal, method: str, path: str, body: bytes | None = None, *, chunked: bool = False) -> tuple[int, dict]:
    """One request on its own connection; a chunked body goes out in 7-byte chunks (http.client encodes them)."""
    host, port = portal["base"].removeprefix("http://").split(":")
    headers = {"Authorization": f"Token {portal['token']}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        if chunked:
            pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
            connection.request(method, path, body=iter(pieces), headers=headers, encode_chunked=True)
        else:
            connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_chunked_query_is_read_whole_not_answered_unfiltered(portal):
    body = json.dumps({"name": "no-such-policy"}).encode()
    status, answer = send(portal, "POST", "/policy/query", body, chunked=True)
    assert status == 200 and answer["data"] == [], answer
    status, answer = send(portal, "POST", "/policy/query", json.dumps({"name": "ip_allowlist"}).encode(), chunked=True)
    assert status == 200 and [r["name"] for r in answer["data"]] == ["ip_allowlist"], answer


def test_a_chunked_create_is_read_whole(portal):
    body = json.dumps({"executor_id": "chunky", "executor_host_uri": "http://127.0.0.1:9"}).encode()
    status, answer = send(portal, "POST", "/executor", body, chunked=True)
    assert status == 201, answer
    status, answer = send(portal, "GET", "/executor/chunky")
    assert status == 200 and answer["data"]["executor_host_uri"] == "http://127.0.0.1:9", answer


@pytest.mark.django_db
def test_a_chunked_body_passed_through_to_django_is_refused_with_411(client):
    """What a WSGI server that doesn't read chunked bodies itself would hand over: refused, never read as empty."""
    answer = client.post("/policy/query", data=b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked")
    assert answer.status_code == 411
    assert answer.json()["success"] is False and "Content-Length" in answer.json()["message"]


def test_the_same_query_with_a_content_length_is_filtered(portal):
    body = json.dumps({"name": "no-such-policy"}).encode()
    status, answer = send(portal, "POST", "/policy/query", body)
    assert status == 200 and answer["data"] == [], answer
    status, everything = send(portal, "POST", "/policy/query", b"{}")
    assert status == 200 and everything["data"], everything  # the demo policy is there to be filtered out
