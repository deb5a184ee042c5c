"""The one-round scheduler gives exactly the batched policies' decisions, warm start or not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.profile import load_profile
from multispin_cli.model.fading import Fading, draw_gains
from multispin_cli.model.synthetic import busy_cell
from multispin_cli.planners.heterogeneous import plan_heterogeneous
from multispin_cli.planners.policies import Controller, Staircase, decide
from multispin_cli.planners.round_scheduler import RoundScheduler


@pytest.mark.parametrize("users,rho", [(3, 0.0), (12, 0.9), (40, 0.0), (40, 0.99)])
def test_round_after_round_matches_the_batched_decision(users, rho):
    system = busy_cell(np.random.default_rng(users), users, max_len=6)
    system = replace(system, fading=Fading.uniform(users, "rayleigh"))
    plan = plan_heterogeneous(system).evaluation
    csi, _, _ = draw_gains(system.fading, 60, np.random.default_rng(7), rho=rho)
    skip = np.quantile(csi, 0.2, axis=0)
    controls = [Controller("adaptive-split", plan.draft_lengths, plan.bandwidth_hz),
                Controller("adaptive", plan.draft_lengths, plan.bandwidth_hz,
                           rule=Staircase.fixed(plan.draft_lengths, system.max_draft_length, skip))]
    for control in controls:
        want_l, want_w = decide(system, control, csi)
        scheduler = RoundScheduler(system, control)
        for r in range(csi.shape[0]):
            lengths, bandwidth = scheduler.step(csi[r])
            np.testing.assert_array_equal(lengths, want_l[r])
            np.testing.assert_allclose(bandwidth, want_w[r], rtol=1e-9, atol=1e-9 * system.bandwidth_hz)
            assert scheduler.last_deadline is not None
        assert scheduler.fallbacks == 0  # every round took the fast path (not the general fallback)
        assert any((want_l[:, k] == 0).any() for k in range(users)) or control.policy == "adaptive-split"


def test_resource_blocks_take_the_general_exact_path():
    system = load_profile(profiles_dir() / "nr-30khz-51rb-qwen3.toml").system
    system = replace(system, fading=Fading.uniform(system.users, "rayleigh"))
    plan = plan_heterogeneous(system).evaluation
    control = Controller("adaptive-split", plan.draft_lengths, plan.bandwidth_hz)
    csi = np.random.default_rng(3).exponential(size=(5, system.users))
    want_l, want_w = decide(system, control, csi)
    scheduler = RoundScheduler(system, control)
    for r in range(5):
        lengths, bandwidth = scheduler.step(csi[r])
        np.testing.assert_array_equal(bandwidth, want_w[r])


def test_only_the_adaptive_policies_run_round_by_round():
    system = busy_cell(np.random.default_rng(0), 3)
    with pytest.raises(ValueError):
        RoundScheduler(system, Controller("static", np.ones(3, int), np.ones(3)))
