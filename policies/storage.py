"""Where packages and assets live: the asset storage, the package cache, and a package's files for review.

Imports no model, so that the models (a policy lists its package's files) and the registration service
(which reads assets) both use it without importing each other.
"""
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from policygrid.cache import PackageCache
from policygrid.errors import PolicyGridError
from policygrid.fetch import FetchOptions
from policygrid.package import check_package_dir, verify_digest

MAX_REVIEW_FILES = 200
MAX_REVIEW_FILE_BYTES = 512 * 1024


def asset_storage():
    return storages["assets"]


def read_asset_bytes(asset) -> bytes:
    with asset_storage().open(asset.storage_key, "rb") as handle:
        return handle.read()


def fetch_options() -> FetchOptions:
    return FetchOptions(
        allow_private=settings.PACKAGE_ALLOW_PRIVATE_NETWORKS,
        allow_local_paths=settings.PACKAGE_ALLOW_LOCAL_PATHS,
        trusted_origins=(settings.PUBLIC_BASE_URL,),
    )


@lru_cache(maxsize=4)
def _cache(root: str) -> PackageCache:
    return PackageCache(root)


def package_cache() -> PackageCache:
    return _cache(str(settings.PACKAGE_CACHE_DIR))


def review_files(code: str, digest: str, read: Callable[[], bytes]) -> dict[str, bytes]:
    """The files (path → bytes) of the package pinned at ``digest``, unpacked from ``read()`` on a cache miss.

    Files over ``MAX_REVIEW_FILE_BYTES`` are replaced by a note; at most ``MAX_REVIEW_FILES`` are listed.
    """
    def verified() -> bytes:
        data = read()
        verify_digest(data, digest, code)
        return data

    try:
        root = package_cache().get_or_unpack(digest, verified, check=check_package_dir)
    except (PolicyGridError, ValidationError, OSError) as exc:
        return {"(package unavailable)": f"the package could not be read: {exc}".encode()}
    files: dict[str, bytes] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if len(files) >= MAX_REVIEW_FILES:
            break
        name = path.relative_to(root).as_posix()
        size = path.stat().st_size
        files[name] = path.read_bytes() if size <= MAX_REVIEW_FILE_BYTES else f"({size} bytes: too large to show)".encode()
    return files
