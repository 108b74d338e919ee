"""Sample policies shipped with the SDK (the description's `ip_allowlist`), for demos, docs and tests."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any


def samples_dir() -> Path:
    """The folder holding one sub-folder per sample, each with `code/` and `record.json`."""
    return Path(str(resources.files(__name__)))


def sample_path(name: str = "ip_allowlist") -> Path:
    path = samples_dir() / name
    if not (path / "code" / "function.py").is_file():
        raise FileNotFoundError(f"no sample policy named {name!r} in {samples_dir()}")
    return path


def sample_record(name: str = "ip_allowlist") -> dict[str, Any]:
    """The sample's policy record (the body of `POST /policy`), as a fresh dict."""
    return json.loads((sample_path(name) / "record.json").read_text(encoding="utf-8"))


def sample_archive(name: str = "ip_allowlist") -> bytes:
    """The sample's `code/` folder as a reproducible zip."""
    from ..package import zip_code_folder

    return zip_code_folder(sample_path(name))
