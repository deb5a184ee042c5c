"""Heterogeneous planning for large smooth cells: a few priced searches, then one price swept over deadlines.

At city scale (:data:`LARGE_CELL` users or more, a continuous band with Shannon rates, ragged batches,
an affine verification time) the interval search of :mod:`multispin_cli.planners.heterogeneous` spends
its time pricing every user at every length on dozens of deadline intervals. With thousands of users
the knapsack's LP is all but integral and each user only cares about the few lengths next to its
best one, which this module uses twice:

* **Search.** The knapsack LP at a deadline D (values weighed by Dinkelbach's parameter at the best
  ratio seen) gives a plan, its ratio and the band's price lam. The best deadline is searched on a
  sample of :data:`SAMPLE` users (every k-th, band and per-token server time scaled): steps along
  the Lagrangian's slope ``lam sum_k |dW_k/dD| - gamma`` until the ratio falls, then successive
  parabolas through the best three. The whole cell's LP is then solved there over a window of
  :data:`WIDTH` lengths per user (plus length 0) placed by the sample's price, and a step either
  side with the same windows (two at a time on two threads, the third beside the exact scoring of
  the better plans so far); the plans are scored exactly (equal-finish split).
* **Certificate.** With ``gamma = G (1 + tol)`` (G the best plan found) and the one price lam, weak
  duality bounds every plan whose deadline lies in ``[a, b]``:

      sum_k G_k(L_k) - gamma T  <=  lam W - gamma C + max_{D in [a, b]} [ sum_k phi_k(D) - gamma D ],
      phi_k(D) = max_l ( G_k(l) - gamma v1 l - lam W_k(l, D) ),

  T the round, C its part that does not depend on the plan. Writing ``gamma = sum_k mu_k + c`` with
  ``mu_k`` the secant slope of phi_k over ``[a, b]`` splits the maximum over D into one per user
  plus ``max(c a, c b)``; each length's term ``G - gamma v1 l - lam W(l, D)`` is concave in D (W is
  convex and falls with D), so its maximum against ``mu_k D`` is bounded by its tangents at a and b
  (a piecewise-linear concave function: the maximum is at an end or where they cross); a length
  that comes into reach inside [a, b] also by the need's tangent in the rate, which follows its
  steep rise. Each user's best length only grows with D (a longer draft's need falls faster), so
  lengths above the best at b never lead in [a, b]; those below the window are bounded by
  concavity in the length (W is convex in l for l >= 1, the value concave). Where that split does
  not close an interval, the users whose one length leads all through it are summed (their sum is
  concave: two tangents bound it) and only the others, the movers, are bounded one by one, on
  pieces of the interval priced for them alone (:func:`_refined`). If the bound is at most 0 on
  every interval of ``[D_lo, D_hi]`` (intervals that fail are halved), no plan beats gamma: the
  plan is within ``tol`` of the optimum, proven. The longest and shortest deadlines take no prices:
  with no need at all each user's term is at most its best over every length (over the lengths
  whose device time fits, below a deadline), which closes them on its own.

Where the certificate does not close (the dual above 0 at an interval's end, intervals narrower than
:data:`NARROWEST`, or more than :data:`MAX_POINTS` deadlines), the whole cell's LP is solved there and the proof runs again with any
better plan; ranges with no better plan are proven with the LP's price at their middle (one price
does not suit deadlines far from the plan's). Where even that fails :func:`plan_large` returns None
and the planner runs its interval search instead, so the answer is proven either way.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace

import numpy as np

from multispin_cli.model.system import System
from multispin_cli.model.verifier import VerifyTime
from multispin_cli.planners import knapsack
from multispin_cli.planners.homogeneous import common_length_deadlines
from multispin_cli.planners.level_prices import LevelPrices
from multispin_cli.planners.split import split_goodput

LARGE_CELL = 1000  # users from which large cells take this path (below, one user's length moves the
# goodput by more than the LPs near the peak differ, and the interval search with its polish is fast;
# the planner polishes this path's plans below 2,000 users)
WIDTH = 5  # lengths the search's LPs price per user around its last choice (length 0 apart)
PROOF_WIDTH = 3  # ... and the certificate around each user's best length (edges bound the rest)
SEARCH_STEP = 0.15  # the search's first step in ln D (it grows by 1.6 while the ratio rises)
SAMPLE = 2000  # users the search of a larger cell starts on
CANDIDATE_USERS = 6000  # a cell searched without a sample scores the plans of its best 6000 / K LPs
# (at most 6: from 1,000 users to SAMPLE the whole cell is searched)
FINISH_STEP = 0.02  # the whole cell's LPs either side of the sample's best deadline, in ln D
PEAK_TOLERANCE = 0.005  # the search's parabolas stop within half of this of a deadline tried, in ln D
GRID = 4  # geometric grid of the certificate's first intervals over [D_lo, D_hi] ...
# ... and ln D near the best plan's deadline (intervals of 12 %: the movers' pieces go finer), with a
# point either side at +-0.6: the coarse intervals next to the near ones spanned a factor 2-4 in D
# and closed only after pricing their many movers (measured: 4-7 % faster from 1,000 to 100,000
# users than without; +-0.5, +-0.75, a second pair at +-0.9 or GRID 3 were slower).
NEAR_GRID = np.array([-0.6, -0.36, -0.24, -0.12, 0.0, 0.12, 0.24, 0.36, 0.6])
MOVER_PIECES = 24  # deadlines inside one interval the movers may be priced at before it is halved for all users
FIRST_CUT = 2  # pieces an interval's movers are first priced on
SAME_DEADLINE = 0.01  # grid deadlines closer than this (relative) are one
MAX_POINTS = 160  # deadlines the certificate may price before giving up
NARROWEST = 2e-3  # an interval this narrow (in ln D) that does not close points the search to it
SHORT_RUNGS = 32  # deadlines on which the proof closes the short deadlines without prices, up to the
# near grid's third point (measured at 10,000 users: 12 % faster than pricing them; 16 or 20 rungs, or
# up to the first, second or fourth point, were 2-7 % slower than this)
PROOF_ROUNDS = 3  # proofs tried, each after a search where the last one would not close
LOOK_AT = 3  # deadlines searched after a proof that would not close
CLOSE_PASSES = 6  # window moves per deadline at most (each moves only the users at an edge)
THREADED_CELL = 50_000  # users from which the proof prices two halves of the users on two threads (measured:
# 1.9x faster per deadline at 100,000 users on 2 idle cores, no faster at 10,000)
THREADED_PROOF = 7000  # users from which the proof's intervals below and above the plan's deadline go to
# two threads (measured on 2 cores: 5 % faster at 7,000 users, 7 % at 10,000, 12 % at 20,000, 9 % at
# 100,000; 3 % slower at 5,000)
_BUSY = threading.local()  # set while a thread works on one of two parts: its work is not split again


def _second_thread() -> bool:
    """Whether work may go to a second thread: two CPUs, and not already inside one of two parts."""
    return not getattr(_BUSY, "on", False) and (os.cpu_count() or 1) > 1


def _both(work, items) -> list:
    """``work(item)`` for the two items, the second on a thread of its own (numpy lets go of the
    interpreter while it computes); one after the other on one CPU, or inside such a part already."""
    if not _second_thread():
        return [work(item) for item in items]
    out: list = [None, None]

    def part(i: int) -> None:
        _BUSY.on = True
        try:
            out[i] = work(items[i])
        except BaseException as error:  # raised again in the calling thread
            out[i] = error
        finally:
            _BUSY.on = False

    second = threading.Thread(target=part, args=(1,))
    second.start()
    part(0)
    second.join()
    for result in out:
        if isinstance(result, BaseException):
            raise result
    return out


def _halves(work, size: int) -> list | None:
    """``work(rows)`` on the two halves of ``size`` entries, on two threads; None where that is not
    worth it (fewer than :data:`THREADED_CELL` entries) or not possible, and the caller works on all
    of them."""
    if size < THREADED_CELL or not _second_thread():
        return None
    half = size // 2
    return _both(work, (slice(0, half), slice(half, None)))


def _levels(start: np.ndarray, width: int, top: int, first: int = 0) -> np.ndarray:
    """The window lengths ``min(start + j, top)`` (n, first + width), after ``first`` columns of 0
    (length 0), column by column: an (n, 1) against (n, width) broadcast runs numpy's inner loop
    once per row, about ten times slower than strided columns."""
    levels = np.zeros((start.size, first + width), dtype=np.intp)
    for j in range(width):
        np.minimum(start + j, top, out=levels[:, first + j])
    return levels


def _at_least(matrix: np.ndarray, per_row: np.ndarray) -> np.ndarray:
    """``matrix >= per_row[:, None]``, column by column (as :func:`_levels`)."""
    out = np.empty(matrix.shape, dtype=bool)
    for j in range(matrix.shape[1]):
        np.greater_equal(matrix[:, j], per_row, out=out[:, j])
    return out


def applies(system: System) -> bool:
    """Whether a cell is large and regular enough for this path."""
    return (
        system.users >= LARGE_CELL
        and system.smooth
        and system.batching == "ragged"
        and system.verify.affine
        and system.channel.power_limited.ndim == 1
        and system.max_draft_length >= WIDTH
    )


@dataclass(frozen=True)
class LargeResult:
    """The best lengths found, their exact goodput, deadline and split, and the proven bound."""

    lengths: np.ndarray
    goodput: float
    deadline: float
    bandwidth: np.ndarray
    bound: float


class _Cell:
    """The per-cell constants of the search and the certificate."""

    def __init__(self, system: System):
        self.system = system
        self.k, self.top = system.users, system.max_draft_length
        self.prices = LevelPrices(system)
        (intercept, slope), = system.verify.minorants(float(self.k), float(self.k * (self.top + 1)))
        self.v1 = float(slope)
        self.fixed = float(intercept + slope * self.k + system.server_fixed_s)  # C: T = D + C + v1 sum L
        self.g = system.tokens_per_round  # (K, L+1)
        self.g0 = np.ascontiguousarray(self.g[:, 0])
        self.users = np.arange(self.k)
        self.budget = system.bandwidth_hz
        self._gamma, self._table = None, None
        self._prefix_gamma, self._prefix = None, None

    def _values(self, gamma: float) -> np.ndarray:
        """``G_k(l) - gamma v1 l`` (K, L+1), kept for the last gamma."""
        if self._gamma != gamma:
            self._gamma, self._table = gamma, self.g - gamma * self.v1 * np.arange(self.top + 1)
        return self._table

    def best_prefix(self, gamma: float) -> np.ndarray:
        """Each user's best of ``G_k(l) - gamma v1 l`` over the lengths 0..l (K, L+1), kept for the
        last gamma."""
        if self._prefix_gamma != gamma:
            prefix = self._values(gamma).copy()
            for level in range(1, self.top + 1):  # (columns: faster than accumulate along short rows)
                np.maximum(prefix[:, level - 1], prefix[:, level], out=prefix[:, level])
            self._prefix_gamma, self._prefix = gamma, prefix
        return self._prefix

    def values(self, gamma: float, start: np.ndarray, users: np.ndarray | None = None, width: int = WIDTH):
        """``G_k(l) - gamma v1 l`` at the windows' lengths (n, width) of ``users`` (all by default)."""
        users = self.users if users is None else users
        flat = _levels(start, width, self.top)
        base = users * (self.top + 1)
        for j in range(width):
            flat[:, j] += base
        return self._values(gamma).ravel().take(flat)

    def window(self, deadline: float, start: np.ndarray, users: np.ndarray | None = None, width: int = WIDTH):
        """The needs at the windows (n, width), without their derivative."""
        users = self.users if users is None else users
        return self.prices.window(deadline, users, start, width, derivative=False)[0]

    def terms(self, deadline, start: np.ndarray, users: np.ndarray, width: int, lam: float, gamma: float):
        """``G - gamma v1 l - lam W`` at the windows (n, width) and its derivative in D (>= 0)."""
        return self.prices.terms(deadline, users, start, width, self._values(gamma), lam)


