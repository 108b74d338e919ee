"""The SDK's environment variables: one name per setting, the portal's where both read it, and the earlier
SDK's names accepted as aliases of ours (docs/runtime.md, "Settings of the SDK")."""

from __future__ import annotations

import os

from .errors import InputInvalid

# Ours → the earlier system's names for the same setting, read when ours is unset.
ALIASES: dict[str, tuple[str, ...]] = {
    "POLICYGRID_URL": ("POLICY_SYSTEM_URL", "POLICY_DB_URL"),
    "POLICYGRID_EXECUTION_MODE": ("POLICY_EXECUTION_MODE",),
    "POLICYGRID_EXECUTOR_ID": ("POLICY_SYSTEM_EXECUTOR_ID",),
    "POLICYGRID_EXECUTOR_URL": ("POLICY_EXECUTOR_HOST_URL",),
}

# Names this SDK once read, now spelled as the portal spells them: refused rather than silently ignored.
RENAMED = {
    "POLICYGRID_FETCH_ALLOW_PRIVATE": "POLICYGRID_ALLOW_PRIVATE_NETWORKS",
    "POLICYGRID_FETCH_ALLOW_LOCAL_PATHS": "POLICYGRID_ALLOW_LOCAL_PATHS",
}

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def env(name: str, default: str | None = None) -> str | None:
    """The value of ``name``, else of its first set alias, else ``default``; an empty value counts as unset."""
    for old, new in RENAMED.items():
        if new == name and os.environ.get(old):
            raise InputInvalid(f"{old} was renamed {new} (the portal's name for the same setting): set {new}",
                               errors={old: [f"renamed {new}"]})
    for candidate in (name, *ALIASES.get(name, ())):
        value = os.environ.get(candidate)
        if value:
            return value
    return default


def env_flag(name: str, default: bool = False) -> bool:
    """A boolean setting, spelled as the portal accepts it (true/false, 1/0, yes/no, on/off)."""
    raw = (env(name) or "").strip().lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise InputInvalid(f"{name} must be true or false, not {raw!r}", errors={name: ["not a boolean"]})
