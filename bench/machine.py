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
