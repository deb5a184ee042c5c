"""One round's decision at scheduler speed: the adaptive rule and the equal-finish split for a single
row of CSI, with the per-cell constants computed once and the Newton split warm-started.

:func:`multispin_cli.planners.policies.decide` handles any batch of rounds; a scheduler instead
decides one round at a time, where numpy's fixed cost per call dominates for tens of users. A
:class:`RoundScheduler` therefore holds every per-user constant (bits and device time of each
length, SNR or ``Q`` of each user, the rule's thresholds) and, per round, does only the work that
depends on the CSI:

* lengths: the staircase (a comparison per user and length), or the plan's fixed lengths;
* split (continuous band, Shannon rates): the same safeguarded Newton iteration on
  ``W / need(D) - 1`` as :func:`multispin_cli.planners.split.equal_finish_split` (concave and
  increasing in D, so from the left of the root it climbs onto it without overshoot), started from
  the previous round's deadline when that lies left of the root, else from the exact left end
  ``max_k(alone_k, floor_k)``; a start right of the root becomes the bracket's right end and one
  Newton step from it is tried. Steps that leave the bracket ``[lo, hi]`` fall back to bisection
  (geometric above the floor), as in the batched split. Stopped at the same tolerance, so the
  split is the exact one to rounding.

Anything outside that fast path (resource blocks, step or capped rates, users off the uplink, no
finite deadline) goes to :func:`policies.round_split`, so the answer is always the exact split.
"""

from __future__ import annotations

import numpy as np

from multispin_cli.model.channel import LN2, snr_for_rate_ratio
from multispin_cli.model.system import System
from multispin_cli.planners.policies import Controller, decide

_ITER = 60


