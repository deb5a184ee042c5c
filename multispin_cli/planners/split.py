"""The equal-finish-time bandwidth split (docs/model.md 3): the least deadline D the uplink can meet.

For fixed draft lengths every drafting user k needs ``W_k(D) = r_k^{-1}(S_k / (D - t_k))`` to reach
the server by D (``t_k = c_k + tau_k L_k`` on the device, ``S_k`` bits to send). Each ``W_k(D)`` is
convex and decreasing in D (an increasing convex inverse rate of a convex decreasing rate demand),
so ``f(D) = sum_k W_k(D) - W`` has exactly one root past the floor where some user would need an
infinite rate, and safeguarded Newton converges to it quickly and monotonically. Giving each user
``W_k(D*)`` makes all drafting users finish together: any other split makes one of them later.
Users whose drafts do not use the shared uplink take no bandwidth; the deadline is at least their
draft time.

That is the smooth case (a continuous band, Shannon rates). Whole resource blocks and step or
capped rates go to the exact bisection of :mod:`multispin_cli.planners.resource_blocks`.
"""

from __future__ import annotations

import numpy as np

from multispin_cli.errors import InputError
from multispin_cli.model.channel import Channel, power_limited_inverse
from multispin_cli.model.goodput import compute_seconds, round_seconds, tokens_per_round, upload_bits
from multispin_cli.model.system import System
from multispin_cli.planners.resource_blocks import least_deadline_split

_MAX_ITER = 200


