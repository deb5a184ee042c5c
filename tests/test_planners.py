"""Both planners against exhaustive search, the sanity anchors of docs/model.md 5, and their invariants."""

from __future__ import annotations

import itertools

from dataclasses import replace

import numpy as np
import pytest
from builders import busy_cell, random_system, simple_system
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multispin_cli.model.acceptance import position_matrix
from multispin_cli.model.channel import Channel
from multispin_cli.model.goodput import evaluate, phase_seconds
from multispin_cli.model.system import System
from multispin_cli.model.verifier import VerifyTime
from multispin_cli.planners.baselines import all_baselines, fixed_equal, mean_user
from multispin_cli.planners.exhaustive import exhaustive_best
from multispin_cli.planners.heterogeneous import plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.planners.report import plan_report
from multispin_cli.planners.split import equal_finish_split, split_goodput

ORACLE_CASES = [
    (seed, batching, table)
    for seed in range(40)
    for batching, table in (("ragged", False), ("padded", False), ("ragged", True), ("padded", True))
]


@pytest.mark.parametrize("seed,batching,table", ORACLE_CASES)
def test_heterogeneous_matches_exhaustive_search(seed, batching, table):
    rng = np.random.default_rng(seed)
    users, max_len = int(rng.integers(1, 5)), int(rng.integers(1, 7))
    system = random_system(rng, users, max_len, batching=batching, table=table)
    plan = plan_heterogeneous(system, start=plan_homogeneous(system))
    _, best = exhaustive_best(system)
    assert plan.goodput_tokens_per_s >= best * (1 - 1e-3)  # the target: within 0.1 %
    assert plan.goodput_tokens_per_s <= best * (1 + 1e-9)  # and no better than possible
    assert plan.upper_bound_tokens_per_s >= best * (1 - 1e-9)  # the bound is a bound


ANY_TABLE_CASES = [(seed, batching, lp) for seed in range(16) for batching in ("ragged", "padded")
                   for lp in (False, True)]


@pytest.mark.parametrize("seed,batching,lp", ANY_TABLE_CASES)
def test_planners_match_exhaustive_search_with_any_table_overheads_and_no_uplink(seed, batching, lp, monkeypatch):
    """A table that falls as well as rises, an engine cost per round and users off the uplink: both
    planners stay exact, through the exact small-cell knapsack and through the LP bound (``lp``)."""
    from multispin_cli.planners import heterogeneous

    if lp:  # the path large cells take, on a cell exhaustive search can check
        monkeypatch.setattr(heterogeneous, "EXACT_PLANS", 1)
    rng = np.random.default_rng(7000 + seed)
    users, max_len = int(rng.integers(1, 5)), int(rng.integers(1, 7))
    system = random_system(rng, users, max_len, batching=batching, table="any", round_overhead=True,
                           no_uplink_share=0.4)
    assert np.any(np.diff(system.verify.seconds) < 0)  # the table really falls somewhere
    homogeneous = plan_homogeneous(system)
    _, best_common = exhaustive_best(system, homogeneous=True)
    assert homogeneous.goodput_tokens_per_s == pytest.approx(best_common, rel=1e-12)
    plan = plan_heterogeneous(system, start=homogeneous)
    _, best = exhaustive_best(system)
    assert plan.goodput_tokens_per_s >= best * (1 - 1e-3)
    assert plan.goodput_tokens_per_s <= best * (1 + 1e-9)
    assert plan.upper_bound_tokens_per_s >= best * (1 - 1e-9)


@pytest.mark.parametrize("seed", range(40))
def test_the_tangent_interval_bound_never_falls_below_the_optimum(seed, monkeypatch):
    """Large cells bound each deadline interval with the tangent of the convex demands at its right
    end; forced onto small busy cells (fixed-SNR and power-limited users, scarce to ample band), the
    bound stays at or above exhaustive search's optimum and the plan reaches it."""
    from multispin_cli.model.synthetic import busy_cell
    from multispin_cli.planners import heterogeneous

    monkeypatch.setattr(heterogeneous, "EXACT_PLANS", 1)
    rng = np.random.default_rng(9100 + seed)
    users = int(rng.integers(2, 6))
    system = busy_cell(rng, users, max_len=int(rng.integers(2, 6 if users > 4 else 8)))
    system = replace(system, bandwidth_hz=system.bandwidth_hz * rng.uniform(0.02, 2.0))
    assert system.smooth  # the tangent path
    plan = plan_heterogeneous(system, start=plan_homogeneous(system))
    _, best = exhaustive_best(system)
    assert plan.goodput_tokens_per_s == pytest.approx(best, rel=1e-9)
    # Each interval's own bound against every plan whose deadline falls inside it (the planner's
    # overall bound cannot show a wrong interval bound: it is at least the plan it found).
    vectors = np.array(list(itertools.product(range(system.max_draft_length + 1), repeat=users)))
    goodput, deadline, _ = split_goodput(system, vectors)
    d_lo, d_hi = heterogeneous._deadline_range(system)
    points = np.geomspace(d_lo, d_hi, 9)
    bounds, _, _ = heterogeneous._interval_bounds(system, heterogeneous.level_demand(system), points[:-1],
                                                  points[1:], 0.0)
    for a, b, bound in zip(points[:-1], points[1:], bounds):
        inside = (deadline >= a) & (deadline <= b) & (vectors.sum(axis=1) > 0)
        if inside.any():
            assert bound >= goodput[inside].max() * (1 - 1e-12)


