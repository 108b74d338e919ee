"""Installing a package's `requirements.txt` with pip into a folder of its own, once per machine."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from .cache import default_cache_root, file_lock
from .errors import PackageError

_FIELD = "code/requirements.txt"
_COMPLETE = ".policygrid-complete"
_memo: dict[tuple[str, str], Path | None] = {}
_memo_lock = threading.Lock()


def parse_requirements(text: str, *, use_installed: bool = True) -> list[str]:
    """The requirement lines pip must install.

    Dropped: comments, blanks, lines whose marker doesn't apply, names of standard-library modules (the
    description's sample lists `logging`, whose PyPI namesake no longer installs on Python 3) and — with
    `use_installed` — requirements the running interpreter already satisfies. Pip options (`-r`, `-e`,
    `--index-url`, …) are refused: a policy must not choose where code is downloaded from.
    """
    wanted: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            reason = f"line {number}: pip options are not allowed ('{line}')"
            raise PackageError(f"code/requirements.txt {reason}", errors={_FIELD: [reason]})
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            reason = f"line {number}: not a requirement ('{line}'): {exc}"
            raise PackageError(f"code/requirements.txt {reason}", errors={_FIELD: [reason]}) from None
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if requirement.name.lower().replace("-", "_") in sys.stdlib_module_names and not requirement.url:
            continue
        if use_installed and not requirement.url and _installed_satisfies(requirement):
            continue
        wanted.append(str(requirement))
    return wanted


def _installed_satisfies(requirement: Requirement) -> bool:
    # Only the interpreter's own environment counts: another policy's requirements folder, already on
    # sys.path in this process, must not stand in for this policy's (each gets its own versions).
    own_path = [p for p in sys.path if not os.path.exists(os.path.join(p or ".", _COMPLETE))]
    found = next(iter(metadata.distributions(name=requirement.name, path=own_path)), None)
    if found is None:
        return False
    version = found.version
    if requirement.extras:
        return False  # extras pull in more distributions than we can cheaply check
    return requirement.specifier.contains(version, prereleases=True)


def requirements_key(lines: list[str]) -> str:
    """Key of the install folder: the requirements and the interpreter (wheels differ between Pythons)."""
    tag = f"{sys.implementation.name}-{sys.version_info.major}.{sys.version_info.minor}-{sys.platform}"
    return hashlib.sha256(("\n".join(lines) + "\n" + tag).encode()).hexdigest()


def ensure_requirements(
    package_dir: Path,
    *,
    root: Path | None = None,
    timeout: float | None = None,
    pip_args: list[str] | None = None,
    use_installed: bool = True,
) -> Path | None:
    """Install the package's requirements into `<root>/req-<key>/` and return that folder, or None if none.

    Never installs into the running interpreter (`pip install --target`). Extra pip arguments come from
    `pip_args` and the environment variable `POLICYGRID_PIP_ARGS` (e.g. `--no-index --find-links /wheels`);
    pip itself also reads its own `PIP_*` variables. The timeout defaults to `POLICYGRID_PIP_TIMEOUT` or 300 s.
    """
    requirements_file = Path(package_dir) / "code" / "requirements.txt"
    if not requirements_file.is_file():
        return None
    text = requirements_file.read_text(encoding="utf-8", errors="replace")
    root = Path(root) if root is not None else default_cache_root() / "requirements"
    memo_key = (str(root), text)
    # The installed-distribution scan costs milliseconds; a process asks once per requirements text.
    with _memo_lock:
        if memo_key in _memo:
            return _memo[memo_key]
    lines = parse_requirements(text, use_installed=use_installed)
    result = _install(lines, root, timeout, pip_args) if lines else None
    with _memo_lock:
        _memo[memo_key] = result
    return result


def _install(lines: list[str], root: Path, timeout: float | None, pip_args: list[str] | None) -> Path:
    final = root / f"req-{requirements_key(lines)}"
    if (final / _COMPLETE).exists():
        return final
    timeout = timeout if timeout is not None else float(os.environ.get("POLICYGRID_PIP_TIMEOUT", "300"))
    with file_lock(root / "locks" / f"{final.name}.lock"):
        if (final / _COMPLETE).exists():
            return final
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="tmp-req-", dir=root))
        try:
            requirements = work / "requirements.txt"
            requirements.write_text("\n".join(lines) + "\n")
            target = work / "site"
            command = [
                sys.executable, "-m", "pip", "install",
                "--target", str(target),
                "--no-input", "--disable-pip-version-check", "--no-warn-script-location",
                "-r", str(requirements),
                *shlex.split(os.environ.get("POLICYGRID_PIP_ARGS", "")),
                *(pip_args or []),
            ]  # fmt: skip
            try:
                completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                tail = _tail((exc.stdout or "") + (exc.stderr or "") if isinstance(exc.stdout, str) else "")
                raise PackageError(
                    f"pip install of the requirements timed out after {timeout:g}s{tail}",
                    errors={_FIELD: [f"pip timed out after {timeout:g}s"]},
                ) from None
            if completed.returncode != 0:
                tail = _tail(completed.stdout + completed.stderr)
                raise PackageError(
                    f"pip install of the requirements failed (exit {completed.returncode}){tail}",
                    errors={_FIELD: [f"pip failed: {tail.strip()}"]},
                )
            (target / _COMPLETE).write_text("\n".join(lines) + "\n")
            try:
                os.rename(target, final)
            except OSError:
                if not (final / _COMPLETE).exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def _tail(output: str, lines: int = 12) -> str:
    kept = [line for line in output.strip().splitlines() if line.strip()][-lines:]
    return (":\n" + "\n".join(kept)) if kept else ""
