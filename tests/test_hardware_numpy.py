"""The numpy decoder against a naive reference, the runners, and whole profiling runs on tiny shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multispin_cli.hardware import numpy_backend as nb
from multispin_cli.hardware.machine import describe_machine
from multispin_cli.hardware.models import ModelShape, ModelSpec, resolve_model
from multispin_cli.hardware.profiling import (
    Settings,
    TooLargeError,
    estimate_verify,
    run_profile,
    time_parts,
)
from multispin_cli.hardware.roofline import resolve_hardware

TINY = ModelShape("tiny", layers=2, hidden=16, heads=4, kv_heads=2, head_dim=4, intermediate=24, vocab=50,
                  qk_norm=True)
SMALL = ModelShape("small", layers=2, hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=128, vocab=256)


def _reference_layer(s, w, x, k_cache, v_cache, pos):
    """Token by token, head by head, in float64: what layer_forward must compute."""
    def rms(v, g):
        return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + 1e-6) * g

    def rot(v, p):
        half = len(v) // 2
        angle = p / 10000.0 ** (np.arange(0, len(v), 2) / len(v))
        return np.concatenate([v[:half] * np.cos(angle) - v[half:] * np.sin(angle),
                               v[half:] * np.cos(angle) + v[:half] * np.sin(angle)])

    b, n, _ = x.shape
    hq, hkv, d = s.heads, s.kv_heads, s.head_dim
    keys, values = k_cache.astype(np.float64), v_cache.astype(np.float64)
    out = np.zeros(x.shape)
    for bi in range(b):
        qkv = [w.wqkv @ rms(x[bi, i].astype(np.float64), 1.0) for i in range(n)]
        for i in range(n):
            for kh in range(hkv):
                k = qkv[i][hq * d + kh * d: hq * d + (kh + 1) * d]
                if w.k_norm is not None:
                    k = rms(k, w.k_norm)
                keys[bi, kh, pos + i] = rot(k, pos + i)
                values[bi, kh, pos + i] = qkv[i][(hq + hkv) * d + kh * d:(hq + hkv) * d + (kh + 1) * d]
        for i in range(n):
            heads = []
            for hh in range(hq):
                q = qkv[i][hh * d:(hh + 1) * d]
                if w.q_norm is not None:
                    q = rms(q, w.q_norm)
                q = rot(q, pos + i)
                kh = hh // (hq // hkv)  # grouped KV heads
                seen = pos + i + 1  # causal
                scores = np.array([q @ keys[bi, kh, j] for j in range(seen)]) / math.sqrt(d)
                p = np.exp(scores - scores.max())
                p /= p.sum()
                heads.append(sum(p[j] * values[bi, kh, j] for j in range(seen)))
            h1 = x[bi, i] + w.wo @ np.concatenate(heads)
            gate_up = w.w_gate_up @ rms(h1, 1.0)
            gate, up = gate_up[:s.intermediate], gate_up[s.intermediate:]
            out[bi, i] = h1 + w.w_down @ (gate / (1 + np.exp(-gate)) * up)
    return out


@pytest.mark.parametrize(("batch", "new", "pos"), [(1, 1, 0), (2, 3, 5), (1, 4, 2)])
def test_layer_matches_the_reference(batch, new, pos):
    rng = np.random.default_rng(batch * 10 + new)
    w = nb.LayerWeights.synthetic(TINY, nb.Filler(3))
    for array in (w.wqkv, w.wo, w.w_gate_up, w.w_down):
        array[...] = rng.standard_normal(array.shape) * 0.3
    w.q_norm[...] = rng.random(TINY.head_dim) + 0.5
    w.k_norm[...] = rng.random(TINY.head_dim) + 0.5
    positions = pos + new
    k_cache = rng.standard_normal((batch, TINY.kv_heads, positions, TINY.head_dim)).astype(np.float32)
    v_cache = rng.standard_normal(k_cache.shape).astype(np.float32)
    x = rng.standard_normal((batch, new, TINY.hidden)).astype(np.float32)
    expected = _reference_layer(TINY, w, x, k_cache.copy(), v_cache.copy(), pos)
    got = nb.layer_forward(TINY, w, x, k_cache, v_cache, pos, nb.Rope(TINY.head_dim, positions))
    assert got.shape == x.shape
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)


def test_head_returns_the_greedy_token():
    w_head = np.zeros((5, 4), dtype=np.float32)
    w_head[3] = 1.0  # token 3 scores highest for any positive input
    x = np.ones((2, 1, 4), dtype=np.float32)
    assert nb.head_forward(x, np.ones(4, dtype=np.float32), w_head).tolist() == [[3], [3]]


def test_filler_is_deterministic_and_scaled():
    a = nb.Filler(5).array((3, 5000), 0.5)
    b = nb.Filler(5).array((3, 5000), 0.5)
    assert np.array_equal(a, b) and a.dtype == np.float32
    assert 0.3 < float(np.std(a)) < 0.7


def test_copies_defeat_the_cache():
    assert nb.copies_needed(32, 800 * 2**20, 500 * 2**20, 32 * 2**20) == 1
    assert nb.copies_needed(12, 10 * 2**20, 0, 32 * 2**20) == 7  # 64 MiB / 10 MiB
    assert nb.copies_needed(2, 10 * 2**20, 0, 32 * 2**20) == 2  # never more than the layers


def test_runners_run_and_time():
    draft = nb.make_draft(SMALL, context=8, max_steps=4, llc_bytes=2**20)
    draft.round(4)
    assert 0 <= draft.token < SMALL.vocab
    with pytest.raises(ValueError):
        draft.round(5)
    target = nb.make_target(SMALL, context=8, max_batch=2, max_new=3, llc_bytes=2**20)
    assert target.layer_scale == SMALL.layers
    parts = target.parts(2, 3)
    assert [(name, mult) for name, _, mult in parts] == [("layer", SMALL.layers), ("head", 1)]
    medians = time_parts(parts, warmup=1, repeats=2)
    assert len(medians) == 2 and all(m > 0 for m in medians)
    with pytest.raises(ValueError):
        target.parts(3, 1)


def test_time_parts_keeps_the_expected_time_after_warmup():
    ticks = iter([0.0, 100.0, 100.0, 101.0, 200.0, 203.0, 300.0, 306.0])  # 100 s warm-up, then 1, 3, 6
    calls = []
    medians = time_parts([("x", lambda: calls.append(1), 1)], warmup=1, repeats=3, clock=lambda: next(ticks))
    assert medians == [pytest.approx(10 / 3)] and len(calls) == 4  # the mean: 6 is within 5 robust sigmas


def test_settings_grid():
    s = Settings.make(max_draft_length=8)
    assert s.draft_lengths() == (0, 1, 2, 4, 8)
    assert s.round_lengths() == (1, 2, 4, 8)
    grid = s.grid()
    assert (1, 1) in grid and (8, 9) in grid and len(grid) == 20
    tokens = [b * n for b, n in grid]
    assert tokens == sorted(tokens)
    quick = Settings.make(quick=True, max_draft_length=8)
    assert quick.batch_sizes == (1, 4) and quick.repeats == 2
    assert quick.draft_lengths() == (0, 4, 8) and quick.round_lengths() == (1, 8)
    assert Settings.make(max_draft_length=1).round_lengths() == (1, 2)


def _spec(shape):
    return ModelSpec(shape, "test")


def test_profile_of_tiny_models_is_consistent():
    settings = Settings.make(quick=True, context=16, max_draft_length=3)
    seen = []
    profile = run_profile(_spec(SMALL), _spec(SMALL), settings, progress=lambda *a: seen.append(a))
    d, v = profile.draft, profile.verify
    assert d.measured and v.measured and profile.peaks is not None
    assert [length for length, _ in d.rounds] == [1, 3]
    assert d.seconds_per_token > 0 and d.overhead_seconds >= 0
    assert [(p.batch, p.new_tokens) for p in v.points] == list(settings.grid())
    for p in v.points:
        assert p.seconds == pytest.approx(SMALL.layers * p.layer_seconds + p.head_seconds)
        assert p.roofline_seconds > 0
    assert v.layer_scale == SMALL.layers and v.form in ("affine", "table")
    assert v.fit.intercept > 0 and v.fit.slope >= 0
    assert list(v.table.x) == sorted(set(p.tokens for p in v.points))
    # the largest time per N over the batch sizes, as measured (no running maximum)
    assert v.table.y == tuple(max(p.seconds for p in v.points if p.tokens == n) for n in v.table.x)
    assert v.weight_bytes == SMALL.weight_bytes(4) and v.decode_vs_bandwidth > 0
    assert any("multiplied by 2 layers" in note for note in profile.notes)
    done, total = seen[-1][1:]
    assert done == total == 2 + 2 * 3 + len(settings.grid()) * 3


def test_memory_is_checked_before_allocating(monkeypatch):
    def no_allocation(*args, **kwargs):
        raise AssertionError("allocated before checking memory")

    monkeypatch.setattr(nb, "memory_available", lambda machine: 2**30)
    monkeypatch.setattr(nb, "measure_local_peaks", no_allocation)
    monkeypatch.setattr(nb, "make_target", no_allocation)
    seven_b = resolve_model("llama-2-7b")
    with pytest.raises(TooLargeError) as err:
        run_profile(seven_b, seven_b, Settings.make(quick=True))
    message = str(err.value)
    assert "would need" in message and "1 GiB available" in message and err.value.exit_code == 2


def test_huge_context_is_refused_before_allocating():
    seven_b = resolve_model("llama-2-7b")
    with pytest.raises(TooLargeError, match="KV cache"):
        run_profile(seven_b, seven_b, Settings.make(context=1_000_000))


def test_estimate_decode_is_the_bandwidth_floor_and_verification_turns_compute_bound():
    a100 = resolve_hardware("A100-80GB")
    shape = resolve_model("llama-2-7b").shape
    settings = Settings.make(context=0, batch_sizes=(1, 64, 512), max_draft_length=1)
    v = estimate_verify(shape, a100, settings)
    by_tokens = {p.tokens: p.seconds for p in v.points}
    floor = shape.weight_bytes(2) / 2039e9
    assert by_tokens[1] == pytest.approx(floor, rel=0.01)  # memory-bound: weights over bandwidth
    assert by_tokens[64] < 1.1 * floor  # still under the ridge point (about 153 tokens)
    compute = 2 * 1024 * shape.total_params / 312e12
    assert by_tokens[1024] == pytest.approx(compute, rel=0.1)  # compute-bound beyond it
    assert v.dtype == "bfloat16" and not v.measured


def test_estimates_are_deterministic_and_measure_nothing(monkeypatch):
    monkeypatch.setattr(nb, "measure_local_peaks", lambda *a: pytest.fail("measured during an estimate"))
    a100 = resolve_hardware("A100-80GB")
    draft, target = resolve_model("llama-68m"), resolve_model("llama-2-7b")
    one = run_profile(draft, target, Settings.make(), estimate=a100)
    two = run_profile(draft, target, Settings.make(), estimate=a100)
    assert one.verify.points == two.verify.points and one.draft.rounds == two.draft.rounds
    assert one.peaks is None and one.memory_plan == ()


def test_mixed_sides_measure_only_the_local_one():
    nano = resolve_hardware("Jetson-Orin-Nano")
    profile = run_profile(_spec(SMALL), _spec(SMALL), Settings.make(quick=True, context=8, max_draft_length=2),
                          draft_estimate=nano)
    assert not profile.draft.measured and profile.draft.device == "Jetson-Orin-Nano"
    assert profile.verify.measured


def test_numpy_refuses_16_bit():
    from multispin_cli.errors import InputError

    with pytest.raises(InputError, match="float32 only"):
        run_profile(_spec(SMALL), _spec(SMALL), Settings.make(quick=True, dtype="float16"))


def test_machine_description():
    m = describe_machine()
    assert m.logical_cores >= 1 and m.llc_bytes > 0 and m.numpy_version == np.__version__
    assert str(m.logical_cores) in m.summary()
