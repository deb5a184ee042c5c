"""Exhaustive search over every draft-length vector: the oracle the planners are tested against.

Exponential in the number of users ((L_max + 1)^K vectors), so only for small cells; each vector
gets its exact equal-finish bandwidth split.
"""

from __future__ import annotations

import itertools

import numpy as np

from multispin_cli.planners.split import split_goodput
from multispin_cli.model.system import System

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
