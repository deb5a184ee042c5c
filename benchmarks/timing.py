"""Shared by the planner benchmarks: the median wall time of repeated calls, and the last result."""

from __future__ import annotations

import statistics
import time


def pace(repeats: int = 3) -> float:
    """Seconds a fixed pure-Python loop (2,000,000 additions) takes, median of ``repeats``: the
    development VM's CPU speed drifts by up to 2x over minutes (0.10-0.24 s measured), so each
    table row prints it beside its timings."""
    times = []
    for _ in range(repeats):
        start, total = time.perf_counter(), 0
        for i in range(2_000_000):
            total += i
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed(fn, repeats: int):
    """Median seconds of ``repeats`` calls of ``fn()``, and what the last call returned."""
    times, result = timed_each(fn, repeats)
    return statistics.median(times), result


def timed_each(fn, repeats: int):
    """Seconds of each of ``repeats`` calls of ``fn()``, and what the last call returned."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def spread(times: list[float], fmt: str = ".3f") -> str:
    """``median (min-max)`` of some timings."""
    return f"{statistics.median(times):{fmt}} ({min(times):{fmt}}-{max(times):{fmt}})"
