"""Fading gains, faded channels and the per-row equal-finish split, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from multispin_cli.model.channel import Channel
from multispin_cli.model.fading import Fading, draw_gains
from multispin_cli.model.synthetic import busy_cell
from multispin_cli.planners.split import equal_finish_split


def _gains(fading, rounds=200_000, seed=0, rho=0.0):
    return draw_gains(fading, rounds, np.random.default_rng(seed), rho=rho)


def test_no_fading_is_exactly_one_and_inactive():
    fading = Fading.none(3)
    csi, true, _ = _gains(fading, rounds=10)
    assert not fading.active
    assert np.all(csi == 1.0) and np.all(true == 1.0)


def test_rayleigh_power_is_exponential_with_mean_one():
    _, true, _ = _gains(Fading.uniform(2, "rayleigh"))
    assert true.mean() == pytest.approx(1.0, abs=0.01)
    # P(X > x) = exp(-x) for Exp(1)
    for x in (0.1, 1.0, 3.0):
        assert (true > x).mean() == pytest.approx(np.exp(-x), abs=0.005)


def test_rician_mean_and_variance():
    k = 10 ** (6 / 10)
    _, true, _ = _gains(Fading.uniform(1, "rician", rician_k_db=6.0))
    assert true.mean() == pytest.approx(1.0, abs=0.01)
    assert true.var() == pytest.approx((2 * k + 1) / (k + 1) ** 2, rel=0.03)


def test_shadowing_is_lognormal_with_the_given_db_spread():
    fading = Fading(np.zeros(1, bool), np.zeros(1), np.full(1, 8.0))
    _, true, _ = _gains(fading)
    db = 10 * np.log10(true)
    assert db.std() == pytest.approx(8.0, rel=0.02) and abs(np.median(db)) < 0.1


def test_gauss_markov_correlation_and_csi_delay():
    # |h|^2 of a complex Gaussian AR(1) with coefficient rho has lag-1 correlation rho^2.
    fading = Fading.uniform(1, "rayleigh", coherence_s=0.1, csi_delay_s=0.02)
    rho = fading.round_correlation(0.05)
    assert rho == pytest.approx(np.exp(-0.5))
    csi, true, _ = _gains(fading, rho=rho)
    lag1 = np.corrcoef(true[1:, 0], true[:-1, 0])[0, 1]
    assert lag1 == pytest.approx(rho**2, abs=0.01)
    rho_d = np.exp(-0.2)
    assert np.corrcoef(csi[:, 0], true[:, 0])[0, 1] == pytest.approx(rho_d**2, abs=0.01)
    assert csi.mean() == pytest.approx(1.0, abs=0.02)


def test_independent_rounds_without_coherence_and_exact_csi_without_delay():
    fading = Fading.uniform(2, "rayleigh")
    csi, true, _ = _gains(fading, rounds=50_000, rho=fading.round_correlation(0.05))
    assert np.array_equal(csi, true)
    assert abs(np.corrcoef(true[1:, 0], true[:-1, 0])[0, 1]) < 0.02
    stale = Fading.uniform(1, "rayleigh", csi_delay_s=0.01)  # no coherence: the CSI says nothing
    csi, true, _ = _gains(stale, rounds=50_000)
    assert abs(np.corrcoef(csi[:, 0], true[:, 0])[0, 1]) < 0.02


def test_a_process_continues_from_its_state():
    fading = Fading.uniform(1, "rayleigh", coherence_s=1.0)
    rng = np.random.default_rng(3)
    _, first, state = draw_gains(fading, 1, rng, rho=0.999)
    _, second, _ = draw_gains(fading, 1, rng, rho=0.999, state=state)
    assert second[0, 0] == pytest.approx(first[0, 0], rel=0.2)  # 0.999 correlated: close


def test_faded_channel_scales_the_snr():
    ch = Channel.concat([Channel.fixed_snr([10.0]), Channel.power_limited_users([1e6])])
    g = np.array([[0.5, 2.0], [1.0, 1.0]])
    faded = ch.faded(g)
    w = 1e5
    rate = faded.rate_bps(w)
    assert rate[0, 0] == pytest.approx(w * np.log2(1 + 10 * 0.5))
    assert rate[0, 1] == pytest.approx(w * np.log2(1 + 2e6 / w))
    np.testing.assert_allclose(rate[1], ch.rate_bps(w))


def test_split_on_one_channel_per_row_matches_separate_splits():
    system = busy_cell(np.random.default_rng(5), 6, max_len=4)
    gains = np.random.default_rng(6).exponential(size=(4, 6))
    lengths = np.array([[1, 2, 3, 4, 0, 2]] * 4)
    deadline, bandwidth = equal_finish_split(system, lengths, system.channel.faded(gains))
    for r in range(4):
        from dataclasses import replace

        alone = replace(system, channel=system.channel.faded(gains[r]))
        d, w = equal_finish_split(alone, lengths[r])
        assert deadline[r] == pytest.approx(float(d), rel=1e-9)
        np.testing.assert_allclose(bandwidth[r], w, rtol=1e-7, atol=1e-6)
        assert bandwidth[r].sum() == pytest.approx(system.bandwidth_hz, rel=1e-9)