def test_a_steep_table_line_never_makes_an_interval_bound_negative():
    """A measured table's supporting line can be negative over a large cell's range (its
    denominator then is not positive): the interval holding the homogeneous plan's deadline must
    still be bounded at or above that plan, not by a negative number (then it was never searched)."""
    from multispin_cli.model.synthetic import busy_cell
    from multispin_cli.planners import heterogeneous

    system = busy_cell(np.random.default_rng(11), 500)
    n = np.arange(1, 8501)
    system = replace(system, verify=VerifyTime.from_table(n, 0.03 + 2e-5 * n + 0.002 * np.sin(n / 50) ** 2))
    start = plan_homogeneous(system)
    d = start.evaluation.draft_upload_s
    assert d > 0  # the homogeneous plan drafts: its deadline lies in the interval below
    bounds, _, _ = heterogeneous._interval_bounds(system, heterogeneous.level_demand(system),
                                                  np.array([0.98 * d]), np.array([1.0001 * d]), 0.0)
    assert bounds[0] >= start.evaluation.goodput_tokens_per_s * (1 - 1e-12)


def test_round_overhead_and_no_uplink_enter_the_round_time():
    system = simple_system(bandwidth_hz=1e5)
    lengths = np.array([3, 2])
    base = plan_homogeneous(system)
    slower = replace(system, round_overhead_s=0.01)
    ev, ev_slow = (evaluate(s, lengths, np.array([5e4, 5e4])) for s in (system, slower))
    assert ev_slow.round_s == pytest.approx(ev.round_s + 0.01, rel=1e-12)
    wired = replace(system, no_uplink=np.array([True, False]))
    deadline, bandwidth = equal_finish_split(wired, lengths)
    assert bandwidth[0] == 0.0 and bandwidth[1] == pytest.approx(1e5)
    both_off = replace(system, no_uplink=np.array([True, True]))
    deadline, bandwidth = equal_finish_split(both_off, lengths)
    assert deadline == pytest.approx(0.006) and np.all(bandwidth == 0.0)  # 3 tokens of 2 ms, no upload
    assert plan_homogeneous(both_off).goodput_tokens_per_s > base.goodput_tokens_per_s


@pytest.mark.parametrize("seed", range(30))
def test_homogeneous_matches_exhaustive_search_over_common_lengths(seed):
    rng = np.random.default_rng(1000 + seed)
    system = random_system(rng, int(rng.integers(1, 6)), int(rng.integers(0, 9)), batching="padded")
    plan = plan_homogeneous(system)
    lengths, best = exhaustive_best(system, homogeneous=True)
    assert plan.goodput_tokens_per_s == pytest.approx(best, rel=1e-12)
    assert plan.draft_length == lengths[0]


@pytest.mark.parametrize("seed", range(10))
def test_heterogeneous_is_never_below_the_homogeneous_plan_or_a_baseline(seed):
    rng = np.random.default_rng(2000 + seed)
    system = random_system(rng, 40, 10)
    report = plan_report(system, mode="both")
    het = report.heterogeneous.goodput_tokens_per_s
    assert het >= report.homogeneous.goodput_tokens_per_s * (1 - 1e-12)
    for baseline in report.baselines.values():
        assert het >= baseline.goodput_tokens_per_s * (1 - 1e-12)
        # every baseline is one common length with a worse split than the homogeneous planner's
        assert report.homogeneous.goodput_tokens_per_s >= baseline.goodput_tokens_per_s * (1 - 1e-12)


def test_large_cell_is_close_to_its_bound():
    system = busy_cell(np.random.default_rng(5), 300, max_len=12)
    plan = plan_heterogeneous(system, start=plan_homogeneous(system))
    assert plan.evaluation.draft_lengths.max() > 0
    assert plan.upper_bound_tokens_per_s / plan.goodput_tokens_per_s - 1 < 5e-3


# ---------------------------------------------------------------- docs/model.md 5: the Leviathan limit


