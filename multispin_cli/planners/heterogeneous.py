"""Heterogeneous draft control (docs/model.md 3): a draft length per user, bandwidth split optimally.

The problem: maximise ``sum_k G_k(L_k) / (D + T_v(N) + t_dn)`` over integer ``L_k`` and the deadline
``D``, where every drafting user must reach the server by D on its share of the band
(``sum_k W_k(L_k, D) <= W``).

Decomposition (docs/model.md 3's sketch, made exact where it matters):

* **Deadline intervals.** Every plan's deadline lies in ``[D_lo, D_hi]``: ``D_lo`` is the fastest
  user's one-token round on the whole band (below it only the autoregressive plan exists), and
  ``D_hi`` is the deadline of everyone drafting ``L_max`` (the deadline only grows with any L_k).
  On an interval ``[a, b]`` any plan that meets a deadline in it fits the bandwidth demands at
  ``b`` (demand falls with D) and takes at least ``a``: a relaxation of the whole interval.
* **Knapsack per interval.** With the demands at b the choice of lengths is a multiple-choice
  knapsack over bandwidth (:mod:`multispin_cli.planners.knapsack`). Its items are well behaved: the demand
  ``W_k(L, D) = r_k^{-1}((h + s L) / (D - c_k - tau_k L))`` is convex in L for L >= 1 and G is
  concave, so the LP relaxation is solved exactly by a greedy over value per hertz, with a
  Lagrange multiplier (the value per hertz of the last increment) on the bandwidth. With whole
  resource blocks or step/capped rates the demand is a step function of L instead; the LP is then
  the greedy over each user's upper concave hull (:mod:`multispin_cli.planners.knapsack_hull`).
* **Dinkelbach on the ratio.** The verification time enters as ``gamma * v1 * L_k`` per user
  (``v1`` the slope of T_v; for a measured table, each supporting line of its lower convex
  envelope); gamma is updated to the achieved ratio until it settles. With padded batching the
  server time depends only on the longest draft, so each cap ``M = max L_k`` is a knapsack of its
  own with a constant server time.
* **Certificate and refinement.** Each interval's LP ratio is a proven upper bound on every plan
  whose deadline falls in it; intervals whose bound beats the best plan found are split and solved
  again (branch and bound on D). The maximum over the intervals is reported as the upper bound.
* **Small cells exactly.** Where (L_max + 1)^K is at most a million, each interval's knapsack is
  solved exactly by dynamic programming for every total (or maximum) draft length, weighed by the
  true T_v: the interval's bound is then its integer optimum, and refining the intervals to the
  tolerance puts the plan within it of the optimum by construction.
* **Candidates and polish.** Every knapsack's integer plan (rounded down, and rounded up) is a
  candidate, scored exactly (equal-finish split, true deadline, true T_v). The best one is then
  improved by exact local search: for cells of up to 16 users every change of one user's length
  and of two users' lengths, for larger ones a first-order screen of single-user changes.

* **City scale.** Cells of :data:`~multispin_cli.planners.price_sweep.LARGE_CELL` users or more
  (continuous band, Shannon rates, ragged batches, affine T_v) first try
  :mod:`multispin_cli.planners.price_sweep`: a few LPs find the plan and one price on the band proves
  it within the tolerance; below :data:`POLISHED_SWEEP` users its plan is then polished by the same
  local search. The interval search runs only where that proof does not close.

The search starts from the homogeneous optimum, so the result is never below it nor below any
baseline. The returned bandwidth is the exact equal-finish split for the chosen lengths.
"""

from __future__ import annotations

import numpy as np

from multispin_cli.model.goodput import (
    evaluate,
    round_seconds,
    tokens_per_round,
    verify_tokens,
)
from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System
from multispin_cli.planners import knapsack, knapsack_hull, price_sweep, step_intervals
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.planners.level_prices import LevelPrices
from multispin_cli.planners.resource_blocks import alone_seconds, latest_useful_deadline, spend_leftover
from multispin_cli.planners.split import bandwidth_for_deadline, equal_finish_split, split_goodput
from multispin_cli.planners.step_intervals import BOUND_TOLERANCE  # one tolerance for both paths

