"""The least deadline for fixed draft lengths when the split is not smooth: whole resource blocks,
or a rate that steps (CQI) or is capped.

**Whole blocks.** With N blocks of width B, user k finishing by D needs
``n_k(D) = max(m_k, least n with t_k + S_k / r_k(n B) <= D)`` blocks (``m_k`` its minimum), a
closed form through the channel's inverse rate (:meth:`Channel.blocks_for_rate`). ``n_k(D)`` falls
with D, so the plan fits by D exactly when ``sum_k n_k(D) <= N``: a monotone test. Bisection on D,
vectorised over plans and users, brackets the least such D to a few ulps; the deadline reported is
then the true finish time of the last user on those counts, ``max_k t_k + S_k / r_k(n_k B)``: one of
the finite candidate finish times, and no allocation of whole blocks finishes earlier.

**Leftover blocks** (``N - sum n_k``) cannot lower the deadline (it is the least). They go, one at
a time in effect, to the users whose own finish time falls most from one more block
(:func:`spend_leftover`): the top marginal gains over all users at once, never raising anyone's
finish time, so never the deadline.

**Step or capped rates on a continuous band** use the same bisection on the continuous least
bandwidth (:meth:`Channel.bandwidth_for_rate`): the demand can jump where a CQI level is lost, so
Newton's method of :mod:`multispin_cli.planners.split` does not apply, but the test stays monotone.
"""

from __future__ import annotations

import numpy as np

from multispin_cli.model.channel import Channel
from multispin_cli.model.goodput import compute_seconds, upload_bits
from multispin_cli.model.system import System

_BISECTIONS = 200  # far more than enough: each halves the bracket, stopped at a few ulps


class _Users:
    """The drafting users of a batch of plans, flattened (like :class:`split.Demand`); ``channel``
    (shape (plans, K), e.g. one faded channel per round) replaces the system's per-user one."""

    def __init__(self, system: System, lengths: np.ndarray, channel: Channel | None = None):
        k = system.users
        self.plans = lengths.shape[0]
        bits = upload_bits(system, lengths)
        device = compute_seconds(system, lengths)
        flat = np.flatnonzero(bits > 0)
        self.flat, self.row, self.user = flat, flat // k, flat % k
        self.bits, self.device = bits.ravel()[flat], device.ravel()[flat]
        if channel is None:
            self.channel = system.channel.take(self.user)
        else:
            self.channel = Channel(*(np.broadcast_to(a, lengths.shape).ravel()[flat] for a in
                                     (channel.power_limited, channel.spectral_efficiency, channel.snr_bandwidth_hz)),
                                   channel.link)
        self.block_hz = system.resource_block_hz
        if self.block_hz is not None:
            self.min_blocks = np.asarray(system.min_resource_blocks, dtype=float)[self.user]

    def need(self, deadline: np.ndarray) -> np.ndarray:
        """Hz each drafting user needs to finish by its plan's deadline (whole blocks in RB mode)."""
        slack = deadline[self.row] - self.device
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(slack > 0, self.bits / slack, np.inf)
        if self.block_hz is None:
            return self.channel.bandwidth_for_rate(rate)[0]
        blocks = np.maximum(self.channel.blocks_for_rate(rate, self.block_hz), self.min_blocks)
        return blocks * self.block_hz

    def subset(self, entries: np.ndarray) -> "_Users":
        """The same plans with only some of their drafting users (flat indices), in that order."""
        out = object.__new__(_Users)
        out.plans, out.block_hz = self.plans, self.block_hz
        out.flat, out.row, out.user = self.flat[entries], self.row[entries], self.user[entries]
        out.bits, out.device, out.channel = self.bits[entries], self.device[entries], self.channel.take(entries)
        if self.block_hz is not None:
            out.min_blocks = self.min_blocks[entries]
        return out

    def finish(self, bandwidth: np.ndarray) -> np.ndarray:
        """Finish time of each drafting user on the given bandwidth."""
        with np.errstate(divide="ignore", invalid="ignore"):
            upload = self.bits / self.channel.rate_bps(bandwidth)
        return self.device + np.where(np.isnan(upload), np.inf, upload)

    def total(self, per_user: np.ndarray) -> np.ndarray:
        return np.bincount(self.row, per_user, minlength=self.plans)

    def latest(self, per_user: np.ndarray) -> np.ndarray:
        out = np.zeros(self.plans)
        np.maximum.at(out, self.row, per_user)
        return out


