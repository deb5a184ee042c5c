"""The system model's pieces against closed forms: tokens per round, rates, verify time, payload."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builders import simple_system
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import lambertw

from multispin_cli.model.acceptance import expected_tokens, geometric_expected_tokens, position_matrix
from multispin_cli.model.channel import LN2, Channel, power_limited_inverse, snr_for_rate_ratio
from multispin_cli.model.goodput import evaluate
from multispin_cli.model.payload import bits_per_token
from multispin_cli.model.verifier import VerifyTime

# ---------------------------------------------------------------- expected tokens per round


@given(st.floats(0.0, 0.999), st.integers(0, 40))
def test_constant_acceptance_is_the_geometric_closed_form(alpha, max_len):
    g = expected_tokens(position_matrix(acceptance=[alpha], max_draft_length=max_len))[0]
    closed = geometric_expected_tokens(np.arange(max_len + 1), alpha)
    np.testing.assert_allclose(g, closed, rtol=1e-12)
    assert g[0] == 1.0


def test_full_acceptance_gives_l_plus_one():
    assert geometric_expected_tokens(5, 1.0) == 6.0


def test_per_position_list_repeats_its_last_value():
    probs = position_matrix(acceptance=[[0.9, 0.5]], max_draft_length=4)
    np.testing.assert_allclose(probs, [[0.9, 0.5, 0.5, 0.5]])
    g = expected_tokens(probs)[0]
    np.testing.assert_allclose(g, [1, 1.9, 1.9 + 0.45, 1.9 + 0.45 + 0.225, 1.9 + 0.45 + 0.225 + 0.1125])


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_expected_tokens_are_increasing_and_concave(probs):
    g = expected_tokens(position_matrix(acceptance=[probs], max_draft_length=12))[0]
    steps = np.diff(g)
    assert np.all(steps >= 0)
    assert np.all(np.diff(steps) <= 1e-12)


# ---------------------------------------------------------------- uplink rate


@given(st.floats(1e-9, 0.999999))
def test_power_limited_inverse_matches_the_lambert_w_closed_form(a):
    x = snr_for_rate_ratio(np.array([a]))[0]
    assert math.log1p(x) == pytest.approx(a * x, rel=1e-12)
    if a < 0.999:  # the closed form itself loses digits at the branch point
        z = -lambertw(-a * math.exp(-a), k=-1).real / a
        assert x == pytest.approx(z - 1.0, rel=1e-9)


@settings(max_examples=60)
@given(st.floats(1e3, 1e9), st.floats(0.01, 0.99), st.booleans())
def test_bandwidth_for_rate_inverts_rate(q, fraction, power_limited):
    channel = Channel.power_limited_users([q]) if power_limited else Channel.fixed_snr([q / 1e6])
    rate = fraction * (q / LN2 if power_limited else 1e6 * np.log2(1 + q / 1e6))
    w, dw = channel.bandwidth_for_rate(np.array([rate]))
    assert channel.rate_bps(w)[0] == pytest.approx(rate, rel=1e-10)
    h = w[0] * 1e-6
    slope = (channel.rate_bps(w + h)[0] - channel.rate_bps(w - h)[0]) / (2 * h)
    assert dw[0] == pytest.approx(1.0 / slope, rel=1e-5)


@settings(max_examples=40)
@given(st.lists(st.one_of(st.floats(1e-6, 0.999), st.floats(1e-19, 1e-6), st.floats(0.999, 1 - 1e-12)),
                min_size=1, max_size=40), st.sampled_from([0.0, 1.5, 2.0, -1.0]), st.sampled_from([float("inf"), 6.0]))
def test_power_limited_inverse_gives_the_same_numbers_with_or_without_rates_out_of_reach(ratios, odd, cap):
    """Rates all in reach and in the table take a path without masks; one rate out of reach (or
    none, or negative) sends the whole call down the general path, which finds no root for it and
    takes the general start where the table ends (a close to 0 or 1): the numbers of the others
    must not change, and are those of :func:`snr_for_rate_ratio`."""
    q = np.geomspace(1e4, 1e8, len(ratios))
    rate = np.array(ratios) * q / LN2
    need, slope = power_limited_inverse(rate, q, cap)
    mixed_need, mixed_slope = power_limited_inverse(np.append(rate, odd * 1e6 / LN2), np.append(q, 1e6), cap)
    np.testing.assert_array_equal(mixed_need[:-1], need)
    np.testing.assert_array_equal(mixed_slope[:-1], slope)
    assert mixed_need[-1] == (0.0 if odd <= 0 else np.inf)
    if cap == float("inf"):
        with np.errstate(divide="ignore"):
            np.testing.assert_array_equal(need, q / snr_for_rate_ratio(rate * LN2 / q))


@settings(max_examples=30)
@given(st.integers(1, 8), st.integers(1, 5), st.integers(0, 2**32 - 1), st.booleans())
def test_power_limited_inverse_of_a_table_is_that_of_its_entries_one_by_one(rows, width, seed, fortran):
    """The planners price (users, lengths) tables with one q per row, mixing rates in reach with
    late (negative), idle (0) and unreachable ones; the roots are taken only where the rate is in
    reach and written back by flat position, so the layout of the table must not matter."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(1e4, 1e8, (rows, 1))
    ratios = np.exp(rng.uniform(-40.0, 0.2, (rows, width)))
    ratios[rng.random((rows, width)) < 0.3] *= -1.0
    ratios[rng.random((rows, width)) < 0.1] = 0.0
    rate = ratios * q / LN2
    if fortran:
        rate = np.asfortranarray(rate)
    need, slope = power_limited_inverse(rate, q)
    one_by_one = [power_limited_inverse(np.array([rate[i, j]]), np.array([q[i, 0]]))
                  for i in range(rows) for j in range(width)]
    np.testing.assert_array_equal(need.ravel(), [n[0] for n, _ in one_by_one])
    np.testing.assert_array_equal(slope.ravel(), [s[0] for _, s in one_by_one])
    alone, none = power_limited_inverse(rate, q, 6.0, derivative=False)  # the need alone: the same numbers
    assert none is None
    np.testing.assert_array_equal(alone, power_limited_inverse(rate, q, 6.0)[0])


