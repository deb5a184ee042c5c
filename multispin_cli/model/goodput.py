"""The Multi-SPIN round and its sum token goodput (docs/model.md 2.5): the one place the formula lives.

A round: every user k drafts ``L_k`` tokens (``c_k + tau_k L_k`` seconds) and uploads
``S(L_k) = h + s L_k`` bits at rate ``r_k(W_k)``; the server waits for the last upload
(``D = max_k phase_k``), verifies the batch in ``T_v(N)`` and answers in ``t_dn``::

    T = D + T_v(N) + t_o + t_dn,   goodput = sum_k G_k(L_k) / T   (tokens/s, all users)

``t_o`` is the serving engine's own cost per round (scheduling, sampling, cache upkeep), paid
whether or not anyone drafts; the device's per-round cost ``c_k`` is paid only when it drafts.
A user without the shared uplink (a draft model next to the target, or a wired device) uploads
nothing over it: its phase is its draft time alone and it needs no bandwidth.

A user with ``L_k = 0`` neither drafts nor uploads: the server already holds its context and
simply decodes one token for it, so its phase time is 0 and it needs no bandwidth. (A payload
``S(0) = h`` would charge an autoregressive user a header it never sends, and would make the
autoregressive baseline depend on the uplink.)

Functions broadcast over leading axes of ``lengths``: shape (..., K) evaluates many plans at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispin_cli.model.system import System


def upload_bits(system: System, lengths) -> np.ndarray:
    """Bits each user uploads over the shared uplink per round: ``h + s L`` when it drafts, else 0
    (0 too for a user whose drafts do not use the uplink)."""
    length = np.asarray(lengths, dtype=float)
    drafting = (length > 0) & ~system.off_uplink
    return np.where(drafting, system.header_bits + system.bits_per_token * length, 0.0)


def compute_seconds(system: System, lengths) -> np.ndarray:
    """Device time per round: ``c + tau L`` when the user drafts, else 0."""
    length = np.asarray(lengths, dtype=float)
    return np.where(length > 0, system.draft_overhead_s + system.draft_s_per_token * length, 0.0)


def verify_tokens(system: System, lengths) -> np.ndarray:
    """Positions the target verifies: ``sum (L_k + 1)`` ragged, ``K (max L + 1)`` padded."""
    length = np.asarray(lengths)
    if system.batching == "padded":
        return system.users * (length.max(axis=-1) + 1.0)
    return (length + 1.0).sum(axis=-1)


def round_seconds(system: System, lengths, deadline_s) -> np.ndarray:
    """Round time ``T = D + T_v(N) + t_o + t_dn`` given the draft-and-upload phase ``D``."""
    return np.asarray(deadline_s) + system.verify(verify_tokens(system, lengths)) + system.server_fixed_s


def tokens_per_round(system: System, lengths) -> np.ndarray:
    """Expected committed tokens of each user, ``G_k(L_k)``."""
    length = np.asarray(lengths, dtype=int)
    table = np.broadcast_to(system.tokens_per_round, length.shape[:-1] + system.tokens_per_round.shape)
    return np.take_along_axis(table, length[..., None], axis=-1)[..., 0]


def phase_seconds(system: System, lengths, bandwidth_hz) -> np.ndarray:
    """Draft plus upload time of each user; infinite for a drafting user without enough bandwidth."""
    bits = upload_bits(system, lengths)
    with np.errstate(divide="ignore", invalid="ignore"):
        upload = np.where(bits > 0, bits / system.channel.rate_bps(bandwidth_hz), 0.0)
    return compute_seconds(system, lengths) + np.where(np.isnan(upload), np.inf, upload)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A plan's predicted performance; per-user arrays are in users' order, SI units."""

    draft_lengths: np.ndarray  # (K,) int
    bandwidth_hz: np.ndarray  # (K,)
    phase_s: np.ndarray  # (K,) draft + upload time
    tokens_per_round: np.ndarray  # (K,) G_k(L_k)
    draft_upload_s: float  # D
    verify_s: float  # T_v(N)
    verify_tokens: float  # N
    round_s: float  # T
    goodput_tokens_per_s: float  # sum_k G_k / T

    @property
    def user_tokens_per_s(self) -> np.ndarray:
        """Each user's token rate ``G_k / T``."""
        if not np.isfinite(self.round_s):
            return np.zeros_like(self.tokens_per_round)
        return self.tokens_per_round / self.round_s

    @property
    def feasible(self) -> bool:
        """Whether every drafting user reaches the server in finite time."""
        return bool(np.isfinite(self.round_s))


def evaluate(system: System, lengths, bandwidth_hz) -> Evaluation:
    """Predicted round time and goodput of one plan (draft lengths and bandwidth per user)."""
    length = np.asarray(lengths, dtype=int)
    bandwidth = np.asarray(bandwidth_hz, dtype=float)
    phase = phase_seconds(system, length, bandwidth)
    deadline = float(phase.max(initial=0.0))
    n_tokens = float(verify_tokens(system, length))
    verify_s = float(system.verify(n_tokens))
    round_s = deadline + verify_s + system.server_fixed_s
    tokens = tokens_per_round(system, length)
    goodput = float(tokens.sum() / round_s) if np.isfinite(round_s) else 0.0
    return Evaluation(length, bandwidth, phase, tokens, deadline, verify_s, n_tokens, round_s, goodput)
