"""Why the plans look the way they do: who got longer drafts and more bandwidth, in words.

The paper's structural result (docs/model.md 3): the homogeneous split compensates the users with
weaker computation and channels (they must still finish with everyone else), while the
heterogeneous plan rewards the users whose drafts are accepted more often. This module measures
that on the plan at hand with rank correlations and says it in a sentence or two per plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions)."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ranked = np.empty(values.size)
    ranked[order] = np.arange(values.size)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, ranked)
    return (sums / counts)[inverse]


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho; 0 where either side is constant."""
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else 0.0


@dataclass(frozen=True)
class Traits:
    """What distinguishes users: acceptance, device speed and channel quality (higher is stronger)."""

    acceptance: np.ndarray  # mean conditional acceptance over the first four positions
    device_tokens_per_s: np.ndarray  # 1 / tau
    channel_bps_per_hz: np.ndarray  # spectral efficiency on an equal share W / K

    @classmethod
    def of(cls, system: System) -> "Traits":
        share = system.bandwidth_hz / system.users
        return cls(
            system.accept_prob[:, :4].mean(axis=1) if system.max_draft_length else np.zeros(system.users),
            1.0 / system.draft_s_per_token,
            np.log2(1.0 + system.channel.snr_at(share)),
        )

    def named(self) -> dict[str, np.ndarray]:
        return {"acceptance": self.acceptance, "device speed": self.device_tokens_per_s,
                "channel quality": self.channel_bps_per_hz}


def _strongest(traits: Traits, target: np.ndarray, mask: np.ndarray, *, common_length: bool) -> tuple[str, float] | None:
    """The trait that best explains ``target`` over the masked users (|rho| >= 0.3), if any.

    With one common draft length acceptance cannot drive the split (every user sends the same
    draft), so only device speed and channel quality are candidates then.
    """
    if mask.sum() < 3:
        return None
    named = traits.named()
    if common_length:
        named.pop("acceptance")
    scored = [(name, rank_correlation(values[mask], target[mask])) for name, values in named.items()]
    scored = [s for s in scored if abs(s[1]) >= 0.3]
    return max(scored, key=lambda s: abs(s[1])) if scored else None


def _direction(rho: float) -> str:
    return "stronger" if rho > 0 else "weaker"


def explain(system: System, plans: list[Plan]) -> list[str]:
    """One or two sentences per plan on who got longer drafts and more bandwidth, and why."""
    traits = Traits.of(system)
    lines = []
    for plan in plans:
        ev = plan.evaluation
        drafting = ev.draft_lengths > 0
        if not drafting.any():
            lines.append(f"{plan.name}: nobody drafts; the target alone is fastest for this cell.")
            continue
        common = plan.draft_length is not None
        bw = _strongest(traits, ev.bandwidth_hz, drafting, common_length=common)
        if bw is not None:
            name, rho = bw
            reason = " (all users must finish together, so the weak ones need the band)" if common and rho < 0 else ""
            lines.append(
                f"{plan.name}: more bandwidth goes to users with {_direction(rho)} {name} "
                f"(rank correlation {rho:+.2f}){reason}."
            )
        if plan.draft_length is None:
            length = _strongest(traits, ev.draft_lengths.astype(float), np.ones(system.users, bool), common_length=False)
            if length is not None:
                name, rho = length
                lines.append(
                    f"{plan.name}: longer drafts go to users with {_direction(rho)} {name} "
                    f"(rank correlation {rho:+.2f})."
                )
            idle = int((~drafting).sum())
            if idle:
                slow = traits.device_tokens_per_s[~drafting].mean()
                rest = traits.device_tokens_per_s[drafting].mean()
                acc_idle = traits.acceptance[~drafting].mean()
                acc_rest = traits.acceptance[drafting].mean()
                lines.append(
                    f"{plan.name}: {idle} user(s) do not draft (mean acceptance {acc_idle:.2f} vs "
                    f"{acc_rest:.2f}, draft speed {slow:.0f} vs {rest:.0f} tokens/s for the others)."
                )
    return lines