def test_power_limited_rate_is_bounded_and_unreachable_beyond():
    channel = Channel.power_limited_users([1e6])
    assert channel.rate_bps(np.array([1e12]))[0] < 1e6 / LN2
    w, _ = channel.bandwidth_for_rate(np.array([1e6 / LN2 * 1.0001]))
    assert np.isinf(w[0])


def test_zero_rate_needs_no_bandwidth():
    channel = Channel.concat([Channel.fixed_snr([10.0]), Channel.power_limited_users([1e6])])
    w, _ = channel.bandwidth_for_rate(np.zeros(2))
    np.testing.assert_array_equal(w, [0.0, 0.0])


# ---------------------------------------------------------------- verification time


def test_affine_verify_time():
    v = VerifyTime.from_affine(base_s=0.02, per_token_s=0.001)
    np.testing.assert_allclose(v(np.array([1, 10, 100])), [0.021, 0.03, 0.12])


def test_table_interpolates_holds_below_and_extends_beyond():
    v = VerifyTime.from_table([4, 8, 16], [0.010, 0.012, 0.020])
    np.testing.assert_allclose(v(np.array([1, 4, 6, 16, 24])), [0.010, 0.010, 0.011, 0.020, 0.028])
    assert not v.covers(24) and v.covers(8)


@given(st.lists(st.floats(0.001, 0.1), min_size=2, max_size=8))
def test_minorants_lie_below_the_table(times):
    times = np.maximum.accumulate(np.array(times))
    tokens = 2 ** np.arange(len(times))
    v = VerifyTime.from_table(tokens, times)
    lines = v.minorants(1.0, float(tokens[-1] * 2))
    n = np.linspace(1, tokens[-1] * 2, 400)
    lower = (lines[:, :1] + lines[:, 1:] * n).max(axis=0)
    assert np.all(lower <= v(n) + 1e-12)
    assert np.any(np.isclose(lower, v(n)))  # the envelope touches the table at its corners


# ---------------------------------------------------------------- payload


def test_payload_bits_per_token():
    assert bits_per_token("token-ids", vocab_size=32000) == 15
    assert bits_per_token("token-ids", vocab_size=32768) == 15
    assert bits_per_token("token-ids", vocab_size=151936) == 18
    assert bits_per_token("top-k", vocab_size=32000, top_k=16, prob_bits=16) == 16 * 31
    assert bits_per_token("full-distribution", vocab_size=32000, prob_bits=16) == 512000
    assert bits_per_token("bits", bits=123.5) == 123.5


# ---------------------------------------------------------------- the goodput formula


def test_goodput_of_a_hand_computed_round():
    system = simple_system(acceptance=(0.5, 0.5), snr_db=(0.0, 0.0), draft_ms=(1.0, 2.0), overhead_ms=(1.0, 0.0),
                           bandwidth_hz=2e6, bits=1000.0, header=1000.0, base_ms=10.0, per_token_ms=1.0)
    ev = evaluate(system, [2, 0], [1e6, 0.0])
    # user 0: 1 ms + 2 x 1 ms drafting, (1000 + 2000) bits at 1 Mbit/s (SNR 0 dB: 1 bit/s/Hz) = 3 ms
    assert ev.phase_s[0] == pytest.approx(0.006)
    assert ev.phase_s[1] == 0.0  # L = 0: no drafting, no upload
    assert ev.verify_tokens == 4  # (2 + 1) + (0 + 1)
    assert ev.round_s == pytest.approx(0.006 + 0.010 + 0.004)
    assert ev.goodput_tokens_per_s == pytest.approx((1.75 + 1.0) / 0.020)
    padded = evaluate(simple_system(batching="padded"), [2, 0], [5e5, 5e5])
    assert padded.verify_tokens == 6  # 2 users x (max L + 1)


def test_a_cell_taken_by_index_or_mask_keeps_each_user_with_its_name():
    """``System.take`` reorders or restricts every per-user field together, names included, and
    the tokens table where the cell had computed it (carried over, not computed again)."""
    from multispin_cli.model.synthetic import busy_cell

    system = busy_cell(np.random.default_rng(3), 12)
    plain = busy_cell(np.random.default_rng(3), 12)  # the same cell, its tokens table never computed
    system.tokens_per_round  # noqa: B018 (computed, so that take carries it)
    for index in (np.array([5, 0, 11, 5]), system.channel.power_limited):
        fresh = plain.take(index)
        assert "tokens_per_round" not in fresh.__dict__
        part = system.take(index)
        assert "tokens_per_round" in part.__dict__
        rows = np.flatnonzero(index) if index.dtype == bool else index
        np.testing.assert_array_equal(part.tokens_per_round, fresh.tokens_per_round)
        assert part.names == tuple(system.names[i] for i in rows)
        np.testing.assert_array_equal(part.draft_s_per_token, system.draft_s_per_token[rows])
        np.testing.assert_array_equal(part.channel.power_limited, system.channel.power_limited[rows])
