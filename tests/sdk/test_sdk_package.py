"""load_package: digest pinning, the warm path, concurrent loads from many processes, and the loader."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from policygrid.cache import PackageCache
from policygrid.errors import IntegrityError, PackageError, PolicyError, Unavailable
from policygrid.fetch import FetchOptions
from policygrid.loader import load_rule_class
from policygrid.package import digest_of, load_package, zip_code_folder

LOOPBACK = FetchOptions(allow_private=True)


def test_load_package_fetches_verifies_and_unpacks_once(http_server, policy_archive, cache):
    data = policy_archive()
    url = http_server.serve("/pkg.zip", data)
    info = load_package(url, digest_of(data), options=LOOPBACK, cache=cache)
    assert info.digest == digest_of(data)
    assert info.function_path.is_file()
    assert len(http_server.requests) == 1

    again = load_package(url, digest_of(data), options=LOOPBACK, cache=cache)
    assert again == info
    assert len(http_server.requests) == 1  # the warm path never touches the network


def test_load_package_without_a_digest_always_fetches_and_reports_the_digest(http_server, policy_archive, cache):
    data = policy_archive()
    url = http_server.serve("/pkg.zip", data)
    assert load_package(url, options=LOOPBACK, cache=cache).digest == digest_of(data)
    assert load_package(url, options=LOOPBACK, cache=cache).digest == digest_of(data)
    assert len(http_server.requests) == 2


def test_digest_mismatch_is_an_integrity_error_and_nothing_is_unpacked(http_server, policy_archive, cache):
    data = policy_archive()
    url = http_server.serve("/pkg.zip", data)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(IntegrityError, match=f"expected {wrong}, got {digest_of(data)}") as caught:
        load_package(url, wrong, options=LOOPBACK, cache=cache)
    assert caught.value.error_type == "integrity"
    assert not cache.packages_dir.exists() or list(cache.packages_dir.iterdir()) == []
    assert not cache.tmp_dir.exists() or list(cache.tmp_dir.iterdir()) == []


def test_malformed_digest_is_refused(policy_archive, cache):
    with pytest.raises(PackageError, match="not a SHA-256 digest"):
        load_package("http://127.0.0.1:1/x.zip", "md5:abc", options=LOOPBACK, cache=cache)


def test_unreachable_package_url_is_unavailable(closed_port, cache):
    with pytest.raises(Unavailable):
        load_package(f"http://127.0.0.1:{closed_port}/pkg.zip", "sha256:" + "1" * 64, options=LOOPBACK, cache=cache)


def test_zip_code_folder_is_reproducible(ip_allowlist_dir):
    assert zip_code_folder(ip_allowlist_dir) == zip_code_folder(ip_allowlist_dir)


# --- concurrency ------------------------------------------------------------------------------------------

LOADER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import policygrid.cache as cache_module
    from policygrid.cache import PackageCache
    from policygrid.fetch import FetchOptions
    from policygrid.package import load_package

    url, digest, root, counter = sys.argv[1:5]
    real_extract = cache_module.safe_extract

    def counting_extract(*args, **kwargs):
        with open(counter, "a") as handle:
            handle.write("unpack\\n")
        time.sleep(0.5)  # hold the lock long enough for every other process to arrive and wait
        return real_extract(*args, **kwargs)

    cache_module.safe_extract = counting_extract
    info = load_package(url, digest, options=FetchOptions(allow_private=True), cache=PackageCache(root))
    print(info.path)
    """
)


@pytest.mark.slow
def test_concurrent_loads_from_several_processes_unpack_once_and_all_succeed(http_server, policy_archive, tmp_path):
    data = policy_archive()
    url = http_server.serve("/pkg.zip", data)
    counter = tmp_path / "unpacks.log"
    root = tmp_path / "shared-cache"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", LOADER_SCRIPT, url, digest_of(data), str(root), str(counter)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, [err for _, err in results]
    paths = {out.strip() for out, _ in results}
    assert paths == {str(root / "packages" / digest_of(data).removeprefix("sha256:"))}
    assert counter.read_text().count("unpack") == 1
    assert list((root / "tmp").iterdir()) == []


def test_a_lost_rename_race_is_tolerated(policy_archive, tmp_path, monkeypatch):
    # Where flock doesn't serialise (NFS), two unpacks may race: the loser keeps the winner's folder.
    data = policy_archive()
    cache = PackageCache(tmp_path / "cache")
    digest = digest_of(data)
    import policygrid.cache as cache_module

    real_rename = cache_module.os.rename

    def racing_rename(src, dst):
        real_rename(src, dst)  # "another process" publishes first …
        Path(src).mkdir()
        raise OSError(39, "Directory not empty")  # … so our own rename fails

    monkeypatch.setattr(cache_module.os, "rename", racing_rename)
    path = cache.get_or_unpack(digest, lambda: data)
    assert (path / "code" / "function.py").is_file()
    assert list(cache.tmp_dir.iterdir()) == []


# --- loader -----------------------------------------------------------------------------------------------


def unpack(cache: PackageCache, data: bytes) -> Path:
    return cache.get_or_unpack(digest_of(data), lambda: data)


def test_loader_returns_the_class_and_caches_it_per_package(policy_archive, cache):
    path = unpack(cache, policy_archive())
    first = load_rule_class(path)
    assert first.__name__ == "AIOSv1PolicyRule"
    assert load_rule_class(path) is first
    assert first.__module__ == f"policygrid_pkg_{path.name[:32]}.function"


def test_two_versions_of_a_policy_load_side_by_side(policy_archive, cache):
    v1 = load_rule_class(unpack(cache, policy_archive(extra={"code/VERSION": "1"})))
    v2 = load_rule_class(unpack(cache, policy_archive(extra={"code/VERSION": "2"})))
    assert v1 is not v2


def test_relative_imports_of_sibling_modules_work(policy_archive, cache):
    source = "from .helpers import answer\n\nclass AIOSv1PolicyRule:\n    def __init__(self, *a): pass\n    def eval(self, p, i, c):\n        return {'answer': answer()}\n"
    rule = load_rule_class(unpack(cache, policy_archive(source, extra={"code/helpers.py": "def answer():\n    return 42\n"})))
    assert rule(None, {}, {}).eval({}, {}, None) == {"answer": 42}


def test_policy_raising_at_import_is_a_policy_error_with_its_line(policy_archive, cache):
    source = "x = 1\nraise RuntimeError('no config')\n"
    with pytest.raises(PolicyError, match=r"RuntimeError: no config \(line 2\)"):
        load_rule_class(unpack(cache, policy_archive(source)))


def test_missing_import_is_a_policy_error_naming_the_module(policy_archive, cache):
    with pytest.raises(PolicyError, match="No module named 'surely_not_installed_pkg'"):
        load_rule_class(unpack(cache, policy_archive("import surely_not_installed_pkg\n")))


def test_warm_load_of_a_cached_digest_is_fast(http_server, policy_archive, cache):
    data = policy_archive()
    url = http_server.serve("/pkg.zip", data)
    load_rule_class(load_package(url, digest_of(data), options=LOOPBACK, cache=cache).path)
    start = time.perf_counter()
    info = load_package(url, digest_of(data), options=LOOPBACK, cache=PackageCache(cache.root))
    load_rule_class(info.path)
    assert time.perf_counter() - start < 0.02
