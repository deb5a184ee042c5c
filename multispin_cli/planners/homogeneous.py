"""Homogeneous draft control (docs/model.md 3): one draft length for every user, bandwidth split optimally.

For each common length L the equal-finish-time split is exact (:mod:`multispin_cli.planners.split`); all
L in 0..L_max are solved at once, vectorised over lengths and users, and the best is kept (the
shortest among equals, which is the cheaper one to run).
"""

from __future__ import annotations

import numpy as np

from multispin_cli.model.goodput import evaluate
from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System
from multispin_cli.planners.resource_blocks import spend_leftover
from multispin_cli.planners.split import split_goodput

CHUNK_USERS = 400_000  # lengths x users solved at once (bounds the split's temporaries at city scale)


def goodput_by_length(system: System) -> tuple[np.ndarray, np.ndarray]:
    """Goodput (tokens/s) for each common length 0..L_max, and the matching bandwidth splits (Hz)."""
    levels = system.max_draft_length + 1
    goodput, bandwidth = np.empty(levels), np.empty((levels, system.users))
    step = max(1, CHUNK_USERS // max(system.users, 1))
    for start in range(0, levels, step):  # each length's split is solved on its own: same numbers
        part = slice(start, min(levels, start + step))
        lengths = np.repeat(np.arange(part.start, part.stop)[:, None], system.users, axis=1)
        goodput[part], _, bandwidth[part] = split_goodput(system, lengths)
    return goodput, bandwidth


def plan_homogeneous(system: System) -> Plan:
    """The best common draft length and its equal-finish-time bandwidth split."""
    goodput, bandwidth = goodput_by_length(system)
    # A length whose split failed numerically (NaN) must never win: argmax would pick it.
    best = int(np.argmax(np.where(np.isnan(goodput), -np.inf, goodput)))
    lengths = np.full(system.users, best, dtype=int)
    return Plan(
        name="homogeneous",
        evaluation=evaluate(system, lengths, spend_leftover(system, lengths, bandwidth[best])),
        draft_length=best,
        goodput_by_length=goodput,
    )