_LIST_USERS = 64  # moving users (all plans) up to which their finish times are listed ...
_LIST_SPAN = 64  # ... when none has more than this many inside its plan's bracket


def _listed_least(part: _Users, span: np.ndarray, blocks_hi: np.ndarray, spare: np.ndarray, rows: np.ndarray):
    """Each listed plan's least deadline from its moving users' finish times inside the bracket.

    User k holds ``n_k(hi)`` blocks at the bracket's end and one more below each of its finish
    times ``t_k + S_k / r_k(n B)`` for ``n_k(hi) <= n < n_k(lo)`` (a running minimum over n, where
    CQI steps make the rate dip); with ``r`` blocks to spare at hi, the least deadline is the
    (r + 1)-th largest of those times in the plan. NaN where a plan lists too few.
    """
    choice = np.full(part.plans, np.nan)
    pick = rows[part.row] & (span > 0)
    idx = np.flatnonzero(pick)
    if idx.size == 0:
        return choice
    width = int(span[idx].max())
    j = np.arange(width)
    bandwidth = (blocks_hi[idx][:, None] + j[None, :]) * part.block_hz
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = part.channel.take(idx).rate_bps(bandwidth.T).T  # the channel broadcasts on the right
        upload = part.bits[idx][:, None] / rate
    finish = part.device[idx][:, None] + np.where(np.isnan(upload), np.inf, upload)
    finish = np.minimum.accumulate(finish, axis=1)
    finish = np.where(j[None, :] < span[idx][:, None], finish, -np.inf).ravel()
    owner = np.repeat(part.row[idx], width)
    order = np.lexsort((-finish, owner))
    first = np.searchsorted(owner[order], np.arange(part.plans))
    listed = np.bincount(owner[finish > -np.inf], minlength=part.plans)
    with np.errstate(invalid="ignore"):
        good = np.flatnonzero(rows & (spare >= 0) & (listed >= spare + 1))
    choice[good] = finish[order[first[good] + spare[good].astype(np.int64)]]
    return choice


