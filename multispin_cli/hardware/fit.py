"""Least-squares lines with R^2, measured tables and expected times (pure).

The profile loader requires ``verify_base_ms > 0``, ``verify_ms_per_token >= 0``,
``draft_ms_per_token > 0``, ``draft_overhead_ms >= 0``, and a table whose token counts increase (its
times may fall as well as rise). The fits here honour lower bounds by re-fitting on the boundary (a
constrained least-squares solution, not a blind clip) and record what they clamped, so the
document can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The affine form is written as verify_model = "affine" when its R^2 reaches this; below it the
# measured table is used (CPU BLAS timings have steps an affine line cannot follow).
AFFINE_R2_THRESHOLD = 0.99


@dataclass(frozen=True)
class AffineFit:
    """``y = intercept + slope * x`` with its coefficient of determination."""

    intercept: float
    slope: float
    r2: float
    clamped: tuple[str, ...] = ()

    def __call__(self, x):
        return self.intercept + self.slope * np.asarray(x, dtype=float)


def r_squared(x, y, intercept: float, slope: float) -> float:
    """1 - SS_res / SS_tot of a line through the points (1 for an exact fit of constant data)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    residual = float(np.sum((y - (intercept + slope * x)) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 0.0:
        scale = max(float(np.max(np.abs(y))), 1e-300) if y.size else 1.0
        return 1.0 if residual <= (1e-12 * scale) ** 2 * max(y.size, 1) else 0.0
    return 1.0 - residual / total


def fit_affine(x, y, *, min_intercept: float | None = None, min_slope: float | None = None) -> AffineFit:
    """Least-squares line through ``(x, y)``, optionally with ``intercept >= min_intercept`` and
    ``slope >= min_slope`` (the minimiser on the boundary when the free one violates a bound)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError("x and y must be equal-length non-empty 1-D arrays")
    clamped: list[str] = []
    if x.size == 1 or np.ptp(x) == 0.0:
        slope, intercept = 0.0, float(y.mean())
        clamped.append("slope (a single x value determines no slope: set to 0)")
    else:
        dx = x - x.mean()
        slope = float(np.sum(dx * (y - y.mean())) / np.sum(dx * dx))
        intercept = float(y.mean() - slope * x.mean())
    if min_slope is not None and slope < min_slope:
        clamped.append(f"slope (fitted {slope:.6g}, raised to {min_slope:g})")
        slope = min_slope
        intercept = float(np.mean(y - slope * x))
    if min_intercept is not None and intercept < min_intercept:
        clamped.append(f"intercept (fitted {intercept:.6g}, raised to {min_intercept:g})")
        intercept = min_intercept
        sxx = float(np.sum(x * x))
        slope = float(np.sum(x * (y - intercept)) / sxx) if sxx > 0 else 0.0
        if min_slope is not None and slope < min_slope:
            slope = min_slope
    return AffineFit(intercept, slope, r_squared(x, y, intercept, slope), tuple(clamped))


@dataclass(frozen=True)
class MeasuredTable:
    """Points with strictly increasing x, and how many y lie below an earlier one."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    falls: int


def measured_table(x, y) -> MeasuredTable:
    """Collapse repeated x to their largest y (the conservative choice: at the same N, a pass with
    more sequences reads more KV cache), and keep the rest as measured. No running maximum: real
    tables fall as well as rise (a CPU matmul of 3 rows can be slower than one of 4), the planners
    are exact for any shape, and a running maximum would lift every larger N to a peak's time."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError("x and y must be equal-length non-empty 1-D arrays")
    xs = np.unique(x)
    ys = np.array([y[x == v].max() for v in xs])
    falls = int(np.count_nonzero(np.maximum.accumulate(ys) > ys))
    return MeasuredTable(tuple(float(v) for v in xs), tuple(float(v) for v in ys), falls)


# A sample further than this many robust standard deviations (1.4826 MAD) from the median is a stall
# of the machine (another process, an interrupt storm), not the cost being measured. Generous, as the
# moderate slow passes of a skewed spread are part of that cost.
OUTLIER_SIGMAS = 5.0


def typical_seconds(samples) -> float:
    """The expected time of a repeated operation: the mean of its samples, those further than
    OUTLIER_SIGMAS robust standard deviations from the median left out.

    A mean, not a median: an engine's rate is its total time over many passes, so a pass that is
    sometimes slower than usual (timings on CPUs are skewed to the right) costs its mean, which a
    median under-states by a few per cent. The outlier cut keeps a rare stall from weighing more than
    the spells a run of the engine would see.
    """
    x = np.asarray(samples, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("no samples")
    med = float(np.median(x))
    mad = 1.4826 * float(np.median(np.abs(x - med)))
    if mad <= 0.0:
        return med
    return float(x[np.abs(x - med) <= OUTLIER_SIGMAS * mad].mean())


def relative_error(samples) -> float:
    """Standard error of :func:`typical_seconds` over its value (0.01 = 1 %), from the samples it keeps."""
    x = np.asarray(samples, dtype=float).ravel()
    med = float(np.median(x))
    mad = 1.4826 * float(np.median(np.abs(x - med)))
    kept = x if mad <= 0.0 else x[np.abs(x - med) <= OUTLIER_SIGMAS * mad]
    mean = float(kept.mean())
    if kept.size < 2 or mean <= 0.0:
        return 0.0
    return float(kept.std(ddof=1) / np.sqrt(kept.size) / mean)


def sweep_slowdowns(sweeps) -> np.ndarray:
    """How slow the machine ran during each sweep of repeated timings, relative to all of them (pure).

    ``sweeps`` holds, per sweep, ``(key, x, seconds)`` samples: an operation ``key`` (like a pass's
    token count) timed at a covariate ``x`` (like its KV cache length). Each operation's reference is
    a line in ``x`` through all its samples' logarithms (least squares; a constant when ``x`` never
    moves), and a sweep's slowdown is the median over its samples of ``seconds / reference``: 1.1
    means that sweep ran 10 % slower than the sweeps' average. On a shared or virtual machine the speed
    of every operation drifts together (by 10-20 % over seconds to minutes), so this one number per
    sweep tracks it; the median keeps one stalled sample from moving it. What the line explains is
    put down to ``x``, so the sweeps' ``x`` should not move with the drift (spread them evenly, in
    an order of their own).
    """
    rows = [(k, key, float(x), float(s)) for k, sweep in enumerate(sweeps) for key, x, s in sweep]
    if not rows:
        return np.ones(len(sweeps))
    index = np.array([r[0] for r in rows])
    keys = [r[1] for r in rows]
    x = np.array([r[2] for r in rows])
    logs = np.log(np.array([r[3] for r in rows]))
    residual = np.empty_like(logs)
    for key in set(keys):
        mask = np.array([k == key for k in keys])
        if np.ptp(x[mask]) > 0 and mask.sum() > 2:
            slope, intercept = np.polyfit(x[mask], logs[mask], 1)
        else:
            slope, intercept = 0.0, float(np.mean(logs[mask]))
        residual[mask] = logs[mask] - (intercept + slope * x[mask])
    out = np.ones(len(sweeps))
    for k in range(len(sweeps)):
        if np.any(index == k):
            out[k] = float(np.exp(np.median(residual[index == k])))
    return out