class Demand:
    """Bandwidth each drafting user needs as a function of the deadline, for fixed draft lengths.

    The lengths' invariants (bits, device time, channel of every drafting user) are gathered once
    into flat arrays of the drafting users only, so each evaluation inside the root finding does
    the least work: a few vector operations and one sum per plan.
    """

    def __init__(self, system: System, lengths: np.ndarray, channel: Channel | None = None):
        self.shape = lengths.shape
        self.users = system.users
        bits = upload_bits(system, lengths)
        device = compute_seconds(system, lengths)
        self.uploads = bits > 0
        ch = system.channel if channel is None else channel
        flat = np.flatnonzero(self.uploads)
        self._fixed_count = None
        if ch.power_limited.ndim == 1:  # one channel per user, shared by every plan
            user = flat % self.users
            if ch.link.kind != "nr-cqi" and system.resource_block_hz is None:
                # Fixed-SNR entries first, power-limited ones after: the inverse rate then works on
                # two contiguous slices (see _need) instead of gathering and scattering each time.
                order = np.argsort(ch.power_limited[user], kind="stable")
                flat, user = flat[order], user[order]
                self._fixed_count = int(np.count_nonzero(~ch.power_limited[user]))
            self.pl = ch.power_limited[user]
            self.channel = ch.take(user)
        else:  # one channel per plan and user (fading: a row per round)
            user = flat % self.users
            self.pl, eff, q = (np.broadcast_to(a, self.shape).ravel()[flat] for a in
                               (ch.power_limited, ch.spectral_efficiency, ch.snr_bandwidth_hz))
            self.channel = Channel(self.pl, eff, q, ch.link)
        self.index = flat
        self.row = flat // self.users
        self.bits = bits.ravel()[flat]
        self.device = device.ravel()[flat]
        if self._fixed_count is not None:
            f = self._fixed_count
            self._efficiency = self.channel.link_efficiency[:f]
            self._q = self.channel.snr_bandwidth_hz[f:] / ch.link.gap
        self.rows = int(np.prod(self.shape[:-1], dtype=int))
        # Drafting users off the shared uplink need no bandwidth, but only from their draft time on.
        free = (np.asarray(lengths) > 0) & system.off_uplink
        self.free_index = np.flatnonzero(free)
        self.free_device = device.ravel()[self.free_index]
        # Resource-block mode: whole blocks, at least the user's minimum (see _need).
        self.block_hz = system.resource_block_hz
        if self.block_hz is not None:
            self.min_blocks = np.asarray(system.min_resource_blocks, dtype=float)[user]

    def _need(self, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Least bandwidth carrying each rate, and dW/dR: the channel's inverse rate, rounded up to
        whole blocks (at least the user's minimum) in resource-block mode. There the derivative is
        the continuous one: only the local search's first-order screen reads it."""
        if self._fixed_count is not None:
            return self._need_split(rate)
        need, slope = self.channel.bandwidth_for_rate(rate)
        if self.block_hz is None:
            return need, slope
        if self.channel.monotone:  # the least bandwidth rounded up to whole blocks
            with np.errstate(invalid="ignore"):
                blocks = np.ceil(need / self.block_hz * (1.0 - 1e-12))
        else:
            blocks = self.channel.blocks_for_rate(rate, self.block_hz)
        return np.maximum(blocks, self.min_blocks) * self.block_hz, slope

    def _need_split(self, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`Channel.bandwidth_for_rate` on entries ordered fixed-SNR first (same numbers)."""
        f = self._fixed_count
        need, slope = np.empty(rate.shape), np.empty(rate.shape)
        fixed = rate[..., :f]
        with np.errstate(divide="ignore", invalid="ignore"):
            need[..., :f] = np.where(fixed <= 0, 0.0, fixed / self._efficiency)
            slope[..., :f] = 1.0 / self._efficiency
        if f < rate.shape[-1]:
            need[..., f:], slope[..., f:] = power_limited_inverse(rate[..., f:], self._q, self.channel.link.cap)
        return need, slope

    def per_user(self, deadline) -> tuple[np.ndarray, np.ndarray]:
        """Need (Hz) and its derivative in the deadline (Hz/s) of each drafting user (flat arrays)."""
        slack = np.asarray(deadline, dtype=float).ravel()[self.row] - self.device
        ok = slack > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(ok, self.bits / slack, np.inf)
            need, d_w_d_rate = self._need(rate)
            d_need = -d_w_d_rate * rate / slack
        need = np.where(ok, need, np.inf)
        return need, np.where(np.isfinite(need), d_need, -np.inf)

    def at_deadlines(self, deadlines, *, derivative: bool = False):
        """Need (Hz) of every user of every plan for each of several deadlines: (n, *shape).

        Every plan is held to the same deadline; this is how the heterogeneous planner prices all
        draft lengths of all users at many deadlines at once. With ``derivative`` also dW/dD (Hz/s,
        at most 0; NaN where the need is finite but its slope is not), for the planner's tangent
        relaxation.
        """
        d = np.atleast_1d(np.asarray(deadlines, dtype=float))
        slack = d[:, None] - self.device[None, :]
        ok = slack > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(ok, self.bits / slack, np.inf)
            need, d_w_d_rate = self._need(rate)
        need = np.where(ok, need, np.inf)
        out = np.zeros((d.size, self.rows * self.users))
        out[:, self.index] = need
        out[:, self.free_index] = np.where(d[:, None] >= self.free_device[None, :], 0.0, np.inf)
        out = out.reshape((d.size,) + self.shape)
        if not derivative:
            return out
        slope = np.zeros_like(out).reshape(d.size, -1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            d_need = -d_w_d_rate * rate / slack
        slope[:, self.index] = np.where(np.isfinite(need) & ~np.isfinite(d_need), np.nan, d_need)
        return out, slope.reshape(out.shape)

    def totals(self, deadline) -> tuple[np.ndarray, np.ndarray]:
        """Total need and its derivative per plan, shape (rows,)."""
        need, d_need = self.per_user(deadline)
        return (np.bincount(self.row, need, minlength=self.rows),
                np.bincount(self.row, d_need, minlength=self.rows))

    def spread(self, flat_values: np.ndarray) -> np.ndarray:
        """Per-user values back in the (..., K) layout, zero for users who do not draft."""
        out = np.zeros(self.rows * self.users)
        out[self.index] = flat_values
        return out.reshape(self.shape)

    def blocks_between(self, deadline: float, earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
        """Resource-block mode: the need at ``deadline`` (like one row of :meth:`at_deadlines`)
        from the needs at an earlier and a later deadline, pricing only the users whose whole-block
        need differs between the two. A block count only falls with the deadline, so one that is
        the same at both ends is the same in between (exactly: the same rate, the same rounding)."""
        out = np.array(later, dtype=float).ravel()
        differ = np.flatnonzero(earlier.ravel()[self.index] != out[self.index])
        if differ.size:
            slack = deadline - self.device[differ]
            part = Demand.__new__(Demand)
            part._fixed_count, part.block_hz = None, self.block_hz
            part.channel, part.min_blocks = self.channel.take(differ), self.min_blocks[differ]
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = np.where(slack > 0, self.bits[differ] / slack, np.inf)
                need = part._need(rate)[0]
            out[self.index[differ]] = np.where(slack > 0, need, np.inf)
        out[self.free_index] = np.where(deadline >= self.free_device, 0.0, np.inf)
        return out.reshape(self.shape)


def least_deadline(totals, total: float, lo, hi, floor, *, settled=None, start=None) -> np.ndarray:
    """The deadline where each plan's total need falls to ``total``, from the bracket [lo, hi]:
    safeguarded Newton (geometric steps above ``floor``, else bisection, when Newton leaves the
    bracket). ``totals(x)`` gives each plan's total need and its derivative at deadlines x; plans
    in ``settled`` (and any whose deadline is infinite) keep ``lo``. ``start``: where Newton
    starts (inside the bracket; ``lo`` by default)."""
    x = np.array(lo if start is None else start, dtype=float, copy=True)
    for _ in range(_MAX_ITER):
        need, d_need = totals(x)
        lo = np.where(need > total, x, lo)
        hi = np.where(need <= total, x, hi)
        # Newton on W / demand(D) - 1: exactly linear in D for fixed-SNR users with equal device
        # times, concave in general, so the iterates approach the root from the left.
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x + (total - need) * need / (total * d_need)
        inside = (newton >= lo) & (newton <= hi) & np.isfinite(newton)
        geometric = floor + np.sqrt(np.maximum(lo - floor, 0.0) * (hi - floor))
        nxt = np.where(inside, newton, np.where(lo > floor, geometric, 0.5 * (lo + hi)))
        with np.errstate(invalid="ignore"):
            done = (
                (np.abs(need - total) <= 1e-13 * total)
                | (np.abs(nxt - x) <= 2 * np.finfo(float).eps * x)
                | ~np.isfinite(x)  # a user with zero rate: no finite deadline (goodput 0)
            )
        if settled is not None:
            done |= settled
        if done.all():
            break
        x = np.where(done, x, nxt)
    return x


def bandwidth_for_deadline(system: System, lengths, deadline_s) -> tuple[np.ndarray, np.ndarray]:
    """Bandwidth each user needs to finish drafting and uploading by ``deadline_s``, and dW/dD.

    ``lengths`` has shape (..., K) and ``deadline_s`` broadcasts against (..., 1). Users who do not
    draft need nothing; a user who cannot make the deadline at any bandwidth needs ``inf``.
    """
    lengths = np.asarray(lengths)
    deadline = np.asarray(deadline_s, dtype=float)
    batch = np.broadcast_shapes(lengths.shape[:-1], deadline.shape[:-1] if deadline.ndim else ())
    deadline = np.broadcast_to(deadline, batch + (1,))
    demand = Demand(system, np.broadcast_to(lengths, batch + lengths.shape[-1:]))
    need, d_need = demand.per_user(deadline)
    return demand.spread(need), demand.spread(d_need)


def deadline_floor(system: System, lengths, channel: Channel | None = None) -> np.ndarray:
    """The deadline no bandwidth can beat: device time plus upload at the channel's rate limit."""
    bits = upload_bits(system, lengths)
    floor = compute_seconds(system, lengths) + bits / (system.channel if channel is None else channel).max_rate_bps
    return floor.max(axis=-1, initial=0.0)


def equal_finish_split(system: System, lengths, channel: Channel | None = None, *,
                       near: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Deadline D and per-user bandwidth (Hz) that make every drafting user finish at D.

    Vectorised over plans: ``lengths`` of shape (..., K) gives D of shape (...) and bandwidth of
    shape (..., K). The bandwidth of a plan with any drafting user sums to ``system.bandwidth_hz``
    (to rounding); a plan where nobody drafts uses none and has ``D = 0``. ``channel`` replaces the
    system's: one per user, or one per plan and user (shape (..., K), e.g. a faded channel per
    round from :meth:`Channel.faded`). ``near``: a deadline close to every plan's (the LP's that
    found them), where the root search starts: a few Newton steps instead of about nine from the
    bracket's left end (the same root, to the last bit or two).
    """
    lengths = np.asarray(lengths)
    if not system.smooth:  # whole resource blocks, or step/capped rates: exact bisection instead
        if channel is not None:
            raise InputError("per-round splits on a faded channel need a continuous band with Shannon rates "
                             "(resource blocks and link adaptation are not supported with fading yet)")
        deadline, bandwidth = least_deadline_split(system, lengths)
        if system.no_uplink is None:
            return deadline, bandwidth
        free = np.where((lengths > 0) & system.off_uplink, compute_seconds(system, lengths), 0.0).max(axis=-1)
        with np.errstate(invalid="ignore"):  # an infeasible plan (inf) stays infeasible
            return np.maximum(deadline, free), bandwidth
    channel = system.channel if channel is None else channel
    batch = np.broadcast_shapes(lengths.shape[:-1], channel.power_limited.shape[:-1])
    lengths = np.broadcast_to(lengths, batch + (system.users,)).reshape(-1, system.users)
    if channel.power_limited.ndim > 1:
        channel = Channel(*(np.broadcast_to(a, batch + (system.users,)).reshape(-1, system.users) for a in
                            (channel.power_limited, channel.spectral_efficiency, channel.snr_bandwidth_hz)),
                          channel.link)
    total = system.bandwidth_hz
    demand = Demand(system, lengths, channel)
    bits = upload_bits(system, lengths)
    uploads = demand.uploads
    anyone = uploads.any(axis=-1)
    floor = deadline_floor(system, lengths, channel)

    # Bracket the root. Left: the deadline each user would meet alone with the whole band (every
    # user then needs at most W, so the demand is at least W). Right: a deadline that is surely late
    # enough, treating every user as having the spectral efficiency it would get with the whole band
    # (a lower bound on its efficiency at any share of it).
    device = np.where(uploads, compute_seconds(system, lengths), 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        alone = np.where(uploads, device + bits / channel.rate_bps(total), 0.0).max(axis=-1, initial=0.0)
        # The channel's own rate (log1p inside): a very weak power-limited user's efficiency on the
        # whole band is Q / (W ln 2), far below the rounding of 1 + Q / W, and must not become 0
        # (0 bits / 0 = NaN for a user who does not draft poisoned every plan's bracket).
        whole_band_eff = channel.rate_bps(total) / total
        load = np.where(uploads, bits / whole_band_eff, 0.0)
    hi = device.max(axis=-1, initial=0.0) + load.sum(axis=-1) / total
    lo = np.maximum(alone, floor)
    # Rounding can put the analytic right end a hair below the left one for a user whose upload
    # dwarfs everything else; the root then lies at the left end to working precision.
    hi = np.maximum(hi, lo)
    start = None if near is None else np.where(anyone, np.clip(near, lo, hi), lo)
    x = least_deadline(demand.totals, total, lo, hi, floor, settled=~anyone, start=start)
    need, d_need = demand.per_user(x)
    need, pull = demand.spread(need), demand.spread(-d_need)  # each user's |dW/dD| at the root
    with np.errstate(invalid="ignore", divide="ignore"):
        # The needs at the root sum to the band only to rounding (a user whose slack is a few
        # microseconds changes its need by a tenth of a hertz per ulp of D). Their excess is taken
        # as a step of D along the needs' tangents, in proportion to each user's |dW/dD|, so every
        # user still finishes at one time; scaling every need instead would make a user with a long
        # upload on a sliver of band finish measurably late (microseconds on a 1,000 s round).
        needed = need.sum(axis=-1, keepdims=True)
        bandwidth = need - (needed - total) * (pull / pull.sum(axis=-1, keepdims=True))
        scaled = need * np.where(anyone[..., None], total / needed, 0.0)
        stepped = np.all(np.isfinite(bandwidth) & (bandwidth >= 0) & ((bandwidth > 0) | ~uploads), axis=-1)
        bandwidth = np.where(stepped[..., None], bandwidth, scaled)
        # Uploads so small that the deadline cannot be told from the device time in floating point
        # (D - t_k rounds to 0): any split works; share the band by each user's load.
        fallback = total * load / load.sum(axis=-1, keepdims=True)
        fallback = np.where(np.isfinite(fallback), fallback, total / np.maximum(uploads.sum(-1, keepdims=True), 1))
    broken = ~np.all(np.isfinite(bandwidth), axis=-1, keepdims=True)
    bandwidth = np.where(broken, fallback, bandwidth)
    # No finite deadline (a drafting user whose rate is 0 at any share): any split is as late; an
    # equal one keeps every number finite.
    unreachable = ~np.isfinite(x)[..., None]
    bandwidth = np.where(unreachable, total / np.maximum(uploads.sum(axis=-1, keepdims=True), 1), bandwidth)
    # Users off the uplink only draft: the round waits for them too (the floor includes them).
    free = np.where((lengths > 0) & system.off_uplink, compute_seconds(system, lengths), 0.0).max(axis=-1)
    deadline = np.maximum(np.where(anyone, x, 0.0), free)
    return deadline.reshape(batch), np.where(uploads, bandwidth, 0.0).reshape(batch + (system.users,))


def split_goodput(system: System, lengths, *, near: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Goodput (tokens/s) of draft lengths under their equal-finish split, with D and the split.

    Vectorised like :func:`equal_finish_split` (``near`` as there); this is how the planners score
    candidate lengths.
    """
    deadline, bandwidth = equal_finish_split(system, lengths, near=near)
    goodput = tokens_per_round(system, lengths).sum(axis=-1) / round_seconds(system, lengths, deadline)
    return goodput, deadline, bandwidth
