"""Synthetic cells for benchmarks and tests: many users where drafting pays, drawn from a seed."""

from __future__ import annotations

import numpy as np

from multispin_cli.model.acceptance import position_matrix
from multispin_cli.model.channel import Channel
from multispin_cli.model.system import System
from multispin_cli.model.verifier import VerifyTime


def busy_cell(rng: np.random.Generator, users: int, *, max_len: int = 16, batching: str = "ragged") -> System:
    """A cell where drafting pays: 1-10 ms drafts, a 30 ms server round, 200 kHz of band per user.

    Half the users have a fixed SNR of 0-25 dB, half are power-limited; acceptance is uniform in
    0.4-0.95; the server's per-token cost is scaled so a full batch adds 20 ms per draft position.
    """
    pl = rng.random(users) < 0.5
    channel = Channel(
        pl,
        np.where(pl, np.nan, np.log2(1 + 10 ** rng.uniform(0, 2.5, users))),
        np.where(pl, 10 ** rng.uniform(5, 7.5, users), np.nan),
    )
    return System(
        names=tuple(f"u{i}" for i in range(users)),
        accept_prob=position_matrix(acceptance=list(rng.uniform(0.4, 0.95, users)), max_draft_length=max_len),
        draft_s_per_token=10 ** rng.uniform(-3, -2, users),
        draft_overhead_s=rng.uniform(0, 0.003, users),
        channel=channel,
        bits_per_token=500.0,
        header_bits=100.0,
        bandwidth_hz=users * 2e5,
        max_draft_length=max_len,
        verify=VerifyTime.from_affine(base_s=0.03, per_token_s=0.02 / users),
        downlink_s=0.002,
        batching=batching,
    )
