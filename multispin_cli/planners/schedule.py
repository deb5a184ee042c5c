"""Per-batch-size schedules: the best common draft length when B users share a verification batch.

Serving engines that read a draft length per batch size (vLLM's Dynamic Speculative Decoding,
TensorRT-LLM's ``draft_len_schedule``) change one common length as the load changes, which is the
homogeneous problem of docs/model.md 3 solved once per batch size B. Each B is planned with
:func:`~multispin_cli.planners.homogeneous.plan_homogeneous`, so the schedule matches the homogeneous planner
at every batch size by construction.

Which B users, and which band:

* **Users are drawn from the profile, deterministically, as a representative mix.** With K users
  in the profile, B users are ``B // K`` copies of every user plus ``B mod K`` users spread evenly
  over the profile's list (user ``floor((i + 1/2) K / r)`` for ``i < r``). A profile listing four
  phones then four laptops thus gives B = 2 one phone and one laptop, not two phones (taking the
  first B would schedule for whichever device the profile happens to list first), and B above K
  repeats the cell's mix instead of inventing users. A profile of identical devices gives B copies
  of that device whatever the rule.
* **The cell's uplink band W is shared by the B active users** (equal-finish split, as in the
  plan). The band belongs to the cell and does not grow with the load, so a larger batch gives each
  user less of it: uploads slow down and the verification batch ``N = B (L + 1)`` grows, both of
  which shorten the best draft. Above some batch size speculation stops paying and the schedule
  reaches L = 0: with an affine (or extrapolated) verification time and B large, a round of length
  L yields ``G(L) <= L + 1`` tokens per user for at least ``L + 1`` positions of verification plus
  the upload, so L = 0 wins once verification dominates.

**Monotone or not.** The best length per batch size is non-increasing in B for typical cells
(verification and upload cost per user grow with B), but it is not a theorem: each B draws its own
mix of users (B = 3 of a cell of phones and laptops is two of one kind), and a large per-upload
header or device overhead, amortised over a longer draft, can make the best length grow with B.
An engine sees whichever users happen to be active, so the schedule it is given should not hinge
on which: the *exported* schedule (``scheduled_lengths``) is the best non-increasing one, the
schedule that maximises the sum over batch sizes of each batch's goodput relative to its own
optimum (dynamic programming over batch sizes and lengths). Where the per-batch optimum is already
non-increasing the two are the same; otherwise the loss at each batch size is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from multispin_cli.errors import InputError
from multispin_cli.model.system import System
from multispin_cli.planners.homogeneous import plan_homogeneous

MAX_BATCH_SIZE = 4096
MAX_BATCH_SIZES = 256
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True, eq=False)
class Schedule:
    """The best common draft length for each batch size, with what it earns.

    Arrays are indexed like ``batch_sizes`` (increasing); ``goodput_by_length[i, L]`` is the
    homogeneous goodput of batch ``batch_sizes[i]`` with common length L (tokens/s, all B users).
    """

    batch_sizes: np.ndarray  # (n,) int
    draft_lengths: np.ndarray  # (n,) int
    goodput_tokens_per_s: np.ndarray  # (n,)
    round_s: np.ndarray  # (n,)
    goodput_by_length: np.ndarray  # (n, L_max + 1)
    users: tuple[np.ndarray, ...]  # profile indices of the users drawn for each batch size
    scheduled_lengths: np.ndarray | None = None  # (n,) int: the best non-increasing schedule (exported)

    def __post_init__(self):
        if self.scheduled_lengths is None:
            object.__setattr__(self, "scheduled_lengths",
                               monotone_lengths(self.goodput_by_length, self.draft_lengths))

    @property
    def scheduled_goodput_tokens_per_s(self) -> np.ndarray:
        """Goodput of the exported (non-increasing) schedule at each batch size."""
        rows = np.arange(self.batch_sizes.size)
        return self.goodput_by_length[rows, self.scheduled_lengths]

    @property
    def monotone(self) -> bool:
        """Whether the per-batch optimum is already non-increasing (then it is what is exported)."""
        return bool(np.array_equal(self.scheduled_lengths, self.draft_lengths))

    @property
    def autoregressive_tokens_per_s(self) -> np.ndarray:
        """Goodput with L = 0 at each batch size (the target alone)."""
        return self.goodput_by_length[:, 0]

    @property
    def gain(self) -> np.ndarray:
        """Relative goodput gain of the scheduled length over no speculation (0.25 = 25 %)."""
        return self.goodput_tokens_per_s / self.autoregressive_tokens_per_s - 1.0

    @property
    def stops_at(self) -> int | None:
        """The smallest planned batch size from which on speculation is off, or None."""
        on = np.flatnonzero(self.scheduled_lengths > 0)
        last_on = int(on[-1]) if on.size else -1
        if last_on == self.scheduled_lengths.size - 1:
            return None
        return int(self.batch_sizes[last_on + 1])


def monotone_lengths(goodput_by_length: np.ndarray, optimal: np.ndarray | None = None) -> np.ndarray:
    """The non-increasing draft lengths that maximise ``sum_i goodput[i, L_i] / max_L goodput[i, L]``.

    ``goodput_by_length`` is (n batch sizes, L_max + 1). When ``optimal`` (the per-row optimum) is
    already non-increasing it is returned as is; otherwise dynamic programming over rows, where
    ``best[i, L]`` is the best sum of rows i.. with ``L_i <= L``.
    """
    g = np.asarray(goodput_by_length, dtype=float)
    if optimal is not None and np.all(np.diff(optimal) <= 0):
        return np.asarray(optimal, dtype=int).copy()
    n, m = g.shape
    peak = g.max(axis=1, keepdims=True)
    value = np.where(peak > 0, g / np.where(peak > 0, peak, 1.0), 1.0)
    value = np.where(np.isfinite(value), value, -np.inf)
    # best[i, L]: the best total of rows i..n-1 when row i takes at most L (so every later row too)
    best = np.empty((n + 1, m))
    choice = np.empty((n, m), dtype=int)
    best[n] = 0.0
    for i in range(n - 1, -1, -1):  # over batch sizes (a few dozen), vectorised over lengths
        total = value[i] + best[i + 1]  # row i takes exactly L, later rows at most L
        take = np.maximum.accumulate(total)
        arg = np.zeros(m, dtype=int)
        for L in range(1, m):
            arg[L] = L if total[L] > take[L - 1] else arg[L - 1]
        best[i], choice[i] = take, arg
    lengths = np.empty(n, dtype=int)
    cap = m - 1
    for i in range(n):
        lengths[i] = choice[i, cap]
        cap = lengths[i]
    return lengths


def draw_users(profile_users: int, batch_size: int) -> np.ndarray:
    """Indices of the ``batch_size`` users drawn from a profile of ``profile_users`` (see module doc)."""
    k, b = int(profile_users), int(batch_size)
    if k < 1 or b < 1:
        raise ValueError("need at least one user and a positive batch size")
    copies, rest = divmod(b, k)
    picked = np.floor((np.arange(rest) + 0.5) * k / rest).astype(int) if rest else np.zeros(0, int)
    return np.sort(np.concatenate([np.tile(np.arange(k), copies), picked]))


def batch_system(system: System, batch_size: int) -> System:
    """The cell with ``batch_size`` users drawn from ``system`` sharing its whole band."""
    return system.take(draw_users(system.users, batch_size))


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` or ranges ``"1-8,16,32"`` -> sorted distinct batch sizes; InputError otherwise."""
    sizes: set[int] = set()
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", part)
        if match is None:
            raise InputError(f"'{part}' is not a batch size (give positive integers like 1,2,4,8 or a range "
                             "like 1-16)", key="--batch-sizes")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) else lo
        if lo < 1 or hi < lo:
            raise InputError(f"'{part}': batch sizes must be positive and ranges increasing", key="--batch-sizes")
        if hi > MAX_BATCH_SIZE:
            raise InputError(f"'{part}': batch sizes above {MAX_BATCH_SIZE} are not planned", key="--batch-sizes")
        sizes.update(range(lo, hi + 1))
        if len(sizes) > MAX_BATCH_SIZES:
            raise InputError(f"more than {MAX_BATCH_SIZES} batch sizes", key="--batch-sizes")
    if not sizes:
        raise InputError("no batch size given", key="--batch-sizes")
    return tuple(sorted(sizes))


def plan_schedule(system: System, batch_sizes=DEFAULT_BATCH_SIZES) -> Schedule:
    """The optimal homogeneous draft length for each batch size (users drawn as in the module doc)."""
    sizes = np.array(sorted({int(b) for b in batch_sizes}), dtype=int)
    if sizes.size == 0 or sizes[0] < 1:
        raise InputError("batch sizes must be positive integers", key="--batch-sizes")
    lengths, goodput, round_s, curves, drawn = [], [], [], [], []
    for b in sizes:
        index = draw_users(system.users, b)
        plan = plan_homogeneous(system.take(index))
        lengths.append(plan.draft_length)
        goodput.append(plan.goodput_tokens_per_s)
        round_s.append(plan.evaluation.round_s)
        curves.append(plan.goodput_by_length)
        drawn.append(index)
    return Schedule(
        batch_sizes=sizes,
        draft_lengths=np.array(lengths, dtype=int),
        goodput_tokens_per_s=np.array(goodput, dtype=float),
        round_s=np.array(round_s, dtype=float),
        goodput_by_length=np.array(curves, dtype=float),
        users=tuple(drawn),
    )
