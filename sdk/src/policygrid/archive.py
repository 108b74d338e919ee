"""Safe unpacking of policy archives (zip, tar, tar.gz, tar.xz, tar.bz2) and the package layout check."""

from __future__ import annotations

import io
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import PackageError, PackageTooLarge

MiB = 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps of docs/runtime.md §1. The ratio is unpacked bytes over archive bytes; small archives get
    `ratio_grace_bytes` of slack because a few KB of source legitimately compress better than 100:1."""

    max_members: int = 10_000
    max_total_bytes: int = 200 * MiB
    max_ratio: float = 100
    ratio_grace_bytes: int = 1 * MiB


@dataclass
class _Member:
    name: str
    kind: str  # "file", "dir", "symlink", "hardlink"
    link: str = ""
    open: Callable[[], io.BufferedIOBase] | None = None


def detect_format(data: bytes) -> str | None:
    """Name the archive format from its content (never from a file name): zip, tar, tar.gz, tar.xz, tar.bz2."""
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if data[:2] == b"\x1f\x8b":
        return "tar.gz"
    if data[:6] == b"\xfd7zXZ\x00":
        return "tar.xz"
    if data[:3] == b"BZh":
        return "tar.bz2"
    if len(data) >= 262 and data[257:262] == b"ustar":
        return "tar"
    return None


def safe_extract(data: bytes, dest: Path, limits: ArchiveLimits | None = None) -> None:
    """Unpack `data` into the (empty) folder `dest`, refusing anything that could escape it or exhaust the disk.

    Raises PackageError naming the offending member. On failure `dest` may hold a partial tree: callers unpack
    into a temporary folder they remove (the cache does).
    """
    limits = limits or ArchiveLimits()
    fmt = detect_format(data)
    if fmt is None:
        raise PackageError(
            "the package is not a recognised archive (zip, tar, tar.gz, tar.xz or tar.bz2)",
            errors={"code": ["not an archive"]},
        )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(limits, len(data))
    try:
        members = _zip_members(data, budget) if fmt == "zip" else _tar_members(data, fmt)
        _extract(members, dest.resolve(), budget)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as exc:
        raise PackageError(f"the {fmt} archive is corrupt: {exc}", errors={"code": [f"corrupt {fmt}"]}) from exc


class _Budget:
    def __init__(self, limits: ArchiveLimits, compressed: int) -> None:
        self.limits = limits
        self.members = 0
        self.total = 0
        self.cap = limits.max_total_bytes
        self.ratio_cap = max(limits.max_ratio * max(compressed, 1), limits.ratio_grace_bytes)

    def count_member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise PackageTooLarge(
                f"the archive has more than {self.limits.max_members} members (at '{name}')",
                errors={name: [f"more than {self.limits.max_members} members"]},
            )

    def add_bytes(self, name: str, n: int) -> None:
        self.total += n
        if self.total > self.cap:
            raise PackageTooLarge(
                f"the archive unpacks to more than {self.cap} bytes (at member '{name}')",
                errors={name: [f"unpacked size over {self.cap} bytes"]},
            )
        if self.total > self.ratio_cap:
            raise PackageTooLarge(
                f"the archive's compression ratio exceeds {self.limits.max_ratio:g} (at member '{name}'): "
                "refused as a possible compression bomb",
                errors={name: [f"compression ratio over {self.limits.max_ratio:g}"]},
            )


def _refuse(name: str, reason: str) -> PackageError:
    return PackageError(f"refused archive member '{name}': {reason}", errors={name: [reason]})


def _clean_name(raw: str) -> str | None:
    """The member's relative POSIX path, or a refusal. Returns None for the archive root itself."""
    if "\x00" in raw:
        raise _refuse(raw, "NUL character in name")
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _refuse(raw, "absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(raw, "'..' path component")
    return "/".join(parts) or None


def _zip_declared_members(data: bytes) -> int | None:
    """The member count the zip's end record declares, read before zipfile parses (and allocates) them all."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 12 > len(data):
        return None
    total = int.from_bytes(data[end + 10 : end + 12], "little")
    if total == 0xFFFF:
        zip64 = data.rfind(b"PK\x06\x06", 0, end)
        if zip64 >= 0 and zip64 + 40 <= len(data):
            total = int.from_bytes(data[zip64 + 32 : zip64 + 40], "little")
    return total


def _zip_members(data: bytes, budget: _Budget) -> Iterator[_Member]:
    declared = _zip_declared_members(data)
    if declared is not None and declared > budget.limits.max_members:
        raise PackageTooLarge(
            f"the archive has more than {budget.limits.max_members} members ({declared} declared)",
            errors={"code": [f"more than {budget.limits.max_members} members"]},
        )
    archive = zipfile.ZipFile(io.BytesIO(data))
    for info in archive.infolist():
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode) if info.create_system == 3 else 0
        if kind == stat.S_IFLNK:
            if info.file_size > 4096:
                raise _refuse(info.filename, "symbolic link target longer than 4096 bytes")
            yield _Member(info.filename, "symlink", link=archive.read(info).decode("utf-8", "replace"))
        elif kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            yield _Member(info.filename, "special")
        elif info.is_dir():
            yield _Member(info.filename, "dir")
        else:
            yield _Member(info.filename, "file", open=lambda info=info: archive.open(info))


def _tar_members(data: bytes, fmt: str) -> Iterator[_Member]:
    mode = {"tar": "r:", "tar.gz": "r:gz", "tar.xz": "r:xz", "tar.bz2": "r:bz2"}[fmt]
    # Stream mode ("|") reads members in order without seeking, so decompression is paid once and a
    # bomb is stopped by the byte budget while it inflates.
    archive = tarfile.open(fileobj=io.BytesIO(data), mode=mode.replace(":", "|"))
    with archive:
        for info in archive:
            if info.isreg():
                yield _Member(info.name, "file", open=lambda info=info: archive.extractfile(info))
            elif info.isdir():
                yield _Member(info.name, "dir")
            elif info.issym():
                yield _Member(info.name, "symlink", link=info.linkname)
            elif info.islnk():
                yield _Member(info.name, "hardlink", link=info.linkname)
            else:
                yield _Member(info.name, "special")


def _inside(root: Path, path: str) -> bool:
    return path == str(root) or path.startswith(str(root) + os.sep)


def _extract(members: Iterator[_Member], root: Path, budget: _Budget) -> None:
    files: dict[str, Path] = {}
    symlinks: list[tuple[str, str, Path]] = []
    for member in members:
        budget.count_member(member.name)
        name = _clean_name(member.name)
        if member.kind == "special":
            raise _refuse(member.name, "device, FIFO or other special file")
        if name is None:
            continue
        target = root / name
        if member.kind == "dir":
            _make_parent_dirs(root, target / "x", member.name)
            continue
        if member.kind == "symlink":
            link = member.link.replace("\\", "/")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
            if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise _refuse(member.name, f"link to '{member.link}' leaves the package folder")
            # Links are created after every regular file, so no file is ever written through a link.
            symlinks.append((member.name, link, target))
            continue
        _make_parent_dirs(root, target, member.name)
        if member.kind == "hardlink":
            try:
                source_name = _clean_name(member.link)
            except PackageError:
                raise _refuse(member.name, f"hard link to '{member.link}' leaves the package folder") from None
            source = files.get(source_name or "")
            if source is None:
                raise _refuse(member.name, f"hard link to '{member.link}', which is not a file earlier in the archive")
            # A copy, not a link: the cache must never share an inode with anything outside it.
            budget.add_bytes(member.name, source.stat().st_size)
            shutil.copyfile(source, target)
            files[name] = target
            continue
        if target.is_symlink() or target.is_dir():
            raise _refuse(member.name, "overwrites a folder or link of the same name")
        with member.open() as stream, open(target, "wb") as out:
            while chunk := stream.read(_CHUNK):
                budget.add_bytes(member.name, len(chunk))
                out.write(chunk)
        os.chmod(target, 0o644)
        files[name] = target
    for raw_name, link, target in symlinks:
        _make_parent_dirs(root, target, raw_name)
        if target.exists() or target.is_symlink():
            raise _refuse(raw_name, "a link replaces an existing member")
        os.symlink(link, target)
    # Lexical checks miss links through other links ("l -> .", "a -> l/../x"), and a link checked when it is
    # made may lead elsewhere once a later one exists ("code/sub/a -> c/../../.." resolves inside while "c" is
    # missing; "code/sub/c -> .." then takes it out): resolve every link for real once all exist.
    for raw_name, link, target in symlinks:
        if not _inside(root, os.path.realpath(target)):
            raise _refuse(raw_name, f"link to '{link}' leaves the package folder")


def _make_parent_dirs(root: Path, target: Path, raw_name: str) -> None:
    parent = target.parent
    # A parent that already exists as a symlink would let a later file land outside: refuse it.
    probe = parent
    while probe != root and probe != probe.parent:
        if probe.is_symlink():
            raise _refuse(raw_name, "its folder is a link")
        probe = probe.parent
    parent.mkdir(parents=True, exist_ok=True)


def check_layout(package_dir: Path) -> Path:
    """Check the package layout of docs/runtime.md §1 and return the path of `code/function.py`."""
    package_dir = Path(package_dir)
    function_py = package_dir / "code" / "function.py"
    if not function_py.is_file() or not _inside(package_dir.resolve(), os.path.realpath(function_py)):
        top = sorted(p.name + ("/" if p.is_dir() else "") for p in package_dir.iterdir())[:10]
        hint = f" (the archive's top level holds: {', '.join(top) or 'nothing'})"
        if not (package_dir / "code").is_dir():
            reason = "the package has no top-level folder 'code/'"
        else:
            reason = "the package has no file 'code/function.py'"
        raise PackageError(reason + hint, errors={"code/function.py": ["missing"]})
    return function_py
