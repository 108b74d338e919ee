"""Policy records and packages of the executor service, cached so that a warm call never leaves the process.

Records are read from the portal (``GET /policy/<uri>`` with the service's own API token). A record is
identified by its *stamp* ``"<code_digest>|<updated_at as a POSIX timestamp with microseconds>"``: the portal
sends the stamp of the record it checked with each call (``policy_stamp``), and the service fetches the
record again only when its cached one has another stamp. A caller that sends no stamp gets a cached record
at most ``record_ttl_seconds`` old. Packages go through the SDK's one loader (``load_package`` with the
pinned digest, so a cached package is reused without any network access, and ``ensure_requirements``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..cache import PackageCache
from ..client import PortalClient
from ..fetch import FetchOptions
from ..package import load_record_package
from ..requirements import ensure_requirements


def record_stamp(record: dict[str, Any]) -> str:
    """The version stamp of a record as the portal serialises it (``code_digest`` + ``updated_at``)."""
    updated = record.get("updated_at") or ""
    try:
        moment = f"{datetime.fromisoformat(str(updated)).timestamp():.6f}"
    except ValueError:
        moment = str(updated)
    return f"{record.get('code_digest') or ''}|{moment}"


@dataclass
class Resolved:
    uri: str
    record: dict[str, Any]
    stamp: str
    digest: str
    package_dir: Path
    requirements_dir: Path | None
    fetched_at: float

    @property
    def record_key(self) -> str:
        return f"{self.uri}|{self.stamp}"


class PolicyStore:
    def __init__(self, client: PortalClient, cache: PackageCache, fetch_options: FetchOptions,
                 ttl_seconds: float = 30, verify_signatures: bool | None = None) -> None:
        self.verify_signatures = verify_signatures
        self.client = client
        self.cache = cache
        self.fetch_options = fetch_options
        self.ttl_seconds = ttl_seconds
        self.entries: dict[str, Resolved] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self.fetches = 0

    async def resolve(self, uri: str, stamp: str | None = None) -> Resolved:
        entry = self.entries.get(uri)
        if entry is not None and (entry.stamp == stamp if stamp else
                                  time.monotonic() - entry.fetched_at < self.ttl_seconds):
            return entry
        pending = self._inflight.get(uri)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._inflight[uri] = future
        try:
            entry = await asyncio.to_thread(self._load, uri)
            self.entries[uri] = entry
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # consumed here: waiters re-raise it, nobody else must log it
            raise
        finally:
            self._inflight.pop(uri, None)

    def _load(self, uri: str) -> Resolved:
        self.fetches += 1
        record = self.client.get_policy(uri)
        # Signed releases are verified here when verification is on (the default for the service).
        package = load_record_package(record, options=self.fetch_options, cache=self.cache, client=self.client,
                                      verify=self.verify_signatures)
        requirements = ensure_requirements(package.path, root=self.cache.root / "requirements")
        return Resolved(uri, record, record_stamp(record), package.digest, package.path, requirements, time.monotonic())

    def stats(self) -> dict[str, Any]:
        return {"records": len(self.entries), "packages": len({e.digest for e in self.entries.values()}),
                "portal_fetches": self.fetches, "root": str(self.cache.root)}
