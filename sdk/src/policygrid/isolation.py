"""Running a PolicyRunner in a child process with resource limits and a per-call wall-clock timeout.

The parent talks to the child over its stdin/stdout, one JSON object per line (JSON, never pickle: nothing the
policy returns can run code in the parent). Run as `python -m policygrid.isolation` for the child side.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import sandbox
from .errors import ERROR_CLASSES, InputInvalid, PolicyError, PolicyGridError, ResourceLimit, Timeout

# Variables that must not reach policy code: the service's own credentials and connection strings.
_SECRET_ENV = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_KEY|ACCESS_KEY|DATABASE_URL|_DSN$|^AWS_)", re.I)


@dataclass
class IsolationLimits:
    """Limits of runtime.md §4. `timeout_seconds` is wall clock per call; `cpu_seconds` is CPU time per call."""

    timeout_seconds: float = 30
    memory_mb: int = 1024
    cpu_seconds: int = 30
    max_processes: int = 16
    max_result_bytes: int = 10 * 1024 * 1024
    start_timeout_seconds: float = 60


def stripped_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _SECRET_ENV.search(k)}
    env.update(extra or {})
    return env


class IsolatedRunner:
    """The parent side: the same `eval`/`management` as PolicyRunner, executed in a supervised child.

    A child that times out is killed; one that dies fails that call with a clear error. Either way the next
    call starts a fresh child, whose policy instance is new (its in-memory state is lost with the old one).
    """

    def __init__(
        self,
        package_dir: Path,
        requirements_dir: Path | None,
        record: dict[str, Any],
        settings: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        validate: bool = True,
        limits: IsolationLimits | None = None,
    ) -> None:
        self.limits = limits or IsolationLimits()
        self._init = {
            "op": "init",
            "package_dir": str(package_dir),
            "requirements_dir": str(requirements_dir) if requirements_dir else None,
            "record": record,
            "settings": settings,
            "parameters": parameters,
            "validate": validate,
            "limits": asdict(self.limits),
        }
        self._process: subprocess.Popen | None = None
        self._tmp: str | None = None
        self._buffer = b""
        self._start()

    # --- lifecycle ----------------------------------------------------------------------------------------

    def _start(self) -> None:
        self._tmp = tempfile.mkdtemp(prefix="policygrid-isolated-")
        env = stripped_environment({"TMPDIR": self._tmp, "PYTHONDONTWRITEBYTECODE": "1"})
        # The child must import this very package, wherever it was installed from.
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "policygrid.isolation"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=self._tmp,
            env=env,
            start_new_session=True,
        )
        self._buffer = b""
        self._exchange(self._init, self.limits.start_timeout_seconds)

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        if process is not None:
            for stream in (process.stdin, process.stdout):
                if stream:
                    stream.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    # --- calls --------------------------------------------------------------------------------------------

    def eval(self, input_data: Any) -> Any:
        return self._call({"op": "eval", "input_data": input_data})

    def management(self, action: str, data: dict[str, Any] | None = None) -> Any:
        return self._call({"op": "management", "action": action, "data": data})

    def _call(self, message: dict[str, Any]) -> Any:
        if self._process is None or self._process.poll() is not None:
            self.close()
            self._start()
        return self._exchange(message, self.limits.timeout_seconds)

    def _exchange(self, message: dict[str, Any], timeout: float) -> Any:
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            process.stdin.write(json.dumps(message).encode() + b"\n")
            process.stdin.flush()
        except BrokenPipeError:
            raise self._death() from None
        except (TypeError, ValueError) as exc:
            raise InputInvalid(f"the call's data is not JSON-serialisable: {exc}") from None
        line = self._read_line(time.monotonic() + timeout)
        reply = json.loads(line)
        if reply.get("ok"):
            return reply.get("result")
        cls = ERROR_CLASSES.get(reply.get("error_type", ""), PolicyError)
        kwargs: dict[str, Any] = {"errors": reply.get("errors")}
        if cls is PolicyError:
            kwargs["exception_type"] = reply.get("exception_type")
        raise cls(reply.get("message", "the policy failed"), **kwargs)

    def _read_line(self, deadline: float) -> bytes:
        process = self._process
        assert process is not None and process.stdout is not None
        fd = process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise Timeout(f"the policy did not answer within {self.limits.timeout_seconds:g}s; its process was killed")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise self._death()
            self._buffer += chunk
            if len(self._buffer) > self.limits.max_result_bytes + 4096:
                self.close()
                raise ResourceLimit(f"the policy's result is larger than {self.limits.max_result_bytes} bytes")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _death(self) -> PolicyGridError:
        process = self._process
        code = None
        if process is not None:
            try:
                code = process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass  # it closed its end but lingers: close() kills it
        self.close()
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            if -code == signal.SIGXCPU:
                return ResourceLimit(f"the policy's process exceeded its CPU-time limit ({name})")
            if -code == signal.SIGKILL:
                return ResourceLimit(f"the policy's process was killed ({name}), probably for memory")
            return PolicyError(f"the policy's process died with signal {name}", exception_type=name)
        return PolicyError(f"the policy's process exited unexpectedly (exit code {code})", exception_type="ProcessDied")


# --- the child side ---------------------------------------------------------------------------------------


def _child_main() -> None:
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    # Whatever the policy prints goes to stderr; stdout belongs to the protocol.
    os.dup2(2, 1)
    from .evaluate import PolicyRunner
    from .loader import load_rule_class

    runner = None
    limits: dict[str, Any] = {}

    def send(obj: dict[str, Any]) -> None:
        try:
            data = json.dumps(obj, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            data = json.dumps(
                {"ok": False, "error_type": "output_invalid", "message": f"the result is not JSON: {exc}"}
            ).encode()
        protocol_out.write(data + b"\n")

    for raw in sys.stdin.buffer:
        message = json.loads(raw)
        op = message.get("op")
        try:
            if op == "init":
                limits = message["limits"]
                sandbox.apply_rlimits(int(limits["memory_mb"]), int(limits["max_processes"]))
                sandbox.set_no_new_privs()
                sandbox.set_non_dumpable()
                requirements = message.get("requirements_dir")
                rule_class = load_rule_class(Path(message["package_dir"]), Path(requirements) if requirements else None)
                runner = PolicyRunner(
                    message["record"],
                    rule_class,
                    settings=message.get("settings"),
                    parameters=message.get("parameters"),
                    validate=message.get("validate", True),
                )
                send({"ok": True, "result": None})
            elif op == "eval":
                sandbox.set_cpu_budget(limits["cpu_seconds"])
                send({"ok": True, "result": runner.eval(message.get("input_data"))})
            elif op == "management":
                sandbox.set_cpu_budget(limits["cpu_seconds"])
                send({"ok": True, "result": runner.management(message["action"], message.get("data"))})
            elif op == "close":
                return
            else:
                send({"ok": False, "error_type": "input_invalid", "message": f"unknown operation {op!r}"})
        except PolicyGridError as exc:
            body = exc.to_dict()
            body.pop("success", None)
            send({"ok": False, "exception_type": getattr(exc, "exception_type", None), **body})
        except MemoryError:
            send({"ok": False, "error_type": "resource_limit", "message": "the policy ran out of memory"})
        except Exception as exc:  # noqa: BLE001 - every failure must reach the parent as a reply
            send({"ok": False, "error_type": "policy_error", "message": f"{type(exc).__name__}: {exc}",
                  "exception_type": type(exc).__name__})  # fmt: skip


if __name__ == "__main__":
    _child_main()
