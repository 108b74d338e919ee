"""The one loader: imports a package's `code/function.py` and returns its `AIOSv1PolicyRule` class."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
import traceback
import types
from pathlib import Path

from .errors import PackageError, PolicyError
from .source_check import CLASS_NAME

_classes: dict[tuple[str, str | None], type] = {}
_lock = threading.Lock()


def _module_name(package_dir: Path) -> str:
    # Cache folders are named by digest, so the module name is unique per package version; any other
    # folder (a policy being developed) is named by a hash of its path.
    name = package_dir.name
    if not (len(name) == 64 and all(c in "0123456789abcdef" for c in name)):
        name = hashlib.sha256(str(package_dir).encode()).hexdigest()
    return f"policygrid_pkg_{name[:32]}"


def load_rule_class(package_dir: Path, requirements_dir: Path | None = None, *, reload: bool = False) -> type:
    """Import `package_dir/code/function.py` once per process and return its `AIOSv1PolicyRule`.

    The module is a submodule of a synthetic package whose path is `code/`, so `from . import helpers` works;
    `code/` is also appended (never prepended: it must not shadow the standard library) to `sys.path` for
    policies written with plain `import helpers`. `requirements_dir` is prepended, so the versions a policy
    pinned win over the interpreter's.
    """
    # A warm call (the executor's workers load a class for every call) finds it under the absolute path as
    # given, without resolving it on the filesystem again (a relative one depends on the working folder).
    given = (str(package_dir), str(requirements_dir) if requirements_dir else None)
    if not os.path.isabs(given[0]):
        given = None
    if not reload and given is not None:
        cached = _classes.get(given)
        if cached is not None:
            return cached
    package_dir = Path(package_dir).resolve()
    key = (str(package_dir), str(requirements_dir) if requirements_dir else None)
    with _lock:
        if not reload and key in _classes:
            rule_class = _classes[key]
        else:
            rule_class = _classes[key] = _import(package_dir, requirements_dir)
        if given is not None:
            _classes[given] = rule_class
        return rule_class


def _import(package_dir: Path, requirements_dir: Path | None) -> type:
    code_dir = package_dir / "code"
    function_py = code_dir / "function.py"
    if not function_py.is_file():
        raise PackageError(f"{package_dir} has no code/function.py", errors={"code/function.py": ["missing"]})
    if requirements_dir is not None and str(requirements_dir) not in sys.path:
        sys.path.insert(0, str(requirements_dir))
    if str(code_dir) not in sys.path:
        sys.path.append(str(code_dir))

    package_name = _module_name(package_dir)
    package = types.ModuleType(package_name)
    package.__path__ = [str(code_dir)]
    package.__package__ = package_name
    sys.modules[package_name] = package
    module_name = f"{package_name}.function"
    spec = importlib.util.spec_from_file_location(module_name, function_py)
    if spec is None or spec.loader is None:
        raise PackageError(f"cannot import {function_py}", errors={"code/function.py": ["not importable"]})
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(function_py)]
        line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else (lines[-1] if lines else None)
        at = f" (line {line})" if line else ""
        raise PolicyError(
            f"importing code/function.py failed: {type(exc).__name__}: {exc}{at}",
            exception_type=type(exc).__name__,
        ) from exc

    rule_class = getattr(module, CLASS_NAME, None)
    if not isinstance(rule_class, type):
        reason = f"no class '{CLASS_NAME}'"
        raise PackageError(f"code/function.py defines {reason}", errors={"code/function.py": [reason]})
    if not callable(getattr(rule_class, "eval", None)):
        reason = f"class '{CLASS_NAME}' has no 'eval' method"
        raise PackageError(f"code/function.py: {reason}", errors={"code/function.py": [reason]})
    return rule_class
