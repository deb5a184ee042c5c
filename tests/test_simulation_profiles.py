"""The issue's target: on every shipped profile the analytic goodput survives 50,000 simulated rounds.

No fading, no jitter: for both plans the prediction lies inside the simulated 95 % interval and
within 1 % of the simulated mean (seeded, so the verdict is reproducible).
"""

from __future__ import annotations

import pytest

from multispin_cli.analysis.simulation import SimulationOptions, simulate_plans
from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.profile import load_profile
from multispin_cli.planners.report import plan_report

PROFILES = sorted(profiles_dir().glob("*.toml"))


def test_profiles_ship():
    assert PROFILES, f"no profiles in {profiles_dir()}"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_prediction_holds_over_50000_rounds(path):
    system = load_profile(path).system
    report = plan_report(system, mode="both")
    results = simulate_plans(system, report.plans, SimulationOptions(rounds=50_000, seed=2024))
    assert [r.name for r in results] == ["homogeneous", "heterogeneous"]
    for result in results:
        low, high = result.ci95_tokens_per_s
        predicted = result.predicted_tokens_per_s
        assert predicted > 0
        assert low <= predicted <= high, (result.name, predicted, low, high)
        assert abs(result.goodput_tokens_per_s / predicted - 1) < 0.01, result.name