def _from_floor(floor: np.ndarray, top: int) -> np.ndarray:
    """Proof windows that start at each user's known lower bound on its best length (within 1..top)."""
    return np.minimum(floor, top - PROOF_WIDTH + 1)


def _centred(level: np.ndarray, top: int, width: int = WIDTH) -> np.ndarray:
    """Window starts that put each length in the middle of its window (within 1..top)."""
    return np.clip(level - width // 2, 1, top - width + 1)


def _lp(cell: _Cell, deadline: float, gamma: float, window: np.ndarray | None):
    """The knapsack LP at one deadline with values ``G - gamma v1 l``: over every length (window
    None) or over length 0 and each user's window. Returns the solution, the lengths of its integer
    plan and of the plan with the fractional user rounded up, and the LP plan's ratio."""
    if window is None:
        levels = None  # every length: a pick is its length
        v, w = cell._values(gamma)[None], cell.prices.at(deadline)
    else:
        parts = _halves(lambda rows: cell.window(deadline, window[rows], cell.users[rows]), cell.k)
        need = cell.window(deadline, window) if parts is None else np.concatenate(parts)
        levels = _levels(window, WIDTH, cell.top, first=1)  # length 0, then the window
        v, w = np.empty(levels.shape), np.zeros(levels.shape)
        v[:, 0] = cell.g0
        v[:, 1:] = cell.values(gamma, window)
        w[:, 1:] = need
        v, w = v[None], w[None]
    sol = knapsack.solve(v, w, cell.budget)
    # Each user's pick as a flat entry of the (K, options) tables (take_along_axis is slower).
    row = np.arange(cell.k) * v.shape[2]
    pick, pick_up = row + sol.levels[0], row + sol.rounded_up[0]
    if levels is None:
        lengths, up = sol.levels[0], sol.rounded_up[0]
    else:
        lengths, up = levels.ravel().take(pick), levels.ravel().take(pick_up)
    # The LP's total draft length: the integer plan's, and the fractional user's share of its step.
    value, value_up = v[0].ravel().take(pick).sum(), v[0].ravel().take(pick_up).sum()
    share = (float(sol.lp_value[0]) - value) / (value_up - value) if value_up > value else 0.0
    total = float(lengths.sum()) + min(max(share, 0.0), 1.0) * float(up.sum() - lengths.sum())
    ratio = (float(sol.lp_value[0]) + gamma * cell.v1 * total) / (deadline + cell.fixed + cell.v1 * total)
    return sol, lengths, up, ratio


def _vertex_max(f, tried: dict, low: float, high: float, *, tolerance: float, steps: int) -> None:
    """Successive parabolas through the best point seen in [low, high] and its two neighbours, until
    the next point would fall within ``tolerance / 2`` of one already tried while those neighbours
    span less than ``10 tolerance``; golden sections of the wider side where a parabola fails or
    stalls on a wider bracket (a skewed ratio's parabola can put its vertex on the best point seen).
    ``tried`` maps x to a tuple led by f(x); f adds to it. Returns at once where the best point
    tried is at an end of [low, high]."""
    golden = 0.3819660112501051
    for _ in range(steps):
        xs = sorted(x for x in tried if low <= x <= high)
        i = max(range(len(xs)), key=lambda j: tried[xs[j]][0])
        if i == 0 or i == len(xs) - 1:
            return  # the best at the bracket's end: nothing to refine inside it
        (a, b, c), (fa, fb, fc) = xs[i - 1:i + 2], (tried[x][0] for x in xs[i - 1:i + 2])
        den = (b - a) * (fb - fc) - (b - c) * (fb - fa)  # > 0: the parabola has a maximum
        u = b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / den if den > 0 else None
        if u is None or not a < u < c or min(abs(u - x) for x in xs) < 0.5 * tolerance:
            if c - a < 10 * tolerance:
                return
            u = b + golden * ((c - b) if c - b > b - a else (a - b))
        f(u)


def _peak(cell: _Cell, start: float, gamma: float, step: float, span: tuple[float, float], *,
          steps: int = 8, tolerance: float = PEAK_TOLERANCE):
    """The deadline whose LP ratio is highest: from ``start``, steps (growing) the way the Lagrangian
    rises, ``lam sum_k |dW_k/dD| - gamma`` at the LP's plan, until the ratio falls; then parabolas
    in ln D inside that bracket (:func:`_vertex_max`; the ratio is smooth at the bracket's scale
    and bumpy within about 1 % of D, where the ratios differ by about 1e-4). Each LP weighs
    the server's time at the best ratio seen so far (Dinkelbach). Deadlines stay in ``span``
    (D_lo, D_hi). Returns the best deadline, its LP's (ratio, solution, lengths, rounded-up
    lengths), and every LP's, best first."""
    tried: dict[float, tuple] = {}
    lowest, highest = np.log(span[0]), np.log(span[1])

    def lp_at(x: float) -> float:
        nonlocal gamma
        x = float(np.clip(x, lowest, highest))
        if x not in tried:
            sol, lengths, up, ratio = _lp(cell, float(np.exp(x)), gamma, None)
            tried[x] = (ratio, sol, lengths, up)
            gamma = max(r[0] for r in tried.values())  # the best ratio reached (the start's guess aside)
        return tried[x][0]

    x0 = float(np.clip(np.log(start), lowest, highest))
    f0 = lp_at(x0)
    _, sol, lengths, _ = tried[x0]
    drafting = np.flatnonzero(lengths > 0)
    _, slope = cell.prices.window(float(np.exp(x0)), drafting, lengths[drafting], 1)
    step = step if float(sol.price[0]) * -float(np.nansum(slope)) > gamma else -step
    points = [(x0, f0)]
    for _ in range(steps):
        x = points[-1][0] + step
        points.append((x, lp_at(x)))
        if points[-1][1] < points[-2][1]:
            break
        step *= 1.6
    if len(points) == 2:  # the first step fell: the peak is behind the start, or between
        x = x0 - step
        points.insert(0, (x, lp_at(x)))
        if points[0][1] > f0:  # behind: keep going that way
            for _ in range(steps):
                step *= 1.6
                x = points[0][0] - step
                points.insert(0, (x, lp_at(x)))
                if points[0][1] < points[1][1]:
                    break
    points.sort()  # (by deadline: steps down the deadlines leave them in falling order)
    top = max(range(len(points)), key=lambda i: points[i][1])
    low = points[max(top - 1, 0)][0]
    high = points[min(top + 1, len(points) - 1)][0]
    mid = points[top][0]
    if not low < mid < high:  # the best at an end of what was tried: bracket around it anyway
        low, high = mid - abs(step), mid + abs(step)
        lp_at(low), lp_at(high)  # (clipped to the span: the parabolas need a point either side)
    _vertex_max(lp_at, tried, low, high, tolerance=tolerance, steps=steps)
    x = max(tried, key=lambda x: tried[x][0])
    return float(np.exp(x)), tried[x], [tried[x] for x in sorted(tried, key=lambda x: -tried[x][0])]


def _search(cell: _Cell, sample: _Cell, start_deadline: float, best, span: tuple[float, float]) -> tuple[float, np.ndarray]:
    """The best deadline and plan by LPs; returns the band's price there and windows around the plan.

    Large cells search on a sample of their users first (every k-th, the band and the server's
    per-token time scaled to match: the sample's best deadline is the cell's, to sampling error),
    then place each user's window at its best length at that deadline and price, and finish with
    a few windowed LPs of the whole cell there and a step either side.
    """
    if sample is not cell:
        deadline, (ratio, sol, found, _), _ = _peak(sample, start_deadline, best.value * SAMPLE / cell.k,
                                                    SEARCH_STEP, span)
        lam, gamma = float(sol.price[0]), ratio * cell.k / SAMPLE
        # Each user's best length >= 1 at the sample's price, by windows (from the sample's median).
        drafting = found[found > 0]
        guess = np.full(cell.k, int(np.median(drafting)) if drafting.size else 1)
        point = _point(cell, deadline, lam, gamma, _centred(guess, cell.top, PROOF_WIDTH))
        if point is not None:
            window = _centred(point.start + np.argmax(point.value, axis=1), cell.top)
        else:  # (never for these terms, concave in the length): price every length
            every, _ = cell.terms(deadline, np.ones(cell.k, dtype=np.intp), cell.users, cell.top, lam, gamma)
            window = _centred(np.argmax(every, axis=1) + 1, cell.top)
        del point
        # The whole cell's LP there and a step below it, on two threads; then a step above it
        # while the better of the two is scored exactly (each LP is a few large array operations).
        low = deadline * np.exp(-FINISH_STEP)
        results = [(ratio, sol, lengths, up, there) for (sol, lengths, up, ratio), there in
                   zip(_both(lambda d: _lp(cell, d, gamma, window), (deadline, low)), (deadline, low))]
        first = max(results, key=lambda r: r[0])
        high = deadline * np.exp(FINISH_STEP)
        upper, _ = _both(lambda job: job(), (lambda: _lp(cell, high, first[0], window),
                                             lambda: best.offer(np.stack([first[2], first[3]]), near=first[4])))
        sol, lengths, up, ratio = upper
        if ratio > first[0]:
            best.offer(np.stack([lengths, up]), near=high)
        else:
            _, sol, lengths, up, _ = first
        return float(sol.price[0]), _centred(np.maximum(lengths, 1), cell.top)
    deadline, (_, sol, lengths, up), ranked = _peak(cell, start_deadline, best.value, SEARCH_STEP, span)
    # With fewer users one user's length moves the goodput more than the LP ratios differ near the
    # peak: score the plans of the best few LPs, not only the best one's.
    top = ranked[:max(1, min(6, CANDIDATE_USERS // cell.k))]
    best.offer(np.concatenate([np.stack([r[2], r[3]]) for r in top]))
    return float(sol.price[0]), _centred(np.maximum(lengths, 1), cell.top)


def _sample(system: System, size: int) -> System:
    """Every k-th user, with the band and the server's per-token time scaled so that the sample's
    goodput is the cell's times ``size / K`` for the same plan shares (the server's fixed time and
    the deadline are the cell's)."""
    k = system.users
    index = np.linspace(0, k - 1, size).round().astype(np.intp)
    (intercept, slope), = system.verify.minorants(float(k), float(k * (system.max_draft_length + 1)))
    sample = system.take(index).with_bandwidth(system.bandwidth_hz * size / k)
    return replace(sample, verify=VerifyTime.from_affine(base_s=float(intercept), per_token_s=float(slope) * k / size))


@dataclass
class _Point:
    start: np.ndarray  # (K,) first length of each user's window
    value: np.ndarray  # (K, PROOF_WIDTH) G - gamma v1 l - lam W at the window's lengths (-inf: out of reach)
    slope: np.ndarray  # (K, PROOF_WIDTH) its derivative in D (>= 0; NaN where not computable)
    phi: np.ndarray  # (K,) each user's best term, length 0 included
    lead: np.ndarray  # (K,) each user's best length >= 1 (the lowest of a tie; the window's first if none is in reach)


def _point(cell: _Cell, deadline, lam: float, gamma: float, start: np.ndarray,
           users: np.ndarray | None = None, floor: np.ndarray | None = None) -> _Point | None:
    """Every user's best term at one deadline, with a window of lengths around its best length >= 1.

    The term is concave in the length for l >= 1, so a window whose best entry is inside it (or at
    length 1 or L_max) holds the best length; users at a window's edge move and are priced again.
    ``users`` (all by default, in any order and repeated) with ``start`` and ``deadline`` (a number
    or one per entry) theirs. ``floor``: each entry's best length >= 1 at an earlier deadline,
    where known; the best length only grows with D, so a window whose first length is the floor
    holds the best length when its best entry is the first (no move down). Many entries are
    priced in two halves on two threads (numpy lets go of the interpreter while it computes; each
    entry's term is its own, so the result is the same).
    """
    users = cell.users if users is None else users
    parts = _halves(lambda rows: _point_of(cell, users[rows], deadline[rows] if np.ndim(deadline) else deadline,
                                           lam, gamma, start[rows], None if floor is None else floor[rows]),
                    users.size)
    if parts is None:
        return _point_of(cell, users, deadline, lam, gamma, start, floor)
    return None if any(p is None for p in parts) else _joined(parts)


def _point_of(cell: _Cell, users: np.ndarray, deadline, lam: float, gamma: float,
              start: np.ndarray, floor: np.ndarray | None = None) -> _Point | None:
    """:func:`_point` for some users (``start`` and ``floor`` are theirs); ``deadline`` may be one
    per user (n,)."""
    width = PROOF_WIDTH
    start = start.copy()
    if np.ndim(deadline):
        per_user = np.asarray(deadline, dtype=float)[:, None]
        deadline = per_user

        def at(rows):  # the rows' own deadlines
            return per_user[rows]
    else:
        def at(rows):
            return deadline
    value, slope = cell.terms(deadline, start, users, width, lam, gamma)
    pending = None  # all users, the first time (no copy)
    for attempt in range(CLOSE_PASSES):
        sub, first = (value, start) if pending is None else (value[pending], start[pending])
        j = np.argmax(sub, axis=1)
        # The whole window out of reach: go down (reach is a prefix of the lengths).
        lost = ~np.isfinite(sub[np.arange(first.size), j]) & (first > 1)
        low = (j == 0) & (first > 1)
        if floor is not None:  # (a window from the floor up holds the best when its first entry leads)
            low &= first > (floor if pending is None else floor[pending])
        high = (j == width - 1) & (first + width - 1 < cell.top)
        move = lost | low | high
        if not move.any():
            break
        pending = np.flatnonzero(move) if pending is None else pending[move]
        who = users[pending]
        if attempt < 2:  # a step or two from a nearby deadline's windows
            best_level = start[pending] + j[move]
            best_level = np.where(lost[move], start[pending] - width + 1, best_level)
        else:  # far from it: look at every length of the users still at an edge
            ones = np.ones(pending.size, dtype=start.dtype)
            every, _ = cell.terms(at(pending), ones, who, cell.top, lam, gamma)
            best_level = np.argmax(every, axis=1) + 1
        start[pending] = _centred(np.maximum(best_level, 1), cell.top, width)
        value[pending], slope[pending] = cell.terms(at(pending), start[pending], who, width, lam, gamma)
    else:
        return None  # never for these terms (concave in the length); the caller falls back
    top = value[:, 0].copy()  # each user's best term (columns: faster than a max along rows of 3)
    lead = start.copy()
    for column in range(1, width):
        np.copyto(lead, start + column, where=value[:, column] > top)
        np.maximum(top, value[:, column], out=top)
    phi = np.maximum(cell.g0 if users is cell.users else cell.g0.take(users), top, out=top)
    return _Point(start, value, slope, phi, lead)


def _edge_lines(pa: _Point, pb: _Point, floor: np.ndarray):
    """Bounds at b on the lengths below each user's window at b, for the users that need one.

    Which lengths can lead in [a, b]: a longer draft sends more bits after a longer device time,
    so its need falls faster with D (``dW/dD = -W'(R) bits / (D - t)^2``, W convex in the rate R)
    and its gain over a shorter one grows with D. Each user's best length only grows with D: on
    [a, b] only the lengths from its best at a (in a's window) to its best at b (in b's) can lead.
    Those below b's window are bounded at b by the line through its two lowest entries (the term
    is concave in the length), hence on all of [a, b]; inf where that is unknown. Only users whose
    line can reach the floor need it: the edge entry reaches it, or the line rises outwards, or
    the inner entry is out of reach (never, once the windows are settled). Returns (users, line).
    """
    e, i = pb.value[:, 0], pb.value[:, 1]
    with np.errstate(invalid="ignore", over="ignore"):
        users = np.flatnonzero((pb.start > 1) & ((e >= floor) | (e > i) | ~np.isfinite(i)))
        lead = pa.lead[users]
        below = lead < pb.start[users]
        users, lead = users[below], lead[below]
        if not users.size:
            return users, np.empty(0)
        e, i = e[users], i[users]
        line = np.where(np.isfinite(e) & np.isfinite(i), e + (pb.start[users] - lead) * np.maximum(e - i, 0.0), np.inf)
        return users, np.where(np.isneginf(e), -np.inf, line)


def _user_bounds(cell: _Cell, users: np.ndarray, pa: _Point, pb: _Point, a, b):
    """:func:`_user_bounds_of`, many users in two halves on two threads (each user's bound is its own)."""
    parts = _halves(lambda rows: _user_bounds_of(cell, users[rows], _subset(pa, rows), _subset(pb, rows),
                                                 a[rows] if np.ndim(a) else a, b[rows] if np.ndim(b) else b),
                    users.size)
    if parts is None:
        return _user_bounds_of(cell, users, pa, pb, a, b)
    return tuple(np.concatenate(x) for x in zip(*parts))


def _user_bounds_of(cell: _Cell, users: np.ndarray, pa: _Point, pb: _Point, a, b):
    """Each user's bound on ``max_{D in [a, b]} (phi_k(D) - mu_k D)`` and mu_k, the secant slope of
    phi_k over [a, b]. ``users`` (the cell's rows, repeated where pieces are), ``pa`` and ``pb``
    hold the same users in the same order; a and b are numbers or one per user.

    Each candidate length's term is below its tangents in D at a and at b. A length that a does
    not price (mostly one out of reach at a: it comes into reach inside [a, b]) has only b's,
    which can be far above the term where it rises steeply; there the need's tangent in the rate
    R = bits / (D - t) (t the length's device time; the need is convex in R) bounds the term by
    ``A - B / (D - t)`` on all D > t, which follows it (exact for fixed-SNR users, whose need is
    linear in R).
    """
    width = pb.value.shape[1]
    g0 = cell.g0.take(users)
    mu = np.maximum((pb.phi - pa.phi) / (b - a), 0.0)
    floor = pa.phi  # phi_k(D) >= phi_k(a): a length whose term at b is below it never leads in [a, b]
    best = g0 - mu * a  # length 0: no band, its value
    per_user = np.ndim(a) > 0
    # The lengths of b's window that can lead somewhere in [a, b] (most users have one).
    flat = np.flatnonzero(_at_least(pb.value, floor))
    if flat.size:
        user = flat // width
        j = flat - user * width
        vb, sb = pb.value.ravel().take(flat), pb.slope.ravel().take(flat)
        sb = np.where(np.isfinite(sb), sb, 0.0) * (1.0 - 1e-9)  # smaller: T_b(D) only rises for D < b
        ja = j + (pb.start - pa.start).take(user)  # the same length in a's window, where it has it
        known = (ja >= 0) & (ja < width)
        at = user * width + np.clip(ja, 0, width - 1)
        va, sa = pa.value.ravel().take(at), pa.slope.ravel().take(at) * (1.0 + 1e-9)  # larger: T_a only rises
        use_a = known & np.isfinite(va) & np.isfinite(sa)
        va, sa = np.where(use_a, va, np.inf), np.where(use_a, sa, 0.0)
        m = mu.take(user)
        ra, rb = (a.take(user), b.take(user)) if per_user else (a, b)
        with np.errstate(invalid="ignore", over="ignore"):
            # The term is below min(T_a, T_b), concave and piecewise linear: its maximum against
            # mu D is at a, at b, or where the two tangents cross.
            at_a = np.minimum(va, vb - sb * (rb - ra)) - m * ra
            at_b = np.minimum(va + sa * (rb - ra), vb) - m * rb
            den = sa - sb
            cross = np.where(use_a & (den > 0), (vb - va + sa * ra - sb * rb) / den, ra)
            cross = np.fmin(np.fmax(cross, ra), rb)  # clipped to [a, b], NaN to a
            at_x = np.minimum(va + sa * (cross - ra), vb + sb * (cross - rb)) - m * cross
            term = np.maximum(np.maximum(at_a, at_b), at_x)
        late = np.flatnonzero(~use_a)
        if late.size:  # b's bound in the rate as well: the smaller
            rows, level = users.take(user[late]), pb.start.take(user[late]) + j[late]
            t, reach = cell.prices.reach(rows, level)
            low = np.maximum(ra.take(late) if per_user else ra, reach - 1e-9 * (reach - t))  # (a hair early)
            term[late] = np.minimum(term[late], _rising_most(vb[late], sb[late], t, m[late], low,
                                                             rb.take(late) if per_user else rb))
        starts = np.flatnonzero(np.concatenate([[True], user[1:] != user[:-1]]))
        rows = user[starts]
        best[rows] = np.maximum(best[rows], np.maximum.reduceat(term, starts))
    edge, line = _edge_lines(pa, pb, floor)
    if edge.size:
        best[edge] = np.maximum(best[edge], line - mu[edge] * (a[edge] if per_user else a))
    return best, mu


def _rising_most(vb, sb, t, m, low, b) -> np.ndarray:
    """``max_{D in [low, b]} (f(D) - m D)`` with ``f(D) = vb + sb (b - t)(D - b) / (D - t)``, the
    bound from b's term (value vb, slope sb >= 0 in D, nudged down) through the need's tangent in
    the rate, ``low >= t``: concave, its slope m at ``t + sqrt(B / m)`` (B = sb (b - t)^2)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        steep = sb * (b - t) ** 2
        x = np.fmin(np.fmax(t + np.sqrt(steep / m), low), b)  # (NaN, for 0 / 0, to the left end)
        return vb + sb * (b - t) - np.where(steep > 0, steep / (x - t), 0.0) - m * x


def _interval_bound(cell: _Cell, pa: _Point, pb: _Point, a: float, b: float, lam: float, gamma: float) -> float:
    """Upper bound on ``lam W - gamma C + max_{D in [a, b]} (sum_k phi_k(D) - gamma D)``.

    ``gamma = sum_k mu_k + c`` with mu_k the secant slope of phi_k over [a, b]: the maximum is at most
    ``sum_k max_D (phi_k(D) - mu_k D) + max(c a, c b)``, each user's maximum bounded length by length.
    """
    best, mu = _user_bounds(cell, cell.users, pa, pb, a, b)
    c = float(mu.sum()) - gamma
    return lam * cell.budget - gamma * cell.fixed + float(best.sum()) + max(c * a, c * b)


@dataclass(frozen=True)
class _Steady:
    """Over one interval [a, b]: the users whose one length leads all through it, summed (their
    terms and slopes at a and at b), and the others (movers)."""

    movers: np.ndarray
    a: float
    b: float
    at_a: float
    slope_a: float
    at_b: float
    slope_b: float

    def most(self, c: float, d: float, kappa: float) -> float:
        """Upper bound on ``max_{D in [c, d]} (sum of the steady users' terms + kappa D)``, [c, d]
        inside [a, b] (known from the interval's ends): each steady term is concave in D, so their
        sum is below both sums of tangents, a concave piecewise-linear function."""

        def line(x: float) -> float:
            return min(self.at_a + self.slope_a * (x - self.a), self.at_b + self.slope_b * (x - self.b)) + kappa * x

        best = max(line(c), line(d))
        den = self.slope_a - self.slope_b
        if den > 0:
            x = (self.at_b - self.at_a + self.slope_a * self.a - self.slope_b * self.b) / den
            if c < x < d:
                best = max(best, line(x))
        return best


def _steady(cell: _Cell, pa: _Point, pb: _Point, a: float, b: float) -> _Steady:
    """Split the users of [a, b] into steady ones (one candidate length, known at both ends) and movers.

    A length can lead somewhere in [a, b] only if its term at b reaches phi_k(a) (terms rise with
    D); a user with exactly one such length, priced at both ends, has phi_k equal to that length's
    term all through [a, b]. The steady users are summed: their sum is bounded by two tangents,
    whose error is second order in the width, where the users whose best length changes inside
    the interval cost first order when bounded one by one.
    """
    width = pb.value.shape[1]
    floor = pa.phi
    g0 = cell.g0
    candidates = _at_least(pb.value, floor)
    in_window = candidates[:, 0].astype(np.intp)  # (by columns: a sum along rows of 3 is slow)
    for column in range(1, width):
        in_window += candidates[:, column]
    count = in_window + (g0 >= floor)
    j = np.argmax(candidates, axis=1)
    row_start = np.arange(0, cell.k * width, width)
    at_b = row_start + j  # flat entries: one gather each instead of a (rows, j) fancy index
    vb, sb = pb.value.ravel().take(at_b), pb.slope.ravel().take(at_b)
    ja = j + pb.start - pa.start
    known = (ja >= 0) & (ja < width)
    at_a = row_start + np.clip(ja, 0, width - 1)
    va, sa = pa.value.ravel().take(at_a), pa.slope.ravel().take(at_a)
    single = count == 1
    window_one = single & (in_window > 0) & known & np.isfinite(va) & np.isfinite(sa) & np.isfinite(sb)
    zero_one = single & (in_window == 0)
    steady = window_one | zero_one
    steady[_edge_lines(pa, pb, floor)[0]] = False
    one, zero = window_one & steady, zero_one & steady
    fixed = float(g0[zero].sum())
    return _Steady(np.flatnonzero(~steady), a, b, fixed + float(va[one].sum()), float(sa[one].sum()) * (1.0 + 1e-9),
                   fixed + float(vb[one].sum()), float(sb[one].sum()) * (1.0 - 1e-9))


def _subset(p: _Point, users) -> _Point:
    return _Point(p.start[users], p.value[users], p.slope[users], p.phi[users], p.lead[users])


def _joined(points: list[_Point]) -> _Point:
    fields = ("start", "value", "slope", "phi", "lead")
    return _Point(*(np.concatenate([getattr(p, f) for p in points]) for f in fields))


def _refined(cell: _Cell, pa: _Point, pb: _Point, a: float, b: float, lam: float, gamma: float) -> bool:
    """Whether [a, b] closes with the steady users summed and the movers' pieces of it priced.

    Only the movers (about a tenth of the users near the plan) are priced inside [a, b]: on each
    piece [c, d] the bound is ``lam W - gamma C + sum_movers max_D (phi_k - mu_k D) + max_D (steady
    sum + (sum_movers mu_k - gamma) D)``. Pieces that do not close are cut in :data:`FIRST_CUT`
    (then in two), all of a round's pieces priced and bounded together.
    """
    steady = _steady(cell, pa, pb, a, b)
    movers = steady.movers
    n = movers.size
    base = lam * cell.budget - gamma * cell.fixed
    pieces = [(a, b, _subset(pa, movers), _subset(pb, movers))]
    cut, priced = FIRST_CUT, 0
    while True:
        count = len(pieces)
        ends = np.array([(c, d) for c, d, _, _ in pieces])
        best, mu = _user_bounds(cell, np.tile(movers, count), _joined([p[2] for p in pieces]),
                                _joined([p[3] for p in pieces]), np.repeat(ends[:, 0], n), np.repeat(ends[:, 1], n))
        total, slope = best.reshape(count, n).sum(axis=1), mu.reshape(count, n).sum(axis=1)
        open_ = [i for i in range(count)
                 if base + total[i] + steady.most(ends[i, 0], ends[i, 1], slope[i] - gamma) > 0.0]
        if not open_:
            return True
        if any(pieces[i][1] <= pieces[i][0] * (1 + NARROWEST) for i in open_):
            return False
        # Each open piece is cut at ``cut - 1`` inner deadlines (geometric), all priced at once.
        inner = [pieces[i][0] * (pieces[i][1] / pieces[i][0]) ** (np.arange(1, cut) / cut) for i in open_]
        priced += (cut - 1) * len(open_)
        if priced > MOVER_PIECES:
            return False
        deadlines = np.concatenate(inner)
        floor = np.concatenate([np.tile(pieces[i][2].lead, cut - 1) for i in open_])  # the best at c
        found = _point(cell, np.repeat(deadlines, n), lam, gamma, _from_floor(floor, cell.top),
                       np.tile(movers, deadlines.size), floor)
        if found is None:
            return False
        at, nxt = 0, []
        for i, mids in zip(open_, inner):
            c, d, pc, pd = pieces[i]
            points = [pc]
            for _ in mids:
                points.append(_subset(found, slice(at, at + n)))
                at += n
            points.append(pd)
            marks = [c, *mids, d]
            nxt += [(marks[j], marks[j + 1], points[j], points[j + 1]) for j in range(cut)]
        pieces, cut = nxt, 2


def _long_closed(cell: _Cell, gamma: float, rest: float) -> float:
    """The deadline from which no plan reaches gamma, without prices: each user's term is at most its
    best with no need at all (its limit as D grows), so ``sum_k max_l (G_k(l) - gamma v1 l) - gamma a
    - rest`` bounds the dual at every deadline from a on (a hair later than where that is 0)."""
    return (float(cell.best_prefix(gamma)[:, -1].sum()) - rest) / gamma * (1.0 + 1e-12)


def _short_closed(cell: _Cell, gamma: float, rest: float, low: float, high: float, rungs: int = SHORT_RUNGS) -> float:
    """The latest deadline x in [low, high] up to which no plan reaches gamma, by the bound without
    needs: on [x_i, x_i+1], ``sum_k max {G_k(l) - gamma v1 l : t_k(l) <= x_i+1} - gamma x_i - rest
    <= 0`` (t the device time of :func:`~multispin_cli.model.goodput.compute_seconds`, ``c + tau l``,
    inverted here: the lengths in reach are a prefix; a test prices the dual through the closed
    range, so the two cannot drift apart unseen). That sum is known on a geometric grid of
    ``rungs`` deadlines at once, O(K) each without needs (a whole-cell pricing computes a need per
    entry and moves windows); each step goes to the latest grid deadline it closes. ``low`` where
    the first step does not close."""
    system = cell.system
    if not high > low or not bool((system.draft_s_per_token > 0).all()):
        return low
    ladder = np.geomspace(low, high, rungs + 1)
    best = cell.best_prefix(gamma).ravel()
    rows = cell.users * (cell.top + 1)
    most = np.empty(rungs)  # nondecreasing along the ladder
    for first in range(0, rungs, 8):  # (8 rungs at a time: all 32 at once took 26 MB an array at 100,000 users)
        part = slice(first, min(first + 8, rungs))
        fits = ladder[1:][part, None] - system.draft_overhead_s  # lengths whose time fits ...
        fits /= system.draft_s_per_token
        fits *= 1.0 + 1e-9  # (a hair more: a length whose time ends on a rung counts; more lengths
        fits += 1e-9  # only raise the bound)
        np.floor(fits, out=fits)
        np.clip(fits, 0, cell.top, out=fits)
        count = fits.astype(np.intp)
        count += rows
        most[part] = best.take(count).sum(axis=1)
    x, i = low, 0
    while True:  # from x, to the latest rung whose sum is within reach of x's
        j = int(np.searchsorted(most, gamma * x + rest, side="right"))  # rungs 1..j close from x
        if j <= i:
            return x
        x, i = float(ladder[j]), j
        if j == rungs:
            return x


def certify(cell: _Cell, lam: float, gamma: float, d_lo: float, d_hi: float, start: np.ndarray,
            near: float | None = None) -> list[tuple[float, float, float]]:
    """Prove that no plan with a deadline in [d_lo, d_hi] reaches the ratio gamma, by intervals.

    Returns the intervals ``(a, b, bound)`` that would not close, highest bound first (empty when
    proven): an interval narrower than :data:`NARROWEST` whose bound is still above 0 holds a
    better plan, or needs a price of its own. ``near`` (the best plan's deadline) gets a finer
    first grid: the bound is tightest there. In a large cell the intervals below ``near`` and
    those above it are proven on two threads (each its own deadlines: the same bounds).
    """
    grid = np.geomspace(d_lo, d_hi, GRID + 1)
    if near is not None:  # (the coarse grid's points inside the near one only cut its intervals)
        fine = near * np.exp(NEAR_GRID)
        grid = np.concatenate([grid[(grid < fine[0]) | (grid > fine[-1])], fine])
    grid = np.sort(np.clip(grid, d_lo, d_hi))
    # Distinct, and not within 1 % of each other: a sliver between two grids costs a deadline's
    # prices for nothing (np.unique imports numpy.ma).
    grid = grid[np.concatenate([[True], grid[1:] > grid[:-1] * (1 + SAME_DEADLINE)])]
    grid[0], grid[-1] = d_lo, d_hi
    # The long and the short deadlines need no prices (:func:`_long_closed`, :func:`_short_closed`).
    rest = gamma * cell.fixed - lam * cell.budget  # the dual is sum_k phi_k(D) - gamma D - rest
    long = _long_closed(cell, gamma, rest)
    if long <= grid[0]:
        return []
    if long < grid[-1]:
        # The grid ends where the long tail starts (priced there, the last interval is narrower
        # than up to the next grid point and its windows move less); a point within 1 % below
        # it goes (a sliver).
        grid = np.append(grid[grid * (1 + SAME_DEADLINE) < long], long)
    high = float(grid[-1]) if near is None else min(float(grid[-1]), near * np.exp(NEAR_GRID[2]))

    def from_short(points: np.ndarray) -> list[tuple[float, float]]:
        """The intervals of ``points`` from where the short deadlines close on."""
        short = _short_closed(cell, gamma, rest, d_lo, high)
        if short >= points[-1]:
            return []
        if short > points[0]:
            points = np.concatenate([[short], points[points > short * (1 + SAME_DEADLINE)]])
        return [(float(points[i]), float(points[i + 1])) for i in range(points.size - 1)]

    middle = int(np.searchsorted(grid, near)) if near is not None else 0
    if cell.k >= THREADED_PROOF and 1 <= middle < grid.size - 1 and _second_thread():
        # Below the plan's deadline (the short ladder first) and above it, each on a thread of its
        # own, each may price half of MAX_POINTS deadlines.
        upper = [(float(grid[i]), float(grid[i + 1])) for i in range(middle, grid.size - 1)]
        parts = _both(lambda todo: _close(cell, lam, gamma, todo() if callable(todo) else todo, start, rest,
                                          MAX_POINTS // 2), (lambda: from_short(grid[:middle + 1]), upper))
        stuck = parts[0] + parts[1]
    else:
        stuck = _close(cell, lam, gamma, from_short(grid), start, rest, MAX_POINTS)
    return sorted(stuck, key=lambda s: -s[2])


def _close(cell: _Cell, lam: float, gamma: float, todo: list[tuple[float, float]], start: np.ndarray,
           rest: float, most_points: int) -> list[tuple[float, float, float]]:
    """:func:`certify`'s intervals ``todo`` (consecutive), halving those that do not close; returns
    the stuck ones. ``rest``: the dual is ``sum_k phi_k(D) - gamma D - rest``."""
    points: dict[float, _Point] = {}  # only the ends still needed: a point is (K, PROOF_WIDTH) twice
    priced = 0
    guess = start

    def at(d: float) -> _Point | None:
        nonlocal guess, priced
        if d not in points:
            # Windows from the best lengths at the nearest deadline below, where one is priced
            # (the best length only grows with D): fewer users then need a second pricing.
            below = max((x for x in points if x < d), default=None)
            floor = None if below is None else points[below].lead
            p = _point(cell, d, lam, gamma, guess if floor is None else _from_floor(floor, cell.top), floor=floor)
            if p is None:
                return None
            points[d], guess, priced = p, p.start, priced + 1
        return points[d]

    stuck = []
    while todo:
        todo.sort()
        nxt, kept = [], set()
        for a, b in todo:  # in order: once past an interval, its left end is needed again only if split
            # The first interval may close on its right end alone: each phi_k only grows with D, so
            # sum_k phi_k(b) - gamma a bounds the dual on [a, b] (far below the plan's deadline
            # that spares pricing the range's shortest deadline, where most users' windows move).
            if a not in points and (pb := at(b)) is not None and float(pb.phi.sum()) - gamma * a - rest <= 0.0:
                continue
            pa, pb = at(a), at(b)
            hopeless = False
            if pa is None or pb is None:
                bound = np.inf
            elif max(float(pa.phi.sum()) - gamma * a, float(pb.phi.sum()) - gamma * b) > rest:
                # The dual itself above 0 at an end: no bound on any part of [a, b] that holds that
                # end can close it with this price (the range needs a better plan or a price of its
                # own); the users' bound one by one only for the record (and rounding).
                bound = _interval_bound(cell, pa, pb, a, b, lam, gamma)
                hopeless = bound > 0.0
            elif _refined(cell, pa, pb, a, b, lam, gamma):
                # The steady users summed, the movers one by one: its first round is never above the
                # bound with every user one by one, which is therefore not computed first.
                bound = 0.0
            else:
                bound = _interval_bound(cell, pa, pb, a, b, lam, gamma)  # (to rounding, above 0)
            if bound > 0.0:
                if hopeless or b <= a * (1 + NARROWEST) or priced > most_points or pa is None or pb is None:
                    stuck.append((a, b, bound))
                else:
                    mid = float(np.sqrt(a * b))
                    nxt += [(a, mid), (mid, b)]
                    kept.update((a, b))
            if a not in kept:
                points.pop(a, None)
        points = {d: p for d, p in points.items() if d in kept}
        todo = nxt
    return stuck


class _Best:
    """The best plan so far and its exact goodput (equal-finish split)."""

    def __init__(self, system: System, lengths, value: float, deadline: float, bandwidth):
        self.system = system
        self.lengths, self.value, self.deadline, self.bandwidth = lengths, value, deadline, bandwidth

    def offer(self, plans: np.ndarray, near: float | None = None) -> None:
        """Score plans exactly (``near``: the deadline of the LP that found them) and keep the best."""
        goodput, deadline, bandwidth = split_goodput(self.system, plans, near=near)
        i = int(np.argmax(goodput))
        if goodput[i] > self.value:
            self.lengths, self.value = plans[i].astype(np.int64), float(goodput[i])
            self.deadline, self.bandwidth = float(deadline[i]), bandwidth[i]


def _start_deadline(cell: _Cell, deadline: float, d_lo: float, d_hi: float, drafting: float | None = None) -> float:
    """Where the search starts: the start plan's deadline, or (when nobody drafts in it) the best
    common length's (L >= 1) equal-finish deadline: ``drafting`` where the caller knows it, else
    solved here."""
    if d_lo < deadline < d_hi:
        return deadline
    if drafting is not None and d_lo < drafting < d_hi:
        return drafting
    common = common_length_deadlines(cell.system)
    if common is not None:
        levels = np.arange(1, cell.top + 1)
        ratio = cell.g[:, 1:].sum(axis=0) / (common[1:] + cell.fixed + cell.v1 * cell.k * levels)
        ratio = np.where(np.isfinite(common[1:]) & (common[1:] > d_lo) & (common[1:] < d_hi), ratio, -np.inf)
        if np.isfinite(ratio.max()):
            return float(common[1:][int(np.argmax(ratio))])
    return float(np.sqrt(d_lo * d_hi))


def _merged(stuck: list[tuple[float, float, float]]) -> list[tuple[float, float]]:
    """The stuck intervals joined where they touch, in order."""
    out: list[list[float]] = []
    for a, b, _ in sorted(stuck):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _lp_near(cell: _Cell, deadline: float, lam: float, gamma: float, start: np.ndarray):
    """The whole cell's windowed LP at one deadline, the windows placed where the proof's terms put
    each user's best length (then once more on the LP's own plan): (solution, lengths, rounded up)."""
    p = _point(cell, deadline, lam, gamma, start)
    if p is None:
        return None
    window = _centred(p.start + np.argmax(p.value, axis=1), cell.top)
    _, found, up, _ = _lp(cell, deadline, gamma, window)
    sol2, found2, up2, _ = _lp(cell, deadline, gamma, _centred(np.maximum(found, 1), cell.top))
    return sol2, np.stack([found, up, found2, up2])


def plan_large(system: System, *, lengths, goodput: float, deadline: float, bandwidth,
               d_lo: float, d_hi: float, tolerance: float,
               drafting_deadline: float | None = None) -> LargeResult | None:
    """Search from a plan (the homogeneous one), then prove the best found within ``tolerance``.
    ``drafting_deadline``: the best drafting common length's deadline, where the search starts
    when nobody drafts in the start plan (solved here where not given).

    Where the proof does not close, the whole cell's LP is solved at the deadlines it points to (a
    better plan is most likely there) and the proof runs again with the better plan; where no
    better plan is there, each such range is proven with the LP's price at its middle instead (one
    price does not suit deadlines far from the plan's). Returns None where that still does not
    close (the caller then searches by intervals).
    """
    # Fixed-SNR users first (the order the prices keep): a window of consecutive users then has
    # its power-limited ones as one tail, priced in place. The plan is put back in the cell's order.
    order = np.argsort(system.channel.power_limited, kind="stable")
    if (order != np.arange(system.users)).any():
        found = plan_large(system.take(order), lengths=np.asarray(lengths)[order], goodput=goodput,
                           deadline=deadline, bandwidth=np.asarray(bandwidth)[order], d_lo=d_lo, d_hi=d_hi,
                           tolerance=tolerance, drafting_deadline=drafting_deadline)
        if found is None:
            return None
        back = np.empty_like(order)
        back[order] = np.arange(order.size)
        return replace(found, lengths=found.lengths[back], bandwidth=found.bandwidth[back])
    cell = _Cell(system)
    best = _Best(system, np.asarray(lengths, dtype=np.int64), goodput, deadline, bandwidth)
    sample = _Cell(_sample(system, SAMPLE)) if cell.k > SAMPLE else cell
    lam, _ = _search(cell, sample, _start_deadline(sample, deadline, d_lo, d_hi, drafting_deadline), best, (d_lo, d_hi))
    for _ in range(PROOF_ROUNDS):
        gamma = best.value * (1.0 + tolerance)
        start = _centred(np.maximum(best.lengths, 1), cell.top, PROOF_WIDTH)
        stuck = certify(cell, lam, gamma, d_lo, d_hi, start, near=best.deadline)
        if not stuck:
            return LargeResult(best.lengths, best.value, best.deadline, best.bandwidth, gamma)
        before = best.value
        for a, b, _ in stuck[:LOOK_AT]:  # a better plan is most likely where the bound is highest
            middle = float(np.sqrt(a * b))
            found = _lp_near(cell, middle, lam, best.value, start)
            if found is not None:
                improved = best.value
                best.offer(found[1], near=middle)
                if best.value > improved:
                    lam = float(found[0].price[0])
        if best.value > before:
            continue
        # No better plan there: prove each stuck range with a price of its own.
        for low, high in _merged(stuck):
            found = _lp_near(cell, float(np.sqrt(low * high)), lam, best.value, start)
            if found is None or certify(cell, float(found[0].price[0]), gamma, low, high, start):
                return None
        return LargeResult(best.lengths, best.value, best.deadline, best.bandwidth, gamma)
    return None
