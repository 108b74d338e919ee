"""Policy code in a process of its own, forked from the warm worker (docs/runtime.md §4).

The warm worker (package imported, class loaded, checks compiled) ``fork()``s a child per caller (domains.py),
per kept instance (Type 1, functions) or per call. The child gets pipes of its own: ``result`` (one frame a call:
``{"ok": value}`` or ``{"error": {...}}``), stdout, stderr, and a request pipe when it serves several calls. It
never holds the worker's protocol descriptors (closed at fork), so it can't speak to the pool. The warm worker —
which runs no policy code during a call — reads the pipes, caps the output, checks the frame, and validates the
result: whatever else the child writes (a second frame, garbage, half a frame, a frame and an exit) is a
``policy_error`` naming a protocol violation, and the warm worker goes on.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import select
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from .. import lifetime
from . import confine, domains, frames

OUTPUT_CAP = 64 * 1024
TOO_LARGE = "too large"


@dataclass
class Captured:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def add(self, which: bytearray, data: bytes, cap: int) -> None:
        room = cap - len(which)
        if len(data) > room:
            self.truncated = True
            data = data[:max(0, room)]
        which += data

    def as_dict(self) -> dict[str, Any] | None:
        if not self.stdout and not self.stderr and not self.truncated:
            return None
        return {"stdout": self.stdout.decode("utf-8", "replace"), "stderr": self.stderr.decode("utf-8", "replace"),
                "truncated": self.truncated}


def close_all_but(keep: set[int]) -> None:
    """Close every descriptor but ``keep``: nothing inherited (an event loop's duplicates of the service's
    pipes included) survives into policy code."""
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


# --- the child's side -------------------------------------------------------------------------------------


def _limit_cpu(seconds: float) -> None:
    # A new process starts at 0 s of CPU; soft = hard, and no CAP_SYS_RESOURCE: the policy can't raise it.
    budget = max(1, int(seconds + 0.999))
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (budget, budget))
    except (ValueError, OSError):
        pass


def _serve(run, first: dict[str, Any] | None, request_fd: int | None, result_fd: int, limit: int,
           once: bool = False, call_cpu: float | None = None) -> None:
    """The child's loop: one call (Type 2, given or read from ``request_fd``), or calls read from ``request_fd``
    until it closes (Type 1)."""
    from ..errors import PolicyGridError

    message = first
    while True:
        if message is None:
            header = frames.read_exact(request_fd, 4) if request_fd is not None else None
            if header is None:
                return
            message = json.loads(frames.read_exact(request_fd, frames.HEADER.unpack(header)[0]) or b"{}")
        try:
            if call_cpu:
                domains.call_budget(call_cpu)
            body = {"ok": run(message)}
            data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        except PolicyGridError as exc:
            data = _error_body(exc.error_type, exc.message, limit, getattr(exc, "exception_type", None), exc.errors)
        except MemoryError:
            data = _error_body("resource_limit", "the policy ran out of memory", limit, "MemoryError", None)
        except (TypeError, ValueError) as exc:
            data = _error_body("output_invalid", f"the result is not JSON: {exc}", limit, type(exc).__name__, None)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and the like: an answer all the same
            data = _error_body("policy_error", f"{type(exc).__name__}: {exc}", limit, type(exc).__name__, None)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        frames.write_all(result_fd, frames.HEADER.pack(len(data)) + data)
        del data
        message = None
        if request_fd is None or once:
            return


def error_dict(error_type: str, message: str, limit: int, exception_type=None, errors=None) -> dict[str, Any]:
    """The error object of a call (the worker's and the child's alike), its message capped at ``limit``."""
    text = message if len(message) <= limit else f"{message[:limit]}… (truncated: {len(message)} characters in all)"
    body: dict[str, Any] = {"error_type": error_type, "message": text}
    if exception_type:
        body["exception_type"] = exception_type
    if errors:
        body["errors"] = errors
    return body


def _error_body(error_type: str, message: str, limit: int, exception_type, errors) -> bytes:
    return json.dumps({"error": error_dict(error_type, message, limit, exception_type, errors)}, default=str).encode()


# --- the warm worker's side -------------------------------------------------------------------------------


# The call's ends of its context store's pipes (``context_proxy.PipeContext``), set in the child after the fork.
CONTEXT_FDS: tuple[int, int] | None = None


class Child:
    """A forked child and the warm worker's ends of its pipes."""

    def __init__(self, run, first: dict[str, Any] | None, *, keep: bool, cpu_seconds: float, limit: int,
                 scope: bool = True, once: bool = False, context=None, ports: tuple[int, ...] | None = None,
                 call_cpu: float | None = None) -> None:
        """``keep``: calls come over a request pipe; ``once``: a spare that serves one call read from it;
        ``context``: the worker's ``ContextServer`` (the Redis store, through two pipes); ``ports``: the TCP
        ports the call may connect to (its declared ones); ``call_cpu``: each call's CPU budget in a reused
        process (``cpu_seconds`` is then its whole life's)."""
        global CONTEXT_FDS
        result_r, result_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        request_r = request_w = None
        if keep:
            request_r, request_w = os.pipe2(os.O_CLOEXEC)
        ctx_ask_r, ctx_ask_w = os.pipe2(os.O_CLOEXEC) if context is not None else (None, None)
        ctx_answer_r, ctx_answer_w = os.pipe2(os.O_CLOEXEC) if context is not None else (None, None)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # Objects alive now go to the permanent generation: the child's collections don't walk (and so don't
        # copy-on-write) the warm worker's whole heap. Several times faster a call.
        gc.freeze()
        worker_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 0
            try:
                lifetime.die_with_parent(worker_pid)  # a killed worker leaves no call running (issue 13)
                for fd in (result_r, out_r, err_r, request_w, ctx_ask_r, ctx_answer_w):
                    if fd is not None:
                        os.close(fd)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                close_all_but({1, 2, result_w} | {fd for fd in (request_r, ctx_ask_w, ctx_answer_r) if fd is not None})
                CONTEXT_FDS = (ctx_ask_w, ctx_answer_r) if context is not None else None
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                if scope and not confine.scope_child(ports):
                    os._exit(71)  # the warm worker was told the scope works: never run unscoped
                _limit_cpu(cpu_seconds)
                _serve(run, first, request_r, result_w, limit, once, call_cpu)
            except BaseException:  # noqa: BLE001
                code = 70
            finally:
                os._exit(code)
        for fd in (result_w, out_w, err_w, request_r, ctx_ask_w, ctx_answer_r):
            if fd is not None:
                os.close(fd)
        self.context, self.ctx_ask_fd, self.ctx_answer_fd = context, ctx_ask_r, ctx_answer_w
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.result_fd, self.out_fd, self.err_fd, self.request_fd = result_r, out_r, err_r, request_w
        self.status: int | None = None
        self.rusage = None
        self.cpu_seconds = cpu_seconds
        self.call_cpu = call_cpu

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode()
        frames.write_all(self.request_fd, frames.HEADER.pack(len(data)) + data)

    def collect(self, max_frame: int, one_shot: bool) -> tuple[bytes | None, Captured, str | None]:
        """(the frame's body or None, the captured output, a protocol violation or None).

        One-shot: reads until the child has exited, then whatever its pipes still hold. Kept: until one frame.
        """
        captured = Captured()
        frame = bytearray()
        open_fds = {self.result_fd: "result", self.out_fd: "stdout", self.err_fd: "stderr"}
        poller = select.poll()
        for fd in open_fds:
            poller.register(fd, select.POLLIN)
        poller.register(self.pidfd, select.POLLIN)
        if self.ctx_ask_fd is not None:
            self.context.reset()
            poller.register(self.ctx_ask_fd, select.POLLIN)
        violation = None
        exited = False
        while not exited and open_fds:
            # Context requests first: one the call wrote before its result is served (or refused) before the
            # result counts.
            for fd, _ in sorted(poller.poll(), key=lambda event: event[0] != self.ctx_ask_fd):
                if fd == self.pidfd:
                    exited = True
                    continue
                if fd == self.ctx_ask_fd:
                    violation = self._serve_context(poller) or violation
                    continue
                if fd not in open_fds:
                    continue
                data = os.read(fd, 1 << 16)
                if not data:
                    poller.unregister(fd)
                    del open_fds[fd]
                    continue
                if open_fds[fd] == "result":
                    frame += data
                    if len(frame) > max_frame + 4:
                        violation = TOO_LARGE
                        self.kill()
                        poller.unregister(fd)
                        del open_fds[fd]
                else:
                    captured.add(captured.stdout if open_fds[fd] == "stdout" else captured.stderr, data, OUTPUT_CAP)
            if frames.complete(frame):
                if one_shot:
                    # Its answer is in: nothing it does from now on counts (it would only flush and exit).
                    # Killed rather than waited for; the warm worker reaps it after replying.
                    self.kill()
                break
            if self.result_fd not in open_fds and one_shot and not exited:
                # The result pipe closed (the child ended it or exited): wait for the exit itself.
                self.wait()
                exited = True
        if (exited or self.result_fd not in open_fds) and not frames.complete(frame):
            self.wait()
        # What the pipes still hold (a grandchild may keep them open: take what is there, don't wait for it).
        for fd, name in list(open_fds.items()):
            for _ in range(64):
                ready = select.select([fd], [], [], 0)[0]
                if not ready:
                    break
                data = os.read(fd, 1 << 16)
                if not data:
                    break
                if name == "result":
                    frame += data
                else:
                    captured.add(captured.stdout if name == "stdout" else captured.stderr, data, OUTPUT_CAP)
        if violation == TOO_LARGE:
            return None, captured, violation
        if violation is None and frame:
            violation = frames.check_frame(frame, max_frame)
        if not frame:
            return None, captured, violation
        return (bytes(frame[4:]) if violation is None else None), captured, violation

    def _serve_context(self, poller) -> str | None:
        """One read of the call's context requests, each answered; a violation (an oversized frame) kills it."""
        data = os.read(self.ctx_ask_fd, 1 << 16)
        if not data:
            poller.unregister(self.ctx_ask_fd)
            return None
        try:
            for answer in self.context.feed(data):
                frames.write_all(self.ctx_answer_fd, answer)
        except Exception as exc:  # noqa: BLE001 - an oversized request, or a call gone before its answer
            poller.unregister(self.ctx_ask_fd)
            self.kill()
            return f"the policy's process broke the context store's protocol: {exc}"
        return None

    def pending(self) -> bool:
        """Whether the child wrote on its result pipe after its last answer (a kept child that does is replaced:
        its next call must not read a stale or forged frame)."""
        return bool(select.select([self.result_fd], [], [], 0)[0])

    def alive(self) -> bool:
        """Whether the child still runs (its pidfd is readable once it has exited)."""
        return self.status is None and not select.select([self.pidfd], [], [], 0)[0]

    def wait(self) -> None:
        if self.status is None:
            _, self.status, self.rusage = os.wait4(self.pid, 0)

    def pause(self) -> None:
        """Stop this process until ``resume()`` (SIGSTOP, waited for): between its caller's calls it runs nothing,
        no thread and no signal handler, while other callers' calls use the worker's call folder."""
        try:
            os.kill(self.pid, signal.SIGSTOP)
            # Stopped or dead; a dead child stays waitable (WNOWAIT) for death().
            os.waitid(os.P_PIDFD, self.pidfd, os.WSTOPPED | os.WEXITED | os.WNOWAIT)
        except (ProcessLookupError, ChildProcessError):
            pass

    def resume(self) -> None:
        try:
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self, reap: bool = True) -> None:
        """Close the warm worker's ends; kill the child, and wait for it unless ``reap`` is False (then wait())."""
        if self.request_fd is not None:
            try:
                os.close(self.request_fd)
            except OSError:
                pass
            self.request_fd = None
        if self.status is None:
            self.kill()
            if reap:
                self.wait()
        for fd in (self.result_fd, self.out_fd, self.err_fd, self.pidfd, self.ctx_ask_fd, self.ctx_answer_fd):
            try:
                if fd is not None:
                    os.close(fd)
            except OSError:
                pass

    def death(self) -> tuple[str, str, str | None]:
        """(error_type, message, exception_type) for a child that ended without its frame."""
        self.wait()
        status = self.status or 0
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            name = signal.Signals(sig).name
            used = (self.rusage.ru_utime + self.rusage.ru_stime) if self.rusage else 0
            budget = self.call_cpu or self.cpu_seconds
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and not self.call_cpu
                                         and used >= max(1, int(budget)) - 0.05):
                return "resource_limit", f"the policy exceeded its CPU-time limit of {budget:g}s ({name})", name
            if sig == signal.SIGKILL:
                return "resource_limit", f"the policy's process was killed ({name}), probably for memory", name
            return "policy_error", f"the policy's process died with signal {name}", name
        code = os.WEXITSTATUS(status)
        return "policy_error", f"the policy's process exited unexpectedly (exit code {code})", "ProcessExit"