INITIAL_INTERVALS = 8
NEAR_INTERVALS = 16  # extra intervals around the homogeneous plan's deadline ...
NEAR_SPAN = 0.2  # ... within a factor 1.2 of it
SPLIT = 4  # parts each interval above the incumbent is cut into per refinement
MAX_REFINEMENTS = 8
MAX_SPLIT = 256  # intervals split per refinement at most, the highest bounds first. Ordinary cells split
# at most a few dozen; where the bound does not fall with the width (measured: three users with
# L_max 128 and a steep verification table, a 1.3 % gap to the final plan that is the relaxation's,
# not the width's), splitting every open interval grew the work fourfold per round (17,280
# intervals, over a minute)
DINKELBACH_STEPS = 10
CHUNK_ELEMENTS = 1_500_000  # cap on B * K * (L_max + 1) per batched knapsack (memory)
EXACT_CHUNK_ELEMENTS = 400_000  # cap on candidates * K per exact evaluation batch
SMALL_CELL = 16  # users up to which local search tries every single and paired move
SCORED_PER_ROUND = 8  # candidates a large cell scores exactly per refinement round
EXACT_PLANS = 1_000_000  # (L_max + 1)^K up to which each interval's knapsack is solved exactly (DP)
EXACT_FEW_USERS = 4  # ... and users up to which it is tried beyond that with a measured verification
EXACT_STATES = 10_000  # table, while each DP keeps at most this many partial plans. There the LP's bound
# over totals can stay far above the plan (measured on 3-4 users at L_max 31-128: 1.6 % and 4.6 %
# gaps left, and 1.3 % after 5 s of refinement on three users with 100,000 blocks) where the DP
# proves the same plans in 0.05-0.3 s; with an affine T_v the LP proves them, up to 10x faster.
PAIR_CANDIDATES = 6_000
POLISHED_SWEEP = 2_000  # users below which the price sweep's plan is polished by local search (there one
# user's length moves the goodput by more than the LPs near the peak differ: measured on 1,000-user
# cells, the polish adds up to 2.5e-5 in 0.01-0.08 s)


def level_demand(system: System) -> LevelPrices:
    """Every user at every draft length 0..L_max, ready to be priced at any deadline."""
    return LevelPrices(system)


def level_bandwidth(system: System, deadlines, *, demand: LevelPrices | None = None) -> np.ndarray:
    """Bandwidth (Hz) user k needs to draft l tokens and upload them by each deadline: (B, K, L+1)."""
    return (demand or level_demand(system)).at(deadlines)


def level_bandwidth_tangent(system: System, earlier, later, *, demand: LevelPrices):
    """Demands (B, K, L+1) at each interval's midpoint ``m``, and linear lower bounds on them at
    ``a``, ``m`` and ``b`` for the interval's two halves.

    Each demand is convex and falling in the deadline (smooth systems), so on ``[a, m]`` its tangent
    at m lies below it, and on ``[m, b]`` its tangent at b does (a demand infinite at m, or at b,
    is infinite on the whole half before it). Each bound is linear in the deadline on its half,
    which is what makes the planner's Lagrangian convex there. Slopes are scaled by ``1 - 1e-9`` so
    that rounding never lifts a tangent above the curve; a slope that cannot be computed counts
    as 0 (the demand only falls with the deadline).
    Returns m, the demands at m, the left half's bounds at a and m, the right half's at m and b.
    """
    a, b = np.asarray(earlier, dtype=float), np.asarray(later, dtype=float)
    mid = np.sqrt(a * b)
    halves = []
    for point, back in ((mid, (a - mid) * (1.0 - 1e-9)), (b, (mid - b) * (1.0 - 1e-9))):  # back <= 0
        at, d = demand.at(point, derivative=True)  # one deadline set at a time: half the peak memory
        with np.errstate(invalid="ignore"):
            d *= back[:, None, None]
            d += at
            start = np.where(np.isfinite(at) & np.isfinite(d), d, at)
        del d
        halves += [start, at]
    return (mid, halves[1]) + tuple(halves)


