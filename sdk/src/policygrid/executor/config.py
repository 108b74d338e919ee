"""Configuration of the executor service: environment variables, overridable on the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputInvalid
from ..workers.identity import uid_range


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _number(name: str, default: float, kind=float):
    raw = _env(name)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise InputInvalid(f"{name} must be a number, not {raw!r}", errors={name: ["not a number"]}) from None


def _flag(name: str, default: bool) -> bool:
    raw = _env(name)
    return default if raw is None else raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class ExecutorConfig:
    """Everything the service needs. ``token`` guards the service; ``portal_url``/``portal_token`` read policies."""

    host: str = "127.0.0.1"
    port: int = 8900
    token: str = ""
    portal_url: str | None = None
    portal_token: str | None = None
    # The portal's public address, when portal_url is an internal one: asset URLs under it go to portal_url.
    portal_public_url: str | None = None
    workers: int = 2
    timeout_seconds: float = 30
    max_timeout_seconds: float = 300
    cpu_seconds: float = 30
    memory_mb: int = 1024
    max_processes: int = 16
    max_result_bytes: int = 10 * 1024 * 1024
    max_body_bytes: int = 2 * 1024 * 1024
    # The largest package archive PUT /packages/<digest> accepts (the SDK's download cap).
    max_package_bytes: int = 50 * 1024 * 1024
    record_ttl_seconds: float = 30
    # Signed releases are verified before loading (docs/governance.md §5): on unless the deployment turns it off.
    verify_signatures: bool = True
    # The portal's GET /keys document, for a service that must verify without reading keys from a portal.
    signing_keys_file: Path | None = None
    keys_refresh_seconds: float = 60
    redis_url: str | None = None
    cache_dir: Path | None = None
    tmp_dir: Path | None = None
    landlock: bool = True
    pass_env: tuple[str, ...] = ()
    preload: tuple[str, ...] = ("requests",)
    log_level: str = "info"
    degraded_queue_factor: int = 4
    extra: dict[str, str] = field(default_factory=dict)
    # Read by the worker pool itself (PoolLimits, workers/confine.py), listed here for the operator:
    # POLICYGRID_ALLOW_WEAKER_SANDBOX=true runs policy code even when Landlock, seccomp or the per-call fork
    # can't be applied; POLICYGRID_SANDBOX_DENY_PORTS=5433,6380 adds ports policy code may never connect to.
    allow_weaker_sandbox: bool = field(default_factory=lambda: _flag("POLICYGRID_ALLOW_WEAKER_SANDBOX", False))
    # The user numbers a root service gives its workers, one each (POLICYGRID_SANDBOX_UIDS; None: stay root).
    sandbox_uids: range | None = field(default_factory=lambda: uid_range(None))

    @classmethod
    def from_env(cls) -> ExecutorConfig:
        token = _env("POLICYGRID_EXECUTOR_TOKEN") or ""
        token_file = _env("POLICYGRID_EXECUTOR_TOKEN_FILE")
        if not token and token_file:
            token = Path(token_file).read_text().strip()
        cache_dir = _env("POLICYGRID_CACHE_DIR")
        tmp_dir = _env("POLICYGRID_EXECUTOR_TMP_DIR")
        keys_file = _env("POLICYGRID_SIGNING_KEYS_FILE")
        return cls(
            host=_env("POLICYGRID_EXECUTOR_HOST", "127.0.0.1") or "127.0.0.1",
            port=int(_number("POLICYGRID_EXECUTOR_PORT", 8900, int)),
            token=token,
            portal_url=_env("POLICYGRID_URL") or _env("POLICY_SYSTEM_URL"),
            portal_token=_env("POLICYGRID_TOKEN"),
            portal_public_url=_env("POLICYGRID_PUBLIC_URL"),
            workers=int(_number("POLICYGRID_EXECUTOR_WORKERS", 2 * (os.cpu_count() or 1), int)),
            timeout_seconds=_number("POLICYGRID_EXECUTOR_TIMEOUT", 30),
            max_timeout_seconds=_number("POLICYGRID_EXECUTOR_MAX_TIMEOUT", 300),
            cpu_seconds=_number("POLICYGRID_EXECUTOR_CPU_SECONDS", 30),
            memory_mb=int(_number("POLICYGRID_EXECUTOR_MEMORY_MB", 1024, int)),
            max_processes=int(_number("POLICYGRID_EXECUTOR_MAX_PROCESSES", 16, int)),
            max_result_bytes=int(_number("POLICYGRID_EXECUTOR_MAX_RESULT_BYTES", 10 * 1024 * 1024, int)),
            max_body_bytes=int(_number("POLICYGRID_EXECUTOR_MAX_BODY_BYTES", 2 * 1024 * 1024, int)),
            max_package_bytes=int(_number("POLICYGRID_EXECUTOR_MAX_PACKAGE_BYTES", 50 * 1024 * 1024, int)),
            record_ttl_seconds=_number("POLICYGRID_EXECUTOR_RECORD_TTL", 30),
            verify_signatures=_flag("POLICYGRID_VERIFY_SIGNATURES", True),
            signing_keys_file=Path(keys_file) if keys_file else None,
            keys_refresh_seconds=_number("POLICYGRID_KEYS_REFRESH_SECONDS", 60),
            redis_url=_env("POLICYGRID_REDIS_URL"),
            cache_dir=Path(cache_dir) if cache_dir else None,
            tmp_dir=Path(tmp_dir) if tmp_dir else None,
            landlock=_flag("POLICYGRID_EXECUTOR_LANDLOCK", True),
            pass_env=tuple(v.strip() for v in (_env("POLICYGRID_EXECUTOR_PASS_ENV") or "").split(",") if v.strip()),
            preload=tuple(v.strip() for v in (_env("POLICYGRID_EXECUTOR_PRELOAD", "requests") or "").split(",")
                          if v.strip()),
            log_level=(_env("POLICYGRID_EXECUTOR_LOG_LEVEL", "info") or "info").lower(),
            sandbox_uids=_uids(),
        )


def _uids() -> range | None:
    try:
        return uid_range(_env("POLICYGRID_SANDBOX_UIDS"))
    except ValueError as exc:
        raise InputInvalid(str(exc), errors={"POLICYGRID_SANDBOX_UIDS": [str(exc)]}) from None
