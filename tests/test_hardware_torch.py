"""The torch backend (extra `torch`) on a tiny random model built here; skipped when torch is missing."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from multispin_cli.cli import app  # noqa: E402
from multispin_cli.errors import InputError  # noqa: E402
from multispin_cli.hardware import numpy_backend as nb  # noqa: E402
from multispin_cli.hardware import torch_backend as tb  # noqa: E402
from multispin_cli.hardware.models import read_config_json  # noqa: E402
from multispin_cli.hardware.profiling import Settings, run_profile  # noqa: E402

CONFIG = {
    "model_type": "qwen3", "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 64,
    "max_position_embeddings": 128, "tie_word_embeddings": True,
}


def write_safetensors(path, tensors):
    """A minimal safetensors writer: header length, JSON header, float32 data."""
    header, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        data = tensor.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


@pytest.fixture()
def model_dir(tmp_path):
    """A tiny random Qwen3-style checkpoint (GQA, q/k norms, tied embeddings) in Hugging Face layout."""
    c = CONFIG
    h, i, d = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    hq, hkv = c["num_attention_heads"], c["num_key_value_heads"]
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen) * 0.2

    tensors = {}
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        tensors.update({
            p + "self_attn.q_proj.weight": rand(hq * d, h), p + "self_attn.k_proj.weight": rand(hkv * d, h),
            p + "self_attn.v_proj.weight": rand(hkv * d, h), p + "self_attn.o_proj.weight": rand(h, hq * d),
            p + "mlp.gate_proj.weight": rand(i, h), p + "mlp.up_proj.weight": rand(i, h),
            p + "mlp.down_proj.weight": rand(h, i),
            p + "input_layernorm.weight": 1 + rand(h), p + "post_attention_layernorm.weight": 1 + rand(h),
            p + "self_attn.q_norm.weight": 1 + rand(d), p + "self_attn.k_norm.weight": 1 + rand(d),
        })
    tensors["model.embed_tokens.weight"] = rand(c["vocab_size"], h)
    tensors["model.norm.weight"] = 1 + rand(h)
    folder = tmp_path / "tiny-qwen3"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG))
    write_safetensors(folder / "model.safetensors", tensors)
    return folder


def test_checkpoint_loads_and_the_torch_layer_matches_numpy(model_dir):
    spec = read_config_json(model_dir)
    assert spec.weights_dir == model_dir
    s = spec.shape
    loaded = tb.load_weights(model_dir, s, "float32", "cpu")
    assert len(loaded.layers) == 2 and loaded.head is loaded.embedding  # tied
    tw = loaded.layers[0]
    w = nb.LayerWeights(*(t.numpy() for t in (tw.wqkv, tw.wo, tw.w_gate_up, tw.w_down, tw.attn_norm, tw.mlp_norm,
                                               tw.q_norm, tw.k_norm)))
    rng = np.random.default_rng(1)
    batch, new, pos = 2, 3, 4
    cache = rng.standard_normal((batch, s.kv_heads, pos + new, s.head_dim)).astype(np.float32)
    values = rng.standard_normal(cache.shape).astype(np.float32)
    x = rng.standard_normal((batch, new, s.hidden)).astype(np.float32)
    expected = nb.layer_forward(s, w, x, cache.copy(), values.copy(), pos, nb.Rope(s.head_dim, pos + new))
    with torch.inference_mode():
        rope = tb.Rope(s.head_dim, pos + new, torch.float32, "cpu")
        got = tb.layer_forward(s, tw, torch.from_numpy(x), torch.from_numpy(cache.copy()),
                               torch.from_numpy(values.copy()), pos, rope)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_profile_with_real_weights_runs_the_whole_model(model_dir):
    spec = read_config_json(model_dir)
    profile = run_profile(spec, spec, Settings.make(quick=True, backend="torch", context=8, max_draft_length=2))
    v, d = profile.verify, profile.draft
    assert v.layer_scale == 1 and "weights loaded from" in v.detail and v.dtype == "float32"
    assert all(p.layer_seconds is None and p.seconds > 0 for p in v.points)
    assert d.seconds_per_token > 0 and d.overhead_seconds >= 0
    assert "torch" in profile.backend_detail


def test_synthetic_weights_scale_one_layer(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    spec = read_config_json(path)
    assert spec.weights_dir is None
    target = tb.make_target(spec.shape, context=4, max_batch=2, max_new=2, llc_bytes=2**20)
    assert target.layer_scale == 2 and [p[0] for p in target.parts(2, 2)] == ["layer", "head"]
    for _, call, _ in target.parts(1, 2):
        call()


def test_cli_torch_backend_writes_a_fragment(model_dir, monkeypatch):
    from multispin_cli.hardware.roofline import LocalPeaks

    monkeypatch.setattr(tb, "measure_local_peaks", lambda machine, settings: LocalPeaks(
        1e10, 1e11, "test", "test", "float32"))
    result = CliRunner().invoke(app, ["profile-hardware", "--backend", "torch", "--draft", str(model_dir),
                                      "--target", str(model_dir), "--quick", "--context", "8", "-L", "2",
                                      "--format", "toml", "--force"])  # a tiny model: noise the checks refuse
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(result.stdout)
    assert doc["draft"]["draft_ms_per_token"] > 0
    assert "torch" in doc["measurement"]["backend"]


def test_a_file_that_is_not_safetensors_is_an_input_error(model_dir):
    with pytest.raises(InputError):
        tb.read_safetensors(model_dir / "config.json")  # not a safetensors file


def test_missing_tensor_is_named(model_dir):
    bad = model_dir / "model.safetensors"
    write_safetensors(bad, {"model.embed_tokens.weight": torch.zeros(64, 32)})
    with pytest.raises(InputError, match="no tensor model.layers.0.self_attn.q_proj.weight"):
        tb.load_weights(model_dir, read_config_json(model_dir).shape, "float32", "cpu")
