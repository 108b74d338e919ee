"""Type 1 isolation (``isolate=True``): one policy instance in a pool of one sandboxed worker, called synchronously.

The pool is the executor service's own (``WorkerPool``, asyncio); it runs here on a private event-loop thread,
so the caller's thread only waits for each call's answer. The worker keeps the instance between calls
(``keep``), so a stateful policy keeps its state; a call that times out or kills its worker fails alone, and
the next call gets a fresh worker and so a fresh instance.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

from ..rule_runner import policy_uri
from .control import PoolLimits
from .pool import WorkerPool

# The name Type 1 callers know for the limits (``LocalPolicyEvaluator(isolation_limits=...)``).
IsolationLimits = PoolLimits
_RECORD_KEY = "type1"


class IsolatedRunner:
    """The same ``eval``/``management`` as PolicyRunner, executed in a supervised, sandboxed worker process."""

    def __init__(
        self,
        package_dir: Path,
        requirements_dir: Path | None,
        record: dict[str, Any],
        settings: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        validate: bool = True,
        limits: PoolLimits | None = None,
    ) -> None:
        self.limits = dataclasses.replace(limits or PoolLimits(), workers=1, label="isolated")
        self._record = record
        self._digest = Path(package_dir).name
        self._request = {"rk": _RECORD_KEY, "pkg": str(package_dir),
                         "req": str(requirements_dir) if requirements_dir else None, "uri": policy_uri(record),
                         "settings": settings, "parameters": parameters, "validate": validate, "keep": True}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="policygrid-isolated", daemon=True)
        self._thread.start()
        self._pool: WorkerPool | None = None
        try:
            self._pool = self._wait(self._make_pool())
            # The instance is built now, so a bad record or constructor fails here rather than at the first call.
            self._call({"op": "load"}, self.limits.start_timeout_seconds)
        except BaseException:
            self.close()
            raise

    async def _make_pool(self) -> WorkerPool:
        pool = WorkerPool(self.limits)
        await pool.start()
        return pool

    def _wait(self, coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _call(self, message: dict[str, Any], timeout: float) -> Any:
        if self._pool is None:
            raise RuntimeError("this isolated runner is closed")
        body = self._wait(self._pool.run(self._digest, {**self._request, **message}, self._record, _RECORD_KEY,
                                         timeout))
        return json.loads(body)

    def eval(self, input_data: Any) -> Any:
        return self._call({"op": "eval", "input_data": input_data}, self.limits.timeout_seconds)

    def management(self, action: str, data: dict[str, Any] | None = None) -> Any:
        return self._call({"op": "management", "action": action, "data": data}, self.limits.timeout_seconds)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        pool, self._pool = self._pool, None
        if pool is not None:
            self._wait(pool.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass
