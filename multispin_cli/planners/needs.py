"""The band a plan actually needs: beyond it the deadline is set by the devices, not the uplink.

For a plan with draft lengths L, round time T and goodput g, the band it needs is the least total
bandwidth on which the same lengths still reach ``(1 - NEED_TOLERANCE) g``: the round may grow to
``T' = T / (1 - tol)``, so the draft-and-upload deadline may grow to
``D' = T' - T_v(N) - t_dn``, and each drafting user needs its least bandwidth (whole blocks, at least
its minimum, in resource-block mode) to finish by D'. The sum is the cell's need; the rest of the
band is spare. Because goodput is not strictly flat in bandwidth (every extra hertz shortens an
upload a little), a tolerance is what makes "the same goodput" a definite band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System
from multispin_cli.planners.split import bandwidth_for_deadline

NEED_TOLERANCE = 1e-4  # goodput given up for the least band: 0.01 %


@dataclass(frozen=True, eq=False)
class Needs:
    """What a plan needs of the band: total and per user (Hz), and per-user blocks in RB mode."""

    needed_hz: float
    spare_hz: float
    user_hz: np.ndarray  # (K,)
    user_blocks: np.ndarray | None  # (K,) int, resource-block mode only


def plan_needs(system: System, plan: Plan, *, tolerance: float = NEED_TOLERANCE) -> Needs:
    """The least band (and each user's share of it) on which ``plan``'s lengths keep its goodput."""
    ev = plan.evaluation
    lengths = np.asarray(ev.draft_lengths)
    if not ev.feasible or not (lengths > 0).any():
        user = np.where(lengths > 0, ev.bandwidth_hz, 0.0) if not ev.feasible else np.zeros(system.users)
    else:
        slack = ev.round_s / (1.0 - tolerance) - ev.verify_s - system.server_fixed_s
        user, _ = bandwidth_for_deadline(system, lengths, max(slack, ev.draft_upload_s))
        # A plan never needs more than it holds (its own allocation already meets D <= D').
        user = np.minimum(user, np.where(lengths > 0, ev.bandwidth_hz, 0.0))
    needed = float(user.sum())
    blocks = None
    if system.resource_block_hz is not None:
        blocks = np.round(user / system.resource_block_hz).astype(int)
    return Needs(needed, max(system.bandwidth_hz - needed, 0.0), user, blocks)
