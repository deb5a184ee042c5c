"""The per-round split on a faded channel when the split is not smooth: whole resource blocks, or a
rate that steps (CQI) or is capped, with a channel per round.

The same exact method as the static planners' :func:`resource_blocks.least_deadline_split`, run
for many rounds at once, each round on its own channel (the CSI gains of that round):

* user k finishing by D needs ``n_k(D) = max(m_k, least n with t_k + S_k / r_k(n B) <= D)`` whole
  blocks on the round's channel (:meth:`Channel.blocks_for_rate`, so CQI steps included); the
  test ``sum_k n_k(D) <= N`` is monotone in D, a bisection vectorised over rounds and users
  brackets the least D, and the deadline is snapped to the true finish time of the last user on
  those counts: the least deadline any allocation of whole blocks meets on that channel;
* the blocks left over go, one at a time, to the drafting user whose own finish time falls most
  (never raising anyone's, so never the deadline): on stale CSI they shorten the true round;
* on a continuous band with step or capped rates the bisection runs on the least bandwidth
  itself, and where more band never slows a user the whole band is handed out in proportion.

A round whose drafting users' minimum blocks exceed the band cannot run: :func:`admit` drops the
users with the weakest CSI (relative to their mean) until the minima fit, which is what a
scheduler does when it has fewer grants than requests.
"""

from __future__ import annotations

import numpy as np

from multispin_cli.model.channel import Channel
from multispin_cli.model.goodput import compute_seconds
from multispin_cli.model.system import System
from multispin_cli.planners.resource_blocks import _Users

_BISECTIONS = 200


