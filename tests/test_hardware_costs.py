"""FLOP/byte counts against hand-computed values, the roofline, and the fits."""

from __future__ import annotations

import numpy as np
import pytest

from multispin_cli.hardware import costs
from multispin_cli.hardware.fit import AFFINE_R2_THRESHOLD, fit_affine, measured_table, r_squared
from multispin_cli.hardware.models import ModelShape
from multispin_cli.hardware.roofline import bound_by, roofline_seconds

# layers 2, hidden 8, 2 heads of 4 with 1 KV head (q width 8, kv width 4), MLP 16, vocab 32
TINY = ModelShape("tiny", layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=32)


def _cost():
    # 2 sequences of 3 new tokens (T = 6) over 5 cached tokens (8 attended positions), float32
    return costs.forward_cost(TINY, batch=2, new_tokens=3, context=5, bytes_per_value=4)


def test_layer_ops_by_hand():
    ops = {op.name: op for op in _cost().layer_ops}
    qkv = ops["qkv_proj"]  # 6 rows, 8 -> 8 + 2 x 4 = 16
    assert (qkv.flop, qkv.weight_bytes, qkv.activation_bytes) == (2 * 6 * 8 * 16, 8 * 16 * 4, 6 * (8 + 16) * 4)
    attn = ops["attention"]  # QK^T and PV: 2 x 2 x T x heads x head_dim x attended
    assert attn.flop == 2 * 2 * 6 * 2 * 4 * 8 == 1536
    # K and V of 8 positions for 2 sequences read (2 x 8 x 2 x 4 x 4 = 512), 6 new K/V written (6 x 2 x 4 x 4 = 192)
    assert attn.kv_bytes == 512 + 192
    assert attn.activation_bytes == 2 * 6 * 8 * 4  # q in, output out
    assert attn.weight_bytes == 0
    o = ops["o_proj"]
    assert (o.flop, o.weight_bytes, o.activation_bytes) == (768, 256, 384)
    gate_up = ops["gate_up_proj"]
    assert (gate_up.flop, gate_up.weight_bytes, gate_up.activation_bytes) == (3072, 1024, 960)
    down = ops["down_proj"]
    assert (down.flop, down.weight_bytes, down.activation_bytes) == (1536, 512, 576)


def test_pass_totals_by_hand():
    c = _cost()
    assert c.layers == 2
    (head,) = c.head_ops  # the LM head over all 6 positions: 8 -> 32
    assert (head.flop, head.weight_bytes, head.activation_bytes) == (3072, 1024, 960)
    # per layer: FLOP 1536 + 1536 + 768 + 3072 + 1536 = 8448; bytes 1088 + 1088 + 640 + 1984 + 1088 = 5888
    assert c.flop == 2 * 8448 + 3072 == 19968
    assert c.bytes == 2 * 5888 + 1984 == 13760
    assert c.weight_bytes == 2 * (512 + 256 + 1024 + 512) + 1024 == 5632
    assert c.kv_bytes == 2 * 704
    # the weights streamed by a pass are the model's matmul weights
    matmul_params = TINY.layers * (TINY.attention_params + TINY.mlp_params) + TINY.head_params
    assert c.weight_bytes == matmul_params * 4


def test_decode_step_streams_the_weights_once():
    c = costs.forward_cost(TINY, batch=1, new_tokens=1, context=0, bytes_per_value=2)
    assert c.flop == pytest.approx(2 * (TINY.layers * (TINY.attention_params + TINY.mlp_params) + TINY.head_params)
                                   + TINY.layers * 4 * TINY.heads * TINY.head_dim)


def test_forward_cost_rejects_empty_passes():
    with pytest.raises(ValueError):
        costs.forward_cost(TINY, batch=0, new_tokens=1, context=0, bytes_per_value=4)


def test_roofline_by_hand():
    c = _cost()
    # memory-bound everywhere at 1000 FLOP/s and 100 B/s: the bytes over the bandwidth
    assert roofline_seconds(c, flops_per_s=1000, bytes_per_s=100) == pytest.approx(13760 / 100)
    assert bound_by(c, flops_per_s=1000, bytes_per_s=100) == "memory"
    # compute-bound everywhere at 1000 FLOP/s and 1000 B/s: the FLOP over the peak
    assert roofline_seconds(c, flops_per_s=1000, bytes_per_s=1000) == pytest.approx(19968 / 1000)
    assert bound_by(c, flops_per_s=1000, bytes_per_s=1000) == "compute"
    # mixed: each op takes its own maximum (gate_up is compute-bound at 700 B/s, the rest memory-bound)
    per_layer = 1088 / 700 + 1088 / 700 + 640 / 700 + 3072 / 1000 + 1088 / 700
    assert roofline_seconds(c, flops_per_s=1000, bytes_per_s=700) == pytest.approx(2 * per_layer + 3072 / 1000)


