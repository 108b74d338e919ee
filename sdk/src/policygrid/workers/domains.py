"""Type 2 calls of one caller share a process; no two callers ever do (docs/runtime.md §4).

Forking a process per call costs more CPU than the rest of a call together (a 36 MB interpreter's page tables,
then its copy-on-write faults and teardown). So the warm worker keeps, per record and per *caller* (the
``domain`` the service names: the portal's signed caller, or ``direct`` for the service's own credential), a
child that runs that caller's calls one after another, each with a **fresh instance** of the policy class.
What one call leaves in the process (a module global, an open file) is visible only to later calls of the
same caller — never to another caller's, whose calls run in a process of their own.

A caller's process is replaced after ``MAX_CALLS`` calls, when its calls have taken ``CPU_FACTOR - 1`` times a
call's CPU budget (its ``RLIMIT_CPU`` is ``CPU_FACTOR`` times it, so every call keeps its own budget), and after
any call that ended without a clean answer. A thread a call leaves behind lives on in that caller's process
only, and its CPU counts against the same limit. At most ``MAX_CALLERS`` callers' processes live per worker; the
least recently used is closed first.
"""

from __future__ import annotations

import resource
from typing import Any

MAX_CALLERS = 4
MAX_CALLS = 1000
CPU_FACTOR = 20
_SEPARATOR = "\x00caller\x00"


def key(rk: str, domain: str) -> str:
    return f"{rk}{_SEPARATOR}{domain}"


def of_record(kept_key: str, rk: str) -> bool:
    return kept_key == rk or kept_key.startswith(rk + _SEPARATOR)


def make_room(calls: Any) -> None:
    """Close the least recently used callers' processes beyond ``MAX_CALLERS - 1``."""
    callers = [k for k in calls.kept if _SEPARATOR in k]
    for stale in callers[:max(0, len(callers) - MAX_CALLERS + 1)]:
        calls.kept.pop(stale).close()


def after_call(calls: Any, kept_key: str, process: Any, elapsed: float) -> None:
    """Replace the caller's process once it served ``MAX_CALLS`` calls, or ran ``CPU_FACTOR - 1`` calls' CPU
    budgets. The worker can't read its child's ``/proc`` (Landlock), so the calls' wall-clock time stands for
    their CPU time: an upper bound for a single-threaded call; a policy's extra threads count against the
    kernel's ``RLIMIT_CPU`` all the same (a call that hits it fails as ``resource_limit`` and the process is
    replaced)."""
    process.calls = getattr(process, "calls", 0) + 1
    process.busy = getattr(process, "busy", 0.0) + elapsed
    budget = process.cpu_seconds / CPU_FACTOR
    if process.calls >= MAX_CALLS or process.busy > budget * (CPU_FACTOR - 1):
        calls.drop_kept(kept_key)


def call_budget(seconds: float) -> None:
    """A reused process's next call gets ``seconds`` of CPU: the soft limit is set that far above what the
    process has used (the hard limit, set at the fork, stays: policy code can raise the soft one no further)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    wanted = int(used.ru_utime + used.ru_stime + seconds + 0.999)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
    except (ValueError, OSError):
        pass