def least_deadline_split(system: System, lengths) -> tuple[np.ndarray, np.ndarray]:
    """Least deadline and its allocation (Hz) for each plan's lengths; ``(...)`` and ``(..., K)``.

    Exact for whole blocks (see the module doc); on a continuous band the bisection stops within a
    few ulps of the least deadline. A plan that cannot fit (a user no bandwidth lets upload, or the
    minimum blocks of its drafting users exceed N) gets an infinite deadline and no bandwidth.
    """
    lengths = np.asarray(lengths)
    batch = lengths.shape[:-1]
    lengths = lengths.reshape(-1, system.users)
    users = _Users(system, lengths)
    total = system.bandwidth_hz
    drafting = users.total(np.ones(users.row.size))
    anyone = drafting > 0
    # Right end: a deadline surely met. Blocks: everyone on its minimum (fits when the minima do).
    # Continuous: everyone on an equal share (the most rate each reaches with at most that share).
    if users.block_hz is not None:
        start = users.min_blocks * users.block_hz
        fits = users.total(start) <= total * (1 + 1e-12)
    else:
        share = total / np.maximum(drafting, 1)[users.row]
        with np.errstate(divide="ignore"):
            start = np.where(users.channel.best_rate_bps(share) > 0, share, np.inf)
        fits = np.ones(users.plans, bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        start = np.where(np.isfinite(start), start, total)
        # In block mode a user holds exactly its minimum; on a continuous band it may use less.
        best = users.channel.rate_bps(start) if users.block_hz is not None else users.channel.best_rate_bps(start)
        hi_user = users.device + users.bits / best
    hi = users.latest(np.where(best > 0, hi_user, np.inf))
    # Left end: no bandwidth lets the slowest user finish earlier than its device time plus its
    # upload at the channel's rate limit.
    with np.errstate(divide="ignore"):
        lo = users.latest(users.device + users.bits / users.channel.max_rate_bps)
    lo = np.minimum(lo, hi)
    ok = anyone & fits & np.isfinite(hi)

    def fits_by(deadline):
        return users.total(users.need(deadline)) <= total * (1 + 1e-12)

    def bisect(lo, hi, open_, rel):
        for _ in range(_BISECTIONS):
            with np.errstate(invalid="ignore"):  # a plan no split can run has lo = hi = inf
                open_ = open_ & (hi - lo > rel * hi)
                if not open_.any():
                    break
                mid = np.where(open_, lo + 0.5 * (hi - lo), hi)
            feasible = fits_by(mid)
            hi = np.where(open_ & feasible, mid, hi)
            lo = np.where(open_ & ~feasible, mid, lo)
        return lo, hi

    def bisect_blocks(lo, hi, open_, rel):
        # The same bisection in block mode, where a user's count falls with the deadline: one
        # whose count is the same at both ends of its plan's bracket keeps it inside, so only the
        # others (after a few halvings, a handful) are priced at each midpoint. Needs are whole
        # multiples of the block's hertz, so the sums are exact in any order.
        need_lo, need_hi = users.need(lo), users.need(hi)
        entries = np.arange(users.row.size)
        part, fixed = users, np.zeros(users.plans)
        tried = np.zeros(users.plans, dtype=bool)
        for _ in range(_BISECTIONS):
            with np.errstate(invalid="ignore"):
                open_ = open_ & (hi - lo > rel * hi)
                if not open_.any():
                    break
            moving = open_[part.row] & (need_lo[entries] != need_hi[entries])
            if 2 * np.count_nonzero(moving) <= entries.size:  # restrict to the users still moving
                entries = entries[moving]
                part = users.subset(entries)
                fixed = users.total(need_hi) - part.total(need_hi[entries])
            if entries.size <= _LIST_USERS and not tried[open_].all():
                # Few users move: list their finish times inside the bracket and select the least
                # deadline (:func:`_listed_least`); a choice that fits ends the plan's bisection
                # (the caller checks that nothing just below it fits).
                with np.errstate(invalid="ignore"):
                    span = np.where(open_[part.row], (need_lo[entries] - need_hi[entries]) / users.block_hz, 0.0)
                    listable = open_ & ~tried & (part.latest(np.where(np.isfinite(span), span, np.inf)) <= _LIST_SPAN)
                if listable.any():
                    tried |= listable
                    spare = np.round((total - fixed - part.total(need_hi[entries])) / users.block_hz)
                    choice = _listed_least(part, span, need_hi[entries] / users.block_hz, spare, listable)
                    with np.errstate(invalid="ignore"):
                        chosen = listable & (choice > lo) & (choice <= hi)
                    if chosen.any():
                        at_choice = part.need(np.where(chosen, choice, hi))
                        chosen &= fixed + part.total(at_choice) <= total * (1 + 1e-12)
                        hi = np.where(chosen, choice, hi)
                        need_hi[entries] = np.where(chosen[part.row], at_choice, need_hi[entries])
                        open_ = open_ & ~chosen
                        if not open_.any():
                            break
            with np.errstate(invalid="ignore"):
                mid = np.where(open_, lo + 0.5 * (hi - lo), hi)
            need = part.need(mid)
            feasible = fixed + part.total(need) <= total * (1 + 1e-12)
            up, down = open_ & feasible, open_ & ~feasible
            hi, lo = np.where(up, mid, hi), np.where(down, mid, lo)
            need_hi[entries] = np.where(up[part.row], need, need_hi[entries])
            need_lo[entries] = np.where(down[part.row], need, need_lo[entries])
        return lo, hi, need_hi

    exact = 4 * np.finfo(float).eps
    if users.block_hz is None:
        lo, hi = bisect(lo, hi, ok, exact)
        need = users.need(hi)
    else:
        # Blocks: feasibility changes only at candidate finish times. A coarse bracket, then the
        # candidate it points at (the last finish time on the counts at hi); if nothing just below
        # that candidate fits, it is the least deadline, else bisect on to the last ulps.
        lo, hi, need = bisect_blocks(lo, hi, ok, 1e-9)
        snapped = np.minimum(users.latest(users.finish(need)), hi)
        below = snapped * (1 - 1e-12)
        sooner = ok & (below > lo) & fits_by(np.where(ok, below, hi))
        # Near a power-limited user's rate ceiling the inverse rate can ask one block more at
        # ``snapped`` than the counts it came from: keep the bracket's end then (it fits).
        need_snapped = users.need(np.where(ok, snapped, hi))
        snap = ok & ~sooner & (users.total(need_snapped) <= total * (1 + 1e-12))
        hi, need = np.where(snap, snapped, hi), np.where(snap[users.row], need_snapped, need)
        if sooner.any():
            _, hi2, need2 = bisect_blocks(lo, np.where(sooner, below, hi), sooner, exact)
            hi, need = np.where(sooner, hi2, hi), np.where(sooner[users.row], need2, need)
    # A deadline so late that no rate can be computed for it (a user whose rate limit is a few
    # bits per aeon): no split runs the plan.
    ok &= np.isfinite(users.total(need))
    if users.block_hz is None and system.channel.monotone:
        # More band never slows a user here: hand out the whole band in proportion, as the smooth
        # split does (its deadline can only fall).
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # inf x 0: cleared just below
            scale = np.where(anyone, total / np.maximum(users.total(need), 1e-300), 0.0)
            need = need * np.minimum(scale, 1e300)[users.row]
    need = np.where(ok[users.row], need, 0.0)
    bandwidth = np.zeros(lengths.size)
    bandwidth[users.flat] = need
    deadline = np.where(ok, users.latest(users.finish(need)), np.where(anyone, np.inf, 0.0))
    return deadline.reshape(batch), bandwidth.reshape(batch + (system.users,))


def spend_leftover(system: System, lengths, bandwidth_hz) -> np.ndarray:
    """One plan's block allocation with the blocks it leaves free handed to drafting users.

    Each free block goes where it lowers a user's own finish time most (the greedy, done at once:
    the largest marginal gains over all users, each user's gains made non-increasing so that every
    user takes a prefix); a user whose finish time would rise (possible only with CQI steps and
    power-limited users) keeps what it had. The deadline never rises. Unchanged outside
    resource-block mode.
    """
    bandwidth = np.asarray(bandwidth_hz, dtype=float)
    block = system.resource_block_hz
    if block is None:
        return bandwidth
    lengths = np.asarray(lengths)
    users = _Users(system, lengths[None, :])
    blocks = np.round(bandwidth / block)
    left = int(system.resource_blocks - blocks.sum())
    if left <= 0 or users.user.size == 0 or not np.all(np.isfinite(bandwidth)):
        return bandwidth
    own = blocks[users.user]
    extra = np.arange(left + 1)
    finish = np.stack([users.finish((own + j) * block) for j in extra], axis=1)  # (m, left + 1)
    with np.errstate(invalid="ignore"):  # inf - inf where a user cannot finish on any count
        gain = np.nan_to_num(np.minimum.accumulate(finish[:, :-1] - finish[:, 1:], axis=1), nan=-np.inf)
    order = np.argsort(-gain, axis=None, kind="stable")[:left]
    order = order[gain.ravel()[order] > 0]
    counts = np.bincount(order // left, minlength=users.user.size)
    counts = np.where(finish[np.arange(counts.size), counts] <= finish[:, 0], counts, 0)
    out = blocks.copy()
    out[users.user] += counts
    return out * block


def equal_blocks(system: System, drafting: int) -> np.ndarray:
    """An equal split of whole blocks among the users (the heterogeneity-agnostic baseline): N // K
    each, the remainder to the first users."""
    k, n = system.users, system.resource_blocks
    if drafting == 0:
        return np.zeros(k)
    each = np.full(k, n // k) + (np.arange(k) < n % k)
    return each * system.resource_block_hz


def alone_seconds(system: System, lengths) -> np.ndarray:
    """Each user's draft-and-upload time with the whole band to itself: a bound no split beats."""
    bits = upload_bits(system, lengths)
    with np.errstate(divide="ignore", invalid="ignore"):
        upload = np.where(bits > 0, bits / system.channel.best_rate_bps(system.bandwidth_hz), 0.0)
    return compute_seconds(system, lengths) + np.where(np.isnan(upload), np.inf, upload)


def latest_useful_deadline(system: System) -> float:
    """In block mode, no plan's least deadline exceeds every user drafting L_max on its minimum
    blocks (each user then needs no more than its minimum): the largest such finish time over the
    users who can upload at all."""
    lengths = np.full(system.users, system.max_draft_length)
    users = _Users(system, lengths[None, :])
    finish = users.finish(users.min_blocks * users.block_hz)
    finite = finish[np.isfinite(finish)]
    return float(finite.max()) if finite.size else 0.0
