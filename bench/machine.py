"""How fast this machine is right now: printed beside every benchmark's figures.

Shared cloud cores vary from hour to hour (the same build's throughput can differ by half within a day), so a
figure means little without the speed of the machine that produced it. ``calibration()`` times a fixed piece of
pure-Python work; on a quiet current x86 core it takes about 1 ms, and a figure measured while it takes 2.5 ms
was measured on a machine running at 40 % of that speed.
"""
from __future__ import annotations

import statistics
import time


def calibration(rounds: int = 30) -> float:
    """Median milliseconds of ``sum(range(100_000))`` over ``rounds`` runs."""
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        sum(range(100_000))
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def describe(before: float, after: float) -> str:
    return (f"machine speed: sum(range(100000)) took {before:.2f} ms before and {after:.2f} ms after "
            "(≈1 ms on a quiet current x86 core; higher means a slower or busier machine)")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) spent by process ``root`` and all its descendants, the exited ones included.

    Counts each live process's own time plus the time of the children it has reaped (``cutime``/``cstime``),
    so a per-call process that has come and gone is counted once its parent waited for it. Reads ``/proc``:
    Linux only. A CPU figure per call is steadier than calls/s on a shared machine: others' load changes
    how long a call waits, much less how much CPU it takes.
    """
    import os

    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[1] is the parent pid; [11:15] utime, stime, cutime, cstime (man 5 proc, counted after the name)
        stats[int(entry)] = (int(fields[1]), sum(int(value) for value in fields[11:15]))
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0))[1]
        todo.extend(children.get(pid, ()))
    return total / tick
