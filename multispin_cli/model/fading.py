"""Uplink fading: per-round power gains of every user, with the CSI a scheduler sees.

Each round t every user k's received SNR is its mean times a power gain ``X_k(t)`` (block
fading: the gain holds for the round). The gain is ``|h|^2 * 10^(sigma x / 10)``:

* small-scale fading ``h``: Rician with factor K (power in the line-of-sight part over the
  scattered part), ``h = sqrt(K / (K + 1)) + sqrt(1 / (K + 1)) d`` with ``d ~ CN(0, 1)``, so
  ``E|h|^2 = 1``. Rayleigh is K = 0 (``|h|^2 ~ Exp(1)``). Users without fading have ``h = 1``;
* log-normal shadowing: ``x ~ N(0, 1)`` with ``sigma`` the standard deviation in dB (0 dB median:
  the profile's SNR is the median SNR under shadowing).

**Correlation across rounds (Gauss-Markov).** ``d`` and ``x`` follow AR(1) processes from round
to round, ``d_t = rho d_{t-1} + sqrt(1 - rho^2) w_t``, with ``rho = exp(-T / T_c)``: T the round
time, ``T_c`` the coherence time (``coherence_ms``; 0 = independent rounds). The exponential form
is the exact autocorrelation of a Gauss-Markov process sampled every T seconds, and it needs no
carrier or speed (the Jakes form ``J0(2 pi f_d T)`` oscillates and is not a valid AR(1) step).

**CSI delay.** A decision at round t sees the channel as it was ``csi_delay`` seconds before the
upload: ``d_csi = rho_d d_t + sqrt(1 - rho_d^2) v`` with ``rho_d = exp(-delay / T_c)`` (a
stationary Gauss-Markov process looks the same backwards in time, so the older value given the
current one has this form), and the same for the shadowing. With ``coherence_ms = 0`` and a
positive delay the CSI says nothing about the upload's gain; with no delay it is exact.

Everything is vectorised over rounds x users and seeded: the same generator gives the same gains.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

FADING_KINDS = ("none", "rayleigh", "rician")


@dataclass(frozen=True, eq=False)
class Fading:
    """Per-user fading parameters and the cell's time constants (SI units).

    ``faded[k]`` says whether user k's small-scale gain fades at all; ``rician_k`` is the linear
    K factor (0: Rayleigh); ``shadowing_db`` the log-normal standard deviation.
    """

    faded: np.ndarray  # (K,) bool
    rician_k: np.ndarray  # (K,) linear
    shadowing_db: np.ndarray  # (K,)
    coherence_s: float = 0.0
    csi_delay_s: float = 0.0

    @classmethod
    def none(cls, users: int) -> "Fading":
        """A channel that never changes."""
        return cls(np.zeros(users, bool), np.zeros(users), np.zeros(users))

    @classmethod
    def uniform(cls, users: int, kind: str = "rayleigh", *, rician_k_db: float | None = None,
                shadowing_db: float = 0.0, coherence_s: float = 0.0, csi_delay_s: float = 0.0) -> "Fading":
        """The same fading for every user."""
        if kind not in FADING_KINDS:
            raise ValueError(f"fading kind must be one of {FADING_KINDS}, got {kind!r}")
        k = 0.0 if kind != "rician" or rician_k_db is None else 10.0 ** (rician_k_db / 10.0)
        return cls(np.full(users, kind != "none"), np.full(users, k), np.full(users, float(shadowing_db)),
                   float(coherence_s), float(csi_delay_s))

    @property
    def active(self) -> bool:
        """Whether any user's gain varies at all."""
        return bool(self.faded.any() or (self.shadowing_db > 0).any())

    def take(self, index) -> "Fading":
        """The fading of a subset (or reordering) of the users."""
        return replace(self, faded=self.faded[index], rician_k=self.rician_k[index],
                       shadowing_db=self.shadowing_db[index])

    def with_kind(self, kind: str) -> "Fading":
        """Every user switched to ``kind`` (``rician`` keeps each user's K factor)."""
        if kind not in FADING_KINDS:
            raise ValueError(f"fading kind must be one of {FADING_KINDS}, got {kind!r}")
        users = self.faded.size
        k = self.rician_k if kind == "rician" else np.zeros(users)
        return replace(self, faded=np.full(users, kind != "none"), rician_k=k)

    def round_correlation(self, round_s: float) -> float:
        """``rho = exp(-T / T_c)`` between consecutive rounds of length ``round_s`` (0 when T_c = 0)."""
        if self.coherence_s <= 0 or not np.isfinite(round_s):
            return 0.0
        return float(np.exp(-max(round_s, 0.0) / self.coherence_s))

    def csi_correlation(self) -> float:
        """``rho_d = exp(-delay / T_c)`` between the CSI and the upload's channel."""
        if self.csi_delay_s <= 0:
            return 1.0
        if self.coherence_s <= 0:
            return 0.0
        return float(np.exp(-self.csi_delay_s / self.coherence_s))


