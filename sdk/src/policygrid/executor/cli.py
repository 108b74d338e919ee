"""The command line of the executor service: ``python -m policygrid.executor serve [options]``.

``add_command_group`` plugs the same command into the SDK's ``policygrid`` tool as ``policygrid executor
serve`` (append it to ``policygrid.cli.COMMAND_GROUPS``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import PolicyGridError
from .config import ExecutorConfig


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default $POLICYGRID_EXECUTOR_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default $POLICYGRID_EXECUTOR_PORT or 8900)")
    parser.add_argument("--workers", type=int, help="worker processes (default $POLICYGRID_EXECUTOR_WORKERS or the CPU count)")
    parser.add_argument("--executor-token-file", help="file holding the shared secret (default $POLICYGRID_EXECUTOR_TOKEN)")
    parser.add_argument("--timeout", type=float, help="default wall-clock limit of a call, seconds")
    parser.add_argument("--cpu-seconds", type=float, help="CPU-time limit of a call, seconds")
    parser.add_argument("--memory-mb", type=int, help="address-space limit of a worker, MiB")
    parser.add_argument("--max-processes", type=int, help="processes/threads a call may create")
    parser.add_argument("--max-result-bytes", type=int, help="largest result a call may return")
    parser.add_argument("--tmp-dir", help="where the workers' temporary folders live")
    parser.add_argument("--redis-url", help="context store (default $POLICYGRID_REDIS_URL; none: in memory per call)")
    parser.add_argument("--log-level", help="debug, info, warning (default info)")
    parser.add_argument("--fd", type=int, help="serve this inherited listening socket instead of binding --host/--port "
                                               "(a supervisor holds it, so a restart refuses no connection)")


def config_from_args(args: argparse.Namespace) -> ExecutorConfig:
    config = ExecutorConfig.from_env()
    overrides = {
        "host": args.host, "port": args.port, "workers": args.workers, "timeout_seconds": args.timeout,
        "cpu_seconds": args.cpu_seconds, "memory_mb": args.memory_mb, "max_processes": args.max_processes,
        "max_result_bytes": args.max_result_bytes, "redis_url": args.redis_url, "log_level": args.log_level,
        "tmp_dir": Path(args.tmp_dir) if args.tmp_dir else None,
        # The global options of the `policygrid` tool, when run through it.
        "portal_url": getattr(args, "portal_url", None), "portal_token": getattr(args, "token", None),
        "cache_dir": Path(args.cache_dir) if getattr(args, "cache_dir", None) else None,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)
    if args.executor_token_file:
        config.token = Path(args.executor_token_file).read_text().strip()
    return config


def serve(config: ExecutorConfig, fd: int | None = None) -> int:
    """Run the service until SIGINT/SIGTERM (uvicorn with uvloop and httptools where installed)."""
    from ..extras import require
    from .service import ExecutorService

    uvicorn = require("uvicorn", "executor", "the executor service (policygrid executor serve)")
    if config.redis_url:
        require("redis", "redis", "the Redis context store (POLICYGRID_REDIS_URL)")

    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    # The worker pool reads the ports policy code may never reach from the environment: the service's own
    # port as served (--port included), and the portal's (POLICYGRID_URL), 5432 and 6379 (workers/confine.py).
    import os

    os.environ["POLICYGRID_EXECUTOR_PORT"] = str(config.port)
    if config.portal_url:
        os.environ.setdefault("POLICYGRID_URL", config.portal_url)
    app = ExecutorService(config)
    where = {"fd": fd} if fd is not None else {"host": config.host, "port": config.port}
    server = uvicorn.Server(uvicorn.Config(
        app, **where, lifespan="on", access_log=False,
        loop=_pick("uvloop", "asyncio"), http=_pick("httptools", "h11"),
        log_level="warning" if config.log_level != "debug" else "debug", timeout_keep_alive=30, backlog=2048,
    ))
    server.run()
    return 0 if server.started else 1


def _pick(preferred: str, fallback: str) -> str:
    try:
        __import__(preferred)
        return preferred
    except ImportError:
        return fallback


def serve_command(args: argparse.Namespace) -> int:
    return serve(config_from_args(args), fd=args.fd)


def add_command_group(groups: argparse._SubParsersAction) -> None:
    """``policygrid executor serve``: the hook for ``policygrid.cli.COMMAND_GROUPS``."""
    group = groups.add_parser("executor", help="the executor service (Type 2)")
    commands = group.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser = commands.add_parser("serve", help="run the executor service")
    _add_serve_arguments(parser)
    parser.set_defaults(handler=serve_command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policygrid.executor", description="PolicyGrid executor service")
    parser.add_argument("--portal-url", help="the portal's address (default $POLICYGRID_URL)")
    parser.add_argument("--token", help="the service's portal API token (default $POLICYGRID_TOKEN)")
    parser.add_argument("--cache-dir", help="package cache (default $POLICYGRID_CACHE_DIR)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="run the executor service")
    _add_serve_arguments(serve_parser)
    serve_parser.set_defaults(handler=serve_command)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except PolicyGridError as exc:
        print(f"error ({exc.error_type}): {exc.message}", file=sys.stderr)
        return 2
