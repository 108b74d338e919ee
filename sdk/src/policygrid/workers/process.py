"""The sandboxed worker process: runs policy code, one call at a time, for the executor service and Type 1.

Started by the pool (``workers/pool.py``) as ``python -m policygrid.workers.process`` with an allow-listed
environment, in a session of its own. It speaks length-prefixed frames on its stdin (requests) and on a
duplicate of its stdout (replies); whatever the policy prints goes to stderr. JSON on the wire, never pickle.

The first frame is the init frame (limits, the temporary folder); the worker answers with the protections it
applied. Every later frame is a call ``{"op": "eval"|"management"|"load", "rk", "record"?, "pkg", "req",
"uri", "settings", "parameters", "validate", "keep", "forget"?, "stateful"?, "ctx"?, "domain"?, ...}``: ``rk``
names a record the pool sent once; ``keep`` keeps the instance for the next call with the same ``rk`` (Type 1),
else each call gets a fresh instance (Type 2), in its caller's process (``domain``: domains.py). A kept instance
is replaced after a failed call, unless ``stateful`` (a function replica: only a crash or a protocol violation
loses its state). ``ctx`` names the context store's namespace (default: ``uri``).

Reply frames start with one byte: ``R`` (the payload is the result's JSON) or ``E`` (an error object
``{"error_type", "message", "exception_type"?, "errors"?}``); lower case (``r``/``e``) means the worker is
dirty (a thread the policy started is still running) and must be replaced.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# Imported before the filesystem is locked down: the modules every call needs, warm from the start.
from .. import sandbox
from ..context import MemoryContext
from ..errors import PolicyGridError, Unavailable
from ..loader import load_rule_class
from ..rule_runner import CompiledRecord, PolicyRunner
from . import child, confine, domains, frames, identity
from .context_proxy import ContextServer, PipeContext

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


def _error(error_type: str, message: str, limit: int, exception_type=None, errors=None) -> bytes:
    return json.dumps(child.error_dict(error_type, message, limit, exception_type, errors), default=str).encode()


class _Calls:
    """The warm worker's state: the records the pool sent, their compiled checks, its binding, kept children."""

    def __init__(self, init: dict[str, Any]) -> None:
        self.init = init
        self.redis_url = init.get("redis_url")
        # The Redis context store is reached by this worker on its calls' behalf (context_proxy.py).
        self.context = ContextServer(self.redis_url) if self.redis_url else None
        self.policy_ports: tuple[int, ...] | None = None  # what the policy declared: its calls' only ports
        self.records: dict[str, dict[str, Any]] = {}
        self.compiled: dict[str, Any] = {}
        self.kept: dict[str, child.Child] = {}
        self.bound: tuple[str, str | None, tuple[int, ...] | None] | None = None
        self.limit = int(init.get("max_message_chars", 2000))
        self.max_result = int(init["max_result_bytes"])
        self.cpu_seconds = float(init["cpu_seconds"])
        self.call_dir = Path(init["tmp_base"]) / "call"
        self.protections: dict[str, str] = {}
        self.refusal: str | None = None
        self.scoped = sandbox.landlock_abi() >= 6 and bool(init.get("landlock", True))
        # A child forked ahead of the next Type 2 call, between calls (the fork is off the call's path).
        self.spare: child.Child | None = None
        # Call children killed once their answer was in, reaped after the reply (off the call's path).
        self.dying: list[child.Child] = []

    def record(self, message: dict[str, Any]) -> dict[str, Any]:
        rk = message["rk"]
        if message.get("forget"):
            # The pool forgot which records this worker holds, so the worker forgets them too.
            self.records.clear()
            self.compiled.clear()
            self.drop_kept()
        record = message.get("record")
        if record is not None:
            self.records[rk] = record
            self.compiled.pop(rk, None)
            self.drop_kept(rk)
        return self.records[rk]

    def run_any(self, message: dict[str, Any]) -> Any:
        """A spare child's call: the record was known when it was forked."""
        os.chdir(self.call_dir)  # forked between calls, in the worker's folder
        record = self.records[message["rk"]]
        run, _ = self.make_run(message, record)
        return run(message)

    def prepare_spare(self) -> None:
        if self.spare is None and self.bound is not None and not self.refusal:
            self.spare = child.Child(self.run_any, None, keep=True, once=True, cpu_seconds=self.cpu_seconds,
                                     limit=self.limit, scope=self.scoped, **self.child_options())

    def child_options(self) -> dict[str, Any]:
        return {"context": self.context, "ports": self.policy_ports}

    def drop_spare(self) -> None:
        if self.spare is not None:
            self.spare.close()
            self.spare = None

    def drop_kept(self, rk: str | None = None) -> None:
        """Close the kept children of ``rk`` (its instance, and its callers' processes), or all of them."""
        for key in [k for k in self.kept if rk is None or domains.of_record(k, rk)]:
            self.kept.pop(key).close()

    def bind(self, message: dict[str, Any], record: dict[str, Any]) -> None:
        """Confine this worker to its package, before the package is imported (its module code is policy code)."""
        denied = tuple(self.init.get("deny_ports") or ())
        ports = self.policy_ports = confine.declared_ports(record, denied)
        if self.redis_url:  # the worker reaches the context store for its calls (their own layer excludes it)
            from urllib.parse import urlsplit

            ports = tuple(sorted({*(ports or ()), urlsplit(self.redis_url).port or 6379}))
        key = (message["pkg"], message.get("req"), ports)
        if self.bound is not None:
            if self.bound != key:
                raise Unavailable("this worker is bound to another package or network declaration")
            if self.refusal:
                raise Unavailable(self.refusal)
            return
        self.bound = key
        read = [*confine.runtime_paths(), Path(message["pkg"])]
        if message.get("req"):
            read.append(Path(message["req"]))
        notes = self.protections
        uid = self.init.get("uid")
        notes.update(identity.when_bound(None if uid is None else int(uid), int(self.init["max_processes"]), read,
                                         [self.call_dir.parent, self.call_dir]))
        if self.init.get("landlock", True):
            ok, notes["filesystem"] = confine.apply_landlock(read, [self.call_dir], ports)
            notes["network"] = notes["filesystem"] if ok else "NOT applied: needs Landlock ABI >= 4"
        else:
            notes["filesystem"] = notes["network"] = "NOT applied: Landlock disabled by configuration"
        _, notes["seccomp"] = confine.apply_seccomp(ports is not None)
        missing = [name for name in ("filesystem", "network", "seccomp", "unprivileged_user")
                   if notes.get(name, "").startswith("NOT")]
        if missing and not self.init.get("allow_weaker"):
            self.refusal = (f"refusing to run policy code: protection(s) {', '.join(missing)} could not be "
                              "applied (set POLICYGRID_ALLOW_WEAKER_SANDBOX=true to run anyway)")
            raise Unavailable(self.refusal)

    def compiled_for(self, message: dict[str, Any], record: dict[str, Any]) -> CompiledRecord | None:
        """Schema checks compiled, and the stored settings/parameters checked, once per record."""
        if not message.get("validate", True):
            return None
        compiled = self.compiled.get(message["rk"])
        if compiled is None:
            compiled = self.compiled[message["rk"]] = CompiledRecord(record)
        return compiled

    def make_run(self, message: dict[str, Any], record: dict[str, Any], fresh: bool = False):
        """The function the child runs for a call: a PolicyRunner on a fresh instance, no output check (kept for
        the next call of a kept child, unless ``fresh``: a caller's process builds one per call).

        The package is imported by the child, never by this worker: its module code is policy code, and code run
        here (a patched json.loads, a timer's signal handler) would live on in the process that relays every
        caller's calls, and in every process forked from it."""
        package, requirements = Path(message["pkg"]), message.get("req")
        validate = message.get("validate", True)
        compiled = self.compiled_for(message, record)
        holder: dict[str, Any] = {}

        def run(call: dict[str, Any]) -> Any:
            runner = None if fresh else holder.get("runner")
            if runner is None:
                if "class" not in holder:  # the package's first use in this (child) process
                    holder["class"] = load_rule_class(package, Path(requirements) if requirements else None)
                context = PipeContext(*child.CONTEXT_FDS) if child.CONTEXT_FDS else MemoryContext()
                runner = holder["runner"] = PolicyRunner(record, holder["class"], call.get("settings"),
                                                         call.get("parameters"), context, validate=validate,
                                                         compiled=compiled)
                runner._check_output = None  # the warm worker checks the output, out of the policy's reach
            op = call.get("op", "eval")
            if op == "eval":
                return runner.eval(call.get("input_data"))
            if op == "management":
                return runner.management(call["action"], call.get("data"))
            return None  # "load": the instance is built, nothing more

        return run, compiled

    def call(self, message: dict[str, Any]) -> tuple[bytes, bytes, dict[str, Any] | None]:
        """(kind, payload, captured output) of one call."""
        record = self.record(message)
        self.bind(message, record)
        rk = message["rk"]
        domain = None if message.get("keep") else message.get("domain")
        # A kept child: Type 1's or a function's instance (``keep``), or one caller's process (``domain``: Type 2
        # calls of one caller share it, each with a fresh instance; no other caller's call ever runs there).
        keep = domains.key(rk, domain) if domain else (rk if message.get("keep") else None)
        cpu = float(message.get("cpu_seconds") or self.cpu_seconds)
        compiled = self.compiled_for(message, record)
        if keep:
            kept = self.kept.pop(keep, None)
            if kept is None or not kept.alive() or kept.pending():  # none, ended, or wrote past its last answer
                if kept is not None:
                    kept.close()
                domains.make_room(self)
                kept = child.Child(self.make_run(message, record, fresh=bool(domain))[0], None, keep=True,
                                   cpu_seconds=cpu * (domains.CPU_FACTOR if domain else 1), limit=self.limit,
                                   scope=self.scoped, call_cpu=cpu if domain else None, **self.child_options())
            self.kept[keep] = kept  # last used last: the least recently used caller is evicted first
            if domain:
                kept.resume()  # stopped since its caller's last call (below)
            try:
                kept.send(message)
            except OSError:
                pass  # it died: collect() says how
            worker_child = kept
        else:
            worker_child, self.spare = self.spare, None
            if worker_child is not None and ("record" in message or message.get("forget") or cpu != self.cpu_seconds):
                worker_child.close()  # forked before this record arrived: it doesn't hold it
                worker_child = None
            if worker_child is not None:
                try:
                    worker_child.send(message)
                except OSError:
                    pass  # it died: collect() says how
            else:
                worker_child = child.Child(self.make_run(message, record)[0], message, keep=False, cpu_seconds=cpu,
                                           limit=self.limit, scope=self.scoped, **self.child_options())
        if self.context is not None:
            self.context.namespace = message.get("ctx") or message["uri"]  # this call's namespace, and no other
        started = time.monotonic()
        try:
            body, captured, violation = worker_child.collect(self.max_result + FRAME_SLACK, one_shot=not keep)
            if domain:
                # A caller's process runs only during that caller's calls: stopped now, it can't watch the call
                # folder (or anything else) while the next caller's call runs in this worker.
                worker_child.pause()
            output = captured.as_dict()
            if violation is not None or body is None:
                if keep:
                    self.drop_kept(keep)
                if violation == child.TOO_LARGE:
                    return b"E", _error("resource_limit", f"the policy's result is more than the {self.max_result} "
                                        "bytes allowed", self.limit), output
                if violation is not None:
                    return b"E", _error("policy_error", f"protocol violation: {violation}", self.limit,
                                        exception_type="ProtocolViolation"), output
                error_type, text, exception_type = worker_child.death()
                return b"E", _error(error_type, text, self.limit, exception_type=exception_type), output
            try:
                ok, value = frames.parse_result(body)
            except frames.ProtocolViolation as exc:
                if keep:
                    self.drop_kept(keep)
                return b"E", _error("policy_error", f"protocol violation: {exc}", self.limit,
                                    exception_type="ProtocolViolation"), output
            if domain:
                domains.after_call(self, keep, worker_child, time.monotonic() - started)
            if not ok:
                if keep and not message.get("stateful") and not domain:
                    self.drop_kept(keep)
                return b"E", json.dumps(value, default=str).encode(), output
            if compiled is not None and message.get("op", "eval") == "eval" and compiled.check_output is not None:
                try:
                    compiled.check_output(value)
                except PolicyGridError:
                    if domain:  # a caller's process whose answer failed its checks is not trusted further
                        self.drop_kept(keep)
                    raise
            payload = json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
            if len(payload) > self.max_result:
                return b"E", _error("resource_limit", f"the policy's result is {len(payload)} bytes, more than "
                                    f"the {self.max_result} bytes allowed", self.limit), output
            return b"R", payload, output
        finally:
            if not keep:
                worker_child.close(reap=False)
                self.dying.append(worker_child)


