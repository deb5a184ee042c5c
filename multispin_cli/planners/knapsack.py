"""Multiple-choice knapsack over draft lengths, solved through its LP relaxation (batched).

Each user picks one level l in 0..L_max with value ``v[k, l]`` and weight (bandwidth) ``w[k, l]``;
the weights must fit a budget. Level 0 weighs nothing. For the Multi-SPIN items the weights are
convex and the values concave in l for l >= 1 (see :mod:`multispin_cli.planners.heterogeneous`), so each
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
    rounded_up: np.ndarray  # the integer plan with the fractional user rounded up instead
    price: np.ndarray | None = None  # (B,) the LP's multiplier on the budget: value per unit weight at the margin


def _increments(values: np.ndarray, weights: np.ndarray):
    """Each user's LP-efficient increments: (gain, weight, efficiency, valid) of shape (L, B K),
    level-major (increment i of knapsack row r's user u at ``[i, r K + u]``: each level's row is
    contiguous, so the scans over the few levels are row operations; along short rows numpy's
    accumulate and argmax take several times longer), and each user's first efficient level (B K,)."""
    b, k, l1 = values.shape
    n = b * k
    vt = np.ascontiguousarray(values.reshape(n, l1).T)
    wt = np.ascontiguousarray(weights.reshape(n, l1).T)
    gain0 = vt[1:] - vt[0]
    w = wt[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        slope0 = gain0 / w  # inf weights give 0 (or nan where the gain is inf too)
    good = gain0 > 0
    good &= w >= 0
    good &= w < np.inf
    slope0 = np.where(good, slope0, -np.inf)  # w = 0 (no uplink): slope inf
    best = slope0[0].copy()
    first = np.zeros(n, dtype=np.intp)  # index of level first + 1: the first of the best
    for level in range(1, l1 - 1):
        np.copyto(first, level, where=slope0[level] > best)
        np.maximum(best, slope0[level], out=best)
    has_first = best > -np.inf

    gain = vt[1:] - vt[:-1]
    with np.errstate(invalid="ignore"):
        weight = wt[1:] - wt[:-1]
    at = first * n + np.arange(n)  # each user's first increment jumps from level 0
    gain.ravel()[at] = gain0.ravel().take(at)
    weight.ravel()[at] = w.ravel().take(at)
    del vt, wt, w, gain0, slope0  # (the transposed copies: 5 MB each for a 100,000-user LP)
    after = np.arange(l1 - 1)[:, None] >= first
    valid = gain > 0
    valid &= weight >= 0
    valid &= weight < np.inf
    valid |= ~after
    for level in range(1, l1 - 1):  # a prefix of the levels from the first on
        np.logical_and(valid[level - 1], valid[level], out=valid[level])
    valid &= after
    valid &= has_first
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = gain / weight
    # Concavity makes these non-increasing along l already; enforce it against rounding so the
    # greedy never takes a level before the one below it.
    eff = np.where(valid, eff, np.inf)
    for level in range(1, l1 - 1):
        np.minimum(eff[level - 1], eff[level], out=eff[level])
    np.copyto(eff, -np.inf, where=~valid)
    return gain, weight, eff, valid, first + 1


def _stable_argsort(key: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The order of ``key``, equal keys in the order of ``index`` (distinct integers): a stable
    sort of the entries laid out in ``index`` order, about three times faster on large arrays.

    numpy's default sort is much faster than its stable one but orders equal keys arbitrarily; runs
    of equal keys (few, in practice) are then put in index order.
    """
    order = np.argsort(key)
    ordered = key[order]
    same = (ordered[1:] == ordered[:-1]) | (np.isnan(ordered[1:]) & np.isnan(ordered[:-1]))
    if same.any():
        in_run = np.zeros(key.size, dtype=bool)
        in_run[1:] |= same
        in_run[:-1] |= same
        pos = np.flatnonzero(in_run)
        run = np.cumsum(np.concatenate([[True], ~same]))[pos]
        order[pos] = order[pos][np.lexsort((index[order[pos]], run))]
    return order


def solve(values: np.ndarray, weights: np.ndarray, budget: float) -> KnapsackSolution:
    """Solve a batch of knapsacks: ``values``/``weights`` of shape (B, K, L+1), ``weights[..., 0] == 0``.

    Weights may be ``inf`` (level not allowed). Returns integer levels, the LP value (an upper bound
    on any integer choice), the LP's total level and the plan with the fractional user rounded up.
    """
    b, k, l1 = values.shape
    gain, weight, eff, valid, firsts = _increments(values, weights)
    flat = np.flatnonzero(valid)  # only the increments that exist, in (level, row, user) order
    if flat.size == 0:  # nobody can draft: everyone stays at level 0
        base = values[..., 0].sum(axis=-1)
        zeros = np.zeros((b, k), dtype=int)
        return KnapsackSolution(zeros, base, np.zeros(b), zeros, np.zeros(b))
    lvl = flat // (b * k)  # (// and a product: np.divmod takes several times longer)
    column = flat - lvl * (b * k)
    row = column // k
    user = column - row * k
    gain, weight, eff = gain.ravel()[flat], weight.ravel()[flat], eff.ravel()[flat]
    steps = np.where(lvl + 1 == firsts[column], lvl + 1, 1)  # levels gained by each increment
    firsts = firsts.reshape(b, k)
    # Per row, by value per hertz, best first: one sort on row + 1 / (1 + eff), equal keys in
    # (row, user, level) order, so a user's own increments stay in level order even where their
    # efficiencies agree to rounding.
    order = _stable_argsort(row + 1.0 / (1.0 + eff), column * (l1 - 1) + lvl)
    row, user, gain, weight, steps, eff = row[order], user[order], gain[order], weight[order], steps[order], eff[order]
    starts = np.searchsorted(row, np.arange(b))

    def row_cumsum(x):
        total = np.cumsum(x)
        if b == 1:  # (one knapsack: the running sum itself)
            return total
        before = np.concatenate([[0.0], total])[starts]
        return total - before[row]

    cum = row_cumsum(weight)
    taken = cum <= budget
    # LP optimum: the taken prefix plus a fraction of the first increment that does not fit.
    over = ~taken
    first_over = np.full(b, -1)
    idx_over = np.nonzero(over)[0]
    if idx_over.size:  # the first in each row (rows are in order)
        r_over = row[idx_over]
        pos = np.flatnonzero(np.concatenate([[True], r_over[1:] != r_over[:-1]]))
        first_over[r_over[pos]] = idx_over[pos]
    has_crit = first_over >= 0
    crit = np.maximum(first_over, 0)
    spent = np.where(has_crit, cum[crit] - weight[crit], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(has_crit, (budget - spent) / weight[crit], 0.0)
    frac = np.minimum(np.maximum(frac, 0.0), 1.0)  # (inf to 1; NaN, where nothing is left, to 0)
    frac[np.isnan(frac)] = 0.0
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
    # The other rounding: the fractional user takes its increment whole (over budget here; a
    # slightly later deadline may fit it).
    rounded_up = levels.copy()
    rows_up = np.flatnonzero(has_crit)
    if rows_up.size:
        u = crit_user[rows_up]
        rounded_up[rows_up, u] = np.where(
            levels[rows_up, u] == 0, firsts[rows_up, u], levels[rows_up, u] + 1
        )
    # The LP dual: the efficiency of the increment taken in part (0 where everything fits).
    price = np.where(has_crit, np.maximum(eff[crit], 0.0), 0.0)
    return KnapsackSolution(levels, lp_value, lp_levels, rounded_up, price)



@dataclass(frozen=True, eq=False)
class ExactSolution:
    """Best value and plan for every attainable level total (ragged) or level maximum (padded)."""

    value: np.ndarray  # (B, n_keys), -inf where no plan has that key
    levels: np.ndarray  # (B, n_keys, K)


def solve_exact(values: np.ndarray, weights: np.ndarray, budget: float, *, key: str = "sum",
                max_states: int | None = None) -> ExactSolution | None:
    """Solve a batch of knapsacks exactly, for every value of the plan's level sum (or maximum).

    The server's verification time depends on the plan only through the total draft length
    (ragged batches) or the longest draft (padded ones), so keeping the best plan for each such
    key lets the caller weigh any verification-time curve exactly. Dynamic programming over users:
    after each user only the Pareto frontier of (bandwidth, value) partial plans is kept within
    each key, since a partial plan that needs more bandwidth for no more value can never be
    completed into a better plan. The loop over users is sequential by nature; the planner calls
    this for cells of a few users, where the LP rounding of :func:`solve` can miss the optimum.
    With ``max_states``, returns None as soon as a knapsack's frontier holds more partial plans
    (the caller then solves the LP instead).
    """
    b, k, l1 = values.shape
    n_keys = k * (l1 - 1) + 1 if key == "sum" else l1
    best = np.full((b, n_keys), -np.inf)
    plans = np.zeros((b, n_keys, k), dtype=int)
    slack = budget * (1 + 1e-12)
    options = np.arange(l1)
    for r in range(b):
        weight, value, tag = np.zeros(1), np.zeros(1), np.zeros(1, dtype=int)
        choice = np.zeros((1, 0), dtype=int)
        for u in range(k):
            allowed = np.isfinite(weights[r, u])
            count = int(allowed.sum())
            w = (weight[:, None] + weights[r, u][None, allowed]).ravel()
            v = (value[:, None] + values[r, u][None, allowed]).ravel()
            pick = np.tile(options[allowed], weight.size)
            parent = np.repeat(np.arange(weight.size), count)
            t = tag[parent] + pick if key == "sum" else np.maximum(tag[parent], pick)
            fits = w <= slack
            w, v, t, parent, pick = w[fits], v[fits], t[fits], parent[fits], pick[fits]
            order = np.lexsort((-v, w, t))  # by key, then bandwidth, best value first among equals
            w, v, t, parent, pick = w[order], v[order], t[order], parent[order], pick[order]
            # Keep a state only if it beats every cheaper state with the same key: a running
            # maximum within each key, done in one pass by lifting each key's values above the last.
            lift = (t - t.min()) * (np.ptp(v) + 1.0) + v
            before = np.concatenate([[-np.inf], np.maximum.accumulate(lift)[:-1]])
            frontier = lift > before
            weight, value, tag = w[frontier], v[frontier], t[frontier]
            if max_states is not None and weight.size > max_states:
                return None
            choice = np.concatenate([choice[parent[frontier]], pick[frontier, None]], axis=1)
        order = np.lexsort((-value, tag))
        first = np.concatenate([[True], tag[order][1:] != tag[order][:-1]])
        top = order[first]
        best[r, tag[top]] = value[top]
        plans[r, tag[top]] = choice[top]
    return ExactSolution(best, plans)

