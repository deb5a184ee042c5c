"""Expected tokens per round from draft acceptance (docs/model.md 2.1, and per-position acceptance).

Every user's acceptance is held as conditional per-position probabilities ``p[k, i]`` (the
probability that draft token i+1 is accepted given tokens 1..i were). A single acceptance rate
``alpha`` is the geometric special case ``p[k, :] = alpha``. One representation serves both, so the
planners, the simulator and every output treat them alike.
"""

from __future__ import annotations

import numpy as np


def position_matrix(*, acceptance: list[float | list[float]], max_draft_length: int) -> np.ndarray:
    """Per-position acceptance matrix (K, L_max) from per-user rates or per-position lists.

    A scalar is repeated at every position; a list gives positions 1, 2, ... and its last value
    repeats beyond its end.
    """
    rows = np.empty((len(acceptance), max_draft_length), dtype=float)
    for k, value in enumerate(acceptance):
        probs = np.atleast_1d(np.asarray(value, dtype=float))
        if max_draft_length <= probs.size:
            rows[k] = probs[:max_draft_length]
        else:
            rows[k, : probs.size] = probs
            rows[k, probs.size :] = probs[-1]
    return rows


def expected_tokens(position_probs: np.ndarray) -> np.ndarray:
    """Expected committed tokens per round, G[k, L] for L = 0..L_max.

    ``G(L) = 1 + sum_{i=1..L} prod_{j<=i} p_j``: the accepted prefix plus the target's correction or
    bonus token. For a constant p this is the geometric sum ``(1 - p^(L+1)) / (1 - p)``. G is
    increasing and concave in L because the running products are non-increasing.
    """
    probs = np.asarray(position_probs, dtype=float)
    survive = np.cumprod(probs, axis=-1)
    tokens = np.empty(probs.shape[:-1] + (probs.shape[-1] + 1,))
    tokens[..., 0] = 1.0
    np.add(np.cumsum(survive, axis=-1, out=survive), 1.0, out=tokens[..., 1:])  # in place: K x L_max at a time
    return tokens


def geometric_expected_tokens(length, alpha):
    """Closed form ``(1 - a^(L+1)) / (1 - a)`` for i.i.d. acceptance (``L + 1`` when a = 1)."""
    length = np.asarray(length, dtype=float)
    alpha = np.asarray(alpha, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = (1.0 - alpha ** (length + 1.0)) / (1.0 - alpha)
    return np.where(alpha == 1.0, length + 1.0, closed)
