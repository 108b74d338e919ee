"""A process that ends with its parent: ``PR_SET_PDEATHSIG``, so nothing outlives the process that started it.

The executor service's workers, and each call's process forked from a worker, call this first: a SIGKILLed
service (or worker) then leaves no worker spinning as an orphan until its CPU limit (issue 13). A process
manager that kills the whole cgroup (systemd, a container) does the same from the outside; this covers a
service run by hand or by a supervisor that can only kill what it started.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1

# Resolved at import, in the parent: ``die_with_parent`` runs between fork and exec, where loading a library
# could wait forever on a lock another thread of the parent held at the fork.
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel for ``sig`` when the parent dies; exit at once if it already has. False if unsupported."""
    if _prctl is None:
        return False
    applied = _prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), ctypes.c_ulong(0), ctypes.c_ulong(0),
                     ctypes.c_ulong(0)) == 0
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    return applied
