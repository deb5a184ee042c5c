"""The planning input: one cell's users, uplink and server, as plain arrays in SI units."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import numpy as np

from multispin_cli.model.acceptance import expected_tokens
from multispin_cli.model.channel import Channel
from multispin_cli.model.fading import Fading
from multispin_cli.model.verifier import VerifyTime

Batching = Literal["ragged", "padded"]


@dataclass(frozen=True, eq=False)
class System:
    """Everything the model and planners need, vectorised over the K users.

    ``accept_prob[k, i]`` is the conditional acceptance of draft position i+1 (see
    :mod:`multispin_cli.model.acceptance`); draft times, bits and bandwidth are in s, bit and Hz.
    """

    names: tuple[str, ...]
    accept_prob: np.ndarray  # (K, L_max)
    draft_s_per_token: np.ndarray  # (K,) tau_k
    draft_overhead_s: np.ndarray  # (K,) c_k
    channel: Channel
    bits_per_token: float  # s
    header_bits: float  # h
    bandwidth_hz: float  # W
    max_draft_length: int  # L_max
    verify: VerifyTime
    downlink_s: float = 0.0
    batching: Batching = "ragged"
    fading: Fading | None = None  # None: a channel that never changes
    # Resource-block mode: the band is ``bandwidth_hz / resource_block_hz`` whole blocks; a drafting
    # user gets whole blocks, at least ``min_resource_blocks[k]`` of them. None: a continuous split.
    resource_block_hz: float | None = None
    min_resource_blocks: np.ndarray | None = None  # (K,) int
    round_overhead_s: float = 0.0  # engine cost per round on the server (scheduling, sampling, cache upkeep)
    no_uplink: np.ndarray | None = None  # (K,) bool: drafts reach the server without the shared uplink

    @property
    def fades(self) -> bool:
        """Whether any user's channel varies from round to round."""
        return self.fading is not None and self.fading.active

    @property
    def server_fixed_s(self) -> float:
        """Round time that does not depend on the plan: the engine's per-round cost plus the downlink."""
        return self.round_overhead_s + self.downlink_s

    @cached_property
    def off_uplink(self) -> np.ndarray:
        """(K,) bool: users whose drafts need no share of the uplink (all False unless set)."""
        if self.no_uplink is None:
            return np.zeros(self.users, dtype=bool)
        return np.asarray(self.no_uplink, dtype=bool)

    @property
    def users(self) -> int:
        """K, the number of users."""
        return len(self.names)

    @property
    def resource_blocks(self) -> int | None:
        """N, the whole blocks of the band in resource-block mode (None for a continuous split)."""
        if self.resource_block_hz is None:
            return None
        return int(round(self.bandwidth_hz / self.resource_block_hz))

    @property
    def smooth(self) -> bool:
        """Continuous split on Shannon rates: every demand is smooth and convex in the deadline."""
        return self.resource_block_hz is None and self.channel.link.is_shannon

    @cached_property
    def tokens_per_round(self) -> np.ndarray:
        """Expected committed tokens G[k, L] for L = 0..L_max (docs/model.md 2.1)."""
        return expected_tokens(self.accept_prob)

    def take(self, index) -> "System":
        """The same cell restricted to (or reordered into) the users at ``index``."""
        index = np.asarray(index)
        if index.dtype == bool:  # a mask: the names must follow the arrays' rows
            index = np.flatnonzero(index)
        taken = replace(
            self,
            names=tuple(map(self.names.__getitem__, index.tolist())),  # (a generator: 4x slower at 100,000 users)
            accept_prob=self.accept_prob[index],
            draft_s_per_token=self.draft_s_per_token[index],
            draft_overhead_s=self.draft_overhead_s[index],
            channel=self.channel.take(index),
            fading=None if self.fading is None else self.fading.take(index),
            no_uplink=None if self.no_uplink is None else np.asarray(self.no_uplink)[index],
            min_resource_blocks=None if self.min_resource_blocks is None else self.min_resource_blocks[index],
        )
        if "tokens_per_round" in self.__dict__:  # computed already: each row is its user's own (cached_property)
            taken.__dict__["tokens_per_round"] = self.tokens_per_round[index]
        return taken

    def with_bandwidth(self, bandwidth_hz: float) -> "System":
        """The same cell with another total uplink bandwidth (whole blocks, rounded down, in
        resource-block mode)."""
        if self.resource_block_hz is not None:
            blocks = np.floor(float(bandwidth_hz) / self.resource_block_hz * (1 + 1e-12))
            return replace(self, bandwidth_hz=float(blocks * self.resource_block_hz))
        return replace(self, bandwidth_hz=float(bandwidth_hz))
