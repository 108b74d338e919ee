"""The Redis context store of remote runs, reached by policy code only through its warm worker.

A policy's process never holds a connection to Redis: if it did, it could read and write every namespace (other
policies' state, and a Celery broker sharing the server). Instead, the call's process gets ``PipeContext``: each
``get``/``set``/``delete`` is one frame on a pipe to the warm worker, which runs it on its own connection under
the call's namespace only (``ContextServer``) and answers on a second pipe. The call's process is confined to
its declared ports (``confine.scope_child``), so the Redis port is not among them.

Frames are length-prefixed JSON (``frames.HEADER``): ``{"op": "get"|"set"|"delete", "key", "value"?, "ttl"?}``
→ ``{"ok": value}`` (``get``: ``{"missing": true}`` when absent) or ``{"error": message, "kind": "ValueError"|
"TypeError"|"unavailable"}``. A request larger than ``MAX_REQUEST_BYTES`` is refused without being read whole.
"""

from __future__ import annotations

import json
from typing import Any

from ..context import BaseContext, RedisContext, _check_ttl
from . import frames

MAX_REQUEST_BYTES = 1024 * 1024
_MISSING = object()


class ContextError(Exception):
    pass


class PipeContext(BaseContext):
    """The call's side: the store's operations as frames to the warm worker."""

    def __init__(self, request_fd: int, answer_fd: int) -> None:
        self._request_fd = request_fd
        self._answer_fd = answer_fd

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            data = json.dumps(message, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"context value for {message.get('key')!r} is not JSON-serialisable: {exc}") from exc
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError(f"context value for {message.get('key')!r} is larger than {MAX_REQUEST_BYTES} bytes")
        frames.write_all(self._request_fd, frames.HEADER.pack(len(data)) + data)
        header = frames.read_exact(self._answer_fd, 4)
        body = frames.read_exact(self._answer_fd, frames.HEADER.unpack(header)[0]) if header else None
        if body is None:
            raise ContextError("the context store's channel closed")
        answer = json.loads(body)
        if "error" in answer:
            kind = {"ValueError": ValueError, "TypeError": TypeError}.get(answer.get("kind"), ContextError)
            raise kind(answer["error"])
        return answer

    def get(self, key: str, default: Any = None) -> Any:
        if not isinstance(key, str):
            raise TypeError(f"context keys are strings, not {type(key).__name__}")
        answer = self._ask({"op": "get", "key": key})
        return default if answer.get("missing") else answer.get("ok")

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        _check_ttl(ttl)
        if not isinstance(key, str):
            raise TypeError(f"context keys are strings, not {type(key).__name__}")
        self._ask({"op": "set", "key": key, "value": value, "ttl": ttl})

    def delete(self, key: str) -> None:
        if not isinstance(key, str):
            raise TypeError(f"context keys are strings, not {type(key).__name__}")
        self._ask({"op": "delete", "key": key})


class ContextServer:
    """The warm worker's side: one Redis connection, the current call's namespace, one request at a time."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.namespace = ""
        self._client = None
        self._buffer = bytearray()

    def _store(self) -> RedisContext:
        if self._client is None:
            from .. import extras

            redis = extras.require("redis", "redis", "the Redis context store")
            self._client = redis.Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=5)
        return RedisContext(self._client, self.namespace)

    def feed(self, data: bytes) -> list[bytes]:
        """Bytes read from a call's request pipe → the answers (framed) to write back, one per whole request."""
        self._buffer += data
        answers = []
        while len(self._buffer) >= 4:
            size = frames.HEADER.unpack(self._buffer[:4])[0]
            if size > MAX_REQUEST_BYTES:
                raise ContextError(f"a context request of {size} bytes, more than allowed")
            if len(self._buffer) < 4 + size:
                break
            request, self._buffer = bytes(self._buffer[4:4 + size]), self._buffer[4 + size:]
            body = json.dumps(self._answer(request), default=str).encode()
            answers.append(frames.HEADER.pack(len(body)) + body)
        return answers

    def reset(self) -> None:
        self._buffer = bytearray()

    def _answer(self, raw: bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw)
            op, key = request.get("op"), request.get("key")
            if not isinstance(key, str):
                return {"error": "context keys are strings", "kind": "TypeError"}
            store = self._store()
            if op == "get":
                value = store.get(key, _MISSING)
                return {"missing": True} if value is _MISSING else {"ok": value}
            if op == "set":
                store.set(key, request.get("value"), request.get("ttl"))
                return {"ok": None}
            if op == "delete":
                store.delete(key)
                return {"ok": None}
            return {"error": f"unknown context operation {op!r}", "kind": "ValueError"}
        except (TypeError, ValueError) as exc:
            return {"error": str(exc), "kind": type(exc).__name__}
        except Exception as exc:  # noqa: BLE001 - Redis down or slow: the policy sees an error, not a hang
            return {"error": f"the context store is unavailable: {type(exc).__name__}: {exc}", "kind": "unavailable"}
