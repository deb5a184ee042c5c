"""The Monte Carlo simulator against closed forms, known distributions and its own invariants."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from builders import random_system, simple_system
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from multispin_cli.analysis.simulation import (
    COMPARE_MAX_LENGTH,
    SimulationOptions,
    accepted_prefix,
    simulate_plan,
    simulate_plans,
    simulate_rounds,
)
from multispin_cli.errors import InputError
from multispin_cli.model.acceptance import position_matrix
from multispin_cli.model.channel import Channel
from multispin_cli.model.goodput import evaluate, upload_bits
from multispin_cli.model.verifier import VerifyTime
from multispin_cli.planners.report import plan_report


def fixed(system, length: int):
    """Every user drafts ``length`` on an equal share of the band."""
    k = system.users
    return np.full(k, length), np.full(k, system.bandwidth_hz / k)


# ---------------------------------------------------------------- acceptance draws


@pytest.mark.parametrize("probs", [[0.9, 0.7, 0.5, 0.3, 0.2], [0.6] * 5, [1.0, 0.0, 1.0, 1.0, 1.0], [0.3, 1.0, 1.0, 0.5, 0.9]])
def test_accepted_prefix_follows_the_per_position_distribution(probs):
    rng = np.random.default_rng(11)
    survival = np.cumprod(probs)[None, :]
    draws = accepted_prefix(rng.random((40_000, 1)), survival)[:, 0]
    # P(A = a) = S_a - S_{a+1}, with S_0 = 1 and S_{L+1} = 0
    s = np.concatenate([[1.0], survival[0], [0.0]])
    expected = (s[:-1] - s[1:]) * draws.size
    observed = np.bincount(draws, minlength=len(probs) + 1)
    live = expected > 0
    assert np.all(observed[~live] == 0)  # impossible lengths never appear
    if live.sum() > 1:
        assert stats.chisquare(observed[live], expected[live]).pvalue > 1e-3


def test_search_and_comparison_paths_agree():
    rng = np.random.default_rng(3)
    survival = np.cumprod(rng.uniform(0.5, 1.0, (7, COMPARE_MAX_LENGTH + 6)), axis=1)
    survival[2, 10:] = 0.0  # a user drafting 10 tokens
    survival[4] = 0.0  # a user whose first token is never accepted
    uniforms = rng.random((500, 7))
    by_search = accepted_prefix(uniforms, survival)
    by_comparison = sum((uniforms < survival[:, i]).astype(int) for i in range(survival.shape[1]))
    np.testing.assert_array_equal(by_search, by_comparison)
    short = accepted_prefix(uniforms, survival[:, :COMPARE_MAX_LENGTH])
    np.testing.assert_array_equal(short, np.minimum(by_comparison, COMPARE_MAX_LENGTH))


# ---------------------------------------------------------------- the prediction holds


def test_certain_acceptance_reproduces_the_prediction_exactly():
    system = simple_system(acceptance=(1.0, 0.0), max_len=6)
    system = replace(system, accept_prob=position_matrix(acceptance=[1.0, [1.0, 1.0, 0.0]], max_draft_length=6))
    lengths, bandwidth = np.array([5, 4]), np.array([4e5, 6e5])
    result = simulate_plan(system, lengths, bandwidth, SimulationOptions(rounds=300))
    predicted = evaluate(system, lengths, bandwidth)
    np.testing.assert_array_equal(result.user_tokens_per_round, [6, 3])
    assert result.goodput_tokens_per_s == pytest.approx(predicted.goodput_tokens_per_s, rel=1e-12)
    assert result.ci95_tokens_per_s[1] - result.ci95_tokens_per_s[0] == pytest.approx(0, abs=1e-9)
    for q in (50, 95, 99):
        assert result.round_s_quantiles[q] == pytest.approx(predicted.round_s, rel=1e-12)


@pytest.mark.parametrize("fading", ["none", "rayleigh"])
def test_engine_overhead_and_users_off_the_uplink_in_simulated_rounds(fading):
    """Certain acceptance: every simulated round is the predicted one, with the engine's cost per round
    and a user off the uplink (whose draft time alone sets its phase, fading or not)."""
    system = simple_system(acceptance=(1.0, 1.0), draft_ms=(9.0, 2.0), max_len=6)
    system = replace(system, round_overhead_s=0.004, no_uplink=np.array([True, False]))
    lengths, bandwidth = np.array([5, 2]), np.array([0.0, 1e6])
    predicted = evaluate(system, lengths, bandwidth)
    assert predicted.draft_upload_s == pytest.approx(0.045)  # the device off the uplink is the slowest
    result = simulate_plan(system, lengths, bandwidth, SimulationOptions(rounds=200, fading=fading))
    if fading == "none":
        assert result.goodput_tokens_per_s == pytest.approx(predicted.goodput_tokens_per_s, rel=1e-12)
    assert result.round_s_quantiles[50] >= predicted.round_s * (1 - 1e-12)
    assert predicted.round_s == pytest.approx(0.045 + predicted.verify_s + 0.004)


@pytest.mark.parametrize("seed", range(6))
def test_analytic_goodput_inside_the_interval_on_random_cells(seed):
    rng = np.random.default_rng(500 + seed)
    system = random_system(rng, int(rng.integers(1, 8)), int(rng.integers(1, 9)),
                           batching=("ragged", "padded")[seed % 2], table=seed % 3 == 0)
    report = plan_report(system)
    for result in simulate_plans(system, [*report.plans, *report.baselines.values()],
                                 SimulationOptions(rounds=20_000, seed=seed)):
        # a 99.9 % band here (six seeds x five plans); the 95 % interval's coverage is tested below
        half = (result.ci95_tokens_per_s[1] - result.ci95_tokens_per_s[0]) / 2
        assert abs(result.goodput_tokens_per_s - result.predicted_tokens_per_s) <= half * 3.29 / 1.96 + 1e-9
        assert abs(result.relative_error) < 0.01
        # per-user rates add up to the total, and each user's prediction is near its own estimate
        assert result.user_tokens_per_s.sum() == pytest.approx(result.goodput_tokens_per_s, rel=1e-9)
        user_half = (result.user_ci95_high - result.user_ci95_low) / 2
        assert np.all(np.abs(result.user_tokens_per_s - result.predicted.user_tokens_per_s) <= user_half * 2.5 + 1e-9)


def test_the_95_percent_interval_covers_95_percent_of_the_time():
    system = simple_system(acceptance=(0.85, 0.5, 0.7), snr_db=(10, 5, 20), draft_ms=(2, 3, 1), overhead_ms=(0, 0, 0))
    lengths, bandwidth = np.array([6, 2, 4]), np.array([3e5, 4e5, 3e5])
    predicted = evaluate(system, lengths, bandwidth).goodput_tokens_per_s
    inside = [simulate_plan(system, lengths, bandwidth, SimulationOptions(rounds=400, seed=s)).prediction_inside_ci
              for s in range(400)]
    coverage = np.mean(inside)
    # binomial(400, 0.95): sd 1.1 %; 0.91..0.99 is about 3.5 sd either side
    assert 0.91 <= coverage <= 0.99, coverage
    assert predicted > 0


# ---------------------------------------------------------------- fading and jitter, against closed forms


def round_time(system, lengths, bandwidth, gain):
    """Round time of identical users given the smallest fading gain among them."""
    bits = upload_bits(system, lengths)[0]
    snr = system.channel.snr_at(bandwidth)[0]
    upload = bits / (bandwidth[0] * np.log2(1.0 + snr * gain))
    return upload + system.verify(float((lengths + 1).sum())) + system.downlink_s


@pytest.mark.parametrize("power_limited", [False, True])
def test_rayleigh_round_time_quantiles_match_the_closed_form(power_limited):
    k = 5
    system = simple_system(acceptance=(0.7,) * k, snr_db=(3.0,) * k, draft_ms=(1e-6,) * k, overhead_ms=(0.0,) * k,
                           bandwidth_hz=5e5, bits=300.0)
    if power_limited:
        system = replace(system, channel=Channel.power_limited_users(np.full(k, 2e5)))
    lengths, bandwidth = fixed(system, 3)
    result = simulate_plan(system, lengths, bandwidth, SimulationOptions(rounds=40_000, seed=1, fading="rayleigh"))
    for q in (50, 95, 99):
        # P(D <= t) = P(min_k h_k >= h(t)) = exp(-K h(t)): the q-quantile has h = -ln(q / 100) / K
        gain = -math.log(q / 100) / k
        expected = round_time(system, lengths, bandwidth, gain) + 3 * 1e-9  # draft time is 3 ns
        assert result.round_s_quantiles[q] == pytest.approx(expected, rel=0.03 if q < 99 else 0.08)


def test_fading_never_helps_and_shares_the_acceptance_draws():
    system = simple_system(acceptance=(0.8, 0.6, 0.7), snr_db=(10, 10, 3), draft_ms=(2, 2, 4), overhead_ms=(0, 0, 1))
    report = plan_report(system)
    plan = report.heterogeneous
    args = (system, plan.evaluation.draft_lengths, plan.evaluation.bandwidth_hz)
    calm = simulate_plan(*args, SimulationOptions(rounds=5_000, seed=4))
    faded = simulate_plan(*args, SimulationOptions(rounds=5_000, seed=4, fading="rayleigh"))
    # Common random numbers: the same tokens, only the round times differ.
    np.testing.assert_array_equal(calm.user_tokens_per_round, faded.user_tokens_per_round)
    # Jensen: a faded upload is slower on average, and the slowest user sets the round.
    assert faded.round_s_mean > calm.round_s_mean
    assert faded.goodput_tokens_per_s < calm.goodput_tokens_per_s
    assert faded.round_s_quantiles[99] > faded.round_s_quantiles[50] > 0


def test_lognormal_draft_jitter_has_mean_one_and_the_stated_spread():
    system = simple_system(acceptance=(0.7,), snr_db=(30,), draft_ms=(10.0,), bandwidth_hz=1e12, base_ms=0.0,
                           per_token_ms=0.0)
    lengths, bandwidth = np.array([4]), np.array([1e12])
    jitter = 0.3
    result = simulate_plan(system, lengths, bandwidth, SimulationOptions(rounds=40_000, seed=2, draft_jitter=jitter))
    compute = 0.040
    sigma = math.sqrt(math.log1p(jitter**2))
    assert result.round_s_mean == pytest.approx(compute, rel=0.01)  # mean 1: the prediction's draft time
    for q in (50, 95, 99):
        expected = compute * math.exp(-sigma**2 / 2 + sigma * stats.norm.ppf(q / 100))
        assert result.round_s_quantiles[q] == pytest.approx(expected, rel=0.03), q


def test_users_that_do_not_draft_are_untouched_by_fading_and_jitter():
    system = simple_system(acceptance=(0.8, 0.6))
    lengths, bandwidth = np.zeros(2, int), np.zeros(2)
    result = simulate_plan(system, lengths, bandwidth, SimulationOptions(rounds=1000, fading="rayleigh",
                                                                         draft_jitter=0.5))
    predicted = evaluate(system, lengths, bandwidth)
    assert result.goodput_tokens_per_s == pytest.approx(predicted.goodput_tokens_per_s, rel=1e-12)
    assert result.round_s_quantiles[99] == pytest.approx(predicted.round_s, rel=1e-12)


def test_padded_batching_verifies_the_padded_batch():
    system = simple_system(acceptance=(1.0, 1.0), batching="padded", per_token_ms=1.0)
    system = replace(system, accept_prob=np.ones_like(system.accept_prob))
    lengths, bandwidth = np.array([6, 1]), np.array([5e5, 5e5])
    result = simulate_plan(system, lengths, bandwidth, SimulationOptions(rounds=50))
    expected = evaluate(system, lengths, bandwidth)
    assert expected.verify_tokens == 14  # 2 x (6 + 1)
    assert result.round_s_quantiles[50] == pytest.approx(expected.round_s, rel=1e-12)
    assert result.goodput_tokens_per_s == pytest.approx(9 / expected.round_s, rel=1e-12)


# ---------------------------------------------------------------- seeds, chunks, progress


def test_same_seed_same_numbers_other_seed_other_numbers(monkeypatch):
    system = simple_system(acceptance=(0.8, 0.6), snr_db=(10, 0))
    lengths, bandwidth = fixed(system, 4)
    opts = SimulationOptions(rounds=3000, seed=9, fading="rayleigh", draft_jitter=0.1)
    a, b = (simulate_plan(system, lengths, bandwidth, opts) for _ in range(2))
    c = simulate_plan(system, lengths, bandwidth, replace(opts, seed=10))
    assert a.goodput_tokens_per_s == b.goodput_tokens_per_s and a.round_s_quantiles == b.round_s_quantiles
    np.testing.assert_array_equal(a.user_ci95_low, b.user_ci95_low)
    assert a.goodput_tokens_per_s != c.goodput_tokens_per_s
    # a longer run extends a shorter one: with chunks of 4 rounds, 6 rounds start with the 4 of a shorter run
    monkeypatch.setattr("multispin_cli.analysis.simulation.CHUNK_ELEMENTS", 8)
    short = list(simulate_rounds(system, lengths, bandwidth, replace(opts, rounds=4)))
    longer = list(simulate_rounds(system, lengths, bandwidth, replace(opts, rounds=6)))
    assert [t.shape[0] for t, _ in short] == [4] and [t.shape[0] for t, _ in longer] == [4, 2]
    np.testing.assert_array_equal(short[0][0], longer[0][0])
    np.testing.assert_array_equal(short[0][1], longer[0][1])
    assert not np.array_equal(longer[0][1][:2], longer[1][1])


def test_progress_reports_every_round_and_memory_stays_chunked(monkeypatch):
    monkeypatch.setattr("multispin_cli.analysis.simulation.CHUNK_ELEMENTS", 1000)
    system = simple_system(acceptance=(0.8, 0.6, 0.5, 0.9), snr_db=(10,) * 4, draft_ms=(2,) * 4, overhead_ms=(0,) * 4)
    seen = []
    result = simulate_plan(system, *fixed(system, 3), SimulationOptions(rounds=2_345), progress=seen.append)
    assert sum(seen) == 2_345 and len(seen) == math.ceil(2_345 / 250) and max(seen) == 250
    assert result.options.rounds == 2_345


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(0, 6), st.floats(0.0, 0.99), st.integers(0, 2**31))
def test_tokens_per_round_stay_within_one_and_l_plus_one(users, length, alpha, seed):
    system = simple_system(acceptance=(alpha,) * users, snr_db=(10,) * users, draft_ms=(1,) * users,
                           overhead_ms=(0,) * users, max_len=6)
    lengths, bandwidth = fixed(system, length)
    result = simulate_plan(system, lengths, bandwidth, SimulationOptions(rounds=50, seed=seed, fading="rayleigh"))
    # Means of 50 rounds: a user who never gets a draft accepted averages 1 to rounding (1 - 1e-16).
    tokens = result.user_tokens_per_round
    assert np.all(tokens >= 1 - 1e-12) and np.all(tokens <= length + 1 + 1e-12)
    low, high = result.ci95_tokens_per_s
    assert 0 <= low <= result.goodput_tokens_per_s <= high


# ---------------------------------------------------------------- plans that cannot run, options that cannot be


def test_a_drafting_user_without_bandwidth_is_reported_not_simulated():
    system = simple_system()
    seen = []
    result = simulate_plan(system, np.array([2, 0]), np.array([0.0, 1e6]), SimulationOptions(rounds=10),
                           progress=seen.append)
    assert not result.feasible and result.goodput_tokens_per_s == 0 and sum(seen) == 10
    with pytest.raises(InputError, match="no bandwidth"):
        next(simulate_rounds(system, np.array([2, 0]), np.array([0.0, 1e6])))


@pytest.mark.parametrize("options,key", [
    (dict(rounds=0), "rounds"), (dict(rounds=2.5), "rounds"), (dict(seed=-1), "seed"),
    (dict(fading="nakagami"), "fading"), (dict(draft_jitter=-0.1), "draft_jitter"),
    (dict(draft_jitter=float("nan")), "draft_jitter"),
])
def test_bad_options_name_their_key(options, key):
    with pytest.raises(InputError) as err:
        SimulationOptions(**options)
    assert err.value.key == key


def test_plans_beyond_the_profile_are_refused():
    system = simple_system(max_len=4)
    with pytest.raises(InputError, match="max_draft_length"):
        simulate_plan(system, np.array([5, 1]), np.array([5e5, 5e5]))
    with pytest.raises(InputError, match="one draft length"):
        simulate_plan(system, np.array([1]), np.array([5e5]))
    with pytest.raises(InputError, match="non-negative"):
        simulate_plan(system, np.array([1, -1]), np.array([5e5, 5e5]))


def test_verify_table_and_downlink_are_charged_per_round():
    system = simple_system(acceptance=(0.5,))
    system = replace(system, verify=VerifyTime.from_table([1, 8], [0.02, 0.03]), downlink_s=0.004,
                     accept_prob=np.zeros_like(system.accept_prob))
    result = simulate_plan(system, np.array([3]), np.array([1e6]), SimulationOptions(rounds=10))
    ev = evaluate(system, np.array([3]), np.array([1e6]))
    assert result.round_s_quantiles[50] == pytest.approx(ev.draft_upload_s + float(system.verify(4)) + 0.004)
    assert result.goodput_tokens_per_s == pytest.approx(1 / ev.round_s)