# --------------------------------------------------------------------------- fits


def test_exact_line_is_recovered():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    fit = fit_affine(x, 2.0 + 3.0 * x)
    assert (fit.intercept, fit.slope, fit.r2, fit.clamped) == (pytest.approx(2.0), pytest.approx(3.0), 1.0, ())
    assert fit(10) == pytest.approx(32.0)


def test_r_squared_by_hand():
    # y = [1, 3, 2]: least squares slope 0.5, intercept 1; residuals 0.25 + 1 + 0.25 over SS_tot 2
    fit = fit_affine([1, 2, 3], [1, 3, 2])
    assert (fit.intercept, fit.slope) == (pytest.approx(1.0), pytest.approx(0.5))
    assert fit.r2 == pytest.approx(0.25)
    assert r_squared([1, 2, 3], [1, 3, 2], 1.0, 0.5) == pytest.approx(0.25)


def test_negative_slope_is_clamped_on_the_boundary():
    fit = fit_affine([1, 2, 3], [3, 2, 1], min_slope=0.0)
    assert fit.slope == 0.0 and fit.intercept == pytest.approx(2.0)  # the best constant: the mean
    assert fit.r2 == pytest.approx(0.0)
    assert fit.clamped and "slope" in fit.clamped[0]


def test_negative_intercept_is_clamped_and_the_slope_refitted():
    # free fit: slope 2, intercept -1; with intercept 0.5: slope = sum x (y - 0.5) / sum x^2 = 5.5 / 5
    fit = fit_affine([1, 2], [1, 3], min_intercept=0.5)
    assert fit.intercept == 0.5 and fit.slope == pytest.approx(1.1)
    assert "intercept" in fit.clamped[0]


def test_single_x_value_and_constant_data():
    fit = fit_affine([4, 4], [2.0, 2.0])
    assert (fit.slope, fit.intercept, fit.r2) == (0.0, 2.0, 1.0)
    assert fit_affine([1, 2, 3], [5.0, 5.0, 5.0]).r2 == 1.0


def test_measured_table_keeps_the_largest_time_per_n_and_its_falls():
    table = measured_table([1, 2, 2, 3, 4], [5, 4, 6, 5, 7])
    assert table.x == (1, 2, 3, 4)
    assert table.y == (5, 6, 5, 7)  # N = 2 keeps 6; N = 3 stays at 5, below N = 2 (no running maximum)
    assert table.falls == 1


def test_threshold_is_documented_value():
    assert AFFINE_R2_THRESHOLD == 0.99


def test_typical_seconds_is_the_mean_without_stalls():
    from multispin_cli.hardware.fit import relative_error, typical_seconds

    # right-skewed passes: the mean (what a run's total time counts), not the median 10
    assert typical_seconds([10, 10, 10, 11, 12, 13]) == pytest.approx(11.0)
    # a stall beyond 5 robust standard deviations (1.4826 MAD = 1.4826) is left out
    assert typical_seconds([10, 11, 12, 11, 10, 12, 80]) == pytest.approx(11.0)
    assert typical_seconds([5, 5, 5, 9]) == 5  # MAD 0: the median
    assert relative_error([10, 10, 10, 10]) == 0.0
    x = [9.0, 11.0] * 8
    assert relative_error(x) == pytest.approx(np.std(x, ddof=1) / 4 / 10)


@pytest.mark.parametrize("values,expected", [
    ([5.0], float("inf")),
    ([9.0, 10.0, 12.0], (12 - 9) / 2 / 10),  # three runs: the whole range (75 % coverage)
    ([1, 2, 3, 4, 5, 6, 7, 8], (7 - 2) / 2 / 4.5),  # eight: 2nd to 7th (93 %; 3rd to 6th is 71 %)
])
def test_median_interval(values, expected):
    from multispin_cli.hardware.validation import median_interval

    assert median_interval(values) == pytest.approx(expected)
