"""Exhaustive search over every draft-length vector: the oracle the planners are tested against.

Exponential in the number of users ((L_max + 1)^K vectors), so only for small cells; each vector
gets its exact equal-finish bandwidth split.
"""

from __future__ import annotations

import itertools

import numpy as np

from multispin_cli.model.goodput import phase_seconds, round_seconds, tokens_per_round
from multispin_cli.model.system import System
from multispin_cli.planners.split import split_goodput

MAX_VECTORS = 2_000_000


def exhaustive_best(system: System, *, homogeneous: bool = False) -> tuple[np.ndarray, float]:
    """The best lengths (and goodput) over all vectors, or over common lengths only."""
    levels = range(system.max_draft_length + 1)
    if homogeneous:
        vectors = np.repeat(np.arange(system.max_draft_length + 1)[:, None], system.users, axis=1)
    else:
        count = (system.max_draft_length + 1) ** system.users
        if count > MAX_VECTORS:
            raise ValueError(f"{count} vectors is too many for exhaustive search")
        vectors = np.array(list(itertools.product(levels, repeat=system.users)), dtype=int)
    goodput = np.concatenate(
        [split_goodput(system, vectors[i : i + 4096])[0] for i in range(0, len(vectors), 4096)]
    )
    best = int(np.argmax(goodput))
    return vectors[best], float(goodput[best])


def exhaustive_blocks_best(system: System, *, homogeneous: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Resource-block mode: the best lengths, whole-block split and goodput over every length vector
    (or common length) and every split of the N blocks (each drafting user at least its minimum).

    Independent of the planners' bisection: each (lengths, blocks) pair is scored by the round
    formula directly. ``(L_max + 1)^K (N + 1)^K`` pairs, so only for tiny cells.
    """
    k, n = system.users, system.resource_blocks
    block = system.resource_block_hz
    if homogeneous:
        vectors = np.repeat(np.arange(system.max_draft_length + 1)[:, None], k, axis=1)
    else:
        vectors = np.array(list(itertools.product(range(system.max_draft_length + 1), repeat=k)), dtype=int)
    splits = np.array([s for s in itertools.product(range(n + 1), repeat=k) if sum(s) <= n], dtype=float)
    if vectors.shape[0] * splits.shape[0] > MAX_VECTORS:
        raise ValueError("too many (lengths, blocks) pairs for exhaustive search")
    best = (vectors[0] * 0, np.zeros(k), -np.inf)
    for lengths in vectors:
        drafting = lengths > 0
        ok = np.all(np.where(drafting, splits >= system.min_resource_blocks, splits == 0), axis=1)
        if not ok.any():
            continue
        blocks = splits[ok]
        phase = phase_seconds(system, np.broadcast_to(lengths, blocks.shape), blocks * block)
        deadline = phase.max(axis=1, initial=0.0)
        goodput = tokens_per_round(system, lengths).sum() / round_seconds(system, lengths, deadline)
        i = int(np.argmax(goodput))
        if goodput[i] > best[2]:
            best = (lengths, blocks[i] * block, float(goodput[i]))
    return best
