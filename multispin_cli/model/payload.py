"""Uplink bits per draft token for each verification payload (docs/model.md 2.2)."""

from __future__ import annotations

import math

PAYLOAD_KINDS = ("token-ids", "top-k", "full-distribution", "bits")


def bits_per_token(
    kind: str,
    *,
    vocab_size: int | None = None,
    top_k: int | None = None,
    prob_bits: int | None = None,
    bits: float | None = None,
) -> float:
    """Bits one draft token costs on the uplink.

    ``token-ids`` (greedy verification) sends ``ceil(log2 V)`` bits; ``top-k`` (lossy speculative
    sampling) sends k (id, probability) pairs; ``full-distribution`` (exact speculative sampling)
    sends V probabilities; ``bits`` takes the number as given.
    """
    if kind == "bits":
        return float(bits)
    id_bits = math.ceil(math.log2(vocab_size))
    if kind == "token-ids":
        return float(id_bits)
    if kind == "top-k":
        return float(top_k * (id_bits + prob_bits))
    if kind == "full-distribution":
        return float(vocab_size * prob_bits)
    raise ValueError(f"unknown payload kind {kind!r}")
