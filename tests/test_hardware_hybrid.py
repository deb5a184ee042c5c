"""Hybrid (Qwen3.5-style) models: the catalog entries, the Gated DeltaNet cost model against hand
counts, the numpy layer's decode and verify behaviour, the roofline's state checkpoints, the CLI,
and the shipped paper-setup profiles."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from typer.testing import CliRunner

from multispin_cli.cli import app
from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.profile import load_profile
from multispin_cli.hardware import costs
from multispin_cli.hardware import numpy_backend as nb
from multispin_cli.hardware.models import catalog, resolve_model, shape_from_config
from multispin_cli.hardware.roofline import LocalPeaks, resolve_hardware, roofline_seconds
from multispin_cli.planners.report import plan_report

# 4 layers: 3 Gated DeltaNet then 1 gated attention; 1 QK head and 2 V heads of 4 in the linear layers
TINY_HYBRID = {
    "model_type": "qwen3_5_text", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 4,
    "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "vocab_size": 32,
    "tie_word_embeddings": False, "attn_output_gate": True, "full_attention_interval": 4,
    "linear_num_key_heads": 1, "linear_num_value_heads": 2, "linear_key_head_dim": 4,
    "linear_value_head_dim": 4, "linear_conv_kernel_dim": 3, "mamba_ssm_dtype": "float32",
    "layer_types": ["linear_attention"] * 3 + ["full_attention"],
}


def _tiny():
    return shape_from_config(TINY_HYBRID, name="tiny-hybrid")


# --------------------------------------------------------------------------- shapes and catalog


def test_tiny_hybrid_shape_and_params_by_hand():
    s = _tiny()
    assert (s.layers, s.linear_layers, s.attention_layers) == (4, 3, 1)
    assert s.hybrid and s.attn_output_gate and s.qk_norm
    assert s.conv_width == 2 * 4 + 8 and s.linear_in_width == 2 * 4 + 2 * 8 + 2 * 2
    # Gated DeltaNet layer: in_proj 8x28, conv 16x3, A_log + dt_bias 2+2, gated norm 4, out_proj 8x8,
    # MLP 3x8x16, two RMSNorms 2x8
    assert s.linear_params == 224 + 48 + 4 + 4 + 64 + 384 + 16
    # attention layer: q (+gate) 8x16, k and v 8x4 each, o 8x8, MLP 384, norms 2x8 + q/k norms 2x4
    assert s.layer_params == 8 * 24 + 64 + 384 + 24
    assert s.total_params == 3 * 744 + 664 + 2 * 32 * 8 + 8
    assert s.kv_bytes_per_token(2) == 1 * 2 * 4 * 2  # one attention layer holds a KV cache
    # recurrent state float32 (mamba_ssm_dtype), conv state in the pass's dtype
    assert s.state_bytes_per_sequence(2) == 3 * (2 * 4 * 4 * 4 + 16 * 2 * 2)


def test_layer_types_can_come_from_the_interval():
    config = {k: v for k, v in TINY_HYBRID.items() if k != "layer_types"}
    assert shape_from_config(config, name="x").linear_layers == 3


def test_qwen35_catalog_entries_match_their_configs():
    shapes = catalog()
    big = shapes["qwen3.5-27b"]
    assert (big.layers, big.linear_layers, big.hidden, big.intermediate) == (64, 48, 5120, 17408)
    assert (big.heads, big.kv_heads, big.head_dim, big.vocab) == (24, 4, 256, 248320)
    assert (big.linear_key_heads, big.linear_value_heads, big.linear_key_dim, big.linear_value_dim) == (16, 48, 128, 128)
    assert big.conv_kernel == 4 and big.state_dtype == "float32" and not big.tied_embeddings
    assert 26.5e9 < big.total_params < 27.5e9  # 27B with the vision tower left out
    small = shapes["qwen3.5-0.8b"]
    assert (small.layers, small.linear_layers, small.hidden, small.heads, small.kv_heads) == (24, 18, 1024, 8, 2)
    assert small.tied_embeddings and 0.7e9 < small.total_params < 0.85e9
    for name in ("qwen3.5-2b", "qwen3.5-4b", "qwen3.5-9b"):
        assert shapes[name].hybrid and shapes[name].attention_layers * 4 == shapes[name].layers
    for path in sorted((profiles_dir() / "models").glob("qwen3.5-*.toml")):
        text = path.read_text()
        assert "config.json" in tomllib.loads(text)["source"] and "Verification:" in text
    assert resolve_model("Qwen/Qwen3.5-27B").shape.name == "qwen3.5-27b"


# --------------------------------------------------------------------------- the cost model


def test_gated_deltanet_ops_by_hand():
    s = _tiny()
    ops = {op.name: op for op in costs.linear_layer_ops(s, batch=2, new_tokens=3, bytes_per_value=2)}
    t = 6  # 2 sequences x 3 tokens
    assert ops["in_proj"].flop == 2 * t * 8 * 28 and ops["in_proj"].weight_bytes == 8 * 28 * 2
    conv = ops["conv1d"]
    assert conv.flop == 2 * t * 16 * 3 and conv.weight_bytes == 16 * 3 * 2
    assert conv.kv_bytes == 2 * 16 * (2 + 3) * 2  # per sequence: 2 saved inputs read, 3 new kept
    rec = ops["gated_delta_rule"]
    assert rec.flop == 7 * t * 2 * 4 * 4  # 7 d_k d_v per token and value head
    state = 2 * 4 * 4 * 4  # heads x d_k x d_v float32
    assert rec.kv_bytes == 2 * state * (1 + 3)  # read once, a checkpoint after each of 3 positions
    assert rec.activation_bytes == t * (8 + 16 + 4) * 2
    assert ops["out_proj"].flop == 2 * t * 8 * 8
    decode = {op.name: op for op in costs.linear_layer_ops(s, batch=2, new_tokens=1, bytes_per_value=2)}
    assert decode["gated_delta_rule"].kv_bytes == 2 * state * 2  # read and write back once


def test_forward_cost_counts_each_kind_of_layer():
    s = _tiny()
    c = costs.forward_cost(s, batch=1, new_tokens=2, context=5, bytes_per_value=2)
    assert (c.layers, c.linear_layers) == (1, 3)
    attention = sum(op.flop for op in c.layer_ops)
    linear = sum(op.flop for op in c.linear_ops)
    head = 2 * 2 * 8 * 32
    assert c.flop == pytest.approx(attention + 3 * linear + head)
    # q projection with the output gate: 8 -> 2 x 8 + 2 x 4
    assert c.layer_ops[0].flop == 2 * 2 * 8 * 24
    dense = costs.forward_cost(resolve_model("llama-68m").shape, batch=1, new_tokens=1, context=0, bytes_per_value=2)
    assert dense.linear_layers == 0 and dense.linear_ops == ()


def test_roofline_charges_a_state_checkpoint_per_verified_token():
    """Within the model's assumptions: with unbounded compute, each further verified token of a
    sequence costs its added bytes over the bandwidth, at least the Gated DeltaNet state checkpoints."""
    shape = resolve_model("qwen3.5-27b").shape
    bw = 2e12
    times = [roofline_seconds(costs.forward_cost(shape, batch=1, new_tokens=n, context=512, bytes_per_value=2),
                              flops_per_s=1e30, bytes_per_s=bw) for n in (1, 2, 3)]
    checkpoint = shape.linear_layers * shape.state_elements() * 4 / bw
    assert times[1] - times[0] == pytest.approx(times[2] - times[1])  # affine in N
    assert times[1] - times[0] >= checkpoint
    assert checkpoint == pytest.approx(48 * 48 * 128 * 128 * 4 / bw)
    # a decode step moves the weights once plus one state read and write per layer
    weights = shape.weight_bytes(2) / bw
    assert times[0] == pytest.approx(weights, rel=0.02) and times[0] > weights


def test_estimate_for_a100_through_the_cli():
    result = CliRunner().invoke(app, ["profile-hardware", "--draft", "qwen3.5-0.8b", "--target", "qwen3.5-27b",
                                      "--estimate", "A100-80GB", "--format", "toml"])
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(result.stdout)
    hw = resolve_hardware("A100-80GB")
    shape = resolve_model("qwen3.5-27b").shape
    cost = costs.forward_cost(shape, batch=1, new_tokens=1, context=512, bytes_per_value=2)
    expected_ms = roofline_seconds(cost, flops_per_s=hw.flops("bfloat16"), bytes_per_s=hw.bandwidth_bytes_per_s) * 1e3
    table = dict((int(n), ms) for n, ms in doc["server"]["verify_table"])
    assert table[1] == pytest.approx(expected_ms, rel=1e-4)
    # 8 sequences verifying 9 tokens each write 8 x 8 more state checkpoints than 8 decoding one
    checkpoints_ms = 8 * 8 * shape.linear_layers * shape.state_elements() * 4 / hw.bandwidth_bytes_per_s * 1e3
    assert table[72] - table[8] >= checkpoints_ms
    assert doc["draft"]["draft_ms_per_token"] > 0


# --------------------------------------------------------------------------- the numpy layer


def _layer(seed=0):
    s = _tiny()
    filler = nb.Filler(seed)
    return s, filler, nb.LinearLayerWeights.synthetic(s, filler)


def test_decode_updates_state_in_place():
    s, filler, w = _layer()
    cache = nb.LinearState.synthetic(s, filler, batch=2, max_new=1)
    before, conv_before = cache.state.copy(), cache.conv.copy()
    x = np.random.default_rng(1).standard_normal((2, 1, 8)).astype(np.float32)
    y = nb.linear_layer_forward(s, w, x, cache)
    assert y.shape == (2, 1, 8) and y.dtype == np.float32 and np.isfinite(y).all()
    assert cache.state.shape == (2, 2, 4, 4) and not np.allclose(cache.state, before)
    assert cache.conv.shape == (2, 16, 2) and np.array_equal(cache.conv[:, :, 0], conv_before[:, :, 1])
    assert cache.checkpoints is None


def test_verify_writes_one_checkpoint_per_position_and_matches_chained_decodes():
    """A verify pass of n tokens is n decode steps in one: its checkpoint i is the state after
    decoding tokens 0..i, and the starting state is left alone for the rollback."""
    s, filler, w = _layer()
    n = 3
    verify = nb.LinearState.synthetic(s, filler, batch=2, max_new=4)
    start, conv_start = verify.state.copy(), verify.conv.copy()
    x = np.random.default_rng(2).standard_normal((2, n, 8)).astype(np.float32)
    y = nb.linear_layer_forward(s, w, x, verify)
    assert y.shape == (2, n, 8)
    assert np.array_equal(verify.state, start)  # untouched: a rejection resumes from a checkpoint
    assert verify.checkpoints.shape == (2, 4, 2, 4, 4)
    decode = nb.LinearState(state=start.copy(), conv=conv_start.copy())
    for i in range(n):
        yi = nb.linear_layer_forward(s, w, x[:, i:i + 1], decode)
        np.testing.assert_allclose(yi[:, 0], y[:, i], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(decode.state, verify.checkpoints[:, i], rtol=1e-4, atol=1e-6)
    # the window kept for rollback ends with the inputs a decode would have saved
    np.testing.assert_allclose(verify.conv_window[:, :, n:n + 2], decode.conv, rtol=1e-6)


def test_attention_layer_with_output_gate():
    s = _tiny()
    filler = nb.Filler(3)
    w = nb.LayerWeights.synthetic(s, filler)
    assert w.wqkv.shape == (2 * 8 + 2 * 4, 8)
    k = filler.array((1, 1, 10, 4))
    v = filler.array((1, 1, 10, 4))
    y = nb.layer_forward(s, w, filler.array((1, 3, 8)), k, v, 4, nb.Rope(4, 10))
    assert y.shape == (1, 3, 8) and np.isfinite(y).all()


def test_target_times_each_kind_of_layer():
    s = _tiny()
    target = nb.NumpyTarget(s, context=4, max_batch=2, max_new=3, llc_bytes=0)
    for batch, new in ((1, 1), (2, 3)):
        parts = target.parts(batch, new)
        assert [(name, mult) for name, _, mult in parts] == [("attention layer", 1), ("linear layer", 3), ("head", 1)]
        for _, call, _ in parts:
            call()
    assert "Gated DeltaNet" in target.describe()
    items = dict(nb.target_memory(s, 4, 2, 3, 6, 0))
    assert any("checkpoints" in label for label in items)


def test_draft_runs_every_layer_in_order():
    s = resolve_model("qwen3.5-27b").shape
    assert sorted(nb.attention_layer_indices(s)) == list(range(3, 64, 4))
    tiny = _tiny()
    draft = nb.NumpyDraft(tiny, context=4, max_steps=2, llc_bytes=0)
    assert [k for k, _ in draft.kinds] == ["linear"] * 3 + ["attention"]
    before = [st.state.copy() for st in draft.states]
    draft.round(2)
    assert all(not np.allclose(b, st.state) for b, st in zip(before, draft.states))


def test_torch_verify_checkpoints_match_chained_decodes():
    torch = pytest.importorskip("torch", reason="the torch extra is not installed")
    from multispin_cli.hardware import torch_backend as tb
    from multispin_cli.hardware import torch_hybrid as th

    s = _tiny()
    syn = tb._Synthetic(torch.float32, "cpu", 0)
    w = th.deltanet_weights(s, syn)
    verify = th.deltanet_state(s, syn, batch=2, max_new=4)
    start, conv_start = verify.state.clone(), verify.conv.clone()
    x = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        y = th.deltanet_forward(s, w, x, verify)
        assert y.shape == (2, 3, 8) and torch.equal(verify.state, start)
        decode = th.DeltaNetState(state=start.clone(), conv=conv_start.clone())
        for i in range(3):
            yi = th.deltanet_forward(s, w, x[:, i:i + 1], decode)
            torch.testing.assert_close(yi[:, 0], y[:, i], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(decode.state, verify.checkpoints[:, i], rtol=1e-4, atol=1e-6)


def test_torch_backend_runs_hybrids():
    pytest.importorskip("torch", reason="the torch extra is not installed")
    from multispin_cli.hardware import torch_backend as tb

    s = _tiny()
    target = tb.make_target(s, context=4, max_batch=2, max_new=3, llc_bytes=0, dtype="float32")
    for batch, new in ((1, 1), (2, 3)):
        parts = target.parts(batch, new)
        assert [(name, mult) for name, _, mult in parts] == [("attention layer", 1), ("linear layer", 3), ("head", 1)]
        for _, call, _ in parts:
            call()
    draft = tb.make_draft(s, context=4, max_steps=2, llc_bytes=0, dtype="float32")
    draft.round(2)
    assert "Gated DeltaNet" in draft.describe() and "Gated DeltaNet" in target.describe()
    labels = [label for label, _ in tb.target_memory(s, 4, 2, 3, 6, 0, dtype="float32")]
    assert any("checkpoints" in label for label in labels)


# --------------------------------------------------------------------------- through the CLI


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_profile_hardware_measures_a_tiny_hybrid(tmp_path, monkeypatch, backend):
    if backend == "torch":
        pytest.importorskip("torch", reason="the torch extra is not installed")
    from multispin_cli.hardware import torch_backend as tb

    peaks = lambda machine, settings: LocalPeaks(20e9, 100e9, "test bandwidth", "test matmul", "float32")  # noqa: E731
    monkeypatch.setattr(nb, "measure_local_peaks", peaks)
    monkeypatch.setattr(tb, "measure_local_peaks", peaks)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"text_config": TINY_HYBRID, "model_type": "qwen3_5"}))
    common = ["--draft", str(path), "--target", str(path), "--quick", "--context", "8", "--max-draft-length", "2",
              "--backend", backend]
    # --force: a tiny model on a shared machine measures mostly noise, which the checks refuse
    result = CliRunner().invoke(app, ["profile-hardware", *common, "--format", "toml", "--force"])
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(result.stdout)
    assert doc  # a fragment; the timing values themselves are the machine's
    table = CliRunner().invoke(app, ["profile-hardware", *common])
    assert table.exit_code == 0, table.stderr
    assert "Gated DeltaNet" in table.stdout


# --------------------------------------------------------------------------- the paper-setup profiles


@pytest.mark.parametrize("name", ["paper-llama2-a100", "paper-qwen3.5-a100"])
def test_paper_setup_profiles_plan_against_the_baselines(name):
    path = profiles_dir() / f"{name}.toml"
    text = path.read_text()
    assert "ASSUMED" in text and "88 %" in text
    profile = load_profile(path)
    assert profile.system.users == 8
    report = plan_report(profile.system, mode="both")
    het = report.heterogeneous.goodput_tokens_per_s
    assert {"fixed_equal", "mean_user", "autoregressive"} <= set(report.baselines)
    for plan in [*report.plans, *report.baselines.values()]:
        assert het >= plan.goodput_tokens_per_s * (1 - 1e-9)
