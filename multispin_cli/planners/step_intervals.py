"""Deadline-interval bounds of the heterogeneous planner where demands step: whole resource blocks,
or rates that step (CQI) or are capped.

On an interval ``[a, b]`` of deadlines every plan that meets a deadline in it fits the demands at
``b`` (they fall with the deadline) and takes at least ``a``: the knapsack over the demands at b,
with the verification time weighed at ``gamma`` (Dinkelbach), bounds every such plan's goodput.
Step demands are not convex in the deadline, so the tangent relaxation of smooth systems does not
apply: the demands are priced at the right end, and the LP is the concave-hull greedy
(:mod:`multispin_cli.planners.knapsack_hull`).

What makes it fast (every bound stays a proven one):

* An interval is tested once at ``gamma = incumbent * (1 + tol)``: closed when no plan beats gamma,
  otherwise the planner splits it whatever its exact ratio, so only intervals too narrow to split
  are iterated to their own LP ratio.
* Every third interval (by deadline) solves its LP; every interval is first bounded by the
  Lagrangian dual at the nearest of those LPs' prices (valid at any price, within about 1e-5 of
  its own LP), and solves its LP only where that bound stays above gamma.
* When the first LPs' ratios lie well above the incumbent (the first call starts from the
  homogeneous plan), their most promising plans are scored exactly at once, so the rest are
  tested against a plan near the optimum.
* With whole blocks, the needs at every deadline met in the search are kept, and a deadline
  between two known ones is priced only for the users whose block count differs there.

``BOUND_TOLERANCE`` is the planner's too (:mod:`multispin_cli.planners.heterogeneous` imports it).
"""

from __future__ import annotations

import heapq
import weakref
from bisect import bisect_left, insort

import numpy as np

from multispin_cli.model.goodput import round_seconds, tokens_per_round
from multispin_cli.model.system import System
from multispin_cli.planners import knapsack_hull
from multispin_cli.planners.level_prices import LevelPrices
from multispin_cli.planners.split import Demand, split_goodput

BOUND_TOLERANCE = 1e-3  # the planner's: an interval within 0.1 % of the best plan is closed
DINKELBACH_STEPS = 10
DUAL_SLOPES = 8  # extra multipliers per interval for a measured verification table
EARLY_GAP = 1e-2  # score the first knapsacks' plans at once where their ratio is this far above the incumbent
EARLY_SCORED = 8  # plans scored at once
KNOWN_BYTES = 64 * 2**20  # needs kept per search for the deadlines met so far (block mode)
SCREEN_ROWS = 6  # intervals per batch from which pilots and dual screening pay
SCREEN_STRIDE = 3  # one pilot LP per this many intervals (by deadline)


_KNOWN: "weakref.WeakKeyDictionary[LevelPrices, tuple[Demand, dict[float, np.ndarray], list[float]]]" = (
    weakref.WeakKeyDictionary())