@pytest.mark.parametrize("alpha,cost", [(0.6, 0.05), (0.8, 0.05), (0.9, 0.1), (0.7, 0.3), (0.5, 0.6)])
def test_single_user_with_unlimited_bandwidth_reduces_to_leviathan(alpha, cost):
    """K = 1, bandwidth unlimited, T_v = 1, tau = c: goodput (1 - a^(L+1)) / ((1 - a)(L c + 1))."""
    max_len = 20
    system = System(
        names=("only",),
        accept_prob=position_matrix(acceptance=[alpha], max_draft_length=max_len),
        draft_s_per_token=np.array([cost]),
        draft_overhead_s=np.array([0.0]),
        channel=Channel.fixed_snr([1.0]),
        bits_per_token=1e-6,
        header_bits=0.0,
        bandwidth_hz=1e12,
        max_draft_length=max_len,
        verify=VerifyTime.from_affine(base_s=1.0, per_token_s=0.0),
    )
    lengths = np.arange(max_len + 1)
    leviathan = (1 - alpha ** (lengths + 1)) / ((1 - alpha) * (lengths * cost + 1))
    plan = plan_homogeneous(system)
    np.testing.assert_allclose(plan.goodput_by_length, leviathan, rtol=1e-9)
    assert plan.draft_length == int(np.argmax(leviathan))
    het = plan_heterogeneous(system, start=plan)
    assert het.goodput_tokens_per_s == pytest.approx(leviathan.max(), rel=1e-9)


# ---------------------------------------------------------------- docs/model.md 5: monotonicity


def _both(system):
    hom = plan_homogeneous(system)
    return hom.goodput_tokens_per_s, plan_heterogeneous(system, start=hom).goodput_tokens_per_s


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    knob=st.sampled_from(["bandwidth", "device", "server", "acceptance"]),
    factor=st.floats(1.05, 4.0),
)
def test_better_resources_never_lower_the_optimum(seed, knob, factor):
    rng = np.random.default_rng(seed)
    system = random_system(rng, int(rng.integers(1, 6)), int(rng.integers(1, 8)))
    if knob == "bandwidth":
        better = system.with_bandwidth(system.bandwidth_hz * factor)
    elif knob == "device":
        better = replace(system, draft_s_per_token=system.draft_s_per_token / factor)
    elif knob == "server":
        better = replace(
            system, verify=VerifyTime(system.verify.tokens, system.verify.seconds / factor, system.verify.affine)
        )
    else:
        better = replace(system, accept_prob=1 - (1 - system.accept_prob) / factor)
    before, after = _both(system), _both(better)
    assert after[0] >= before[0] * (1 - 1e-9)
    assert after[1] >= before[1] * (1 - 1e-9)


def test_bandwidth_sums_to_the_band_whenever_anyone_uploads():
    rng = np.random.default_rng(3)
    for _ in range(10):
        system = random_system(rng, 8, 8)
        report = plan_report(system)
        for plan in report.plans:
            if plan.evaluation.draft_lengths.any():
                assert plan.evaluation.bandwidth_hz.sum() == pytest.approx(system.bandwidth_hz, rel=1e-9)
            else:
                assert plan.evaluation.bandwidth_hz.sum() == 0


# ---------------------------------------------------------------- structure of the plans


def test_homogeneous_compensates_weak_users_heterogeneous_rewards_acceptance():
    """Paper's structural result on a crafted pair: a strong-channel user with high acceptance and a
    weak-channel user with low acceptance. The homogeneous split gives the weak user more band (it
    must finish with the other); the heterogeneous plan turns that around, giving the
    high-acceptance user the longer draft and the larger share."""
    system = simple_system(acceptance=(0.9, 0.4), snr_db=(15.0, 3.0), draft_ms=(2, 2), bandwidth_hz=2e5,
                           bits=500, base_ms=30, per_token_ms=0.5, max_len=10)
    hom = plan_homogeneous(system)
    het = plan_heterogeneous(system, start=hom)
    assert hom.draft_length > 0
    w_hom, w_het = hom.evaluation.bandwidth_hz, het.evaluation.bandwidth_hz
    assert w_hom[1] > w_hom[0]  # compensates the weak channel
    lengths = het.evaluation.draft_lengths
    assert lengths[0] > lengths[1]  # rewards acceptance with length...
    assert w_het[0] > w_het[1]  # ...and with bandwidth
    assert het.goodput_tokens_per_s > hom.goodput_tokens_per_s * 1.05


def test_homogeneous_gives_slow_devices_more_bandwidth():
    system = simple_system(acceptance=(0.7, 0.7), snr_db=(10.0, 10.0), draft_ms=(1.0, 4.0), bandwidth_hz=3e5,
                           base_ms=40)
    plan = plan_homogeneous(system)
    assert plan.draft_length > 0
    assert plan.evaluation.bandwidth_hz[1] > plan.evaluation.bandwidth_hz[0]


