"""The sandboxed worker process: runs policy code, one call at a time, for the executor service and Type 1.

Started by the pool (``workers/pool.py``) as ``python -m policygrid.workers.process`` with an allow-listed
environment, in a session of its own. It speaks length-prefixed frames on its stdin (requests) and on a
duplicate of its stdout (replies); whatever the policy prints goes to stderr. JSON on the wire, never pickle.

The first frame is the init frame (limits, the temporary folder); the worker answers with the protections it
applied. Every later frame is a call ``{"op": "eval"|"management"|"load", "rk", "record"?, "pkg", "req",
"uri", "settings", "parameters", "validate", "keep", "forget"?, ...}``: ``rk`` names a record the pool sent
once; ``keep`` keeps the policy instance for the next call with the same ``rk`` (Type 1 is stateful), else
each call gets a fresh instance (Type 2 is stateless).

Reply frames start with one byte: ``R`` (the payload is the result's JSON) or ``E`` (an error object
``{"error_type", "message", "exception_type"?, "errors"?}``); lower case (``r``/``e``) means the worker is
dirty (a thread the policy started is still running) and must be replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

# Imported before the filesystem is locked down: the modules every call needs, warm from the start.
from .. import sandbox
from ..context import MemoryContext, RedisContext
from ..errors import PolicyGridError
from ..loader import load_rule_class
from ..rule_runner import CompiledRecord, PolicyRunner

_HEADER = struct.Struct(">I")


def read_frame(stream) -> bytes | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    return data if len(data) == size else None


def write_frame(fd: int, data: bytes) -> None:
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (truncated: {len(text)} characters in all)"


def _error(error_type: str, message: str, limit: int, **extra: Any) -> bytes:
    body = {"error_type": error_type, "message": _truncate(message, limit)}
    body.update({k: v for k, v in extra.items() if v})
    return json.dumps(body, default=str).encode()


def _not_empty(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is not None
    except OSError:
        return True


def _empty(path: str) -> None:
    os.chmod(path, 0o700)
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


class _Calls:
    """The worker's state between calls: the records the pool sent, their compiled checks, kept instances."""

    def __init__(self, init: dict[str, Any]) -> None:
        self.redis_url = init.get("redis_url")
        self.redis_client = None
        self.records: dict[str, dict[str, Any]] = {}
        self.compiled: dict[str, Any] = {}
        self.kept: dict[str, Any] = {}

    def runner(self, message: dict[str, Any]) -> PolicyRunner:
        rk = message["rk"]
        if message.get("forget"):
            # The pool forgot which records this worker holds, so the worker forgets them too.
            self.records.clear()
            self.compiled.clear()
            self.kept.clear()
        record = message.get("record")
        if record is not None:
            self.records[rk] = record
            self.compiled.pop(rk, None)
            self.kept.pop(rk, None)
        else:
            record = self.records[rk]
        keep = message.get("keep", False)
        if keep and rk in self.kept:
            return self.kept[rk]
        requirements = message.get("req")
        rule_class = load_rule_class(Path(message["pkg"]), Path(requirements) if requirements else None)
        if self.redis_url:
            if self.redis_client is None:
                import redis

                self.redis_client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
            context = RedisContext(self.redis_client, message["uri"])
        else:
            context = MemoryContext()
        validate = message.get("validate", True)
        compiled = None
        if validate:
            compiled = self.compiled.get(rk)
            if compiled is None:
                # Schema checks compiled, and the stored settings/parameters checked, once per record.
                compiled = self.compiled[rk] = CompiledRecord(record)
        runner = PolicyRunner(record, rule_class, message.get("settings"), message.get("parameters"), context,
                              validate=validate, compiled=compiled)
        if keep:
            self.kept[rk] = runner
        return runner


