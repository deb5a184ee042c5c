"""Link adaptation: the spectral efficiency a link reaches at a given SNR.

Three rate models, chosen per cell:

* ``shannon``: ``log2(1 + SNR)``, the capacity bound (the default);
* ``shannon-gap``: ``min(log2(1 + SNR / gap), cap)``: capacity less an SNR gap for practical
  coding, capped at the highest efficiency the modem offers;
* ``nr-cqi``: a step function: the efficiency of the highest 5G NR CQI level whose SNR threshold
  the link reaches, 0 below the lowest. Efficiencies are 3GPP TS 38.214 Table 5.2.2.1-2 (the
  4-bit CQI table up to 64QAM: modulation order times code rate / 1024). 38.214 gives no SNR
  thresholds; here level j is usable where the Shannon bound with the cell's gap reaches its
  efficiency, ``SNR >= gap (2^e_j - 1)`` (with a 0 dB gap: the capacity limit, an optimistic
  threshold; a measured gap at the BLER target makes it realistic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE_MODELS = ("shannon", "shannon-gap", "nr-cqi")

# TS 38.214 Table 5.2.2.1-2: (modulation order Qm, code rate x 1024) of CQI 1..15.
NR_CQI_TABLE_2 = (
    (2, 78), (2, 120), (2, 193), (2, 308), (2, 449), (2, 602),
    (4, 378), (4, 490), (4, 616),
    (6, 466), (6, 567), (6, 666), (6, 772), (6, 873), (6, 948),
)
NR_CQI_EFFICIENCY = np.array([qm * rate / 1024.0 for qm, rate in NR_CQI_TABLE_2])  # bit/s/Hz


@dataclass(frozen=True)
class LinkModel:
    """How SNR maps to spectral efficiency (bit/s/Hz); ``gap`` is linear, ``cap`` in bit/s/Hz."""

    kind: str = "shannon"
    gap: float = 1.0
    cap: float = float("inf")

    @property
    def is_shannon(self) -> bool:
        """True for the plain capacity bound (the planners' smooth fast path)."""
        return self.kind == "shannon"

    @property
    def levels(self) -> tuple[np.ndarray, np.ndarray]:
        """CQI levels: efficiencies (bit/s/Hz) and linear SNR thresholds, both increasing."""
        eff = NR_CQI_EFFICIENCY
        return eff, self.gap * (np.exp2(eff) - 1.0)

    def efficiency(self, snr_linear) -> np.ndarray:
        """Spectral efficiency (bit/s/Hz) at the given linear SNR."""
        snr = np.asarray(snr_linear, dtype=float)
        if self.kind == "shannon":
            return np.log1p(snr) / np.log(2.0)
        if self.kind == "shannon-gap":
            return np.minimum(np.log1p(snr / self.gap) / np.log(2.0), self.cap)
        eff, thresholds = self.levels
        # Levels reached; a relative 1e-12 of slack so that the bandwidth the inverse rate returns
        # at a level's edge (W = Q / snr_j, to rounding) still holds that level.
        index = np.searchsorted(thresholds * (1.0 - 1e-12), snr, side="right")
        return np.concatenate([[0.0], eff])[index]


SHANNON = LinkModel()