FRAME_SLACK = 65536


def main() -> None:
    protocol_fd = os.dup(1)
    os.set_inheritable(protocol_fd, False)
    os.dup2(2, 1)  # print() of a policy goes to stderr; stdout belongs to the protocol
    # The service's event loop may leave duplicates of the worker's pipes open (uvloop does): a policy could
    # write frames into them. Only stdin, stdout, stderr and the protocol descriptor stay.
    child.close_all_but({0, 1, 2, protocol_fd})
    requests_in = os.fdopen(0, "rb", buffering=1 << 16)
    me = os.getpid()

    def in_forked_child() -> None:
        # A process forked from the worker never speaks the protocol: it may neither read calls nor forge replies.
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
    os.makedirs(call_dir, 0o700, exist_ok=True)
    protections = sandbox.apply_rlimits(int(init["memory_mb"]), int(init["max_processes"]),
                                        int(init.get("file_size_mb") or 1024), int(init.get("open_files") or 1024))
    calls = _Calls(init)
    for name in init.get("preload") or ():
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing optional module only makes the first call slower
            pass
    protections.update(confine.describe_at_start(init))
    protections.update(identity.at_start(init.get("uid")))
    protections["dumpable"] = "off (no ptrace/attach by others)" if sandbox.set_non_dumpable() else "NOT changed"
    write_frame(protocol_fd, json.dumps({"ok": True, "protections": protections, "pid": me}).encode())

    limit = calls.limit
    threads_at_start = threading.active_count()
    tempfile.tempdir = call_dir

    while True:
        frame = read_frame(requests_in)
        if frame is None:
            return
        message = json.loads(frame)
        # The call's private temporary folder: empty when the call starts, emptied when it ends.
        os.chdir(call_dir)
        output = None
        try:
            kind, payload, output = calls.call(message)
        except PolicyGridError as exc:
            kind = b"E"
            payload = _error(exc.error_type, exc.message, limit,
                             exception_type=getattr(exc, "exception_type", None), errors=exc.errors)
        except MemoryError:
            kind = b"E"
            payload = _error("resource_limit", "the policy ran out of memory", limit, exception_type="MemoryError")
        except BaseException as exc:  # noqa: BLE001 - the package's import or constructor: a reply all the same
            kind = b"E"
            payload = _error("policy_error", f"{type(exc).__name__}: {exc}", limit, exception_type=type(exc).__name__)
        finally:
            if os.getpid() != me:
                os._exit(0)
            os.chdir(tmp_base)
            sandbox.empty_folder(call_dir)
        if threading.active_count() > threads_at_start or (kind == b"E" and calls.bound is None):
            kind = kind.lower()
        # Nothing of this call stays referenced here once it is answered, and none of it when the spare below is
        # forked: every process forked from this worker (a spare, the next caller's process) starts with its
        # memory, and must find no other caller's input or printed output in it (gc.unfreeze() + get_objects()).
        printed = json.dumps(output).encode() if output else b""
        frame = message = output = None
        keepers = [kept.pid for kept in calls.kept.values()]
        dying = [child_.pid for child_ in calls.dying]
        if kind in (b"R", b"E"):
            try:
                calls.prepare_spare()
            except OSError:
                pass
        if calls.spare is not None:
            keepers.append(calls.spare.pid)
        head = frames.reply_head(printed, keepers, dying)
        del printed
        try:
            write_frame(protocol_fd, kind + len(head).to_bytes(4, "big") + head + payload)
        except MemoryError:
            write_frame(protocol_fd, b"E" + bytes(4) + _error("resource_limit", "the policy's result exhausted memory", limit))
        del payload, head
        for dying in calls.dying:
            dying.wait()
        calls.dying.clear()


if __name__ == "__main__":
    sys.exit(main())