class RoundScheduler:
    """Decides one round at a time for ``control`` (policy ``adaptive-split`` or ``adaptive``)."""

    def __init__(self, system: System, control: Controller):
        if control.policy not in ("adaptive-split", "adaptive"):
            raise ValueError("the round scheduler runs the adaptive-split and adaptive policies")
        self.system, self.control = system, control
        top = system.max_draft_length
        lengths = np.arange(top + 1, dtype=float)
        self.bits_of = np.where(lengths > 0, system.header_bits + system.bits_per_token * lengths, 0.0)  # (L+1,)
        self.device_of = np.where(lengths[None, :] > 0, system.draft_overhead_s[:, None]
                                  + system.draft_s_per_token[:, None] * lengths[None, :], 0.0)  # (K, L+1)
        ch = system.channel
        self.pl = np.asarray(ch.power_limited, dtype=bool)
        self.snr = np.where(self.pl, 0.0, np.expm1(np.where(self.pl, 0.0, ch.spectral_efficiency) * LN2))
        self.q = np.where(self.pl, ch.snr_bandwidth_hz, 0.0)
        self.fast = system.smooth and not system.off_uplink.any()
        self.rows = np.arange(system.users)
        self.fixed = np.asarray(control.lengths, dtype=int)
        self.threshold = None if control.rule is None or control.policy != "adaptive" else control.rule.threshold
        self.last_deadline = None  # the previous round's deadline: the next round's Newton start
        self.fallbacks = 0  # rounds the fast split handed to the general path (a test keeps it at 0)

    def lengths(self, csi_gain: np.ndarray) -> np.ndarray:
        """This round's draft lengths from the CSI gains (K,)."""
        if self.threshold is None:
            return self.fixed
        return (csi_gain[:, None] >= self.threshold).sum(axis=1)

    def step(self, csi_gain) -> tuple[np.ndarray, np.ndarray]:
        """Lengths (K,) and bandwidth (K,) of this round."""
        g = np.asarray(csi_gain, dtype=float)
        lengths = self.lengths(g)
        if self.fast:
            out = self._split(lengths, g)
            if out is not None:
                return lengths, out
            self.fallbacks += 1
        got_l, got_w = decide(self.system, self.control, g[None, :])
        return got_l[0], got_w[0]

    def _split(self, lengths: np.ndarray, g: np.ndarray) -> np.ndarray | None:
        """The equal-finish split of one round on a continuous band with Shannon rates (None: use the
        general path)."""
        drafting = np.flatnonzero(lengths > 0)
        bandwidth = np.zeros(lengths.size)
        if drafting.size == 0:
            self.last_deadline = 0.0
            return bandwidth
        total = self.system.bandwidth_hz
        ln = lengths[drafting]
        bits = self.bits_of[ln]
        device = self.device_of[drafting, ln]
        pl = self.pl[drafting]
        gd = g[drafting]
        eff = np.log1p(self.snr[drafting] * gd) / LN2  # fixed-SNR users' faded efficiency
        q = self.q[drafting] * gd  # power-limited users' faded Q
        fixed_idx, pl_idx = np.flatnonzero(~pl), np.flatnonzero(pl)
        bits_f, dev_f, eff_f = bits[fixed_idx], device[fixed_idx], eff[fixed_idx]
        bits_p, dev_p, q_p = bits[pl_idx], device[pl_idx], q[pl_idx]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # left end: each user alone on the whole band, and the power-limited rate ceiling
            whole = np.empty(drafting.size)
            whole[fixed_idx] = eff_f * total
            whole[pl_idx] = total * np.log1p(q_p / total) / LN2
            alone = float((device + bits / whole).max())
            floor = float((dev_p + bits_p * LN2 / q_p).max(initial=0.0))
            lo = max(alone, floor)
            if not np.isfinite(lo) or np.any(whole <= 0):
                return None

            def need(d):
                slack_f = d - dev_f
                w_f = bits_f / (slack_f * eff_f)
                dw_f = -w_f / slack_f
                slack_p = d - dev_p
                rate = bits_p / slack_p
                a = rate * LN2 / q_p
                x = snr_for_rate_ratio(a)
                w_p = q_p / x
                dwdr = LN2 / (np.log1p(x) - x / (1.0 + x))
                dw_p = -dwdr * rate / slack_p
                return w_f.sum() + w_p.sum(), dw_f.sum() + dw_p.sum(), w_f, w_p

            # At the power-limited floor itself the weakest user's rate is at its ceiling (no finite
            # band): start just past it, where the demand is finite and above the band.
            x, low, high = (lo if alone > floor else floor * (1.0 + 1e-9)), lo, np.inf
            last = self.last_deadline
            if last is not None and np.isfinite(last) and last > lo:
                n, dn, _, _ = need(last)
                if np.isfinite(n) and np.isfinite(dn) and dn < 0:
                    if n > total:
                        x, low = last, last
                    else:
                        high = last
                        step = last + (total - n) * n / (total * dn)
                        x = step if low < step < high else low
            w_f = w_p = None
            for _ in range(_ITER):
                n, dn, w_f, w_p = need(x)
                if not np.isfinite(n):  # a user at its rate ceiling: the root lies further right
                    if not np.isfinite(high):
                        return None
                    low, x = x, 0.5 * (x + high)
                    continue
                if abs(n - total) <= 1e-13 * total:
                    break
                if n > total:
                    low = x
                else:
                    high = x
                nxt = x + (total - n) * n / (total * dn)
                if abs(nxt - x) <= 2 * np.finfo(float).eps * x:  # converged (to the last ulps)
                    break
                if not (low < nxt < high):  # safeguard: bisect the bracket (geometric above the floor)
                    if not np.isfinite(high):
                        return None
                    nxt = floor + np.sqrt((low - floor) * (high - floor)) if low > floor else 0.5 * (low + high)
                if abs(nxt - x) <= 2 * np.finfo(float).eps * x:
                    break
                x = nxt
            else:
                return None
        per = np.empty(drafting.size)
        per[fixed_idx] = w_f
        per[pl_idx] = w_p
        if not np.all(np.isfinite(per)) or per.sum() <= 0:
            return None
        self.last_deadline = x
        bandwidth[drafting] = per * (total / per.sum())
        return bandwidth
