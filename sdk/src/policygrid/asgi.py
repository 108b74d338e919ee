"""The little the data plane's bare ASGI servers share (the executor service, the function server).

No framework: each server's routing is a few dictionary look-ups. These helpers read a bounded body, check a
bearer secret in constant time and send a JSON answer.
"""

from __future__ import annotations

import hmac

from .errors import PolicyGridError

JSON_HEADERS = [(b"content-type", b"application/json")]


def refusal(status: int, message: str) -> PolicyGridError:
    """An answer of the HTTP layer itself (wrong method, no credentials, too large): no policy ran."""
    return PolicyGridError(message, status=status, error_type="http_error")


async def read_body(receive, limit: int) -> bytes:
    """The request's body, or 413 as soon as it outgrows ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise refusal(413, f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def bearer_matches(scope, expected: bytes) -> bool:
    """Whether the request's ``Authorization`` header is exactly ``expected`` (``b"Bearer <secret>"``)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return hmac.compare_digest(value, expected)
    return False


async def send_json(send, status: int, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
