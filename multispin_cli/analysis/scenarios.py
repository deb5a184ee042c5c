"""Random cells drawn around a base profile: users dropped in a disc, acceptance jittered.

For scenario j of a run with seed S, the generator is seeded with (S, j) alone, so a scenario is
the same whatever the chunking, the worker or the other swept keys (common random numbers). For
every user, in the profile's order, it draws:

1. a distance d = sqrt(U (R^2 - r0^2) + r0^2) from the base station (uniform over the ring of
   radii r0 = ``min_distance_m`` and R = ``radius_m``);
2. a shadow-fading term X ~ N(0, sigma^2) dB with sigma of the environment (TR 38.901);
3. an acceptance a + V, V uniform in [-spread, +spread], clipped to [0.01, 0.99], where a is the
   user's acceptance in the profile (users given per-position acceptance keep it; V is still drawn).

The user's path loss is the environment's median loss at d plus X (see
:func:`multispin_cli.model.pathloss.path_loss_db`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispin_cli.model.pathloss import ENVIRONMENTS, SHADOW_FADING_DB, path_loss_db

ACCEPTANCE_CLIP = (0.01, 0.99)


@dataclass(frozen=True)
class ScenarioSpec:
    """How scenarios are drawn: how many, the seed, the disc and the acceptance spread."""

    count: int
    seed: int = 0
    radius_m: float = 200.0
    min_distance_m: float = 10.0
    environment: str = "umi-nlos"
    acceptance_spread: float = 0.1
    tx_power_dbm: float = 23.0  # for users whose profile gives none (3GPP UE power class 3)

    def __post_init__(self):
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}")
        if not 0 < self.min_distance_m < self.radius_m:
            raise ValueError("need 0 < min_distance_m < radius_m")
        if not 0 <= self.acceptance_spread < 1:
            raise ValueError("acceptance_spread must be in [0, 1)")


@dataclass(frozen=True, eq=False)
class Drop:
    """One scenario's draws for K users (arrays in the profile's user order)."""

    distance_m: np.ndarray
    shadow_db: np.ndarray
    path_loss_db: np.ndarray
    acceptance: np.ndarray  # drawn acceptance; NaN where the base had none


def draw_users(spec: ScenarioSpec, scenario: int, acceptance, carrier_ghz: float) -> Drop:
    """Scenario ``scenario``'s draws for users whose base acceptance is ``acceptance`` (NaN: none)."""
    base = np.asarray(acceptance, dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, scenario]))
    users = base.size
    r0, r1 = spec.min_distance_m, spec.radius_m
    distance = np.sqrt(rng.random(users) * (r1**2 - r0**2) + r0**2)
    shadow = rng.normal(0.0, SHADOW_FADING_DB[spec.environment], users)
    jitter = rng.uniform(-spec.acceptance_spread, spec.acceptance_spread, users)
    loss = path_loss_db(spec.environment, distance, carrier_ghz) + shadow
    drawn = np.clip(base + jitter, *ACCEPTANCE_CLIP)
    return Drop(distance, shadow, loss, drawn)
