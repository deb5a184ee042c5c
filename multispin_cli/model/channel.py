"""Uplink rate of each user as a function of its FDMA bandwidth, and its inverse (MODEL.md 2.3).

Two forms, held side by side in arrays so every function is vectorised over users:

* fixed SNR per hertz: ``r(W) = eta * W`` with spectral efficiency ``eta = log2(1 + SNR)``;
* power-limited: ``r(W) = W log2(1 + Q / W)`` with ``Q = P g / N0`` (hertz), concave in W and
  bounded by ``Q / ln 2``. Its inverse has a closed form through the Lambert W function
  (:func:`snr_for_rate_ratio`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LN2 = float(np.log(2.0))


@dataclass(frozen=True, eq=False)
class Channel:
    """Per-user channel parameters.

    ``spectral_efficiency`` (bit/s/Hz) is used where ``power_limited`` is False; ``snr_bandwidth_hz``
    (``Q = P g / N0``, the bandwidth at which the SNR would be 0 dB) where it is True.
    """

    power_limited: np.ndarray
    spectral_efficiency: np.ndarray
    snr_bandwidth_hz: np.ndarray

    @classmethod
    def fixed_snr(cls, snr_linear) -> "Channel":
        """Users whose SNR does not depend on their bandwidth share."""
        snr = np.atleast_1d(np.asarray(snr_linear, dtype=float))
        return cls(np.zeros(snr.shape, bool), np.log2(1.0 + snr), np.full(snr.shape, np.nan))

    @classmethod
    def power_limited_users(cls, snr_bandwidth_hz) -> "Channel":
        """Users with a transmit power budget spread over their bandwidth."""
        q = np.atleast_1d(np.asarray(snr_bandwidth_hz, dtype=float))
        return cls(np.ones(q.shape, bool), np.full(q.shape, np.nan), q)

    @classmethod
    def concat(cls, channels: list["Channel"]) -> "Channel":
        """Users of several channels, in order."""
        return cls(
            np.concatenate([c.power_limited for c in channels]),
            np.concatenate([c.spectral_efficiency for c in channels]),
            np.concatenate([c.snr_bandwidth_hz for c in channels]),
        )

    def take(self, index) -> "Channel":
        """The channels of a subset (or a reordering) of the users."""
        return Channel(self.power_limited[index], self.spectral_efficiency[index], self.snr_bandwidth_hz[index])

    def faded(self, gain) -> "Channel":
        """The channel with each user's SNR scaled by a power gain (fading); broadcasts to the gain's shape.

        Fixed-SNR users get ``SNR * g``, power-limited users ``Q * g``: the rate formulas stay the
        ones above, so a faded channel is used exactly like a static one (shape (rounds, K) for
        one channel per round).
        """
        g = np.asarray(gain, dtype=float)
        shape = np.broadcast_shapes(g.shape, self.power_limited.shape)
        with np.errstate(invalid="ignore"):
            eff = np.log2(1.0 + np.expm1(self.spectral_efficiency * LN2) * g)
        return Channel(np.broadcast_to(self.power_limited, shape), np.broadcast_to(eff, shape),
                       np.broadcast_to(self.snr_bandwidth_hz * g, shape))

    @property
    def max_rate_bps(self) -> np.ndarray:
        """Rate with unlimited bandwidth: ``Q / ln 2`` for power-limited users, infinite otherwise."""
        return np.where(self.power_limited, self.snr_bandwidth_hz / LN2, np.inf)

    def snr_at(self, bandwidth_hz) -> np.ndarray:
        """Linear SNR each user sees with the given bandwidth."""
        w = np.asarray(bandwidth_hz, dtype=float)
        with np.errstate(divide="ignore"):
            power = self.snr_bandwidth_hz / w
        return np.where(self.power_limited, power, np.exp2(self.spectral_efficiency) - 1.0)

    def rate_bps(self, bandwidth_hz) -> np.ndarray:
        """Uplink rate (bit/s) with the given bandwidth (Hz); broadcasts over leading axes."""
        w = np.asarray(bandwidth_hz, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = self.snr_bandwidth_hz / w
            power = np.where(w > 0, w * np.log1p(x) / LN2, 0.0)
        return np.where(self.power_limited, power, self.spectral_efficiency * w)

    def bandwidth_for_rate(self, rate_bps) -> tuple[np.ndarray, np.ndarray]:
        """Least bandwidth (Hz) that carries ``rate_bps``, and its derivative dW/dR (s).

        Infinite where a power-limited user cannot reach the rate at any bandwidth
        (``R >= Q / ln 2``). For a power-limited user see :func:`snr_for_rate_ratio`: ``W = Q / x``.
        """
        rate = np.asarray(rate_bps, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            need = rate / self.spectral_efficiency
        slope = np.broadcast_to(1.0 / self.spectral_efficiency, need.shape).copy()
        if not self.power_limited.any():
            return need, slope
        pl = np.broadcast_to(self.power_limited, rate.shape)
        q = np.broadcast_to(self.snr_bandwidth_hz, rate.shape)[pl]
        a = rate[pl] * LN2 / q
        x = snr_for_rate_ratio(np.where((a > 0) & (a < 1), a, 0.5))
        ok = (a > 0) & (a < 1) & np.isfinite(x) & (x > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            d_rate = np.log1p(x) - x / (1.0 + x)  # ln2 * dR/dW at W = Q / x
            need[pl] = np.where(ok, q / x, np.where(a <= 0, 0.0, np.inf))
            slope[pl] = np.where(ok, LN2 / d_rate, np.where(a <= 0, 0.0, np.inf))
        return need, slope


def snr_for_rate_ratio(a) -> np.ndarray:
    """The SNR ``x > 0`` with ``ln(1 + x) = a x``, for ``0 < a < 1`` (power-limited inverse rate).

    A user with ``Q = P g / N0`` carries rate R on bandwidth ``W = Q / x`` where ``a = R ln2 / Q``.
    MODEL.md 2.3 writes the root with the Lambert W function, ``x = -W_{-1}(-a e^{-a}) / a - 1``;
    the tests check against that closed form. Here it is found by Newton's method on
    ``phi(u) = a (e^u - 1) - u`` with ``u = ln(1 + x)``: phi is convex, and the start is an upper
    bound on the root (``2(1 - a)/a``, tightened by two steps of the contraction
    ``u <- ln(1 + u/a)``), so the iterates fall monotonically onto it. Four steps reach full double
    precision on 1e-300 < a < 1 - 1e-13, about 30 times faster than scipy's ``lambertw``, which
    loses precision near the branch point a -> 1. Returns NaN where a is too close to 1.
    """
    a = np.asarray(a, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        u = np.minimum(2.0 * (1.0 - a) / a, np.log(2.0 * (1.0 - a)) - 2.0 * np.log(a) + np.log1p(a * a / (2.0 * (1.0 - a))))
        for _ in range(2):
            u = np.log(u) - np.log(a) + np.log1p(a / u)
        for _ in range(4):
            grown = np.expm1(u)
            u = u - (a * grown - u) / (a * (grown + 1.0) - 1.0)
        return np.expm1(u)
