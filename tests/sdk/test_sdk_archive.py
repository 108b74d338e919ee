"""Safe unpacking and package checks: the attack suite of docs/runtime.md §1, each refused with a clear error."""

from __future__ import annotations

import os
import tarfile
import uuid
from pathlib import Path

import pytest
from policygrid.archive import ArchiveLimits, detect_format, safe_extract
from policygrid.cache import PackageCache
from policygrid.errors import PackageError, PackageTooLarge
from policygrid.package import check_package_dir, digest_of
from sdk_helpers import (
    FORMATS,
    MINIMAL_POLICY,
    build_archive,
    build_tar,
    build_zip,
    tar_file,
    tar_special,
    zip_symlink,
)


def files_outside_cache(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "cache" not in p.relative_to(root).parts}


def assert_refused(data: bytes, cache: PackageCache, *, match: str, member: str | None = None) -> PackageError:
    """Unpacking through the cache fails naming the problem, and leaves nothing behind anywhere."""
    outside_before = files_outside_cache(cache.root.parent)
    with pytest.raises(PackageError, match=match) as caught:
        cache.get_or_unpack(digest_of(data), lambda: data, check=check_package_dir)
    if member is not None:
        assert member in caught.value.message
        assert member in caught.value.errors
    assert not cache.packages_dir.exists() or list(cache.packages_dir.iterdir()) == []
    assert not cache.tmp_dir.exists() or list(cache.tmp_dir.iterdir()) == []
    assert files_outside_cache(cache.root.parent) == outside_before
    return caught.value


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_archive_format_is_recognised_by_content_and_unpacked(fmt, cache, policy_archive):
    data = policy_archive(MINIMAL_POLICY, fmt, extra={"code/data/table.csv": "a,b\n"})
    assert detect_format(data) == fmt
    path = cache.get_or_unpack(digest_of(data), lambda: data, check=check_package_dir)
    assert (path / "code" / "function.py").read_text() == MINIMAL_POLICY
    assert (path / "code" / "data" / "table.csv").read_text() == "a,b\n"
    assert path == cache.packages_dir / digest_of(data).removeprefix("sha256:")


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_member_with_parent_component_is_refused(fmt, cache):
    data = build_archive({"code/function.py": MINIMAL_POLICY, "code/../../../../escaped.txt": "x"}, fmt)
    assert_refused(data, cache, match=r"'\.\.' path component", member="code/../../../../escaped.txt")


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_member_with_absolute_path_is_refused(fmt, cache):
    target = f"/tmp/policygrid-escape-{uuid.uuid4().hex}.txt"
    data = build_archive({"code/function.py": MINIMAL_POLICY, target: "x"}, fmt)
    assert_refused(data, cache, match="absolute path", member=target)
    assert not os.path.exists(target)


def test_tar_symlink_leaving_the_folder_is_refused(cache):
    data = build_tar(
        [tar_file("code/function.py", MINIMAL_POLICY), tar_special("code/etc", tarfile.SYMTYPE, "../../../../etc")]
    )
    assert_refused(data, cache, match="leaves the package folder", member="code/etc")


def test_tar_absolute_symlink_is_refused(cache):
    data = build_tar([tar_file("code/function.py", MINIMAL_POLICY), tar_special("code/pw", tarfile.SYMTYPE, "/etc/passwd")])
    assert_refused(data, cache, match="leaves the package folder", member="code/pw")


def test_symlink_escaping_through_another_symlink_is_refused(cache):
    # Each link looks inside on its own; only resolving them together shows the escape.
    data = build_tar(
        [
            tar_file("code/function.py", MINIMAL_POLICY),
            tar_special("here", tarfile.SYMTYPE, "."),
            tar_special("code/out", tarfile.SYMTYPE, "../here/../outside"),
        ]
    )
    assert_refused(data, cache, match="leaves the package folder")