def _right_end_demands(system: System, prices: LevelPrices, deadlines: np.ndarray) -> np.ndarray:
    """Bandwidth (Hz) user k needs to draft l tokens and upload them by each deadline: (B, K, L+1).

    With whole blocks the needs at the deadlines met so far (this call's and earlier calls' of the
    same search: a refined interval's right end is its parent's) are kept, and a deadline between
    two known ones prices only the users whose block count differs at those two
    (:meth:`Demand.blocks_between`). Deadlines are taken coarse to fine (each next one the middle
    of the widest gap left), so the brackets narrow and fewer users differ. The known deadlines are
    kept sorted too, each new one placed by bisection (sorting them all again for each deadline was
    quadratic: 14 s of a search with thousands). The search's ``prices`` are the key; the needs are
    the same numbers as ``prices.at`` gives.
    """
    if system.resource_block_hz is None:
        return prices.at(deadlines)
    if prices not in _KNOWN:
        levels = np.arange(system.max_draft_length + 1)
        _KNOWN[prices] = (Demand(system, np.ascontiguousarray(np.broadcast_to(levels[:, None],
                                                                           (levels.size, system.users)))), {}, [])
    demand, known, times = _KNOWN[prices]
    keep = max(2, KNOWN_BYTES // max(1, 8 * int(np.prod(demand.shape))))
    by_time = np.argsort(deadlines, kind="stable")
    order = by_time[_coarse_to_fine(deadlines.size)]
    out = np.empty((deadlines.size,) + demand.shape)
    for i in order:
        d = float(deadlines[i])
        if d not in known:
            pos = bisect_left(times, d)
            if 0 < pos < len(times):
                known[d] = demand.blocks_between(d, known[times[pos - 1]], known[times[pos]])
            else:
                known[d] = demand.at_deadlines(np.array([d]))[0]
            insort(times, d)
            while len(known) > keep:  # oldest first
                old = next(iter(known))
                del known[old]
                del times[bisect_left(times, old)]
        out[i] = known[d]
    return np.ascontiguousarray(out.transpose(0, 2, 1))


def _coarse_to_fine(n: int) -> list[int]:
    """Indices 0..n-1, the two ends first, then each next the middle of the widest gap left (of
    equally wide gaps the last found; a heap, where sorting every gap for each index was quadratic)."""
    if n <= 2:
        return list(range(n))
    order, gaps, found = [0, n - 1], [(-(n - 1), 0, 0, n - 1)], 1
    while gaps:
        _, _, a, b = heapq.heappop(gaps)
        if b - a < 2:
            continue
        m = (a + b) // 2
        order.append(m)
        heapq.heappush(gaps, (-(m - a), -found, a, m))
        heapq.heappush(gaps, (-(b - m), -found - 1, m, b))
        found += 2
    return order


def _best_scored(system: System, plans: np.ndarray, deadlines: np.ndarray) -> float:
    """Exact goodput of the most promising of the plans (ranked by their goodput at the deadline
    each was chosen for): the best of the top few."""
    plans = plans.astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = tokens_per_round(system, plans).sum(axis=-1) / round_seconds(system, plans, deadlines)
    estimate = np.where(np.isfinite(estimate), estimate, -np.inf)
    top = np.argsort(-estimate, kind="stable")[:EARLY_SCORED]
    goodput, _, _ = split_goodput(system, plans[top])
    goodput = goodput[np.isfinite(goodput)]
    return float(goodput.max(initial=0.0))


def _raised(system: System, threshold: float, sol, achieved: np.ndarray, deadlines: np.ndarray) -> float:
    """The incumbent, raised by scoring the knapsacks' plans at once where their ratios lie far
    above it (the first call, which starts from the homogeneous plan): a better incumbent closes
    more intervals."""
    if achieved.max(initial=0.0) <= threshold * (1 + EARLY_GAP):
        return threshold
    plans = np.concatenate([sol.levels, sol.rounded_up])
    return max(threshold, _best_scored(system, plans, np.tile(deadlines, 2)))


def _screen(system, solve, found, weights, priced_at, fixed, smallest, slope, gamma, safe, final, threshold, duals):
    """LPs for a few pilot intervals only, and a dual bound for every interval at the nearest
    pilot's price; returns the (possibly raised) incumbent and the intervals still open.

    Any price gives a valid bound (weak duality), and a neighbouring interval's LP price comes
    within about 1e-5 of the interval's own LP value at a fifteenth of its cost. ``gamma`` and
    ``safe`` are updated in place; a pilot already tested at the final gamma is not solved again
    unless its interval cannot be split (then Dinkelbach iterates it to its own ratio).
    """
    b = priced_at.size
    g, levels, budget = system.tokens_per_round, np.arange(system.max_draft_length + 1), system.bandwidth_hz
    order = np.argsort(priced_at, kind="stable")
    pilots = np.unique(np.concatenate([order[::SCREEN_STRIDE], order[-1:]]))
    sol = solve(pilots, gamma[pilots] * slope)
    phi = sol.lp_value - gamma[pilots] * fixed[pilots]
    safe[pilots] = gamma[pilots] + np.maximum(phi, 0.0) / smallest[pilots]
    achieved = (sol.lp_value + gamma[pilots] * slope * sol.lp_levels) / (fixed[pilots] + slope * sol.lp_levels)
    threshold = _raised(system, threshold, sol, achieved, priced_at[pilots])
    target = threshold * (1 + BOUND_TOLERANCE)
    tested_at = gamma.copy()
    gamma[:] = target
    near = np.abs(np.log(priced_at[:, None]) - np.log(priced_at[pilots][None, :])).argmin(axis=1)
    lam = gamma * slope
    value, plans = knapsack_hull.dual_value(g[None] - lam[:, None, None] * levels, weights, sol.price[near], budget)
    found(plans, priced_at)  # what each price selects: candidates like the LPs' plans
    duals.append((np.arange(b), lam, value))
    phi = value - gamma * fixed
    np.minimum(safe, gamma + np.maximum(phi, 0.0) / smallest, out=safe)
    pilot = np.zeros(b, dtype=bool)
    pilot[pilots] = True
    done = pilot & ~final & (tested_at >= target * (1 - 1e-12))
    return threshold, np.flatnonzero((safe > target) & ~done)


def interval_bounds(system: System, prices: LevelPrices, left: np.ndarray, right: np.ndarray, incumbent: float,
                    *, chunk_elements: int, found) -> np.ndarray:
    """Upper bound on the goodput of any plan whose deadline lies in each ``[left, right]`` (ragged
    batches, step demands). Every integer plan met is handed to ``found(plans, deadlines)`` with
    the deadline it was chosen for (its interval's right end)."""
    k, l1 = system.users, system.max_draft_length + 1
    g = system.tokens_per_round
    levels = np.arange(l1)
    budget = system.bandwidth_hz
    bounds = np.empty(left.size)
    lines = system.verify.minorants(float(k), float(k * l1))
    totals = np.arange(k * (l1 - 1) + 1)  # sum of draft lengths; the server verifies K + total
    server = system.verify(k + totals) + system.server_fixed_s
    threshold = incumbent  # the best plan known here (scored exactly), raised within the call
    size = max(1, chunk_elements // (k * l1 * 4))
    for start in range(0, left.size, size):
        part = slice(start, min(left.size, start + size))
        priced_at = right[part]
        weights = _right_end_demands(system, prices, priced_at)
        b = weights.shape[0]
        best = np.full(b, np.inf)
        # Every knapsack solved with values g - lam * l gives V(lam) >= G - lam * total for every
        # plan that fits, so G <= min over lam of V(lam) + lam * total for each total draft length:
        # a bound weighed by the true T_v at every total (exact for any table, monotone or not).
        duals: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, lam, V(lam))

        def solve(rows: np.ndarray, lam: np.ndarray):
            values = g[None] - lam[:, None, None] * levels
            sol = knapsack_hull.solve(values, weights[rows], budget)
            found(sol.levels, priced_at[rows])
            found(sol.rounded_up, priced_at[rows])
            duals.append((rows, lam, sol.lp_value))
            return sol

        # An interval that cannot be split further keeps the interval's own LP ratio (Dinkelbach to
        # its fixed point); any other is tested once against the best plan known, at
        # ``gamma = threshold * (1 + tol)``: it is closed when no plan beats gamma, and otherwise the
        # planner splits it whatever its exact ratio (which lies above gamma), so iterating it
        # would only tighten a bound about to be replaced.
        final = right[part] <= left[part] * (1 + BOUND_TOLERANCE / 4)
        for intercept, slope in lines:
            fixed = left[part] + intercept + slope * k + system.server_fixed_s  # denominator at L = 0
            smallest = fixed + min(0.0, slope * k * (l1 - 1))  # the line's least denominator
            # A supporting line of a measured table can fall below zero over the lengths' range
            # (a steep envelope): where the denominator it gives is not positive it bounds nothing.
            usable = smallest > 0
            if not usable.any():
                continue
            gamma = np.full(b, threshold * (1 + BOUND_TOLERANCE))
            safe = np.full(b, np.inf)
            rows = np.flatnonzero(usable)  # intervals still open
            screened = b >= SCREEN_ROWS and bool(usable.all())
            if screened:
                threshold, rows = _screen(system, solve, found, weights, priced_at, fixed, smallest, slope, gamma, safe,
                                          final, threshold, duals)
            for step in range(DINKELBACH_STEPS):
                if rows.size == 0:
                    break
                sol = solve(rows, gamma[rows] * slope)
                # For this gamma every plan's ratio is at most gamma + phi / (smallest denominator).
                phi = sol.lp_value - gamma[rows] * fixed[rows]
                achieved = (sol.lp_value + gamma[rows] * slope * sol.lp_levels) / (fixed[rows] + slope * sol.lp_levels)
                safe[rows] = np.minimum(safe[rows], gamma[rows] + np.maximum(phi, 0.0) / smallest[rows])
                if step == 0 and not screened:
                    threshold = _raised(system, threshold, sol, achieved, priced_at[rows])
                target = threshold * (1 + BOUND_TOLERANCE)
                settled = np.abs(achieved - gamma[rows]) <= 1e-9 * np.abs(achieved)
                # Open: above the best plan known, and either final (iterate on) or tested below
                # the target so far (the incumbent rose within the call: test again at it).
                retest = gamma[rows] < target * (1 - 1e-12)
                keep = (safe[rows] > target) & ((final[rows] & ~settled) | retest)
                gamma[rows] = np.where(final[rows], np.maximum(achieved, target), target)
                rows = rows[keep]
            best = np.minimum(best, np.where(usable, safe, np.inf))
        if system.verify.affine:
            bounds[part] = best
            continue
        bounds[part] = table_envelope(best, threshold, server, totals, left[part], duals, solve)
    return bounds


def table_envelope(best, threshold, server, totals, left, duals, solve) -> np.ndarray:
    """The intervals' bounds with a measured verification table, from the knapsacks' duals.

    Every knapsack solved with values ``g - lam * l`` (``duals``: rows, lam, its value) bounds
    ``G - lam * total`` for each total draft length; the least of them over lam, divided by the
    true round time at that total, bounds every plan there. Intervals still above ``threshold``
    first get multipliers around the optimum's marginal server cost (``solve(rows, lam)`` adds to
    ``duals``), at the slopes the table has. ``best`` is the bound from the table's supporting
    lines, ``server`` the true server time at each total, ``left`` the intervals' left ends.
    """
    open_rows = np.flatnonzero(best > threshold * (1 + BOUND_TOLERANCE))
    if open_rows.size:
        slopes = np.unique(np.diff(server))
        picks = np.quantile(slopes, np.linspace(0.0, 1.0, DUAL_SLOPES)) if slopes.size else np.zeros(1)
        for lam in np.unique(np.concatenate([[0.0], picks])):
            solve(open_rows, np.minimum(best[open_rows], threshold * (1 + 1e-2)) * lam)
    ceiling = np.full((best.size, totals.size), np.inf)
    for rows, lam, value in duals:
        ceiling[rows] = np.minimum(ceiling[rows], value[:, None] + lam[:, None] * totals[None, :])
    with np.errstate(invalid="ignore"):
        envelope = (ceiling / (left[:, None] + server[None, :])).max(axis=1)
    return np.minimum(best, np.where(np.isnan(envelope), np.inf, envelope))
