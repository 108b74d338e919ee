"""The on-disk cache of unpacked packages, keyed by digest, safe under concurrent loads from many processes."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .archive import ArchiveLimits, safe_extract
from .errors import PackageError

_HEX = re.compile(r"^[0-9a-f]{64}$")


def default_cache_root() -> Path:
    return Path(os.environ.get("POLICYGRID_CACHE_DIR") or Path.home() / ".cache" / "policygrid")


def digest_hex(digest: str) -> str:
    """The 64 hex characters of a `sha256:<hex>` (or bare hex) digest; anything else is refused."""
    value = digest.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    if not _HEX.match(value):
        raise PackageError(
            f"'{digest}' is not a SHA-256 digest (expected 'sha256:' and 64 hex characters)",
            errors={"code_digest": ["not sha256:<64 hex>"]},
        )
    return value


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive `flock` held for the block; released by the kernel even if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class PackageCache:
    """`<root>/packages/<hex>/` holds complete unpacked packages; nothing else is ever visible there.

    An unpack happens in `<root>/tmp/` and is moved in place with one `rename`, so a reader sees either no
    folder or a complete, checked one. A per-digest `flock` makes one process unpack while the others wait
    and then reuse its result; the rename also tolerates losing a race where locks don't work (NFS).
    """

    def __init__(self, root: Path | str | None = None, limits: ArchiveLimits | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self.limits = limits or ArchiveLimits()
        self.packages_dir = self.root / "packages"
        self.tmp_dir = self.root / "tmp"
        self.locks_dir = self.root / "locks"

    def path_for(self, digest: str) -> Path:
        return self.packages_dir / digest_hex(digest)

    def lookup(self, digest: str) -> Path | None:
        path = self.path_for(digest)
        return path if path.is_dir() else None

    def get_or_unpack(
        self,
        digest: str,
        data_provider: Callable[[], bytes],
        check: Callable[[Path], None] | None = None,
    ) -> Path:
        """Return the unpacked folder of `digest`, calling `data_provider` and unpacking only on a miss.

        `check(folder)` runs on the unpacked temporary folder before it is published, so a package that
        fails its checks never enters the cache.
        """
        final = self.path_for(digest)
        if final.is_dir():
            return final
        hexdigest = final.name
        with file_lock(self.locks_dir / f"{hexdigest}.lock"):
            if final.is_dir():
                return final
            data = data_provider()
            self.packages_dir.mkdir(parents=True, exist_ok=True)
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f"{hexdigest[:12]}-", dir=self.tmp_dir))
            try:
                safe_extract(data, work, self.limits)
                # mkdtemp's 0700 would keep out the unprivileged user that policy code runs as.
                os.chmod(work, 0o755)
                if check is not None:
                    check(work)
                try:
                    os.rename(work, final)
                except OSError:
                    if not final.is_dir():
                        raise
                    # Someone else published the same digest first: theirs is identical, keep it.
            finally:
                if work.exists():
                    shutil.rmtree(work, ignore_errors=True)
        return final