def faded_least_deadline_split(system: System, lengths, channel: Channel) -> tuple[np.ndarray, np.ndarray]:
    """Least deadline (rounds,) and its allocation (rounds, K) in Hz, each round on its own channel.

    ``lengths`` (..., K) and ``channel`` (per round and user, e.g. :meth:`Channel.faded` of the CSI
    gains) broadcast together. A round that cannot fit gets an infinite deadline and no bandwidth
    (see :func:`admit`).
    """
    lengths = np.asarray(lengths)
    batch = np.broadcast_shapes(lengths.shape[:-1], channel.power_limited.shape[:-1])
    lengths = np.broadcast_to(lengths, batch + (system.users,)).reshape(-1, system.users)
    users = _Users(system, lengths, _flat_channel(channel, batch, system.users))
    total = system.bandwidth_hz
    anyone = users.total(np.ones(users.row.size)) > 0
    if users.block_hz is not None:
        start = users.min_blocks * users.block_hz
        fits = users.total(start) <= total * (1 + 1e-12)
    else:
        share = total / np.maximum(users.total(np.ones(users.row.size)), 1)[users.row]
        with np.errstate(divide="ignore"):
            start = np.where(users.channel.best_rate_bps(share) > 0, share, np.inf)
        fits = np.ones(users.plans, bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        start = np.where(np.isfinite(start), start, total)
        best = users.channel.rate_bps(start) if users.block_hz is not None else users.channel.best_rate_bps(start)
        hi = users.latest(np.where(best > 0, users.device + users.bits / best, np.inf))
        lo = np.minimum(users.latest(users.device + users.bits / users.channel.max_rate_bps), hi)
    ok = anyone & fits & np.isfinite(hi)

    def fits_by(deadline):
        return users.total(users.need(deadline)) <= total * (1 + 1e-12)

    def bisect(lo, hi, open_, rel):
        for _ in range(_BISECTIONS):
            with np.errstate(invalid="ignore"):
                open_ = open_ & (hi - lo > rel * hi)
                if not open_.any():
                    break
                mid = np.where(open_, lo + 0.5 * (hi - lo), hi)
            feasible = fits_by(mid)
            hi = np.where(open_ & feasible, mid, hi)
            lo = np.where(open_ & ~feasible, mid, lo)
        return lo, hi

    exact = 4 * np.finfo(float).eps
    if users.block_hz is None:
        lo, hi = bisect(lo, hi, ok, exact)
    else:
        # Feasibility changes only at candidate finish times: a coarse bracket, then the candidate
        # it points at; bisect on to the last ulps only where something just below it still fits.
        lo, hi = bisect(lo, hi, ok, 1e-9)
        snapped = np.minimum(users.latest(users.finish(users.need(hi))), hi)
        below = snapped * (1 - 1e-12)
        sooner = ok & (below > lo) & fits_by(np.where(ok, below, hi))
        hi = np.where(ok & ~sooner, snapped, hi)
        if sooner.any():
            _, hi2 = bisect(lo, np.where(sooner, below, hi), sooner, exact)
            hi = np.where(sooner, hi2, hi)
    need = users.need(hi)
    if users.block_hz is None and users.channel.monotone:
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            scale = np.where(anyone, total / np.maximum(users.total(need), 1e-300), 0.0)
            need = need * np.minimum(scale, 1e300)[users.row]
    need = np.where(ok[users.row], need, 0.0)
    if users.block_hz is not None:
        need = _spend_leftover(users, need, ok, system.resource_blocks)
    bandwidth = np.zeros(lengths.size)
    bandwidth[users.flat] = need
    deadline = np.where(ok, users.latest(users.finish(need)), np.where(anyone, np.inf, 0.0))
    free = np.where((lengths > 0) & system.off_uplink, compute_seconds(system, lengths), 0.0).max(axis=-1)
    with np.errstate(invalid="ignore"):
        deadline = np.maximum(deadline, free)
    return deadline.reshape(batch), bandwidth.reshape(batch + (system.users,))


def _flat_channel(channel: Channel, batch: tuple, users: int) -> Channel:
    shape = batch + (users,)
    return Channel(*(np.broadcast_to(a, shape).reshape(-1, users) for a in
                     (channel.power_limited, channel.spectral_efficiency, channel.snr_bandwidth_hz)), channel.link)


def _spend_leftover(users: _Users, need: np.ndarray, ok: np.ndarray, blocks_total: int) -> np.ndarray:
    """Free blocks, one per step and round, to the drafting user whose finish time falls most."""
    block = users.block_hz
    blocks = np.round(need / block)
    left = np.where(ok, blocks_total - users.total(blocks), 0).astype(int)
    if users.row.size == 0:
        return need
    finish = users.finish(blocks * block)
    for _ in range(int(left.max(initial=0))):
        active = left[users.row] > 0
        if not active.any():
            break
        after = users.finish((blocks + 1) * block)
        with np.errstate(invalid="ignore"):
            gain = np.where(active, finish - after, -np.inf)
        gain = np.nan_to_num(gain, nan=-np.inf)
        best = np.full(users.plans, -np.inf)
        np.maximum.at(best, users.row, gain)
        # the first user of each round whose gain is its round's best, and positive
        candidate = (gain == best[users.row]) & (gain > 0)
        first = np.full(users.plans, users.row.size)
        np.minimum.at(first, users.row[candidate], np.flatnonzero(candidate))
        give = first[first < users.row.size]
        if give.size == 0:
            break
        blocks[give] += 1
        finish[give] = after[give]
        left[users.row[give]] -= 1
        left = np.where(np.isin(np.arange(users.plans), users.row[give]), left, 0)  # rows with no gain stop
    return blocks * block


def admit(system: System, lengths: np.ndarray, csi_gain: np.ndarray) -> np.ndarray:
    """Lengths of each round with users dropped (L = 0) until the drafting users' minimum blocks fit
    the band: the weakest CSI gains first. Unchanged outside resource-block mode."""
    if system.resource_block_hz is None:
        return lengths
    minimum = np.asarray(system.min_resource_blocks, dtype=float)
    on_uplink = (lengths > 0) & ~system.off_uplink
    held = np.where(on_uplink, minimum, 0.0)
    n = system.resource_blocks
    over = held.sum(axis=-1) > n * (1 + 1e-12)
    if not over.any():
        return lengths
    rows = np.flatnonzero(over)
    order = np.argsort(-np.where(on_uplink[rows], csi_gain[rows], -np.inf), axis=-1, kind="stable")
    ranked = np.take_along_axis(held[rows], order, axis=-1)
    keep_ranked = np.cumsum(ranked, axis=-1) <= n * (1 + 1e-12)
    keep = np.empty_like(keep_ranked)
    np.put_along_axis(keep, order, keep_ranked, axis=-1)
    out = lengths.copy()
    out[rows] = np.where(keep | ~on_uplink[rows], lengths[rows], 0)
    return out
