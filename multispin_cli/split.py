"""The equal-finish-time bandwidth split (MODEL.md 3): the least deadline D the uplink can meet.

For fixed draft lengths every drafting user k needs ``W_k(D) = r_k^{-1}(S_k / (D - t_k))`` to reach
the server by D (``t_k = c_k + tau_k L_k`` on the device, ``S_k`` bits to send). Each ``W_k(D)`` is
convex and decreasing in D (an increasing convex inverse rate of a convex decreasing rate demand),
so ``f(D) = sum_k W_k(D) - W`` has exactly one root past the floor where some user would need an
infinite rate, and safeguarded Newton converges to it quickly and monotonically. Giving each user
``W_k(D*)`` makes all drafting users finish together: any other split makes one of them later.
"""

from __future__ import annotations

import numpy as np

from multispin_cli.goodput import compute_seconds, round_seconds, tokens_per_round, upload_bits
from multispin_cli.system import System

_MAX_ITER = 200


def bandwidth_for_deadline(system: System, lengths, deadline_s) -> tuple[np.ndarray, np.ndarray]:
    """Bandwidth each user needs to finish drafting and uploading by ``deadline_s``, and dW/dD.

    ``lengths`` has shape (..., K) and ``deadline_s`` broadcasts against (..., 1). Users who do not
    draft need nothing; a user who cannot make the deadline at any bandwidth needs ``inf``.
    """
    bits = upload_bits(system, lengths)
    slack = np.asarray(deadline_s, dtype=float) - compute_seconds(system, lengths)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(slack > 0, bits / slack, np.inf)
    rate = np.where(bits > 0, rate, 0.0)
    need, d_need_d_rate = system.channel.bandwidth_for_rate(rate)
    with np.errstate(invalid="ignore"):
        d_need = np.where(bits > 0, -d_need_d_rate * rate / np.where(slack > 0, slack, np.inf), 0.0)
    need = np.where(bits > 0, need, 0.0)
    return need, np.where(np.isfinite(need), d_need, -np.inf)


def deadline_floor(system: System, lengths) -> np.ndarray:
    """The deadline no bandwidth can beat: device time plus upload at the channel's rate limit."""
    bits = upload_bits(system, lengths)
    floor = compute_seconds(system, lengths) + bits / system.channel.max_rate_bps
    return floor.max(axis=-1, initial=0.0)


def equal_finish_split(system: System, lengths) -> tuple[np.ndarray, np.ndarray]:
    """Deadline D and per-user bandwidth (Hz) that make every drafting user finish at D.

    Vectorised over plans: ``lengths`` of shape (..., K) gives D of shape (...) and bandwidth of
    shape (..., K). The bandwidth of a plan with any drafting user sums to ``system.bandwidth_hz``
    (to rounding); a plan where nobody drafts uses none and has ``D = 0``.
    """
    lengths = np.asarray(lengths)
    total = system.bandwidth_hz
    bits = upload_bits(system, lengths)
    uploads = bits > 0
    anyone = uploads.any(axis=-1)
    floor = deadline_floor(system, lengths)

    # Bracket the root. Left: the deadline each user would meet alone with the whole band (every
    # user then needs at most W, so the demand is at least W). Right: a deadline that is surely late
    # enough, treating every user as having the spectral efficiency it would get with the whole band
    # (a lower bound on its efficiency at any share of it).
    channel = system.channel
    device = np.where(uploads, compute_seconds(system, lengths), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        alone = np.where(uploads, device + bits / channel.rate_bps(total), 0.0).max(axis=-1, initial=0.0)
        whole_band_eff = np.where(
            channel.power_limited, np.log2(1.0 + channel.snr_bandwidth_hz / total), channel.spectral_efficiency
        )
    hi = device.max(axis=-1, initial=0.0) + (bits / whole_band_eff).sum(axis=-1) / total
    lo = np.maximum(alone, floor)
    x = lo.copy()
    for _ in range(_MAX_ITER):
        need, d_need = bandwidth_for_deadline(system, lengths, x[..., None])
        demand = need.sum(axis=-1)
        lo = np.where(demand > total, x, lo)
        hi = np.where(demand <= total, x, hi)
        # Newton on W / demand(D) - 1: exactly linear in D for fixed-SNR users with equal device
        # times, concave in general, so the iterates approach the root from the left.
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x + (total - demand) * demand / (total * d_need.sum(axis=-1))
        inside = (newton >= lo) & (newton <= hi) & np.isfinite(newton)
        geometric = floor + np.sqrt(np.maximum(lo - floor, 0.0) * (hi - floor))
        nxt = np.where(inside, newton, np.where(lo > floor, geometric, 0.5 * (lo + hi)))
        done = (
            (np.abs(demand - total) <= 1e-13 * total)
            | (np.abs(nxt - x) <= 2 * np.finfo(float).eps * x)
            | ~anyone
        )
        if done.all():
            break
        x = np.where(done, x, nxt)
    need, _ = bandwidth_for_deadline(system, lengths, x[..., None])
    with np.errstate(invalid="ignore", divide="ignore"):
        bandwidth = need * np.where(anyone, total / need.sum(axis=-1), 0.0)[..., None]
        # Uploads so small that the deadline cannot be told from the device time in floating point
        # (D - t_k rounds to 0): any split works; share the band by each user's load.
        load = np.where(uploads, bits / whole_band_eff, 0.0)
        fallback = total * load / load.sum(axis=-1, keepdims=True)
    broken = ~np.all(np.isfinite(bandwidth), axis=-1, keepdims=True)
    bandwidth = np.where(broken, fallback, bandwidth)
    return np.where(anyone, x, 0.0), np.where(uploads, bandwidth, 0.0)


def split_goodput(system: System, lengths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Goodput (tokens/s) of draft lengths under their equal-finish split, with D and the split.

    Vectorised like :func:`equal_finish_split`; this is how the planners score candidate lengths.
    """
    deadline, bandwidth = equal_finish_split(system, lengths)
    goodput = tokens_per_round(system, lengths).sum(axis=-1) / round_seconds(system, lengths, deadline)
    return goodput, deadline, bandwidth
