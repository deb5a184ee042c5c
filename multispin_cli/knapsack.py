"""Multiple-choice knapsack over draft lengths, solved through its LP relaxation (batched).

Each user picks one level l in 0..L_max with value ``v[k, l]`` and weight (bandwidth) ``w[k, l]``;
the weights must fit a budget. Level 0 weighs nothing. For the Multi-SPIN items the weights are
convex and the values concave in l for l >= 1 (see :mod:`multispin_cli.heterogeneous`), so each
user's LP-efficient levels are 0, then a first jump to the level with the best value per hertz,
then every following level while it still adds value: the classic greedy over increments sorted by
value per hertz solves the LP exactly (Sinha and Zoltners, 1979). At most one user is fractional;
dropping it gives an integer plan, and a second pass spends what is left on the other users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class KnapsackSolution:
    """A batch of knapsacks: integer levels (B, K); the LP optimum's value and its total level (B,)."""

    levels: np.ndarray
    lp_value: np.ndarray
    lp_levels: np.ndarray
    int_value: np.ndarray


def _increments(values: np.ndarray, weights: np.ndarray):
    """Each user's LP-efficient increments: (gain, weight, efficiency, level, valid), shape (B, K, L)."""
    gain0 = values[..., 1:] - values[..., :1]
    w = weights[..., 1:]
    usable = np.isfinite(w) & (gain0 > 0) & (w > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope0 = np.where(usable, gain0 / np.where(usable, w, 1.0), -np.inf)
    first = np.argmax(slope0, axis=-1)  # index of level first+1
    has_first = np.take_along_axis(slope0, first[..., None], axis=-1)[..., 0] > -np.inf

    step_gain = np.diff(values, axis=-1)
    with np.errstate(invalid="ignore"):
        step_w = np.diff(weights, axis=-1)
    idx = np.arange(values.shape[-1] - 1)
    is_first = idx == first[..., None]
    gain = np.where(is_first, gain0, step_gain)
    weight = np.where(is_first, w, step_w)
    ok = np.isfinite(weight) & (gain > 0) & (weight >= 0)
    after = idx >= first[..., None]
    valid = np.logical_and.accumulate(np.where(after, ok, True), axis=-1) & after & has_first[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(valid, gain / np.where(valid, weight, 1.0), -np.inf)
    # Concavity makes these non-increasing along l already; enforce it against rounding so the
    # greedy never takes a level before the one below it.
    eff = np.where(valid, np.minimum.accumulate(np.where(valid, eff, np.inf), axis=-1), -np.inf)
    level = np.broadcast_to(idx + 1, gain.shape)
    return gain, weight, eff, level, valid, first + 1


def solve(values: np.ndarray, weights: np.ndarray, budget: float) -> KnapsackSolution:
    """Solve a batch of knapsacks: ``values``/``weights`` of shape (B, K, L+1), ``weights[..., 0] == 0``.

    Weights may be ``inf`` (level not allowed). Returns integer levels, the LP value (an upper bound
    on any integer choice), the LP's total level and the integer choice's value.
    """
    b, k, l1 = values.shape
    gain, weight, eff, level, valid, firsts = _increments(values, weights)
    row, user, lvl = np.nonzero(valid)  # only the increments that exist, in (row, user, level) order
    if row.size == 0:  # nobody can draft: everyone stays at level 0
        base = values[..., 0].sum(axis=-1)
        return KnapsackSolution(np.zeros((b, k), dtype=int), base, np.zeros(b), base)
    gain, weight, eff = gain[row, user, lvl], weight[row, user, lvl], eff[row, user, lvl]
    steps = np.where(lvl + 1 == firsts[row, user], lvl + 1, 1)  # levels gained by each increment
    # Per row, by value per hertz, best first; a user's own increments stay in level order.
    order = np.lexsort((lvl, user, -eff, row))
    row, user, gain, weight, steps = row[order], user[order], gain[order], weight[order], steps[order]
    starts = np.searchsorted(row, np.arange(b))

    def row_cumsum(x):
        total = np.cumsum(x)
        before = np.concatenate([[0.0], total])[starts]
        return total - before[row]

    cum = row_cumsum(weight)
    taken = cum <= budget
    # LP optimum: the taken prefix plus a fraction of the first increment that does not fit.
    over = ~taken
    first_over = np.full(b, -1)
    idx_over = np.nonzero(over)[0]
    if idx_over.size:
        r_over = row[idx_over]
        uniq, pos = np.unique(r_over, return_index=True)
        first_over[uniq] = idx_over[pos]
    has_crit = first_over >= 0
    crit = np.maximum(first_over, 0)
    spent = np.where(has_crit, cum[crit] - weight[crit], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(has_crit, (budget - spent) / weight[crit], 0.0)
    frac = np.clip(np.nan_to_num(frac), 0.0, 1.0)
    base = values[..., 0].sum(axis=-1)
    lp_value = base + np.bincount(row[taken], gain[taken], minlength=b) + frac * np.where(has_crit, gain[crit], 0.0)
    lp_levels = np.bincount(row[taken], steps[taken], minlength=b) + frac * np.where(has_crit, steps[crit], 0)

    # Integer plan: the prefix, then a second greedy pass over the other users' increments with
    # what is left (the fractional user keeps what it had); a prefix of the remaining increments
    # keeps every user's own increments in order.
    crit_user = np.where(has_crit, user[crit], -1)
    rest = over & (user != crit_user[row])
    left = budget - np.bincount(row[taken], weight[taken], minlength=b)
    cum2 = row_cumsum(np.where(rest, weight, 0.0))
    taken = taken | (rest & (cum2 <= left[row]))
    counts = np.bincount(row[taken] * k + user[taken], minlength=b * k).reshape(b, k)
    levels = np.where(counts > 0, firsts + counts - 1, 0)
    int_value = np.take_along_axis(values, levels[..., None], axis=-1)[..., 0].sum(axis=-1)
    return KnapsackSolution(levels, lp_value, lp_levels, int_value)
