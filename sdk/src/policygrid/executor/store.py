"""Policy records and packages of the executor service, cached so that a warm call never leaves the process.

A call names its record in one of two ways.

* The record itself (``record``, with its ``release`` signature or null): the store verifies the signature
  against the service's keys, caches what it prepared by the SHA-256 of the record's canonical JSON, and never
  contacts the portal. A package it doesn't hold is ``PackageRequired``; the caller uploads it
  (``put_package``) and calls again.
* Only the URI (direct clients): the record is read from the portal (``GET /policy/<uri>`` with the service's
  own API token) and identified by its *stamp* ``"<code_digest>|<updated_at as a POSIX timestamp with
  microseconds>"``; the caller may send the stamp of the record it checked (``policy_stamp``), and the service
  reads the record again only when its cached one has another stamp, or, without a stamp, after
  ``record_ttl_seconds``. Packages go through the SDK's one loader (``load_package`` with the pinned digest, so
  a cached package is reused without any network access, and ``ensure_requirements``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..cache import PackageCache, digest_hex
from ..client import PortalClient
from ..errors import InputInvalid, IntegrityError, NotExecutable, PackageRequired, Unavailable
from ..fetch import FetchOptions
from ..lifecycle import EXECUTABLE_STATUSES
from ..package import check_package_dir, digest_of, load_record_package
from ..requirements import ensure_requirements
from ..signing import canonical_json, check_grant
from .keys import SigningKeys

# Records held by content, and remembered signature checks, before the oldest are dropped.
MAX_RECORDS = 512
MAX_VERIFIED = 4096


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
    def __init__(self, client: PortalClient | None, cache: PackageCache, fetch_options: FetchOptions,
                 keys: SigningKeys, ttl_seconds: float = 30, verify_signatures: bool = True) -> None:
        self.verify_signatures = verify_signatures
        self.client = client
        self.cache = cache
        self.fetch_options = fetch_options
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self.entries: dict[str, Resolved] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self.fetches = 0
        self.by_content: OrderedDict[str, Resolved] = OrderedDict()
        self._verified: set[tuple[str, str, str, int]] = set()
        self._uploads: dict[str, asyncio.Lock] = {}
        self.prepared = 0
        self.content_hits = 0
        self.uploads = 0

    # --- records sent with the call -----------------------------------------------------------------------

    async def resolve_record(self, record: dict[str, Any], release: dict[str, str] | None, dry_run: bool,
                             grant: dict[str, Any] | None = None, purpose: str = "call") -> Resolved:
        content = hashlib.sha256(canonical_json(record)).hexdigest()
        self._authorise(record, release, dry_run, content, grant, purpose)
        entry = self.by_content.get(content)
        if entry is not None:
            self.content_hits += 1
            self.by_content.move_to_end(content)
            return entry
        digest = record["code_digest"]
        package_dir = self.cache.lookup(digest)
        if package_dir is None:
            raise PackageRequired(f"this executor does not hold the package {digest} of {record['policy_rule_uri']}: "
                                  f"upload it with PUT /packages/{digest}, then repeat the call", code_digest=digest)
        requirements = await asyncio.to_thread(ensure_requirements, package_dir, root=self.cache.root / "requirements")
        self.prepared += 1
        entry = Resolved(record["policy_rule_uri"], record, f"content:{content}", digest, package_dir, requirements,
                         time.monotonic())
        self.by_content[content] = entry
        if len(self.by_content) > MAX_RECORDS:
            self.by_content.popitem(last=False)
        return entry

    def _authorise(self, record: dict[str, Any], release: dict[str, str] | None, dry_run: bool, content: str,
                   grant: dict[str, Any] | None, purpose: str = "call") -> None:
        """May this record run? With verification on: the portal's execution grant for exactly this call, and,
        unless the grant is for a dry run (drafts have no release), the record's release signature."""
        if not self.verify_signatures:
            return
        self._check_grant(grant, record, dry_run, purpose)
        if release is None:
            if not dry_run:
                raise IntegrityError(f"{record['policy_rule_uri']} was sent without a release signature: an "
                                     "unsigned record runs only as a dry run while this executor verifies signatures",
                                     errors={"release": ["required unless dry_run is true"]})
            return
        remembered = (content, release["key_id"], release["signature"], self.keys.generation)
        if remembered in self._verified:
            return
        self.keys.verify(record, release)
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()
        self._verified.add(remembered)

    def _check_grant(self, grant: dict[str, Any] | None, record: dict[str, Any], dry_run: bool,
                     purpose: str = "call") -> None:
        if not self.keys.keys:
            self.keys.verify(record, {"key_id": "", "signature": ""})  # raises, naming where keys were sought
        if isinstance(grant, dict) and grant.get("key_id") not in self.keys.keys:
            self.keys.refresh_soon()
        check_grant(grant, record, dry_run, self.keys.keys, time.time(), purpose)

    async def put_package(self, digest: str, data: bytes) -> tuple[str, bool]:
        """Unpack an uploaded package through the one cache: (its digest, whether it was new)."""
        digest = "sha256:" + digest_hex(digest)
        actual = digest_of(data)
        if not hmac.compare_digest(actual, digest):
            raise InputInvalid(f"the uploaded package's digest is {actual}, not {digest} as its URL says",
                               errors={"code_digest": [f"the uploaded bytes have digest {actual}"]})
        # One upload of a digest unpacks; the others wait for it and find it held (the cache's file lock
        # guards the same between processes).
        async with self._uploads.setdefault(digest, asyncio.Lock()):
            if self.cache.lookup(digest) is not None:
                return digest, False
            await asyncio.to_thread(self._unpack, digest, data)
            self.uploads += 1
            return digest, True

    def _unpack(self, digest: str, data: bytes) -> None:
        package_dir = self.cache.get_or_unpack(digest, lambda: data, check=check_package_dir)
        ensure_requirements(package_dir, root=self.cache.root / "requirements")

    # --- records read from the portal ---------------------------------------------------------------------

    async def resolve(self, uri: str, stamp: str | None = None) -> Resolved:
        if self.client is None:
            raise Unavailable("this executor has no portal to read policies from (POLICYGRID_URL): send the "
                              "policy's record with the call", errors={"record": ["required by this executor"]})
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
        if self.verify_signatures and record.get("status") not in EXECUTABLE_STATUSES:
            # A direct client brings no grant: the portal's own record says whether the version may run.
            raise NotExecutable(f"{uri} is {record.get('status')!r}: a direct call runs only approved or "
                                "deprecated versions (drafts run as dry runs through the portal)")
        # Signed releases are verified here when verification is on, with the service's keys when it has some.
        package = load_record_package(record, options=self.fetch_options, cache=self.cache, client=self.client,
                                      verify=self.verify_signatures, keys=self.keys.keys or None)
        requirements = ensure_requirements(package.path, root=self.cache.root / "requirements")
        return Resolved(uri, record, record_stamp(record), package.digest, package.path, requirements, time.monotonic())

    def stats(self) -> dict[str, Any]:
        return {"records": len(self.entries) + len(self.by_content), "records_by_uri": len(self.entries),
                "records_by_content": len(self.by_content), "records_prepared": self.prepared,
                "record_hits": self.content_hits, "packages_uploaded": self.uploads,
                "packages": len({e.digest for e in (*self.entries.values(), *self.by_content.values())}),
                "portal_fetches": self.fetches, "keys": self.keys.stats(), "root": str(self.cache.root)}