@pytest.mark.parametrize("build", ["zip", "tar"])
def test_a_chain_of_links_that_leaves_the_folder_only_once_all_exist_is_refused(build, cache):
    """Issue 13: "code/sub/a -> c/../../.." resolves inside while "c" is missing, and "code/sub/c -> .." is inside
    on its own; together "a" leads out of the package folder. Every link is resolved again once all exist."""
    if build == "zip":
        data = build_zip([("code/function.py", MINIMAL_POLICY), zip_symlink("code/sub/a", "c/../../.."),
                          zip_symlink("code/sub/c", "..")])
    else:
        data = build_tar([tar_file("code/function.py", MINIMAL_POLICY),
                          tar_special("code/sub/a", tarfile.SYMTYPE, "c/../../.."),
                          tar_special("code/sub/c", tarfile.SYMTYPE, "..")])
    assert_refused(data, cache, match="leaves the package folder", member="code/sub/a")


def test_a_longer_chain_of_links_through_links_is_refused(tmp_path):
    data = build_tar([tar_file("code/function.py", MINIMAL_POLICY),
                      tar_special("code/x/p", tarfile.SYMTYPE, "q/.."),
                      tar_special("code/x/q", tarfile.SYMTYPE, "r/../.."),
                      tar_special("code/x/r", tarfile.SYMTYPE, "s"),
                      tar_special("code/x/s", tarfile.SYMTYPE, "..")])
    with pytest.raises(PackageError, match="leaves the package folder"):
        safe_extract(data, tmp_path / "pkg")


def test_link_and_file_at_the_same_path_is_refused(cache):
    # Links are made after all files, so "code/dir/x.txt" is never written through the link "code/dir".
    data = build_tar(
        [
            tar_file("code/function.py", MINIMAL_POLICY),
            tar_special("code/dir", tarfile.SYMTYPE, "../../../.."),
            tar_file("code/dir/x.txt", "x"),
        ]
    )
    assert_refused(data, cache, match="leaves the package folder|replaces an existing member")


def test_zip_symlink_leaving_the_folder_is_refused(cache):
    data = build_zip([("code/function.py", MINIMAL_POLICY), zip_symlink("code/escape", "../../../../etc/passwd")])
    assert_refused(data, cache, match="leaves the package folder", member="code/escape")


def test_symlink_inside_the_folder_is_kept(cache):
    data = build_tar([tar_file("code/function.py", MINIMAL_POLICY), tar_special("code/alias.py", tarfile.SYMTYPE, "function.py")])
    path = cache.get_or_unpack(digest_of(data), lambda: data, check=check_package_dir)
    assert (path / "code" / "alias.py").read_text() == MINIMAL_POLICY


@pytest.mark.parametrize("link", ["/etc/passwd", "../../../../etc/passwd", "code/not-in-archive"])
def test_hardlink_leaving_the_folder_is_refused(link, cache):
    data = build_tar([tar_file("code/function.py", MINIMAL_POLICY), tar_special("code/hard", tarfile.LNKTYPE, link)])
    assert_refused(data, cache, match="refused archive member 'code/hard'", member="code/hard")


def test_hardlink_to_an_earlier_member_becomes_a_copy(cache):
    data = build_tar([tar_file("code/function.py", MINIMAL_POLICY), tar_special("code/copy.py", tarfile.LNKTYPE, "code/function.py")])
    path = cache.get_or_unpack(digest_of(data), lambda: data, check=check_package_dir)
    copy = path / "code" / "copy.py"
    assert copy.read_text() == MINIMAL_POLICY
    assert copy.stat().st_ino != (path / "code" / "function.py").stat().st_ino


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_and_fifo_members_are_refused(kind, cache):
    data = build_tar([tar_file("code/function.py", MINIMAL_POLICY), tar_special("code/dev", kind)])
    assert_refused(data, cache, match="device, FIFO or other special file", member="code/dev")


@pytest.mark.parametrize("fmt", ["zip", "tar.gz", "tar.bz2"])
def test_compression_bomb_is_stopped_while_inflating(fmt, cache):
    data = build_archive({"code/function.py": MINIMAL_POLICY, "code/zeros.bin": b"\0" * (30 * 1024 * 1024)}, fmt)
    assert len(data) < 300 * 1024
    error = assert_refused(data, cache, match="compression ratio exceeds 100", member="code/zeros.bin")
    assert isinstance(error, PackageTooLarge)


