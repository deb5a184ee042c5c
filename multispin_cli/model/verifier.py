"""Server verification time ``T_v(N)`` for a batch of N token positions (docs/model.md 2.4).

Two forms: affine ``v0 + v1 N`` (weights loaded once, then marginal compute per token), or a table
of measured points, linearly interpolated. A table may fall as well as rise (on CPUs a matmul of 3
rows can be slower than one of 4): the planners are exact for any shape. Outside the table the
first value holds below its first point (a batch cannot be cheaper than the smallest one measured)
and the last segment's slope extends beyond its last point, flat where that slope is negative
(more tokens never get cheaper than the last point measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class VerifyTime:
    """A verification time; ``tokens``/``seconds`` are the breakpoints.

    The affine form is stored as the two-point table ``(0, v0), (1, v0 + v1)`` with linear
    extension, so one evaluation path serves both forms.
    """

    tokens: np.ndarray
    seconds: np.ndarray
    affine: bool

    @classmethod
    def from_affine(cls, *, base_s: float, per_token_s: float) -> "VerifyTime":
        """``T_v(N) = base_s + per_token_s * N``."""
        return cls(np.array([0.0, 1.0]), np.array([base_s, base_s + per_token_s]), True)

    @classmethod
    def from_table(cls, tokens, seconds) -> "VerifyTime":
        """Measured points (N, seconds); N strictly increasing, seconds positive (in any order)."""
        n = np.asarray(tokens, dtype=float)
        t = np.asarray(seconds, dtype=float)
        if n.size == 1:
            n, t = np.array([n[0], n[0] + 1.0]), np.array([t[0], t[0]])
        return cls(n, t, False)

    @property
    def base_s(self) -> float:
        """Affine intercept (only meaningful for the affine form)."""
        return float(self.seconds[0])

    @property
    def per_token_s(self) -> float:
        """Affine slope (only meaningful for the affine form)."""
        return float(self.seconds[1] - self.seconds[0])

    def __call__(self, n_tokens) -> np.ndarray:
        """Seconds to verify ``n_tokens`` positions in one batched forward pass."""
        n = np.asarray(n_tokens, dtype=float)
        inside = np.interp(n, self.tokens, self.seconds)
        last_slope = max((self.seconds[-1] - self.seconds[-2]) / (self.tokens[-1] - self.tokens[-2]), 0.0)
        beyond = self.seconds[-1] + last_slope * (n - self.tokens[-1])
        return np.where(n > self.tokens[-1], beyond, inside)

    def covers(self, n_tokens: float) -> bool:
        """Whether ``n_tokens`` lies inside the measured range (always true for the affine form)."""
        return self.affine or bool(self.tokens[0] <= n_tokens <= self.tokens[-1])

    def minorants(self, n_low: float, n_high: float) -> np.ndarray:
        """Lines ``(a, b)`` with ``a + b N <= T_v(N)`` on ``[n_low, n_high]``: the lower convex envelope.

        Used by upper bounds, which need a verification time that is separable over users.
        """
        inner = self.tokens[(self.tokens > n_low) & (self.tokens < n_high)]
        xs = np.concatenate([[n_low], inner, [n_high]])
        ys = self(xs)
        hull: list[int] = []
        for i in range(xs.size):  # Andrew's monotone chain, lower hull
            while len(hull) >= 2:
                i0, i1 = hull[-2], hull[-1]
                cross = (xs[i1] - xs[i0]) * (ys[i] - ys[i0]) - (ys[i1] - ys[i0]) * (xs[i] - xs[i0])
                if cross <= 0:
                    hull.pop()
                else:
                    break
            hull.append(i)
        if len(hull) == 1:
            return np.array([[ys[hull[0]], 0.0]])
        x0, x1 = xs[hull[:-1]], xs[hull[1:]]
        y0, y1 = ys[hull[:-1]], ys[hull[1:]]
        b = (y1 - y0) / (x1 - x0)
        return np.stack([y0 - b * x0, b], axis=1)