def main() -> None:
    protocol_fd = os.dup(1)
    os.set_inheritable(protocol_fd, False)
    os.dup2(2, 1)  # print() of a policy goes to stderr; stdout belongs to the protocol
    requests_in = os.fdopen(0, "rb", buffering=1 << 16)
    me = os.getpid()

    def in_forked_child() -> None:
        # A process the policy forks never speaks the protocol: it may neither read calls nor forge replies.
        try:
            os.close(protocol_fd)
            os.close(0)
        except OSError:
            pass

    os.register_at_fork(after_in_child=in_forked_child)

    first = read_frame(requests_in)
    if first is None:
        return
    init = json.loads(first)
    tmp_base = Path(init["tmp_base"])
    # The only folder the policy may write to. It is never replaced (Landlock's rule is bound to its inode);
    # what a call leaves in it is removed after the call.
    call_dir = str(tmp_base / "call")
    if not os.path.isdir(call_dir):
        os.mkdir(call_dir, 0o700)
    protections = sandbox.apply_rlimits(int(init["memory_mb"]), int(init["max_processes"]))
    calls = _Calls(init)
    for name in init.get("preload") or ():
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing optional module only makes the first call slower
            pass
    protections["filesystem"] = sandbox.apply_landlock([Path(call_dir)]) if init.get("landlock", True) else "NOT applied: disabled by configuration"
    protections["capabilities"] = sandbox.drop_capabilities()
    protections["dumpable"] = "off (no ptrace/attach by other processes)" if sandbox.set_non_dumpable() else "NOT changed"
    write_frame(protocol_fd, json.dumps({"ok": True, "protections": protections, "pid": me}).encode())

    limit = int(init.get("max_message_chars", 2000))
    max_result = int(init["max_result_bytes"])
    cpu_seconds = float(init["cpu_seconds"])
    threads_at_start = threading.active_count()
    tempfile.tempdir = call_dir

    while True:
        frame = read_frame(requests_in)
        if frame is None:
            return
        message = json.loads(frame)
        # The call's private temporary folder: empty when the call starts, emptied when it ends. It is
        # recreated only when a call left something in it (cheaper than a new folder per call).
        os.chdir(call_dir)
        kind = b"R"
        try:
            sandbox.set_cpu_budget(float(message.get("cpu_seconds") or cpu_seconds))
            runner = calls.runner(message)
            op = message.get("op", "eval")
            if op == "eval":
                result = runner.eval(message.get("input_data"))
            elif op == "management":
                result = runner.management(message["action"], message.get("data"))
            else:
                result = None  # "load": the instance is built (and kept), nothing more
            try:
                payload = json.dumps(result, allow_nan=False, separators=(",", ":")).encode()
            except (TypeError, ValueError) as exc:  # validate=False skips the conversion that catches this
                kind = b"E"
                payload = _error("output_invalid", f"the result is not JSON: {exc}", limit)
            if len(payload) > max_result:
                kind = b"E"
                payload = _error("resource_limit", f"the policy's result is {len(payload)} bytes, more than the "
                                 f"{max_result} bytes allowed", limit)
        except PolicyGridError as exc:
            kind = b"E"
            payload = _error(exc.error_type, exc.message, limit,
                             exception_type=getattr(exc, "exception_type", None), errors=exc.errors)
        except MemoryError:
            kind = b"E"
            payload = _error("resource_limit", "the policy ran out of memory", limit, exception_type="MemoryError")
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: a reply all the same
            kind = b"E"
            payload = _error("policy_error", f"{type(exc).__name__}: {exc}", limit, exception_type=type(exc).__name__)
        finally:
            if os.getpid() != me:
                os._exit(0)
            os.chdir(tmp_base)
            if _not_empty(call_dir):
                _empty(call_dir)
        if threading.active_count() > threads_at_start:
            kind = kind.lower()
        try:
            write_frame(protocol_fd, kind + payload)
        except MemoryError:
            write_frame(protocol_fd, b"E" + _error("resource_limit", "the policy's result exhausted memory", limit))
        del payload


if __name__ == "__main__":
    sys.exit(main())
