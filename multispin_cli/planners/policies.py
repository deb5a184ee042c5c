"""Per-round control policies on a fading uplink: one implementation for `plan` and `simulate`.

A policy turns the channel state the scheduler knows this round (the CSI power gain of every
user, relative to its mean) into this round's draft lengths and bandwidth split. All functions work
on a batch of rounds at once: gains of shape (rounds, K) give lengths and bandwidth (rounds, K).

* ``static``: the plan's lengths and bandwidth every round, whatever the channel;
* ``adaptive-split``: the plan's lengths, the band re-split every round by the exact split on the
  CSI (:func:`round_split`: equal-finish on a continuous Shannon band, else the least deadline in
  whole resource blocks or on step rates);
* ``adaptive``: a per-user staircase on the CSI, then the same split. User k drafts
  ``L_k(g) = #{L : g >= threshold[k, L]}`` tokens: nothing below its skip threshold
  ``threshold[k, 1]``, longer drafts on better channels. The staircase is the rule
  "pick L maximising ``G_k(L) - gamma v L - price * W_k(L, D, g)``" (tokens minus their cost in
  round time and bandwidth at a planned deadline D), tabulated once: a scheduler applies it with a
  comparison per user and length;
* ``oracle``: knows the true gains and, every round, maximises ``sum G - gamma T`` with gamma the
  long-run goodput it achieves (iterated): for a long-run ratio this, not each round's own ratio, is
  the optimum (renewal reward with Dinkelbach's parameter). Solved per round by a Lagrangian on
  the band over a grid of deadlines (:func:`oracle_lengths`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispin_cli.model.channel import Channel
from multispin_cli.model.goodput import compute_seconds, tokens_per_round, upload_bits, verify_tokens
from multispin_cli.model.system import System
from multispin_cli.planners.faded_split import admit, faded_least_deadline_split
from multispin_cli.planners.split import equal_finish_split

POLICIES = ("static", "adaptive-split", "adaptive", "oracle")
_LOW_GAIN, _HIGH_GAIN = 1e-9, 1e9  # thresholds outside these are "always" and "never"


def round_split(system: System, lengths, channel: Channel) -> tuple[np.ndarray, np.ndarray]:
    """The per-round split of the band: deadline (rounds,) and bandwidth (rounds, K) on ``channel``.

    Every policy re-splits through this one function, exact like the static planners: the
    equal-finish Newton split on a continuous band with Shannon rates, else the least deadline in
    whole resource blocks or on step/capped rates (:mod:`multispin_cli.planners.faded_split`).
    """
    if system.smooth:
        return equal_finish_split(system, lengths, channel)
    return faded_least_deadline_split(system, lengths, channel)


def round_seconds_on(system: System, lengths, bandwidth_hz, channel: Channel) -> np.ndarray:
    """Round time of each round when the uploads see ``channel`` (the true gains), shape (rounds,)."""
    bits = upload_bits(system, lengths)
    with np.errstate(divide="ignore", invalid="ignore"):
        upload = np.where(bits > 0, bits / channel.rate_bps(bandwidth_hz), 0.0)
    upload = np.where(np.isnan(upload), np.inf, upload)
    deadline = (compute_seconds(system, lengths) + upload).max(axis=-1, initial=0.0)
    return deadline + system.verify(verify_tokens(system, lengths)) + system.server_fixed_s


def lost_uploads(system: System, lengths, bandwidth_hz, channel: Channel) -> np.ndarray:
    """The lengths with every upload that cannot go through set to 0 (outage).

    With step rates (CQI) a user whose SNR is below the lowest level carries nothing on any band:
    its draft is lost that round, it gets the server's one token, and the round does not wait for
    it (the scheduler drops what it cannot receive). On Shannon rates nothing is ever lost.
    """
    lengths = np.asarray(lengths)
    if channel.link.is_shannon:
        return lengths
    lost = (upload_bits(system, lengths) > 0) & ~(channel.rate_bps(bandwidth_hz) > 0)
    return np.where(lost, 0, lengths) if lost.any() else lengths


def settle(system: System, lengths, bandwidth_hz, csi_gain, true_gain, *, wait_factor: float = np.inf,
           draft_s=None) -> tuple[np.ndarray, np.ndarray]:
    """What a round delivers once the uploads meet the true channel: the lengths that arrive and the
    upload deadline (rounds,).

    Uploads that cannot go through at all are lost (:func:`lost_uploads`). With a finite
    ``wait_factor`` the server waits at most that many times the deadline the scheduler planned on
    its CSI: an upload still under way then is dropped (its user gets the server's one token) and
    the round's upload phase ends at that limit. On exact CSI nothing is ever late. ``draft_s``
    replaces the device times (e.g. with jitter).
    """
    csi = np.atleast_2d(np.asarray(csi_gain, dtype=float))
    true = np.atleast_2d(np.asarray(true_gain, dtype=float))
    channel = system.channel.faded(true)
    lengths = lost_uploads(system, lengths, bandwidth_hz, channel)
    bits = upload_bits(system, lengths)
    compute = compute_seconds(system, lengths)
    draft = compute if draft_s is None else np.where(lengths > 0, draft_s, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        upload = np.where(bits > 0, bits / channel.rate_bps(bandwidth_hz), 0.0)
    finish = draft + np.where(np.isnan(upload), np.inf, upload)
    if not np.isfinite(wait_factor):
        return lengths, finish.max(axis=-1, initial=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        planned_up = np.where(bits > 0, bits / system.channel.faded(csi).rate_bps(bandwidth_hz), 0.0)
    planned = (compute + np.where(np.isnan(planned_up), np.inf, planned_up)).max(axis=-1, initial=0.0)
    limit = wait_factor * planned
    late = finish > limit[:, None]
    lengths = np.where(late, 0, lengths)
    arrived = np.where(late, 0.0, finish).max(axis=-1, initial=0.0)
    deadline = np.maximum(arrived, np.where(late.any(axis=-1), limit, 0.0))
    return lengths, deadline


def reference_snr(system: System) -> np.ndarray:
    """The linear SNR a CSI gain of 1 stands for: the fixed SNR, or ``Q / W`` over the whole band."""
    return system.channel.snr_at(system.bandwidth_hz)


def verify_slope(system: System, n_tokens: float) -> float:
    """Marginal verification seconds per token near a batch of ``n_tokens`` positions."""
    n = max(float(n_tokens), 1.0)
    step = max(1.0, 0.05 * n)
    return float((system.verify(n + step) - system.verify(max(n - step, 0.0))) / (n + step - max(n - step, 0.0)))


# --------------------------------------------------------------------------- the staircase rule


@dataclass(frozen=True, eq=False)
class Staircase:
    """The adaptive rule: ``threshold[k, L - 1]`` is the least CSI gain at which user k drafts at
    least L tokens (non-decreasing in L; ``inf`` = never, 0 = always)."""

    threshold: np.ndarray  # (K, L_max)

    def lengths(self, gain) -> np.ndarray:
        """Draft lengths for CSI gains of shape (..., K)."""
        g = np.asarray(gain, dtype=float)
        return (g[..., :, None] >= self.threshold).sum(axis=-1)

    @property
    def max_lengths(self) -> np.ndarray:
        """Each user's longest draft (on the best channel)."""
        return np.isfinite(self.threshold).sum(axis=-1)

    @property
    def skip_below(self) -> np.ndarray:
        """Each user's skip threshold (gain below which it drafts nothing)."""
        if self.threshold.shape[1] == 0:
            return np.full(self.threshold.shape[0], np.inf)
        return self.threshold[:, 0]

    @classmethod
    def fixed(cls, lengths, max_length: int, skip_below=None) -> "Staircase":
        """Fixed lengths (adaptive-split), optionally with skip thresholds."""
        lengths = np.asarray(lengths, dtype=int)
        skip = np.zeros(lengths.shape) if skip_below is None else np.asarray(skip_below, dtype=float)
        upto = np.arange(1, max_length + 1)[None, :] <= lengths[:, None]
        return cls(np.where(upto, skip[:, None], np.inf))


def _values(system: System, gamma: float, slope: float) -> np.ndarray:
    """``G_k(L) - gamma v L`` for L = 0..L_max: (K, L_max + 1)."""
    lengths = np.arange(system.max_draft_length + 1)
    return system.tokens_per_round - gamma * slope * lengths[None, :]


def _needs(system: System, deadline_s, gain) -> np.ndarray:
    """Bandwidth W_k(L, D, g) for L = 0..L_max: gain (..., K), deadline broadcast to (..., 1) -> (..., K, L+1)."""
    g = np.asarray(gain, dtype=float)
    lengths = np.arange(system.max_draft_length + 1)
    bits = np.where(lengths > 0, system.header_bits + system.bits_per_token * lengths, 0.0)
    device = np.where(lengths[None, :] > 0,
                      system.draft_overhead_s[:, None] + system.draft_s_per_token[:, None] * lengths[None, :], 0.0)
    slack = np.asarray(deadline_s, dtype=float)[..., None] - device  # (..., K, L+1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(slack > 0, bits / slack, np.inf)
    shape = np.broadcast_shapes(rate.shape, g.shape + (lengths.size,))
    ch = system.channel
    column = Channel(ch.power_limited[:, None], ch.spectral_efficiency[:, None], ch.snr_bandwidth_hz[:, None])
    channel = column.faded(np.broadcast_to(g[..., None], shape))
    need, _ = channel.bandwidth_for_rate(np.broadcast_to(rate, shape))
    if system.resource_block_hz is not None:  # whole blocks, at least the user's minimum
        block = system.resource_block_hz
        with np.errstate(invalid="ignore"):
            blocks = np.ceil(need / block * (1.0 - 1e-12))
        if not channel.monotone:
            blocks = channel.blocks_for_rate(np.broadcast_to(rate, shape), block)
        minimum = np.asarray(system.min_resource_blocks, dtype=float)[:, None]
        need = np.maximum(blocks, minimum) * block
    need = np.where(lengths > 0, need, 0.0)
    return np.where(np.isnan(need), np.inf, need)


def _choose(values: np.ndarray, needs: np.ndarray, price) -> np.ndarray:
    """``argmax_L values - price * need`` (the shortest on ties; price > 0, so an infinite need loses)."""
    p = np.asarray(price, dtype=float)[..., None, None]
    score = needs * -p
    score += values
    return np.argmax(score, axis=-1)


def staircase(system: System, *, gamma: float, slope: float, price: float, deadline_s: float,
              iterations: int = 24) -> Staircase:
    """Tabulate the rule ``argmax_L G_k(L) - gamma slope L - price W_k(L, D, g)`` as CSI thresholds.

    The choice grows with the gain g (a better channel makes every length cheaper, longer ones the
    most), so each threshold is found by bisection on log g (24 halvings of 1e-9..1e9: each
    threshold to 3e-6 relative, 1e-5 dB).
    """
    return staircases(system, gamma=gamma, slope=slope, prices=[price], deadlines_s=[deadline_s],
                      iterations=iterations)[0]


def staircases(system: System, *, gamma: float, slope: float, prices, deadlines_s,
               iterations: int = 24) -> list[Staircase]:
    """:func:`staircase` for several (price, deadline) pairs at once (one bisection for all)."""
    users, top = system.users, system.max_draft_length
    price = np.asarray(prices, dtype=float)
    deadline = np.asarray(deadlines_s, dtype=float)[:, None, None]  # (n, 1, 1): per rule
    n = price.size
    values = _values(system, gamma, slope)  # (K, L+1)
    lo = np.full((n, users, top), np.log(_LOW_GAIN))
    hi = np.full((n, users, top), np.log(_HIGH_GAIN))
    need_len = np.arange(1, top + 1)[None, None, :]
    price_col = price[:, None]  # (n, 1) against choices (n, top, K)

    def reaches(log_g):  # (n, K, top) -> bool: at gain exp(log_g) user k drafts >= L
        g = np.exp(log_g).transpose(0, 2, 1)  # (n, top, K): one "round" per tested length
        chosen = _choose(values, _needs(system, deadline, g), price_col)  # (n, top, K)
        return chosen.transpose(0, 2, 1) >= need_len

    never = ~reaches(hi)
    always = reaches(lo)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        ok = reaches(mid)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    threshold = np.exp(hi)
    threshold = np.where(never, np.inf, np.where(always, 0.0, threshold))
    return [Staircase(np.maximum.accumulate(t, axis=1)) for t in threshold]


# --------------------------------------------------------------------------- the oracle


def oracle_lengths(system: System, gain, *, gamma: float, slope: float, deadline_s: float,
                   grid: int = 9, span: float = 8.0, bisections: int = 24) -> np.ndarray:
    """Per round, draft lengths maximising ``sum G - gamma T`` on the known gains (rounds, K).

    For a deadline D the problem is a knapsack on the band: user k's length L costs ``W_k(L, D, g)``
    hertz and is worth ``G_k(L) - gamma slope L``; a price on bandwidth (bisection until the chosen
    lengths fit the band) solves its Lagrangian relaxation, which is exact up to one user's step
    when many users share the band. D is searched on a geometric grid around ``deadline_s`` (span
    ``1/span .. span``) and refined once around the best point. The caller evaluates the chosen
    lengths with the exact split, which can only shorten D.
    """
    g = np.atleast_2d(np.asarray(gain, dtype=float))
    values = _values(system, gamma, slope)
    total = system.bandwidth_hz
    best_len = None
    factors = np.geomspace(1.0 / span, span, grid)
    centre = np.full(g.shape[0], float(deadline_s))
    for stage in range(2):
        deadlines = centre[:, None] * factors[None, :]  # (R, nD)
        needs = _needs(system, deadlines[..., None], g[:, None, :])  # (R, nD, K, L+1)
        lo = np.zeros(deadlines.shape)
        usable = np.isfinite(needs) & (needs > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(usable, (values - values[:, :1]) / needs, 0.0)
        hi = np.maximum(ratio.max(axis=(-1, -2)), 0.0) * 2.0 + 1e-30
        for _ in range(bisections):
            mid = 0.5 * (lo + hi)
            chosen = _choose(values, needs, mid)
            used = np.take_along_axis(needs, chosen[..., None], axis=-1).sum(axis=(-1, -2))
            fits = used <= total
            hi = np.where(fits, mid, hi)
            lo = np.where(fits, lo, mid)
        chosen = _choose(values, needs, hi)
        tokens = tokens_per_round(system, chosen).sum(axis=-1)
        t = deadlines * (chosen > 0).any(axis=-1) + system.verify(verify_tokens(system, chosen))
        score = tokens - gamma * t
        pick = np.argmax(score, axis=-1)
        best_len = np.take_along_axis(chosen, pick[:, None, None], axis=1)[:, 0]
        centre = np.take_along_axis(deadlines, pick[:, None], axis=1)[:, 0]
        factors = np.geomspace(span ** (-2.0 / (grid - 1)), span ** (2.0 / (grid - 1)), 5)
    return best_len


# --------------------------------------------------------------------------- running a policy


@dataclass(frozen=True, eq=False)
class Controller:
    """What a policy needs at run time: the plan's lengths and split, a staircase, oracle settings."""

    policy: str
    lengths: np.ndarray  # (K,) base lengths (static, adaptive-split)
    bandwidth_hz: np.ndarray  # (K,) static split
    rule: Staircase | None = None  # adaptive
    gamma: float = 0.0  # oracle
    slope: float = 0.0
    deadline_s: float = 0.0
    fallback: Staircase | None = None  # oracle: a deployable rule it compares against each round
    wait_factor: float = np.inf  # the server waits at most this times the round's planned deadline (stale CSI)


def decide(system: System, control: Controller, csi_gain, true_gain=None) -> tuple[np.ndarray, np.ndarray]:
    """Lengths and bandwidth (rounds, K) of each round under ``control`` from the CSI gains.

    The oracle decides on ``true_gain`` (it knows the channel of the upload itself).
    """
    csi = np.atleast_2d(np.asarray(csi_gain, dtype=float))
    rounds = csi.shape[0]
    if control.policy == "static":
        return (np.broadcast_to(control.lengths, csi.shape).copy(),
                np.broadcast_to(control.bandwidth_hz, csi.shape).copy())
    if control.policy == "adaptive-split":
        lengths = np.broadcast_to(control.lengths, csi.shape).copy()
    elif control.policy == "adaptive":
        lengths = admit(system, control.rule.lengths(csi), csi)
    elif control.policy == "oracle":
        gain = csi if true_gain is None else np.atleast_2d(np.asarray(true_gain, dtype=float))
        return _oracle_decide(system, control, gain)
    else:
        raise ValueError(f"unknown policy {control.policy!r}")
    channel = system.channel.faded(csi)
    if not channel.link.is_shannon:  # no grant for a user the CSI says cannot carry any rate
        # (power-limited users always carry some rate on a narrow enough band)
        with np.errstate(invalid="ignore"):
            lengths = np.where(channel.power_limited | (channel.link_efficiency > 0), lengths, 0)
    _, bandwidth = round_split(system, lengths, channel)
    return lengths, bandwidth.reshape(rounds, system.users)


_ORACLE_SLICE = 2_000_000  # rounds x deadlines x users x lengths held at once


def _oracle_decide(system: System, control: Controller, gain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    channel = system.channel.faded(gain)
    rows = max(1, _ORACLE_SLICE // (9 * system.users * (system.max_draft_length + 1)))
    found = [oracle_lengths(system, gain[i:i + rows], gamma=control.gamma, slope=control.slope,
                            deadline_s=control.deadline_s) for i in range(0, gain.shape[0], rows)]
    candidates = [np.concatenate(found, axis=0)]
    if control.fallback is not None:
        candidates.append(control.fallback.lengths(gain))
    best_score = None
    for lengths in candidates:
        _, bandwidth = round_split(system, lengths, channel)
        t = round_seconds_on(system, lengths, bandwidth, channel)
        score = tokens_per_round(system, lengths).sum(axis=-1) - control.gamma * t
        if best_score is None:
            best_score, best = score, (lengths, bandwidth)
        else:
            better = score > best_score
            best_score = np.where(better, score, best_score)
            best = (np.where(better[:, None], lengths, best[0]), np.where(better[:, None], bandwidth, best[1]))
    if (system.max_draft_length + 1) ** system.users <= EXHAUSTIVE_PLANS:
        return _exhaustive(system, control.gamma, gain)
    if system.users <= LOCAL_SEARCH_USERS:
        best = _local_search(system, control.gamma, gain, *best, best_score)
    return best


EXHAUSTIVE_PLANS = 256  # cells this small: the oracle tries every length vector (exact)


def _exhaustive(system, gamma, gain):
    """The exact per-round optimum by enumeration (tiny cells only)."""
    import itertools

    grid = np.array(list(itertools.product(range(system.max_draft_length + 1), repeat=system.users)))
    rows = max(1, 200_000 // grid.shape[0])
    out_l, out_w = [], []
    for i in range(0, gain.shape[0], rows):
        g = gain[i:i + rows]
        trial = np.broadcast_to(grid[None], (g.shape[0],) + grid.shape)
        channel = system.channel.faded(np.broadcast_to(g[:, None, :], trial.shape))
        _, bw = round_split(system, trial, channel)
        bw = bw.reshape(trial.shape)
        value = tokens_per_round(system, trial).sum(axis=-1) - gamma * round_seconds_on(system, trial, bw, channel)
        pick = np.argmax(value, axis=1)
        r = np.arange(g.shape[0])
        out_l.append(grid[pick])
        out_w.append(bw[r, pick])
    return np.concatenate(out_l), np.concatenate(out_w)


LOCAL_SEARCH_USERS = 16  # small cells: the oracle also tries every one-user step (exact split each)


def _local_search(system, gamma, gain, lengths, bandwidth, score, passes: int = 3):
    """Improve each round by moving one user's length up or down one step while it pays."""
    users, top = system.users, system.max_draft_length
    steps = np.concatenate([np.eye(users, dtype=int), -np.eye(users, dtype=int)])  # (2K, K)
    for _ in range(passes):
        trial = np.clip(lengths[:, None, :] + steps[None], 0, top)  # (R, 2K, K)
        channel = system.channel.faded(np.broadcast_to(gain[:, None, :], trial.shape))
        _, bw = round_split(system, trial, channel)
        bw = bw.reshape(trial.shape)
        t = round_seconds_on(system, trial, bw, channel)
        value = tokens_per_round(system, trial).sum(axis=-1) - gamma * t
        pick = np.argmax(value, axis=1)
        top_value = np.take_along_axis(value, pick[:, None], axis=1)[:, 0]
        with np.errstate(invalid="ignore"):  # -inf scores (a round no split can run) compare as NaN
            better = (top_value > score + 1e-12 * np.abs(score)) | (np.isfinite(top_value) & ~np.isfinite(score))
        if not better.any():
            break
        rows = np.arange(trial.shape[0])
        lengths = np.where(better[:, None], trial[rows, pick], lengths)
        bandwidth = np.where(better[:, None], bw[rows, pick], bandwidth)
        score = np.where(better, top_value, score)
    return lengths, bandwidth
