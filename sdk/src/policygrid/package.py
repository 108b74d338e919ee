"""Loading a policy package: fetch, verify the digest, unpack into the cache, check layout and source."""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .archive import check_layout
from .cache import PackageCache, digest_hex
from .errors import IntegrityError, PackageError
from .fetch import FetchOptions, fetch_bytes
from .source_check import check_policy_source


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PackageInfo:
    path: Path
    digest: str

    @property
    def function_path(self) -> Path:
        return self.path / "code" / "function.py"

    @property
    def requirements_path(self) -> Path:
        return self.path / "code" / "requirements.txt"


def check_package_dir(package_dir: Path) -> None:
    """Every static check of an unpacked package: layout, then the class contract found by parsing."""
    function_py = check_layout(package_dir)
    try:
        source = function_py.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PackageError(
            f"code/function.py is not UTF-8 text: {exc}", errors={"code/function.py": ["not UTF-8"]}
        ) from None
    check_policy_source(source)


def verify_digest(data: bytes, expected_digest: str, source: str = "the package") -> str:
    actual = digest_of(data)
    if not hmac.compare_digest(actual, "sha256:" + digest_hex(expected_digest)):
        raise IntegrityError(
            f"digest mismatch for {source}: expected sha256:{digest_hex(expected_digest)}, got {actual}",
            errors={"code_digest": [f"the package's digest is {actual}"]},
        )
    return actual


def load_package(
    code_url: str,
    expected_digest: str | None = None,
    *,
    options: FetchOptions | None = None,
    cache: PackageCache | None = None,
) -> PackageInfo:
    """Return the checked, unpacked package at `code_url`.

    With `expected_digest` a cached package is returned without any network access (the warm path), and on a
    miss the bytes are verified before a single member is unpacked. Without it the package is always fetched,
    since only its bytes tell which cached folder it is.
    """
    cache = cache or PackageCache()
    if expected_digest:
        digest = "sha256:" + digest_hex(expected_digest)
        cached = cache.lookup(digest)
        if cached is not None:
            return PackageInfo(cached, digest)

        def provider() -> bytes:
            data = fetch_bytes(code_url, options)
            verify_digest(data, digest, code_url)
            return data

        return PackageInfo(cache.get_or_unpack(digest, provider, check=check_package_dir), digest)

    data = fetch_bytes(code_url, options)
    digest = digest_of(data)
    return PackageInfo(cache.get_or_unpack(digest, lambda: data, check=check_package_dir), digest)


def zip_code_folder(folder: Path) -> bytes:
    """A reproducible zip of `folder/code/` (sorted names, fixed timestamps): the same tree, the same digest."""
    folder = Path(folder)
    code = folder / "code"
    if not (code / "function.py").is_file():
        raise PackageError(f"'{folder}' has no code/function.py", errors={"code/function.py": ["missing"]})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(code.rglob("*")):
            if "__pycache__" in path.parts or path.is_symlink() or not path.is_file():
                continue
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def read_archive_or_folder(path: Path) -> tuple[bytes | None, Path | None]:
    """(archive bytes, None) for a file, (None, folder) for a folder holding `code/` (or the `code/` folder)."""
    path = Path(path)
    if path.is_dir():
        if path.name == "code" and (path / "function.py").exists() and not (path / "code").exists():
            path = path.parent
        return None, path
    if path.is_file():
        return path.read_bytes(), None
    raise PackageError(f"'{path}' is neither a folder nor an archive file", errors={"path": [os.fspath(path)]})


def load_record_package(
    record: dict,
    *,
    options: FetchOptions | None = None,
    cache: PackageCache | None = None,
    client=None,
    verify: bool | None = None,
    keys=None,
) -> PackageInfo:
    """The one way a policy record's package is loaded, for every execution type.

    With signature verification on (`verify`, else `POLICYGRID_VERIFY_SIGNATURES`), the record's release
    signature is checked against the published keys (`keys`, else the portal's `GET /keys` through
    `client`) before anything is fetched; the package's bytes are then checked against the signed
    `code_digest` before a single member is unpacked (docs/governance.md §5, docs/runtime.md §1). Drafts and versions
    in review have no release to verify (they run only as dry runs, which the portal's gate allows to their
    authors and reviewers): their bytes are still checked against the pinned digest.
    """
    from .lifecycle import UNRELEASED_STATES
    from .signing import verification_enabled, verify_release

    uri = record.get("policy_rule_uri", "?")
    code = record.get("code")
    if not code:
        raise PackageError(f"policy {uri} has no code location", errors={"code": ["empty"]})
    options = options or (client.fetch_options() if client is not None else FetchOptions())
    if client is not None and not (code.startswith("/") and options.allow_local_paths):
        # A path-only `code` (e.g. "/asset-object/<id>") is an asset on the portal itself; one under the portal's
        # public address goes through the address this client uses.
        code = client.portal_location(code)
    pinned = record.get("code_digest") or None
    if verification_enabled(verify) and record.get("status") not in UNRELEASED_STATES:
        if keys is None:
            if client is None:
                raise IntegrityError("signature verification is on, but there are no keys and no portal to ask for them")
            keys = client.request("GET", "/keys").get("data", [])
        verify_release(record, None, keys)
        pinned = record["code_digest"]  # verify_release refuses a record without one
    return load_package(code, pinned, options=options, cache=cache)
