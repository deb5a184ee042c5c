"""Exact integer searches behind `multispin capacity`: the largest N that meets a target, or the
smallest.

The searches assume the target is monotone in N (more users of a kind never raise the worst
user's rate; more band never lowers the planned goodput) to bracket the answer by doubling and
then bisect. They do not trust that assumption for the answer itself: the result carries the
measured values at N and at its neighbour (N + 1, or N - 1), both planned, and callers report them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

import numpy as np

T = TypeVar("T")
ASSUMPTION = ("the target is assumed monotone in the searched value to bracket the answer; the answer and "
              "its neighbour are both planned and reported")


@dataclass(frozen=True)
class Search(Generic[T]):
    """The answer N, what the probe gave at N and at the neighbour (None: outside the range)."""

    answer: int
    at_answer: T
    neighbour: int
    at_neighbour: T | None
    probes: int


class _Probe(Generic[T]):
    def __init__(self, probe: Callable[[int], T], meets: Callable[[T], bool]):
        self.probe, self.meets, self.seen = probe, meets, {}

    def __call__(self, n: int) -> bool:
        if n not in self.seen:
            self.seen[n] = self.probe(n)
        return self.meets(self.seen[n])


def largest_meeting(probe: Callable[[int], T], meets: Callable[[T], bool], *, low: int = 1,
                    limit: int) -> Search[T] | None:
    """The largest N in [low, limit] with ``meets(probe(N))`` and not at N + 1 (N + 1 <= limit + 1
    is probed too); None if ``low`` does not meet. At ``limit`` the neighbour is not probed."""
    ok = _Probe(probe, meets)
    if not ok(low):
        return None
    good, bad = low, None
    while good < limit:
        n = min(max(2 * good, good + 1), limit)
        if not ok(n):
            bad = n
            break
        good = n
    if bad is None:  # meets at the limit
        return Search(good, ok.seen[good], good + 1, None, len(ok.seen))
    while bad - good > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    ok(good + 1)
    return Search(good, ok.seen[good], good + 1, ok.seen[good + 1], len(ok.seen))


def smallest_meeting(probe: Callable[[int], T], meets: Callable[[T], bool], *, limit: int) -> Search[T] | None:
    """The smallest N in [1, limit] with ``meets(probe(N))`` and not at N - 1 (not probed for N = 1);
    None if ``limit`` does not meet."""
    ok = _Probe(probe, meets)
    if not ok(limit):
        return None
    bad, good = 0, 1
    while not ok(good):
        bad, good = good, min(good * 2, limit)
    while good - bad > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    if good == 1:
        return Search(1, ok.seen[1], 0, None, len(ok.seen))
    ok(good - 1)
    return Search(good, ok.seen[good], good - 1, ok.seen[good - 1], len(ok.seen))


def rate_met_in(tokens: np.ndarray, round_s: np.ndarray, percentile: float) -> np.ndarray:
    """Each user's tokens/s met in at least ``percentile`` % of the drawn rounds.

    ``tokens`` (draws, K) are the tokens each user commits in a round and ``round_s`` (draws,) the
    round's time, one row per fading draw: user k's rate in draw s is ``tokens[s, k] / round_s[s]``.
    The answer is, per user, the largest rate v with at least ``percentile`` % of the draws at or above
    v: with the n rates in ascending order, the one at index ``floor(n (1 - percentile / 100))``
    (no interpolation, so a count that meets the target meets it on the draws themselves).
    """
    rates = np.sort(np.asarray(tokens, dtype=float) / np.asarray(round_s, dtype=float)[:, None], axis=0)
    n = rates.shape[0]
    index = min(int(np.floor(n * (1.0 - percentile / 100.0) + 1e-9)), n - 1)
    return rates[index]
