"""Homogeneous draft control (docs/model.md 3): one draft length for every user, bandwidth split optimally.

For each common length L the equal-finish-time split is exact (:mod:`multispin_cli.planners.split`); all
L in 0..L_max are solved at once, vectorised over lengths and users, and the best is kept (the
shortest among equals, which is the cheaper one to run).

On a continuous band with Shannon rates (the smooth case) the least deadline of every length is
found by :func:`common_length_deadlines`, which knows that every user sends the same bits: the
same safeguarded Newton iteration as :func:`~multispin_cli.planners.split.equal_finish_split`,
on (lengths x users) blocks, with the power-limited inverse rate warm-started from the previous
iterate. Only the best length's split is then computed, by the general split itself, so the plan
is the one that split gives.
"""

from __future__ import annotations

import numpy as np

from multispin_cli.model.acceptance import expected_tokens
from multispin_cli.model.channel import LN2, Channel, log_snr_for_rate_ratio
from multispin_cli.model.goodput import evaluate
from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System
from multispin_cli.planners.resource_blocks import spend_leftover
from multispin_cli.planners.split import least_deadline, split_goodput

CHUNK_USERS = 400_000  # lengths x users solved at once (bounds the split's temporaries at city scale)
_BLOCK = 200_000  # lengths x users of one block of the common-length solve (a few MB per temporary)


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
    goodput, bandwidth = _goodput_by_length(system)
    best = _best(goodput)
    lengths = np.full(system.users, best, dtype=int)
    if bandwidth is None:  # the winner's split, by the general split (the same plan as solving all)
        exact, _, split = split_goodput(system, lengths[None, :])
        goodput[best], bandwidth = exact[0], {best: split[0]}
    return Plan(
        name="homogeneous",
        evaluation=evaluate(system, lengths, spend_leftover(system, lengths, bandwidth[best])),
        draft_length=best,
        goodput_by_length=goodput,
    )


def best_common_length(system: System) -> int:
    """The draft length of :func:`plan_homogeneous`, without its split (for a caller that needs only L)."""
    return _best(_goodput_by_length(system)[0])


def _goodput_by_length(system: System) -> tuple[np.ndarray, np.ndarray | None]:
    """Goodput of every common length, with the splits where the general split had to find them."""
    deadlines = common_length_deadlines(system)
    if deadlines is None:  # resource blocks, link adaptation or a user without rate: the general split
        return goodput_by_length(system)
    return _goodput(system, deadlines), None


def alike_best_length(system: System, accept: np.ndarray, draft_s_per_token: float, draft_overhead_s: float,
                      snr_linear: float) -> int | None:
    """:func:`best_common_length` of the cell with every user replaced by one and the same user: the
    acceptance row ``accept``, these device times (s) and this fixed SNR; the band, verifier and server
    are the cell's. What the mean-user baseline plans, without K of anything.

    With K users alike the equal-finish split gives each W / K, so length L's deadline is
    ``c + tau L + K bits(L) / (eta W)`` (the root the solver finds to rounding) and its goodput K times
    one user's tokens over the round. None where that shortcut does not hold (resource blocks, a link
    model other than Shannon, users off the uplink, or numbers outside the solver's range): plan K
    copies of the user instead.
    """
    k, total = system.users, system.bandwidth_hz
    eta = float(Channel.fixed_snr(np.array([snr_linear]), system.channel.link).link_efficiency[0])
    if not (system.smooth and not system.off_uplink.any() and k > 0 and 0 < total < np.inf and 0 < eta < np.inf
            and np.isfinite(draft_s_per_token) and np.isfinite(draft_overhead_s)):
        return None
    levels = np.arange(system.max_draft_length + 1)
    bits = system.header_bits + system.bits_per_token * levels.astype(float)
    device = draft_overhead_s + draft_s_per_token * levels
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # 0 bits: no upload, as the solver has it
        deadline = np.where((levels > 0) & (bits > 0), device + bits * k / (eta * total), 0.0)
    if not np.all(np.isfinite(deadline)):
        return None
    tokens = k * expected_tokens(np.asarray(accept, dtype=float)[None, :])[0]
    verify_tokens = k * (levels + 1.0)
    return _best(tokens / (deadline + system.verify(verify_tokens) + system.server_fixed_s))


def _best(goodput: np.ndarray) -> int:
    # A length whose split failed numerically (NaN) must never win: argmax would pick it.
    return int(np.argmax(np.where(np.isnan(goodput), -np.inf, goodput)))