def _lagrangian(values: np.ndarray, weights: np.ndarray, price: np.ndarray, budget: float) -> np.ndarray:
    """``price * budget + sum_k max_l (values - price * weights)`` per row.

    For any price >= 0 this bounds the knapsack's value from above (weak duality); infinite weights
    are levels that do not exist (with a positive price they score -inf by themselves).
    """
    with np.errstate(invalid="ignore"):
        score = values - price[:, None, None] * weights
    if not (price > 0).all():
        score[~np.isfinite(weights)] = -np.inf
    return price * budget + score.max(axis=-1).sum(axis=-1)


def _deadline_range(system: System, near: float | None = None) -> tuple[float, float]:
    """``[D_lo, D_hi]``: every drafting plan's deadline lies inside. ``near``: a guess at D_hi (the
    common length L_max's deadline) where its root search starts."""
    one = np.ones(system.users, dtype=int)
    alone = alone_seconds(system, one)
    # A user whose rate is 0 at any bandwidth (below the lowest CQI level) never drafts: leave it
    # out, or no deadline is late enough (inf) and the grid below turns to NaN.
    capable = system.channel.max_rate_bps > 0
    d_hi, _ = equal_finish_split(system, np.where(capable, system.max_draft_length, 0), near=near)
    if not np.isfinite(d_hi) and system.resource_block_hz is not None:
        d_hi = latest_useful_deadline(system)
    d_lo = float(np.min(alone))
    return d_lo, max(float(d_hi), d_lo)


