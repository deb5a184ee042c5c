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

The schedule is non-increasing in B for typical cells (verification or upload cost per user grows
with B), but it is not a theorem: a large per-upload header or device overhead, amortised over a
longer draft, can make the best length grow with B. The schedule reports what the model says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from multispin_cli.errors import InputError
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.model.system import System

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
        on = np.flatnonzero(self.draft_lengths > 0)
        last_on = int(on[-1]) if on.size else -1
        if last_on == self.draft_lengths.size - 1:
            return None
        return int(self.batch_sizes[last_on + 1])


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