def _goodput(system: System, deadlines: np.ndarray) -> np.ndarray:
    """Goodput of every common length given its deadline (the formula of model.goodput, per length)."""
    levels = np.arange(system.max_draft_length + 1)
    table = system.tokens_per_round
    tokens = np.array([np.ascontiguousarray(table[:, level]).sum() for level in levels])  # summed as one plan's row
    verify_tokens = system.users * (levels + 1.0)  # ragged and padded agree when every L is the same
    return tokens / (deadlines + system.verify(verify_tokens) + system.server_fixed_s)


def common_length_deadlines(system: System) -> np.ndarray | None:
    """Least deadline D (s) of the equal-finish split for each common length 0..L_max, shape (L_max + 1,).

    None where this fast path does not apply (resource blocks, a link model other than Shannon, or an
    uploading user with no rate or non-finite parameters); :func:`goodput_by_length` then solves it.
    Each D agrees with :func:`~multispin_cli.planners.split.equal_finish_split`'s to rounding.
    """
    if not system.smooth or system.channel.power_limited.ndim != 1:
        return None
    ch, up = system.channel, ~system.off_uplink
    pl, fixed = ch.power_limited & up, ~ch.power_limited & up
    eta, q = ch.link_efficiency[fixed], ch.snr_bandwidth_hz[pl]
    tau, over = system.draft_s_per_token, system.draft_overhead_s
    total = system.bandwidth_hz
    if not (np.all(eta > 0) and np.all(np.isfinite(eta)) and np.all(q > 0) and np.all(np.isfinite(q))
            and np.all(np.isfinite(tau)) and np.all(np.isfinite(over)) and 0 < total < np.inf):
        return None
    levels = np.arange(system.max_draft_length + 1)
    bits = system.header_bits + system.bits_per_token * levels.astype(float)
    x = np.zeros(levels.size)
    off = system.off_uplink
    # Every drafting user's device time bounds the deadline from below, on the uplink or not.
    free = (over[off][None, :] + tau[off][None, :] * levels[:, None].astype(float)).max(axis=-1, initial=0.0)
    cell = _Cell(system, fixed, pl)
    if not (np.all(np.isfinite(cell.alone_p)) and np.all(np.isfinite(cell.alone_f)) and np.isfinite(cell.load)):
        return None  # a user too weak for the whole band to carry a bit in finite time, to rounding
    solve = levels[(levels > 0) & (bits > 0)] if up.any() else levels[:0]
    rows = max(1, _BLOCK // max(int(up.sum()), 1))
    for start in range(0, solve.size, rows):
        part = solve[start:start + rows]
        x[part] = _Block(cell, part, bits[part], free[part]).solve()
    # Users off the shared uplink only draft: the round waits for them too.
    return np.maximum(x, np.where(levels > 0, free, 0.0)) if off.any() else x


class _Cell:
    """What the common-length split needs of each uploading user, fixed-SNR (``_f``) and
    power-limited (``_p``) users apart, gathered once for every block of lengths."""

    def __init__(self, system: System, fixed: np.ndarray, pl: np.ndarray):
        ch, total = system.channel, system.bandwidth_hz
        tau, over = system.draft_s_per_token, system.draft_overhead_s
        self.total = total
        self.over_f, self.tau_f, self.over_p, self.tau_p = over[fixed], tau[fixed], over[pl], tau[pl]
        eta, q = ch.link_efficiency[fixed], ch.snr_bandwidth_hz[pl]
        self.inv_eta, self.q, self.ln2_q = 1.0 / eta, q, LN2 / q
        # Seconds per bit with the whole band: the bracket of equal_finish_split (each user alone with
        # the whole band on the left; on the right, every user at the efficiency the whole band gives).
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            eff_p = np.log1p(q / total) / LN2
            self.alone_f, self.alone_p = 1.0 / (eta * total), 1.0 / (eff_p * total)
            self.load = (1.0 / eta).sum() + (1.0 / eff_p).sum()  # bandwidth-seconds per bit, all users


class _Block:
    """The common-length split for a block of lengths: every uploading user sends ``bits[i]`` at length
    ``lengths[i]``; fixed-SNR and power-limited users are held apart as (lengths, users) arrays."""

    def __init__(self, cell: _Cell, lengths: np.ndarray, bits: np.ndarray, free: np.ndarray):
        length = lengths.astype(float)[:, None]
        column = bits[:, None]
        total = self.total = cell.total
        self.bits, self.inv_eta, self.q = bits, cell.inv_eta, cell.q
        self.device_f = cell.over_f + cell.tau_f * length  # (n, Kf)
        self.device_p = cell.over_p + cell.tau_p * length  # (n, Kp)
        self.bits_q = column * cell.ln2_q  # a = bits_q / slack: the rate over its limit Q / ln 2
        self.u = self.a = None  # the power-limited users' ln(1 + SNR) at the last deadline, and its a
        alone = np.full(bits.size, -np.inf)
        device_max = free.copy()  # the floor: every drafting user's device time, and ...
        floor = free.copy()
        for device, per_bit in ((self.device_f, cell.alone_f), (self.device_p, cell.alone_p)):
            if device.shape[1]:
                alone = np.maximum(alone, (device + column * per_bit).max(axis=-1))
                device_max = np.maximum(device_max, device.max(axis=-1))
        floor = np.maximum(floor, device_max)
        if self.device_p.shape[1]:  # ... a power-limited user's upload at its most rate, Q / ln 2
            floor = np.maximum(floor, (self.device_p + self.bits_q).max(axis=-1))
        self.floor = floor
        self.lo = np.maximum(alone, floor)
        self.hi = np.maximum(device_max + bits * cell.load / total, self.lo)

    def totals(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Total need (Hz) and its derivative in the deadline (Hz/s) of every length at deadlines ``x``."""
        need = np.zeros(x.size)
        d_need = np.zeros(x.size)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.device_f.shape[1]:  # need = bits / (eta (D - t)), slack >= 0 above the floor
                inv = 1.0 / (x[:, None] - self.device_f)
                need += self.bits * (inv @ self.inv_eta)
                inv *= inv
                d_need -= self.bits * (inv @ self.inv_eta)
            if self.device_p.shape[1]:
                n_p, d_p = self._power_limited(x)
                need += n_p
                d_need += d_p
        bad = ~np.isfinite(need)
        return np.where(bad, np.inf, need), np.where(bad, -np.inf, d_need)

    def _power_limited(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Total need and its derivative of the power-limited users (see totals).

        With ``u = ln(1 + x)`` the SNR x on the needed bandwidth, ``a = R ln2 / Q`` and ``ln(1 + x) = a x``:
        ``W = Q / x = bits ln2 / ((D - t) u)`` and ``dW/dD = -W (a + u) / ((D - t)(a + u - 1))``.
        """
        slack = x[:, None] - self.device_p
        a = self.bits_q / slack
        reach = a >= 1  # at (or below) the floor: no bandwidth carries the rate
        if reach.any():
            a[reach] = 0.5
        u = self._log_snr(a)
        inv = slack * u
        np.divide(1.0, inv, out=inv)  # W / (bits ln2)
        grow = self._grow  # (a + u) / (a + u - 1), from _log_snr
        grow *= inv
        grow /= slack
        need = inv.sum(axis=-1)
        d_need = grow.sum(axis=-1)
        if reach.any():
            need = np.where(reach.any(axis=-1), np.inf, need)
        scale = self.bits * LN2
        return need * scale, -(d_need * scale)

    def _log_snr(self, a: np.ndarray) -> np.ndarray:
        """``ln(1 + x)`` with ``ln(1 + x) = a x``: from the last deadline's root by its tangent in a and
        a Newton step (a small change of the deadline moves every root a little), a second step where
        the first moved it by more than 1e-9, in full (cold) where that has not converged either.

        Also keeps ``(a + u) / (a + u - 1)`` (for the derivative) and the next tangent's slope.
        """
        if self.u is None:
            u = log_snr_for_rate_ratio(a)
        else:
            u = a - self.a
            u *= self.du_da
            u += self.u
            u, far = _newton(u, a)
            if far.any():
                index = np.flatnonzero(far)
                v, far = _newton(u.ravel()[index], a.ravel()[index])
                if far.any():
                    v[far] = log_snr_for_rate_ratio(a.ravel()[index[far]])
                u.ravel()[index] = v
        bend = a + u
        grow = bend / (bend - 1.0)
        self.du_da = grow / a
        self.du_da *= u
        self.du_da /= -bend  # du/da = -(u / a) / (a + u - 1) at a root
        self._grow = grow
        self.u, self.a = u, a
        return u

    def solve(self) -> np.ndarray:
        """The least deadline of every length (the safeguarded Newton of equal_finish_split)."""
        return least_deadline(self.totals, self.total, self.lo, self.hi, self.floor)


def _newton(u: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Newton step on ``a (e^u - 1) - u = 0``, and where it moved u by more than 1e-9 of it (or
    left a non-positive or non-finite u): there it is not yet converged to full precision."""
    grown = np.expm1(u)
    step = a * grown
    step -= u
    grown += 1.0
    grown *= a
    grown -= 1.0
    step /= grown
    u = u - step
    np.abs(step, out=step)
    return u, ~(step <= 1e-9 * u)
