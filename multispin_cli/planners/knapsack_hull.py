"""The multiple-choice knapsack's LP bound when the weights are not convex in the level.

With whole resource blocks or CQI steps a user's bandwidth need is a step function of its draft
length, so the greedy of :func:`multispin_cli.planners.knapsack.solve` over consecutive levels is no
longer the LP optimum. The LP of a multiple-choice knapsack is the same problem over each user's
upper concave hull of its (weight, value) points (Sinha and Zoltners, 1979): this module builds the
hulls (vectorised over all users of all knapsacks, one hull vertex per pass), runs the greedy on
them, and maps the chosen hull vertices back to draft lengths. Its ``lp_value`` is a valid upper
bound on every integer choice; its integer plans are candidates the planner scores exactly.
"""

from __future__ import annotations

import numpy as np

from multispin_cli.planners import knapsack


def upper_hull(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's upper concave hull from level 0: (values, weights, levels), hull vertices first,
    padded with infinite weight. Vertices strictly gain value and weight; level 0 is always first.

    Points no hull can use are dropped first (where weights grow with the level: a point worth no
    more than a cheaper one, or less than the next at the same weight, as when many draft lengths
    need the same number of blocks), and the rest packed to the left. Then each pass moves every
    row from its current vertex to the point of steepest positive slope beyond it (the nearest among
    equals), so a row with h vertices is done after h passes.
    """
    shape = values.shape
    l1 = shape[-1]
    v = values.reshape(-1, l1)
    w = weights.reshape(-1, l1)
    n = v.shape[0]
    level = np.broadcast_to(np.arange(l1), v.shape)
    # Pre-filter (a speed-up only: the passes below find the hull among any points).
    with np.errstate(invalid="ignore"):
        monotone = np.all(w[:, 1:] >= w[:, :-1], axis=1)
    earlier = np.maximum.accumulate(v, axis=1)
    keep = np.ones(v.shape, bool)
    keep[:, 1:] = v[:, 1:] > earlier[:, :-1]
    keep[:, :-1] &= ~((w[:, 1:] == w[:, :-1]) & (v[:, 1:] > v[:, :-1]))
    keep &= np.isfinite(w)
    keep = np.where(monotone[:, None], keep, np.isfinite(w))
    keep[:, 0] = True
    # Pack the kept points to the left of each row (in level order): a scatter by running count.
    counts = keep.sum(axis=1)
    width = int(counts.max())
    r, c = np.nonzero(keep)
    slot = (np.cumsum(keep, axis=1) - 1)[r, c]
    v_packed = np.empty((n, width))
    w_packed = np.full((n, width), np.inf)
    l_packed = np.zeros((n, width), dtype=np.int64)
    v_packed[r, slot], w_packed[r, slot], l_packed[r, slot] = v[r, c], w[r, c], c
    v, w, level = v_packed, w_packed, l_packed

    hv = np.empty((n, l1))
    hw = np.full((n, l1), np.inf)
    hl = np.zeros((n, l1), dtype=np.int64)
    cur = np.zeros(n, dtype=np.int64)
    hv[:, 0], hw[:, 0] = v[:, 0], w[:, 0]
    hv[:, 1:] = v[:, :1]
    # Rows of two points need no search: the second is a vertex when it adds value for more weight.
    if width > 1:
        pair = counts == 2
        dw = w[:, 1] - w[:, 0]
        step = pair & (dw > 0) & np.isfinite(dw) & (v[:, 1] > v[:, 0])
        hv[step, 1], hw[step, 1], hl[step, 1] = v[step, 1], w[step, 1], level[step, 1]
        hv[step, 2:] = v[step, 1][:, None]
    active = np.flatnonzero(counts > 2)
    for pos in range(1, width):
        if active.size == 0:
            break
        c = cur[active]
        va, wa = v[active], w[active]
        vc, wc = va[np.arange(active.size), c][:, None], wa[np.arange(active.size), c][:, None]
        dw = wa - wc
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (va - vc) / dw
        slope[~((dw > 0) & np.isfinite(dw) & (va > vc))] = -np.inf
        nxt = np.argmax(slope, axis=1)
        go = slope[np.arange(active.size), nxt] > -np.inf
        active, nxt = active[go], nxt[go]
        cur[active] = nxt
        hv[active, pos], hw[active, pos], hl[active, pos] = v[active, nxt], w[active, nxt], level[active, nxt]
        hv[active, pos + 1:] = v[active, nxt][:, None]
    return hv.reshape(shape), hw.reshape(shape), hl.reshape(shape)


def solve(values: np.ndarray, weights: np.ndarray, budget: float) -> knapsack.KnapsackSolution:
    """Like :func:`knapsack.solve` (same shapes and fields) for weights of any shape in the level.

    ``lp_levels`` is the LP optimum's total draft length with the fractional user's share counted
    between its two hull vertices' levels.
    """
    hv, hw, hl = upper_hull(values, weights)
    sol = knapsack.solve(hv, hw, budget)
    levels = np.take_along_axis(hl, sol.levels[..., None], axis=-1)[..., 0]
    rounded_up = np.take_along_axis(hl, sol.rounded_up[..., None], axis=-1)[..., 0]
    # The LP's total length: the integer part's, plus the fractional user's step in proportion to
    # the value it adds (its share of the way between two vertices).
    lower = levels.sum(axis=-1)
    upper = rounded_up.sum(axis=-1)
    integer_value = np.take_along_axis(hv, sol.levels[..., None], axis=-1)[..., 0].sum(axis=-1)
    up_value = np.take_along_axis(hv, sol.rounded_up[..., None], axis=-1)[..., 0].sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(np.nan_to_num((sol.lp_value - integer_value) / (up_value - integer_value)), 0.0, 1.0)
    lp_levels = lower + frac * (upper - lower)
    return knapsack.KnapsackSolution(levels, sol.lp_value, lp_levels, rounded_up, sol.price)


def dual_value(values: np.ndarray, weights: np.ndarray, price: np.ndarray, budget: float):
    """``price * budget + sum_k max_l (values - price * weights)`` per knapsack (B,), and the levels
    that attain each maximum (B, K): the integer plan the price selects (it may not fit).

    For any price >= 0 this bounds every integer choice's value, and the LP's, from above (weak
    duality; at the LP's own price it is the LP value). Far cheaper than :func:`solve` (no hull,
    no sort), so a price from a neighbouring knapsack tests whether a bound is low enough.
    Infinite weights are levels that do not exist.
    """
    with np.errstate(invalid="ignore"):
        score = values - price[:, None, None] * weights
    score = np.where(np.isfinite(weights), score, -np.inf)
    pick = score.argmax(axis=-1)
    best = np.take_along_axis(score, pick[..., None], axis=-1)[..., 0]
    return price * budget + best.sum(axis=-1), pick
