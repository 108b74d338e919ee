"""The `context` store passed to `eval` (docs/runtime.md §2): in memory for local runs, Redis for remote ones."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

_MISSING = object()


def _check_ttl(ttl: float | None) -> None:
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")


class BaseContext:
    """`get/set/delete` plus `[]`, `in` and `del`; `set(..., ttl=seconds)` makes a key expire."""

    def get(self, key: str, default: Any = None) -> Any:
        raise NotImplementedError

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.delete(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _MISSING) is not _MISSING


class MemoryContext(BaseContext):
    """A dict with expiry, for a policy that lives in the caller's process (Type 1)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[Any, float | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        entry = self._data.get(key)
        if entry is None:
            return default
        value, expires = entry
        if expires is not None and time.monotonic() >= expires:
            with self._lock:
                self._data.pop(key, None)
            return default
        return value

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        _check_ttl(ttl)
        with self._lock:
            self._data[key] = (value, time.monotonic() + ttl if ttl is not None else None)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class RedisContext(BaseContext):
    """Keys `policygrid:ctx:<namespace>:<key>`, values JSON, TTL by Redis itself (so it holds across replicas).

    The namespace is the policy URI (and the function name for Type 4), so policies never see each other's
    state. JSON rather than pickle: a value written by one policy version must never run code in another.
    """

    PREFIX = "policygrid:ctx:"

    def __init__(self, redis_client: Any, namespace: str) -> None:
        if not namespace:
            raise ValueError("a RedisContext needs a namespace (the policy URI)")
        self.redis = redis_client
        self.namespace = namespace
        self._prefix = f"{self.PREFIX}{namespace}:"

    def _key(self, key: str) -> str:
        if not isinstance(key, str):
            raise TypeError(f"context keys are strings, not {type(key).__name__}")
        return self._prefix + key

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.redis.get(self._key(key))
        if raw is None:
            return default
        return json.loads(raw)

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        _check_ttl(ttl)
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"context value for {key!r} is not JSON-serialisable: {exc}") from exc
        if ttl is None:
            self.redis.set(self._key(key), encoded)
        else:
            self.redis.set(self._key(key), encoded, px=max(1, int(ttl * 1000)))

    def delete(self, key: str) -> None:
        self.redis.delete(self._key(key))

    def clear(self) -> None:
        """Remove every key of this namespace (SCAN, never KEYS, so a big Redis isn't blocked)."""
        batch = []
        for key in self.redis.scan_iter(match=re.sub(r"([*?\[\]\\])", r"\\\1", self._prefix) + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                self.redis.delete(*batch)
                batch = []
        if batch:
            self.redis.delete(*batch)
