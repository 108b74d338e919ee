"""The signing keys the executor service verifies releases with: loaded at start-up, refreshed in the background.

The keys come from ``POLICYGRID_SIGNING_KEYS_FILE`` (the JSON of the portal's ``GET /keys``) when it is set,
else from the portal (``GET /keys``). They are read again every ``POLICYGRID_KEYS_REFRESH_SECONDS`` and soon
after a release names a key id the service doesn't know (a key the portal created since) — always in the
background: a call never waits for the portal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from ..client import PortalClient
from ..errors import IntegrityError
from ..signing import normalise_keys, policy_statement, verify_statement

logger = logging.getLogger("policygrid.executor")

# At most one refresh a second however many calls name unknown keys.
_MIN_REFRESH_INTERVAL = 1.0


class SigningKeys:
    def __init__(self, client: PortalClient | None, keys_file: Path | None, refresh_seconds: float) -> None:
        self.client = client
        self.keys_file = keys_file
        self.refresh_seconds = refresh_seconds
        self.keys: dict[str, dict[str, Any]] = {}
        # Bumped whenever the set of keys changes: verifications remembered under an older set don't count.
        self.generation = 0
        self.loads = 0
        self.last_error: str | None = None
        self.loaded_at: float | None = None
        self._wanted: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    @property
    def source(self) -> str:
        if self.keys_file is not None:
            return f"file {self.keys_file}"
        if self.client is not None:
            return f"portal {self.client.base_url}/keys"
        return "none (set POLICYGRID_SIGNING_KEYS_FILE or POLICYGRID_URL)"

    def _read(self) -> dict[str, dict[str, Any]]:
        if self.keys_file is not None:
            return normalise_keys(json.loads(self.keys_file.read_text()))
        if self.client is not None:
            return normalise_keys(self.client.request("GET", "/keys").get("data", []))
        return {}

    async def load(self) -> None:
        self.loads += 1
        try:
            keys = await asyncio.to_thread(self._read)
        except Exception as exc:  # noqa: BLE001 - the service keeps the keys it had and says why in /health
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("could not read the signing keys from %s: %s", self.source, self.last_error)
            return
        self.last_error = None
        self.loaded_at = time.time()
        if keys != self.keys:
            self.keys = keys
            self.generation += 1

    async def start(self) -> None:
        self._wanted = asyncio.Event()
        await self.load()
        self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _refresh_forever(self) -> None:
        assert self._wanted is not None
        while True:
            await asyncio.sleep(_MIN_REFRESH_INTERVAL)
            try:
                await asyncio.wait_for(self._wanted.wait(), max(0.0, self.refresh_seconds - _MIN_REFRESH_INTERVAL))
            except TimeoutError:
                pass
            self._wanted.clear()
            await self.load()

    def verify(self, record: dict[str, Any], release: dict[str, str]) -> str:
        """Verify ``release`` over the record's statement; return the key id, or raise IntegrityError."""
        if not self.keys:
            self.refresh_soon()  # the source may answer now (a portal that was down at start-up)
            why = f" (last attempt: {self.last_error})" if self.last_error else ""
            raise IntegrityError(f"this executor verifies release signatures but has no signing keys: source "
                                 f"{self.source}{why}", errors={"release": ["no signing keys to verify with"]})
        if release["key_id"] not in self.keys:
            self.refresh_soon()  # a key created since the last refresh: read the keys again, in the background
        return verify_statement(policy_statement(record), release, self.keys)

    def refresh_soon(self) -> None:
        if self._wanted is not None:
            self._wanted.set()

    def stats(self) -> dict[str, Any]:
        return {"source": self.source, "count": len(self.keys), "loads": self.loads, "generation": self.generation,
                "loaded_at": self.loaded_at, "last_error": self.last_error}
