"""Resource blocks and link adaptation: exact whole-block plans against exhaustive search, the
rate models' inverses against brute force, and the band a plan needs."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from builders import random_system

from multispin_cli.model.channel import Channel
from multispin_cli.model.goodput import phase_seconds
from multispin_cli.model.link import NR_CQI_EFFICIENCY, LinkModel
from multispin_cli.planners.exhaustive import exhaustive_blocks_best
from multispin_cli.planners.heterogeneous import plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.planners.knapsack_hull import upper_hull
from multispin_cli.planners.needs import plan_needs
from multispin_cli.planners.resource_blocks import least_deadline_split

LINKS = {
    "shannon": LinkModel(),
    "gap": LinkModel("shannon-gap", 10 ** 0.3, 4.0),
    "cqi": LinkModel("nr-cqi", 1.0),
}


def block_cell(seed: int, *, link: str = "shannon", users: int | None = None, max_len: int | None = None):
    """A random small cell on N whole blocks of 180 kHz, with random per-user minimum blocks."""
    rng = np.random.default_rng(seed)
    users = users or int(rng.integers(1, 4))
    max_len = max_len if max_len is not None else int(rng.integers(1, 4))
    system = random_system(rng, users, max_len)
    blocks = int(rng.integers(max(users, 2), max(users, 2) + 7))
    block_hz = 180e3
    # Uploads that take a fair part of the server time on an equal share: the blocks matter.
    channel = system.channel.with_link(LINKS[link])
    share_rate = float(np.median(system.channel.rate_bps(np.full(users, blocks * block_hz / users))))
    scale = float(rng.uniform(0.05, 1.0)) * float(system.verify(users)) * share_rate
    return replace(
        system,
        channel=channel,
        draft_s_per_token=rng.uniform(0.01, 0.12, users) * float(system.verify(users)),
        bits_per_token=scale / max(max_len, 1),
        header_bits=float(rng.choice([0.0, scale / 4])),
        bandwidth_hz=blocks * block_hz,
        resource_block_hz=block_hz,
        min_resource_blocks=rng.integers(1, 3, users),
    )


ORACLE = [(seed, link) for seed in range(16) for link in LINKS]
SPOT = [(seed, link) for seed in range(8) for link in LINKS]


@pytest.mark.parametrize("seed,link", SPOT)
def test_block_split_is_the_least_deadline_over_every_whole_block_split(seed, link):
    system = block_cell(seed, link=link)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, system.max_draft_length + 1, (6, system.users))
    deadline, bandwidth = least_deadline_split(system, lengths)
    n = system.resource_blocks
    splits = np.array([s for s in itertools.product(range(n + 1), repeat=system.users) if sum(s) <= n], float)
    for row in range(lengths.shape[0]):
        drafting = lengths[row] > 0
        ok = np.all(np.where(drafting, splits >= system.min_resource_blocks, splits == 0), axis=1)
        phases = phase_seconds(system, np.broadcast_to(lengths[row], splits[ok].shape), splits[ok] * 180e3)
        best = phases.max(axis=1, initial=0.0).min(initial=np.inf)
        assert deadline[row] == pytest.approx(best, rel=1e-12) if np.isfinite(best) else deadline[row] == np.inf
        if np.isfinite(best):
            blocks = bandwidth[row] / 180e3
            assert np.allclose(blocks, np.round(blocks)) and blocks.sum() <= n + 1e-9
            assert np.all(blocks[drafting] >= system.min_resource_blocks[drafting] - 1e-9)
            assert phase_seconds(system, lengths[row], bandwidth[row]).max() == pytest.approx(deadline[row], rel=1e-12)


@pytest.mark.parametrize("seed,link", ORACLE)
def test_block_planners_equal_exhaustive_search_over_lengths_and_whole_block_splits(seed, link):
    system = block_cell(seed, link=link)
    homogeneous = plan_homogeneous(system)
    _, _, best_common = exhaustive_blocks_best(system, homogeneous=True)
    assert homogeneous.goodput_tokens_per_s == pytest.approx(best_common, rel=1e-12)
    heterogeneous = plan_heterogeneous(system, start=homogeneous)
    _, _, best = exhaustive_blocks_best(system)
    assert heterogeneous.goodput_tokens_per_s == pytest.approx(best, rel=1e-12)
    assert heterogeneous.upper_bound_tokens_per_s >= best * (1 - 1e-9)
    for plan in (homogeneous, heterogeneous):
        blocks = plan.evaluation.bandwidth_hz / 180e3
        drafting = plan.evaluation.draft_lengths > 0
        assert np.allclose(blocks, np.round(blocks)) and blocks.sum() <= system.resource_blocks + 1e-9
        assert np.all(blocks[drafting] >= system.min_resource_blocks[drafting] - 1e-9)
        # The continuous split of the same band is an upper bound on the whole-block plan.
        continuous = replace(system, resource_block_hz=None, min_resource_blocks=None)
        assert plan_heterogeneous(continuous).goodput_tokens_per_s >= plan.goodput_tokens_per_s * (1 - 1e-12)


@pytest.mark.parametrize("seed,link", SPOT)
def test_hull_bound_bounds_and_its_plans_reach_the_optimum_without_the_exact_dp(seed, link, monkeypatch):
    """Large cells use the concave-hull LP instead of the exact DP: forced here on small cells."""
    import multispin_cli.planners.heterogeneous as het

    monkeypatch.setattr(het, "EXACT_PLANS", 1)
    system = block_cell(seed, link=link)
    plan = het.plan_heterogeneous(system)
    _, _, best = exhaustive_blocks_best(system)
    assert plan.upper_bound_tokens_per_s >= best * (1 - 1e-9)
    assert best * (1 + 1e-9) >= plan.goodput_tokens_per_s >= best * (1 - 1e-3)


def test_upper_hull_bounds_every_point_and_is_concave():
    rng = np.random.default_rng(5)
    values = np.cumsum(rng.uniform(0, 1, (200, 7)), axis=1)
    values[:, 0] = 0
    weights = np.cumsum(np.round(rng.uniform(0, 2, (200, 7))), axis=1)
    weights[:, 0] = 0
    weights[:, 1:] += 1  # a drafting user always needs some band (steps: many levels share one weight)
    hv, hw, hl = upper_hull(values, weights)
    for row in range(200):
        finite = np.isfinite(hw[row])
        x, y = hw[row][finite], hv[row][finite]
        assert np.all(np.diff(x) > 0) and np.all(np.diff(y) > 0)
        slopes = np.diff(y) / np.diff(x)
        assert np.all(np.diff(slopes) <= 1e-12)
        assert np.all(values[row, hl[row][finite]] == y)
        # every point lies on or below the hull
        assert np.all(np.interp(weights[row], x, y, right=y[-1]) >= values[row] - 1e-12)


@pytest.mark.parametrize("link", ["gap", "cqi"])
def test_inverse_rate_is_the_least_bandwidth_on_a_fine_grid(link):
    channel = Channel.concat([Channel.power_limited_users([2e6, 5e7]), Channel.fixed_snr([3.0, 300.0])])
    channel = channel.with_link(LINKS[link])
    grid = np.geomspace(1e2, 1e9, 40001)
    rates = channel.rate_bps(grid[:, None])  # (grid, K)
    for target in np.geomspace(1e3, 5e7, 25):
        need, _ = channel.bandwidth_for_rate(np.full(4, target))
        carries = rates >= target * (1 - 1e-12)
        first = np.where(carries.any(axis=0), grid[np.argmax(carries, axis=0)], np.inf)
        assert np.all(channel.rate_bps(np.where(np.isfinite(need), need, 1.0))[np.isfinite(need)]
                      >= target * (1 - 1e-9))
        # the grid's first carrying point is at most one grid step above the least bandwidth
        assert np.all((need <= first * (1 + 1e-9)) | ~np.isfinite(first))
        assert np.all(np.isfinite(need) == np.isfinite(first))
        blocks = channel.blocks_for_rate(np.full(4, target), 180e3)
        n = np.arange(1, 3000)[:, None]
        ok = channel.rate_bps(n * 180e3) >= target * (1 - 1e-12)
        least = np.where(ok.any(axis=0), n[np.argmax(ok, axis=0), 0], np.inf)
        assert np.array_equal(blocks, least)


def test_nr_cqi_steps_follow_table_5_2_2_1_2():
    link = LinkModel("nr-cqi", 1.0)
    eff, snr = link.levels
    assert eff[0] == pytest.approx(0.1523, abs=1e-4) and eff[-1] == pytest.approx(5.5547, abs=1e-4)
    assert np.all(np.diff(NR_CQI_EFFICIENCY) > 0)
    assert link.efficiency(snr[6]) == eff[6] and link.efficiency(snr[6] * 0.999) == eff[5]
    assert link.efficiency(snr[0] * 0.999) == 0.0
    gap = LinkModel("shannon-gap", 2.0, 3.0)
    assert gap.efficiency(1e9) == 3.0 and gap.efficiency(2.0) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(6))
def test_replanning_with_exactly_the_needed_band_keeps_the_goodput(seed):
    system = block_cell(seed, users=3, max_len=4) if seed % 2 else random_system(np.random.default_rng(seed), 4, 5)
    for plan in (plan_homogeneous(system), plan_heterogeneous(system)):
        needs = plan_needs(system, plan)
        assert needs.needed_hz <= system.bandwidth_hz * (1 + 1e-12)
        assert needs.needed_hz + needs.spare_hz == pytest.approx(system.bandwidth_hz)
        if needs.needed_hz == 0:
            continue
        again = plan_heterogeneous(system.with_bandwidth(needs.needed_hz))
        assert again.goodput_tokens_per_s >= plan.goodput_tokens_per_s * (1 - 1e-3)


@pytest.mark.parametrize("seed", range(6))
def test_leftover_blocks_are_all_handed_out_and_never_raise_the_deadline(seed):
    system = block_cell(seed, users=3, max_len=3)
    plan = plan_heterogeneous(system)
    ev = plan.evaluation
    if ev.draft_lengths.max() == 0:
        return
    least, minimal = least_deadline_split(system, ev.draft_lengths)
    assert ev.draft_upload_s <= least * (1 + 1e-12)
    # Shannon rates: more blocks never slow a user, so no block is left idle.
    assert ev.bandwidth_hz.sum() == pytest.approx(system.bandwidth_hz)
    assert np.all(ev.bandwidth_hz >= minimal - 1e-6)


@pytest.mark.parametrize("seed,link", [(s, l) for s in range(6) for l in ("gap", "cqi")])
def test_continuous_step_rate_split_is_the_least_deadline_that_fits(seed, link):
    rng = np.random.default_rng(50 + seed)
    system = random_system(rng, 4, 4)
    system = replace(system, channel=system.channel.with_link(LINKS[link]))
    lengths = rng.integers(1, 5, (5, 4))
    deadline, bandwidth = least_deadline_split(system, lengths)
    from multispin_cli.planners.split import bandwidth_for_deadline

    for row in range(5):
        if not np.isfinite(deadline[row]):
            continue
        assert bandwidth[row].sum() <= system.bandwidth_hz * (1 + 1e-9)
        assert phase_seconds(system, lengths[row], bandwidth[row]).max() <= deadline[row] * (1 + 1e-12)
        sooner, _ = bandwidth_for_deadline(system, lengths[row], deadline[row] * (1 - 1e-9))
        assert sooner.sum() > system.bandwidth_hz


def test_block_split_never_hands_out_more_blocks_than_exist_near_a_rate_ceiling():
    """A power-limited user near its rate ceiling needs hundreds of blocks, where the inverse rate
    can ask one more block at a finish time than the count that finishes then: the split must keep
    a deadline whose counts fit (it once snapped to one that took N + 1 blocks)."""
    from multispin_cli.model.synthetic import busy_cell

    users = 1000
    cell = busy_cell(np.random.default_rng(7), users)
    blocks = int(cell.bandwidth_hz // 180e3)
    system = replace(cell, bandwidth_hz=blocks * 180e3, channel=cell.channel.with_link(LINKS["gap"]),
                     resource_block_hz=180e3, min_resource_blocks=np.ones(users, dtype=int))
    lengths = plan_homogeneous(system).evaluation.draft_lengths
    rng = np.random.default_rng(1)
    lengths = np.clip(lengths[None] + rng.integers(-3, 4, (16, users)), 0, system.max_draft_length)
    deadline, bandwidth = least_deadline_split(system, lengths)
    used = bandwidth.sum(axis=1) / 180e3
    assert np.all(used <= blocks + 1e-6)
    finish = phase_seconds(system, lengths, bandwidth).max(axis=1)
    assert np.allclose(finish, deadline, rtol=1e-12)


@pytest.mark.parametrize("seed,link", [(s, l) for s in range(4) for l in LINKS])
def test_block_needs_between_two_deadlines_equal_pricing_every_user(seed, link):
    """The planner prices a deadline between two known ones only where the block counts differ."""
    from multispin_cli.planners.split import Demand

    system = block_cell(seed, link=link, users=6, max_len=5)
    levels = np.arange(system.max_draft_length + 1)
    demand = Demand(system, np.ascontiguousarray(np.broadcast_to(levels[:, None], (levels.size, system.users))))
    rng = np.random.default_rng(seed)
    base = float(system.verify(system.users))
    for _ in range(5):
        d1, d, d2 = np.sort(rng.uniform(0.2, 3.0, 3)) * base
        earlier, later = demand.at_deadlines(np.array([d1, d2]))
        assert np.array_equal(demand.blocks_between(d, earlier, later), demand.at_deadlines(np.array([d]))[0])


@pytest.mark.parametrize("keep_bytes", [None, 4_000])
def test_needs_kept_across_a_search_equal_pricing_every_deadline(keep_bytes, monkeypatch):
    """The interval search keeps the needs at the deadlines it met, sorted, and prices a new one
    between its two known neighbours: batches in any order, repeated deadlines and (with a small
    store) the oldest dropped must give the needs of pricing each deadline alone."""
    from multispin_cli.planners import step_intervals
    from multispin_cli.planners.level_prices import LevelPrices

    if keep_bytes is not None:
        monkeypatch.setattr(step_intervals, "KNOWN_BYTES", keep_bytes)
    system = block_cell(1, users=5, max_len=4)
    prices = LevelPrices(system)
    rng = np.random.default_rng(7)
    base = float(system.verify(system.users))
    for batch in (rng.uniform(0.2, 3.0, 40), rng.uniform(0.5, 1.0, 25), np.repeat(rng.uniform(0.2, 3.0, 5), 3)):
        deadlines = batch * base
        got = step_intervals._right_end_demands(system, prices, deadlines)
        assert np.array_equal(got, prices.at(deadlines))
    _, known, times = step_intervals._KNOWN[prices]
    assert times == sorted(known)
    order = step_intervals._coarse_to_fine(9)
    assert order[:3] == [0, 8, 4] and sorted(order) == list(range(9))


@pytest.mark.parametrize("seed,link", SPOT)
def test_dual_value_bounds_the_hull_lp_and_meets_it_at_its_price(seed, link):
    from multispin_cli.planners.heterogeneous import level_bandwidth
    from multispin_cli.planners.knapsack_hull import dual_value, solve

    system = block_cell(seed, link=link, users=5, max_len=6)
    weights = level_bandwidth(system, np.array([1.0, 2.0]) * float(system.verify(system.users)))
    values = np.broadcast_to(system.tokens_per_round, weights.shape)
    sol = solve(values, weights, system.bandwidth_hz)
    at_own, _ = dual_value(values, weights, sol.price, system.bandwidth_hz)
    assert np.allclose(at_own, sol.lp_value, rtol=1e-12)
    for scale in (0.0, 0.5, 0.9, 1.1, 2.0):
        other, plans = dual_value(values, weights, sol.price * scale + 1e-9, system.bandwidth_hz)
        assert np.all(other >= sol.lp_value * (1 - 1e-12))
        assert plans.shape == (2, system.users)


@pytest.mark.parametrize("link", LINKS)
def test_listing_the_last_finish_times_gives_the_bisection_s_split(link, monkeypatch):
    """The block split ends its bisection by listing the few moving users' finish times: the same
    deadlines and blocks as bisecting on to the last ulps (on a busy 200-user cell)."""
    import multispin_cli.planners.resource_blocks as rb
    from multispin_cli.model.synthetic import busy_cell

    users = 200
    cell = busy_cell(np.random.default_rng(3), users)
    system = replace(cell, bandwidth_hz=(2 * users + 60) * 180e3, channel=cell.channel.with_link(LINKS[link]),
                     resource_block_hz=180e3, min_resource_blocks=np.random.default_rng(4).integers(1, 3, users))
    lengths = np.random.default_rng(5).integers(0, system.max_draft_length + 1, (24, users))
    listed = least_deadline_split(system, lengths)
    monkeypatch.setattr(rb, "_LIST_USERS", -1)
    bisected = least_deadline_split(system, lengths)
    assert np.array_equal(listed[0], bisected[0]) and np.array_equal(listed[1], bisected[1])


def test_interval_bound_holds_with_a_steep_measured_table():
    """A supporting line of a steep verification table can be negative over the cell's range of
    draft lengths: its denominator then bounds nothing (the bound once came out negative, below
    the plan that lies in the interval)."""
    import multispin_cli.planners.heterogeneous as het
    from multispin_cli.model.synthetic import busy_cell
    from multispin_cli.model.verifier import VerifyTime

    users = 500
    cell = busy_cell(np.random.default_rng(11), users)
    n = np.arange(1, users * 17 + 1)
    system = replace(cell, bandwidth_hz=(cell.bandwidth_hz // 180e3) * 180e3, resource_block_hz=180e3,
                     min_resource_blocks=np.ones(users, dtype=int),
                     verify=VerifyTime.from_table(n, 0.03 + 2e-5 * n + 0.002 * np.sin(n / 50.0) ** 2))
    plan = plan_homogeneous(system)
    d = plan.evaluation.draft_upload_s
    for low in (0.98, 0.7):
        bounds, _, _ = het._interval_bounds(system, het.level_demand(system), np.array([d * low]),
                                            np.array([d * 1.0001]), plan.goodput_tokens_per_s * 0.5)
        assert bounds[0] >= plan.goodput_tokens_per_s