def _common_deadlines(system: System, start: Plan) -> np.ndarray | None:
    """Each common length's equal-finish deadline (s), recovered from the start plan's goodput at
    each common length (the homogeneous planner's, where it has them; to rounding): starting
    points for root searches and the city-scale search, where computing them again costs a
    common-length solve. None where the start plan has no such goodputs."""
    by_length = start.goodput_by_length
    if by_length is None or by_length.size != system.max_draft_length + 1:
        return None
    levels = np.arange(system.max_draft_length + 1)
    tokens = system.tokens_per_round.sum(axis=0)
    verify = np.asarray(system.verify(system.users * (levels + 1.0)), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        deadlines = tokens / by_length - verify - system.server_fixed_s
    return np.where(np.isfinite(deadlines) & (deadlines > 0), deadlines, np.nan)


def _guesses(system: System, start: Plan) -> tuple[float | None, float | None]:
    """From :func:`_common_deadlines`: L_max's deadline (where D_hi's root search starts, a step
    or two from the root instead of about nine) and the best drafting common length's (where
    the city-scale search starts when the start plan drafts nothing)."""
    deadlines = _common_deadlines(system, start)
    if deadlines is None:
        return None, None
    longest = float(deadlines[-1]) if np.isfinite(deadlines[-1]) else None
    drafting = np.where(np.isfinite(deadlines[1:]), start.goodput_by_length[1:], -np.inf)
    best = int(np.argmax(drafting)) + 1 if drafting.size and np.isfinite(drafting.max()) else None
    return longest, (None if best is None else float(deadlines[best]))


def _initial_points(d_lo: float, d_hi: float, near: float) -> np.ndarray:
    """Interval ends over [d_lo, d_hi]: a geometric grid, denser around ``near`` (the start's D).

    The optimum's deadline is usually close to the homogeneous plan's, so finer intervals there
    save refinement rounds; the coarse grid still covers the whole range (the bound needs it).
    """
    if d_hi <= d_lo:
        return np.array([d_lo, d_hi])
    coarse = np.geomspace(d_lo, d_hi, INITIAL_INTERVALS + 1)
    if not d_lo < near < d_hi:
        return coarse
    fine = near * np.geomspace(1 / (1 + NEAR_SPAN), 1 + NEAR_SPAN, NEAR_INTERVALS + 1)
    return np.unique(np.clip(np.concatenate([coarse, fine]), d_lo, d_hi))


def _chunks(n: int, per_item: int, limit: int):
    size = max(1, limit // max(per_item, 1))
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


_LEVEL_DTYPE = np.int16  # draft lengths of candidate plans (L_max is far below 2^15)


def _lp_solver(system: System):
    """The knapsack LP: the consecutive-level greedy where demands are convex in the draft length
    (continuous split, Shannon rates), the concave-hull greedy where they step (blocks, CQI, cap)."""
    return knapsack.solve if system.smooth else knapsack_hull.solve


def _interval_bounds(system: System, levels_demand: LevelPrices, left: np.ndarray, right: np.ndarray, incumbent: float):
    """Upper bound on the goodput of any plan whose deadline lies in each ``[left, right]``.

    Returns the bounds (n,), the integer candidate plans met on the way (m, K) and the deadline
    each was chosen for (m,): the right end of its interval.
    """
    k, l1 = system.users, system.max_draft_length + 1
    g = system.tokens_per_round
    levels = np.arange(l1)
    budget = system.bandwidth_hz
    bounds = np.empty(left.size)
    candidates, chosen_at = [], []

    def found(plans: np.ndarray, deadlines: np.ndarray) -> None:
        candidates.append(plans.reshape(-1, k).astype(_LEVEL_DTYPE))  # compact: many plans of K users
        chosen_at.append(np.broadcast_to(deadlines, plans.shape[:-1]).ravel())

    def result():
        return bounds, np.concatenate(candidates), np.concatenate(chosen_at)

    few_plans = k * np.log(l1) <= np.log(EXACT_PLANS)  # (L_max + 1)^K plans at most
    if few_plans or (k <= EXACT_FEW_USERS and not system.verify.affine):
        # Small cells: the exact knapsack for every level total (or maximum), weighed by the true
        # verification time, so the bound is the interval's integer optimum. A few users with long
        # drafts and a measured table too, unless a DP's frontier outgrows EXACT_STATES (then the
        # LP below, for every interval).
        padded = system.batching == "padded"
        solved = []
        for part in _chunks(left.size, k * l1, CHUNK_ELEMENTS):
            weights = level_bandwidth(system, right[part], demand=levels_demand)
            sol = knapsack.solve_exact(np.broadcast_to(g, weights.shape), weights, budget,
                                       key="max" if padded else "sum", max_states=None if few_plans else EXACT_STATES)
            if sol is None:
                break
            solved.append((part, sol))
        else:
            for part, sol in solved:
                keys = np.arange(sol.value.shape[1])
                server = system.verify(k * (keys + 1.0) if padded else k + keys) + system.server_fixed_s
                bounds[part] = (sol.value / (left[part, None] + server[None, :])).max(axis=1)
                reached = np.isfinite(sol.value)
                found(sol.levels[reached], np.broadcast_to(right[part, None], reached.shape)[reached])
            return result()
    if system.batching == "padded":
        caps = np.arange(l1)
        server = system.verify(k * (caps + 1.0)) + system.server_fixed_s  # (M,)
        for part in _chunks(left.size, k * l1 * l1, CHUNK_ELEMENTS):
            weights = level_bandwidth(system, right[part], demand=levels_demand)  # (b, K, L+1)
            b = weights.shape[0]
            capped = np.where(levels[None, None, None, :] <= caps[None, :, None, None], weights[:, None], np.inf)
            sol = _lp_solver(system)(
                np.broadcast_to(g, (b, l1, k, l1)).reshape(b * l1, k, l1), capped.reshape(b * l1, k, l1), budget
            )
            ratio = sol.lp_value.reshape(b, l1) / (left[part, None] + server[None, :])
            bounds[part] = ratio.max(axis=1)
            at = np.repeat(right[part], l1)
            found(sol.levels, at)
            found(sol.rounded_up, at)
        return result()

    if not system.smooth:  # whole blocks or stepped rates: priced at the right end (step_intervals)
        bounds[:] = step_intervals.interval_bounds(system, levels_demand, left, right, incumbent,
                                                   chunk_elements=CHUNK_ELEMENTS, found=found)
        return result()
    lines = system.verify.minorants(float(k), float(k * l1))
    totals = np.arange(k * (l1 - 1) + 1)  # sum of draft lengths; the server verifies K + total
    server = system.verify(k + totals) + system.server_fixed_s
    # Smooth demands (the only ones left here) are convex in the deadline: each half of the
    # interval is priced on the tangent at its right end instead of pricing every deadline at the
    # interval's right end, with one price from the midpoint's LP. For most (user, length) pairs
    # the relaxation's error then falls with the square of the interval's width; the pairs whose
    # need becomes finite inside the interval, or is very steep there, keep a part that falls only
    # with the width (measured on a 10,000-user cell: about half of the error), so the bound's
    # error is first order overall, with a far smaller constant than pricing at the right end.
    for part in _chunks(left.size, k * l1 * 12, CHUNK_ELEMENTS):
        priced_at, weights, *bounds_at = level_bandwidth_tangent(system, left[part], right[part],
                                                                demand=levels_demand)
        b = weights.shape[0]
        best = np.full(b, np.inf)
        # Every knapsack solved with values g - lam * l gives V(lam) >= G - lam * total for every
        # plan that fits, so G <= min over lam of V(lam) + lam * total for each total draft length:
        # a bound weighed by the true T_v at every total (exact for any table, monotone or not).
        duals: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, lam, V(lam))

        def solve(rows: np.ndarray, lam: np.ndarray):
            values = g[None] - lam[:, None, None] * levels
            sol = _lp_solver(system)(values, weights[rows], budget)
            found(sol.levels, priced_at[rows])
            found(sol.rounded_up, priced_at[rows])
            # With one price, the Lagrangian on demands bounded below by functions linear in the
            # deadline bounds every plan whose deadline lies in the part, and is convex in the
            # deadline there (a sum of maxima of linear functions): its maximum is at the part's
            # ends. The midpoint LP's own price is close to the best common price for all ends
            # (their errors cancel to first order).
            # Ends of the halves: a, m (left half's bound), m (right half's), b.
            lag = [_lagrangian(values, w[rows], sol.price, budget) for w in bounds_at]
            duals.append((rows, lam, np.max(lag, axis=0)))
            return sol, lag

        for intercept, slope in lines:
            fixed = left[part] + intercept + slope * k + system.server_fixed_s  # denominator at L = 0
            fixed_right = right[part] + intercept + slope * k + system.server_fixed_s
            fixed_mid = priced_at + intercept + slope * k + system.server_fixed_s
            smallest = fixed + min(0.0, slope * k * (l1 - 1))  # the line's least denominator
            # A supporting line of a steep measured table can be negative over the cell's range:
            # its denominator is then not positive and the ratio bound below means nothing (it
            # came out negative, so plans inside the interval were never searched). Skip it there.
            usable = smallest > 0
            gamma = np.full(b, incumbent)
            safe = np.full(b, np.inf)
            rows = np.flatnonzero(usable)  # intervals still above the incumbent, still iterating
            for _ in range(DINKELBACH_STEPS):
                if rows.size == 0:
                    break
                sol, lag = solve(rows, gamma[rows] * slope)
                # For this gamma every plan's ratio is at most gamma + phi / (smallest denominator).
                at_ends = (fixed[rows], fixed_mid[rows], fixed_mid[rows], fixed_right[rows])
                phi = np.max([value - gamma[rows] * den for value, den in zip(lag, at_ends)], axis=0)
                # Dinkelbach's step on the midpoint's LP.
                achieved = (sol.lp_value + gamma[rows] * slope * sol.lp_levels) / (fixed_mid[rows] + slope * sol.lp_levels)
                safe[rows] = np.minimum(safe[rows], gamma[rows] + np.maximum(phi, 0.0) / smallest[rows])
                settled = np.abs(achieved - gamma[rows]) <= 1e-9 * np.abs(achieved)
                gamma[rows] = achieved
                # An interval whose bound is already below the incumbent needs no tighter bound.
                keep = ~settled & (safe[rows] > incumbent * (1 + BOUND_TOLERANCE))
                rows = rows[keep]
            best = np.minimum(best, np.where(usable, safe, np.inf))
        if system.verify.affine:
            bounds[part] = best
            continue
        bounds[part] = step_intervals.table_envelope(best, incumbent, server, totals, left[part], duals, solve)
    return result()


def _score(system: System, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact goodput of each candidate's lengths under its equal-finish split; its D and split."""
    goodput = np.empty(candidates.shape[0])
    deadline = np.empty(candidates.shape[0])
    bandwidth = np.empty(candidates.shape)
    for part in _chunks(candidates.shape[0], system.users, EXACT_CHUNK_ELEMENTS):
        goodput[part], deadline[part], bandwidth[part] = split_goodput(system, candidates[part])
    return goodput, deadline, bandwidth


def _distinct_rows(rows: np.ndarray) -> np.ndarray:
    """Indices of the distinct rows (first of each), by a 64-bit random-weight fingerprint (np.unique(axis=0) is far slower)."""
    weights = np.random.default_rng(0x5EED).integers(1, 2**63, size=rows.shape[1], dtype=np.uint64)
    prints = np.empty(rows.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for part in _chunks(rows.shape[0], rows.shape[1], EXACT_CHUNK_ELEMENTS):
            prints[part] = (rows[part].astype(np.uint64) * weights).sum(axis=1)
    _, first = np.unique(prints, return_index=True)
    return np.sort(first)


class _Incumbent:
    """The best lengths found so far and their exact goodput."""

    def __init__(self, plan: Plan):
        ev = plan.evaluation
        self.lengths = ev.draft_lengths.astype(np.int64)
        self.value, self.deadline, self.bandwidth = ev.goodput_tokens_per_s, ev.draft_upload_s, ev.bandwidth_hz

    def offer(self, system: System, candidates: np.ndarray, chosen_at: np.ndarray | None = None) -> None:
        """Score the candidates that could beat the incumbent; keep the best.

        ``chosen_at`` (the deadline each candidate was picked for) lets large cells score only the
        most promising few, ranked by their goodput at that deadline.
        """
        keep = _distinct_rows(candidates)
        candidates = candidates[keep]
        # Optimistic score: each user alone on the whole band can only be faster than on a share.
        # (In parts: at city scale the candidates times the users are many.)
        tokens, promising = np.empty(candidates.shape[0]), np.empty(candidates.shape[0], dtype=bool)
        for part in _chunks(candidates.shape[0], system.users, EXACT_CHUNK_ELEMENTS):
            lengths = candidates[part].astype(np.int64)
            alone = alone_seconds(system, lengths).max(axis=-1)
            tokens[part] = tokens_per_round(system, lengths).sum(axis=-1)
            promising[part] = tokens[part] / round_seconds(system, lengths, alone) > self.value
        candidates, tokens = candidates[promising], tokens[promising]
        if candidates.shape[0] == 0:
            return
        at = None if chosen_at is None else chosen_at[keep][promising]
        if at is not None and system.users > SMALL_CELL and candidates.shape[0] > SCORED_PER_ROUND:
            estimate = tokens / round_seconds(system, candidates.astype(np.int64), at)
            top = np.argsort(-estimate, kind="stable")[:SCORED_PER_ROUND]
            candidates = candidates[top]
        candidates = candidates.astype(np.int64)
        scores, deadline, bandwidth = _score(system, candidates)
        best = int(np.argmax(scores))
        if scores[best] > self.value:
            self.lengths, self.value = candidates[best], float(scores[best])
            self.deadline, self.bandwidth = float(deadline[best]), bandwidth[best]


def _neighbours_small(lengths: np.ndarray, max_len: int) -> np.ndarray:
    """Every plan one user's length away, and every plan two users' lengths away.

    Two users' lengths range over all pairs of levels while that stays small (at most
    PAIR_CANDIDATES plans), and over paired +/-1 changes otherwise.
    """
    k = lengths.size
    levels = np.arange(max_len + 1)
    single = np.repeat(lengths[None], k * levels.size, axis=0)
    single[np.arange(k * levels.size), np.repeat(np.arange(k), levels.size)] = np.tile(levels, k)
    if k < 2:
        return single
    i, j = np.triu_indices(k, 1)
    out = [single]
    if i.size * levels.size**2 <= PAIR_CANDIDATES:
        li, lj = np.meshgrid(levels, levels, indexing="ij")
        li, lj = np.tile(li.ravel(), i.size), np.tile(lj.ravel(), i.size)
        ii, jj = np.repeat(i, levels.size**2), np.repeat(j, levels.size**2)
        both = np.repeat(lengths[None], ii.size, axis=0)
        both[np.arange(ii.size), ii] = li
        both[np.arange(ii.size), jj] = lj
        return np.concatenate([single, both])
    for di in (-1, 1):
        for dj in (-1, 1):
            moved = np.repeat(lengths[None], i.size, axis=0)
            moved[np.arange(i.size), i] += di
            moved[np.arange(i.size), j] += dj
            ok = (moved.min(axis=1) >= 0) & (moved.max(axis=1) <= max_len)
            out.append(moved[ok])
    return np.concatenate(out)


def _neighbours_screened(system: System, best: "_Incumbent", levels: LevelPrices, keep: int) -> np.ndarray:
    """The single-user changes a first-order model of the deadline ranks best (large cells)."""
    k, max_len = system.users, system.max_draft_length
    lengths, goodput, deadline = best.lengths, best.value, best.deadline
    need_now, d_need = bandwidth_for_deadline(system, lengths, deadline)
    slope = -d_need.sum()  # hertz freed per second of extra deadline
    need = level_bandwidth(system, deadline, demand=levels)[0]  # (K, L+1)
    extra = need - need_now[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        d_deadline = np.maximum(extra / slope, -deadline)
    levels = np.arange(max_len + 1)
    d_n = levels[None, :] - lengths[:, None]
    if system.batching == "padded":
        top = np.sort(lengths)[-2:] if k > 1 else np.array([0, lengths[0]])
        others_max = np.where(lengths == top[-1], top[0], top[-1])
        new_n = k * (np.maximum(others_max[:, None], levels[None, :]) + 1.0)
        n_now = verify_tokens(system, lengths)
    else:
        n_now = verify_tokens(system, lengths)
        new_n = n_now + d_n
    g = system.tokens_per_round
    tokens = g[np.arange(k), lengths].sum()
    round_now = tokens / goodput
    new_round = round_now + d_deadline + system.verify(new_n) - system.verify(n_now)
    estimate = (tokens - g[np.arange(k), lengths][:, None] + g) / new_round
    estimate = np.where(np.isfinite(estimate) & (d_n != 0), estimate, -np.inf)
    flat = np.argsort(-estimate, axis=None, kind="stable")[:keep]
    flat = flat[np.isfinite(estimate.ravel()[flat])]
    users, new_levels = np.unravel_index(flat, estimate.shape)
    moved = np.repeat(lengths[None], users.size, axis=0)
    moved[np.arange(users.size), users] = new_levels
    return moved


def _polish(system: System, best: _Incumbent, levels: LevelPrices) -> None:
    """Exact local search from the incumbent until no neighbour improves it.

    Small cells search the whole neighbourhood until a local optimum; large ones a screened part
    of it for a few rounds (there one user's change moves the goodput by O(1/K) at most).
    """
    k, max_len = system.users, system.max_draft_length
    small = k <= SMALL_CELL
    for _ in range(50 if small else 3):
        before = best.value
        if small:
            moves = _neighbours_small(best.lengths, max_len)
        else:
            moves = _neighbours_screened(system, best, levels, keep=16)
        if moves.size:
            best.offer(system, moves)
        if best.value <= before * (1 + (1e-13 if small else 1e-6)):
            break


def plan_heterogeneous(system: System, *, start: Plan | None = None, intervals_only: bool = False) -> Plan:
    """The best per-user draft lengths with their equal-finish split, and a proven upper bound.

    The search starts from the homogeneous optimum (``start``, planned here when not given), so
    the result is never below it, nor below any baseline: each baseline is one common length
    with a split no better than the homogeneous planner's, and L = 0 is among the common lengths.
    ``intervals_only`` runs the interval search even at city scale (benchmarks compare the two).
    """
    start = start if start is not None else plan_homogeneous(system)
    max_len = system.max_draft_length
    best = _Incumbent(start)
    # Below D_lo nobody can draft: there the autoregressive plan (no better than the start) is all.
    bound = best.value

    searchable = max_len > 0 and bool((system.channel.max_rate_bps > 0).any())
    if searchable:
        longest, drafting = _guesses(system, start)
        d_lo, d_hi = _deadline_range(system, near=longest)
        searchable = bool(np.isfinite(d_lo) and np.isfinite(d_hi))
        if not searchable:
            # No finite range of deadlines to search (a user the split cannot serve at L_max with
            # whole blocks or stepped rates): local search from the start, and no bound is claimed.
            _polish(system, best, level_demand(system))
            bound = np.inf
    if searchable and not intervals_only and price_sweep.applies(system):
        # City scale: a few LPs find the plan, one price proves it (planners/price_sweep.py); where
        # that proof does not close, the interval search below runs as for any cell.
        large = price_sweep.plan_large(system, lengths=best.lengths, goodput=best.value, deadline=best.deadline,
                                       bandwidth=best.bandwidth, d_lo=d_lo, d_hi=d_hi, tolerance=BOUND_TOLERANCE,
                                       drafting_deadline=drafting)
        if large is not None:
            best.lengths, best.value, best.deadline, best.bandwidth = (large.lengths, large.goodput, large.deadline,
                                                                       large.bandwidth)
            bound, searchable = max(bound, large.bound), False
            if system.users < POLISHED_SWEEP:
                _polish(system, best, level_demand(system))
    if searchable:
        points = _initial_points(d_lo, d_hi, start.evaluation.draft_upload_s)
        left, right = points[:-1], points[1:]
        levels_demand = level_demand(system)
        bounds, candidates, chosen_at = _interval_bounds(system, levels_demand, left, right, best.value)
        best.offer(system, candidates, chosen_at)
        for _ in range(MAX_REFINEMENTS):
            active = (bounds > best.value * (1 + BOUND_TOLERANCE)) & (right > left * (1 + BOUND_TOLERANCE / 4))
            if not active.any():
                break
            if np.count_nonzero(active) > MAX_SPLIT:
                highest = np.argsort(-np.where(active, bounds, -np.inf), kind="stable")[:MAX_SPLIT]
                active = np.zeros_like(active)
                active[highest] = True
            # Split each active interval geometrically into SPLIT parts.
            steps = np.arange(SPLIT + 1)[:, None] / SPLIT
            cuts = left[active] * (right[active] / left[active]) ** steps  # (SPLIT + 1, n)
            cuts[0], cuts[-1] = left[active], right[active]  # exact ends: neighbours share them
            new_left, new_right = cuts[:-1].ravel(), cuts[1:].ravel()
            new_bounds, candidates, chosen_at = _interval_bounds(
                system, levels_demand, new_left, new_right, best.value
            )
            best.offer(system, candidates, chosen_at)
            left = np.concatenate([left[~active], new_left])
            right = np.concatenate([right[~active], new_right])
            bounds = np.concatenate([bounds[~active], new_bounds])
        _polish(system, best, levels_demand)
        # An interval whose bound is NaN proves nothing: no bound then (inf), never a wrong one.
        bound = max(bound, float(np.where(np.isnan(bounds), np.inf, bounds).max()))

    bandwidth = spend_leftover(system, best.lengths, best.bandwidth)
    evaluation = evaluate(system, best.lengths.astype(int), bandwidth)
    return Plan(
        name="heterogeneous",
        evaluation=evaluation,
        upper_bound_tokens_per_s=max(bound, evaluation.goodput_tokens_per_s),
    )