@dataclass
class FadingState:
    """The last round's hidden state (scattered part and shadowing), to continue a process."""

    scatter: np.ndarray  # (K,) complex
    shadow: np.ndarray  # (K,) real


def _ar1(innovation: np.ndarray, rho: float, previous: np.ndarray) -> np.ndarray:
    """``y_t = rho y_{t-1} + sqrt(1 - rho^2) e_t`` along axis 0, continuing from ``previous``."""
    if rho <= 0:
        return innovation
    from scipy.signal import lfilter  # imported here: scipy.signal costs ~1 s at start-up

    scale = np.sqrt(1.0 - rho * rho)
    out, _ = lfilter([scale], [1.0, -rho], innovation, axis=0, zi=(rho * previous)[None, :])
    return out


def draw_gains(fading: Fading, rounds: int, rng: np.random.Generator, *, rho: float = 0.0,
               state: FadingState | None = None) -> tuple[np.ndarray, np.ndarray, FadingState]:
    """Power gains of ``rounds`` consecutive rounds: (CSI gain, true gain, state), each (rounds, K).

    ``rho`` is the correlation between consecutive rounds (:meth:`Fading.round_correlation`);
    ``state`` continues an earlier call (a stationary start is drawn when it is None). Every user
    draws from the stream whether it fades or not, so each user's gains are the same whatever the
    others do. Users without fading or shadowing have gain exactly 1.
    """
    users = fading.faded.size
    shape = (rounds, users)
    if state is None:
        start = rng.standard_normal((3, users))
        state = FadingState((start[0] + 1j * start[1]) / np.sqrt(2.0), start[2])
        # A stationary start: the first round continues from it with correlation rho.
    w = rng.standard_normal((3,) + shape)
    scatter = _ar1((w[0] + 1j * w[1]) / np.sqrt(2.0), rho, state.scatter)
    shadow = _ar1(w[2], rho, state.shadow)
    rho_d = fading.csi_correlation()
    if rho_d < 1.0:
        v = rng.standard_normal((3,) + shape)
        lag = np.sqrt(1.0 - rho_d * rho_d)
        scatter_csi = rho_d * scatter + lag * (v[0] + 1j * v[1]) / np.sqrt(2.0)
        shadow_csi = rho_d * shadow + lag * v[2]
    else:
        scatter_csi, shadow_csi = scatter, shadow
    new_state = FadingState(scatter[-1].copy(), shadow[-1].copy()) if rounds else state
    true = _power(fading, scatter, shadow)
    csi = true if rho_d >= 1.0 else _power(fading, scatter_csi, shadow_csi)
    return csi, true, new_state


def _power(fading: Fading, scatter: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    k = fading.rician_k
    los = np.sqrt(k / (k + 1.0))
    diffuse = np.sqrt(1.0 / (k + 1.0))
    small = np.abs(los + diffuse * scatter) ** 2
    small = np.where(fading.faded, small, 1.0)
    return small * np.where(fading.shadowing_db > 0, 10.0 ** (fading.shadowing_db * shadow / 10.0), 1.0)
