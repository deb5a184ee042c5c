"""The equal-finish-time bandwidth split: closed forms, optimality and the bandwidth budget."""

from __future__ import annotations

import numpy as np
import pytest
from builders import random_system, simple_system
from scipy.optimize import minimize_scalar

from multispin_cli.model.goodput import phase_seconds
from multispin_cli.planners.split import Demand, equal_finish_split, least_deadline


def test_fixed_snr_with_equal_device_times_has_a_closed_form():
    system = simple_system(acceptance=(0.7, 0.7, 0.7), snr_db=(0.0, 10.0, 20.0), draft_ms=(2, 2, 2),
                           overhead_ms=(0, 0, 0), bits=800.0, header=100.0)
    lengths = np.array([3, 3, 3])
    deadline, bandwidth = equal_finish_split(system, lengths)
    bits = 100.0 + 800.0 * 3
    eta = np.log2(1 + 10 ** (np.array([0.0, 10.0, 20.0]) / 10))
    expected = 0.006 + (bits / eta).sum() / system.bandwidth_hz
    assert deadline == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(bandwidth, bits / (eta * (expected - 0.006)), rtol=1e-10)
    # the weakest channel gets the most bandwidth
    assert bandwidth[0] > bandwidth[1] > bandwidth[2]


@pytest.mark.parametrize("seed", range(12))
def test_every_drafting_user_finishes_together_and_the_band_is_used(seed):
    rng = np.random.default_rng(seed)
    system = random_system(rng, 6, 6)
    lengths = rng.integers(0, 7, size=(5, 6))
    lengths[0] = 0
    deadline, bandwidth = equal_finish_split(system, lengths)
    assert deadline[0] == 0 and np.all(bandwidth[0] == 0)  # nobody drafts: no uplink at all
    for row in range(1, 5):
        if not lengths[row].any():
            continue
        phase = phase_seconds(system, lengths[row], bandwidth[row])
        drafting = lengths[row] > 0
        np.testing.assert_allclose(phase[drafting], deadline[row], rtol=1e-9)
        assert np.all(bandwidth[row][~drafting] == 0)
        assert bandwidth[row].sum() == pytest.approx(system.bandwidth_hz, rel=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_no_two_user_split_beats_it(seed):
    """Oracle: minimise the later finish time over the split of two users by a scalar search."""
    rng = np.random.default_rng(100 + seed)
    system = random_system(rng, 2, 4)
    lengths = rng.integers(1, 5, size=2)
    deadline, _ = equal_finish_split(system, lengths)
    total = system.bandwidth_hz

    def later(share):
        return phase_seconds(system, lengths, np.array([share, 1 - share]) * total).max()

    best = minimize_scalar(later, bounds=(1e-12, 1 - 1e-12), method="bounded", options={"xatol": 1e-13})
    assert deadline <= best.fun * (1 + 1e-9)
    assert deadline == pytest.approx(best.fun, rel=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_a_start_near_the_root_gives_the_same_split_in_fewer_steps(seed):
    """``near`` (the deadline of the LP that found a plan) only moves where the root search starts:
    the same deadlines and splits from any start, clipped into the bracket, nobody-drafts plans
    included; from the root itself, fewer evaluations of the demand than from the bracket's end."""
    rng = np.random.default_rng(200 + seed)
    system = random_system(rng, 40, 8, no_uplink_share=0.1 if seed % 2 else 0.0)
    lengths = rng.integers(0, 9, size=(5, 40))
    lengths[0] = 0
    deadline, bandwidth = equal_finish_split(system, lengths)
    root = float(np.median(deadline[1:]))
    for near in (root, 1.3 * root, 0.6 * root, 1e-12, 1e6):
        d, w = equal_finish_split(system, lengths, near=near)
        np.testing.assert_allclose(d, deadline, rtol=1e-12)
        np.testing.assert_allclose(w, bandwidth, rtol=1e-9, atol=1e-9 * system.bandwidth_hz)
    calls = {}
    for start in ("lo", "root"):
        demand = Demand(system, lengths[1])
        count = [0]

        def totals(x, demand=demand, count=count):
            count[0] += 1
            return demand.totals(x)

        lo, hi = np.array([1e-9]), np.array([10.0])
        x = least_deadline(totals, system.bandwidth_hz, lo, hi, np.zeros(1),
                           start=None if start == "lo" else np.array([deadline[1]]))
        assert x[0] == pytest.approx(deadline[1], rel=1e-12)
        calls[start] = count[0]
    assert calls["root"] < calls["lo"]


def test_vectorised_over_plans_matches_one_at_a_time():
    rng = np.random.default_rng(7)
    system = random_system(rng, 5, 5)
    lengths = rng.integers(0, 6, size=(7, 5))
    deadlines, bandwidths = equal_finish_split(system, lengths)
    for row in range(7):
        d, w = equal_finish_split(system, lengths[row])
        assert d == pytest.approx(deadlines[row], rel=1e-12)
        np.testing.assert_allclose(w, bandwidths[row], rtol=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("block", [1 << 18, 120])  # one block, or one user at a time
def test_level_prices_equal_the_demand_of_every_length(seed, block, monkeypatch):
    """The heterogeneous planner's fast pricing table gives Demand's numbers, slopes included."""
    from dataclasses import replace

    from multispin_cli.model.link import LinkModel
    from multispin_cli.planners import level_prices
    from multispin_cli.planners.level_prices import LevelPrices
    from multispin_cli.planners.split import Demand

    monkeypatch.setattr(level_prices, "BLOCK_ELEMENTS", block)

    rng = np.random.default_rng(seed)
    system = random_system(rng, 40, 6, power_share=[0.0, 0.5, 1.0][seed % 3], no_uplink_share=0.3 * (seed % 2))
    if seed >= 4:  # a gap and a cap: not smooth, priced through Demand (the same layout)
        system = replace(system, channel=system.channel.with_link(LinkModel("shannon-gap", gap=2.0, cap=4.0)))
    assert system.smooth == (seed < 4)
    levels = np.arange(system.max_draft_length + 1)
    demand = Demand(system, np.ascontiguousarray(np.broadcast_to(levels[:, None], (levels.size, system.users))))
    draft = system.draft_overhead_s + system.draft_s_per_token * levels[:, None]
    deadlines = np.concatenate([np.geomspace(1e-4, 1.0, 40), draft.ravel()[:20]])  # some exactly at a device time
    need, slope = LevelPrices(system).at(deadlines, derivative=True)
    want, want_slope = (x.transpose(0, 2, 1) for x in demand.at_deadlines(deadlines, derivative=True))
    np.testing.assert_array_equal(np.isfinite(need), np.isfinite(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(need[finite], want[finite], rtol=1e-13, atol=0)
    known = finite & np.isfinite(want_slope)
    np.testing.assert_array_equal(np.isnan(slope[finite]), np.isnan(want_slope[finite]))
    np.testing.assert_allclose(slope[known], want_slope[known], rtol=1e-12, atol=0)