def test_total_unpacked_size_is_capped_without_trusting_headers(tmp_path):
    data = build_archive({"code/function.py": MINIMAL_POLICY, "code/blob.bin": os.urandom(5000)}, "tar")
    cache = PackageCache(tmp_path / "cache", limits=ArchiveLimits(max_total_bytes=4000))
    assert_refused(data, cache, match="more than 4000 bytes", member="code/blob.bin")


def test_too_many_members_is_refused(cache):
    files = {f"code/f{i}.txt": "" for i in range(10_001)}
    files["code/function.py"] = MINIMAL_POLICY
    assert_refused(build_zip(list(files.items())), cache, match="more than 10000 members")


@pytest.mark.parametrize("fmt", ["tar", "tar.xz"])
def test_member_count_is_capped_while_streaming(fmt, tmp_path):
    files = {f"code/f{i}.txt": "" for i in range(6)}
    files["code/function.py"] = MINIMAL_POLICY
    cache = PackageCache(tmp_path / "cache", limits=ArchiveLimits(max_members=5))
    assert_refused(build_archive(files, fmt), cache, match="more than 5 members", member="code/f5.txt")


@pytest.mark.parametrize(
    "data",
    [b"just some text, not an archive", b"\x89PNG\r\n\x1a\n" + b"\0" * 400, b"", b"\x1f\x8bnot really gzip"],
    ids=["text", "png", "empty", "fake-gzip"],
)
def test_a_file_that_is_no_archive_is_refused(data, cache):
    assert_refused(data, cache, match="not a recognised archive|corrupt")


def test_missing_code_folder_is_refused(cache):
    data = build_zip([("function.py", MINIMAL_POLICY)])
    assert_refused(data, cache, match="no top-level folder 'code/'.*function.py")


def test_missing_function_py_is_refused(cache):
    data = build_zip([("code/main.py", MINIMAL_POLICY)])
    assert_refused(data, cache, match="no file 'code/function.py'")


def test_missing_class_is_refused(cache, policy_archive):
    data = policy_archive("class SomethingElse:\n    def eval(self, p, i, c):\n        return {}\n")
    assert_refused(data, cache, match="no top-level class 'AIOSv1PolicyRule'")


def test_class_without_eval_is_refused(cache, policy_archive):
    data = policy_archive("class AIOSv1PolicyRule:\n    def evaluate(self, p, i, c):\n        return {}\n")
    assert_refused(data, cache, match="has no 'eval' method")


def test_syntax_error_is_refused_with_its_line_number(cache, policy_archive):
    data = policy_archive("class AIOSv1PolicyRule:\n    def eval(self, p, i, c)\n        return {}\n")
    error = assert_refused(data, cache, match="syntax error at line 2")
    assert "code/function.py" in error.errors


def test_source_is_checked_without_being_executed(cache, policy_archive, tmp_path):
    marker = tmp_path / "executed"
    source = f"open({str(marker)!r}, 'w').write('x')\n" + MINIMAL_POLICY
    data = policy_archive(source)
    cache.get_or_unpack(digest_of(data), lambda: data, check=check_package_dir)
    assert not marker.exists()


def test_eval_inherited_from_a_base_in_the_same_file_counts(cache, policy_archive):
    source = "class Base:\n    def eval(self, p, i, c):\n        return {}\n\nclass AIOSv1PolicyRule(Base):\n    pass\n"
    data = policy_archive(source)
    cache.get_or_unpack(digest_of(data), lambda: data, check=check_package_dir)


def test_safe_extract_names_the_member_in_the_error(tmp_path):
    data = build_tar([tar_file("code/function.py", "x"), tar_special("code/fifo", tarfile.FIFOTYPE)])
    with pytest.raises(PackageError) as caught:
        safe_extract(data, tmp_path / "out")
    assert caught.value.errors == {"code/fifo": ["device, FIFO or other special file"]}
    assert caught.value.to_dict()["error_type"] == "package_invalid"
