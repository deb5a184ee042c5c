"""Shared by the planner benchmarks: the median wall time of repeated calls, and the last result."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeats: int):
    """Median seconds of ``repeats`` calls of ``fn()``, and what the last call returned."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result