@pytest.mark.parametrize("seed", range(8))
def test_padding_never_helps_and_does_not_change_common_lengths(seed):
    rng = np.random.default_rng(3000 + seed)
    ragged = random_system(rng, 5, 6)
    padded = replace(ragged, batching="padded")
    assert plan_homogeneous(padded).goodput_tokens_per_s == pytest.approx(
        plan_homogeneous(ragged).goodput_tokens_per_s, rel=1e-12
    )
    assert _both(padded)[1] <= _both(ragged)[1] * (1 + 1e-9)


def test_padding_pulls_draft_lengths_together():
    """With padded batches a short draft wastes server positions, so lengths spread less."""
    base = simple_system(acceptance=(0.95, 0.9, 0.5, 0.4), snr_db=(15, 15, 15, 15), draft_ms=(1, 1, 1, 1),
                         overhead_ms=(0, 0, 0, 0), bandwidth_hz=1e6, base_ms=20, per_token_ms=1.5, max_len=10)
    ragged = plan_heterogeneous(base).evaluation.draft_lengths
    padded = plan_heterogeneous(replace(base, batching="padded")).evaluation.draft_lengths
    assert np.ptp(padded) < np.ptp(ragged)


# ---------------------------------------------------------------- baselines


def test_baselines_follow_their_definitions():
    system = simple_system(acceptance=(0.8, 0.6, 0.7), snr_db=(5.0, 10.0, 20.0), draft_ms=(2, 3, 4),
                           overhead_ms=(0, 0, 0), bandwidth_hz=3e5, base_ms=30)
    base = all_baselines(system)
    assert list(base) == ["autoregressive", "fixed_equal", "mean_user"]
    ar = base["autoregressive"].evaluation
    assert ar.goodput_tokens_per_s == pytest.approx(3 / (0.030 + 3 * 0.05e-3))
    fe = fixed_equal(system).evaluation
    np.testing.assert_array_equal(fe.draft_lengths, 4)
    np.testing.assert_allclose(fe.bandwidth_hz, 1e5)
    mu = mean_user(system).evaluation
    assert np.all(mu.draft_lengths == mu.draft_lengths[0])
    np.testing.assert_allclose(mu.bandwidth_hz, 1e5)
    # each baseline's round time is set by its slowest user on an equal share
    assert fe.draft_upload_s == pytest.approx(phase_seconds(system, fe.draft_lengths, fe.bandwidth_hz).max())


@pytest.mark.parametrize("seed", range(6))
def test_resource_blocks_with_users_off_the_uplink_match_exhaustive_search(seed):
    """Whole blocks and a user off the uplink: it takes no block, and its draft time bounds the round."""

    rng = np.random.default_rng(9100 + seed)
    system = random_system(rng, 3, 3, round_overhead=True, no_uplink_share=0.0)
    system = replace(system, no_uplink=np.array([True, False, False]), resource_block_hz=system.bandwidth_hz / 6,
                     min_resource_blocks=np.ones(3, dtype=int))
    plan = plan_heterogeneous(system, start=plan_homogeneous(system))
    ev = evaluate(system, plan.evaluation.draft_lengths, plan.evaluation.bandwidth_hz)
    assert ev.goodput_tokens_per_s == pytest.approx(plan.goodput_tokens_per_s, rel=1e-9)
    assert plan.evaluation.bandwidth_hz[0] == 0.0
    lengths = np.array([3, 0, 0])
    deadline, _ = equal_finish_split(system, lengths)
    assert deadline == pytest.approx(system.draft_overhead_s[0] + 3 * system.draft_s_per_token[0])


@pytest.mark.parametrize("seed", range(4))
def test_the_common_lengths_deadlines_are_recovered_from_the_homogeneous_goodputs(seed):
    """D_hi's root search starts at L_max's deadline, and the city-scale search (when the start plan
    drafts nothing) at the best drafting common length's, both recovered from the homogeneous
    plan's goodput per common length: each is that length's equal-finish root to rounding (a wrong
    formula would only slow the searches, so this pins it), and D_hi is the same with or without."""
    from multispin_cli.planners.heterogeneous import _deadline_range, _guesses
    from multispin_cli.planners.homogeneous import common_length_deadlines

    system = busy_cell(np.random.default_rng(seed), 50 * (seed + 1), batching="padded" if seed % 2 else "ragged")
    hom = plan_homogeneous(system)
    longest, drafting = _guesses(system, hom)
    root, _ = equal_finish_split(system, np.full(system.users, system.max_draft_length))
    assert longest == pytest.approx(float(root), rel=1e-12)
    best = int(np.argmax(hom.goodput_by_length[1:])) + 1
    assert drafting == pytest.approx(float(common_length_deadlines(system)[best]), rel=1e-12)
    assert _deadline_range(system, near=longest)[1] == pytest.approx(_deadline_range(system)[1], rel=1e-14)
