"""Model and hardware catalogs, and Hugging Face config.json parsing."""

from __future__ import annotations

import json
import tomllib

import pytest

from multispin_cli.errors import InputError
from multispin_cli.hardware.models import (
    ModelShape,
    catalog,
    models_dir,
    read_config_json,
    resolve_model,
    shape_from_config,
)
from multispin_cli.hardware.roofline import hardware_catalog, hardware_dir, resolve_hardware

LLAMA_CONFIG = {
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 3,
    "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 300, "max_position_embeddings": 512,
    "tie_word_embeddings": False, "torch_dtype": "float16",
}


# --------------------------------------------------------------------------- the model catalog


def test_every_model_entry_loads_with_a_source():
    files = sorted(models_dir().glob("*.toml"))
    shapes = catalog()
    assert len(files) == len(shapes) >= 7
    for path in files:
        data = tomllib.loads(path.read_text())
        assert data["source"].strip(), path
        shape = shapes[data["name"]]
        assert shape.source == data["source"]
        assert shape.heads % shape.kv_heads == 0
        assert shape.total_params > 0


@pytest.mark.parametrize(
    ("name", "params"),
    [  # published parameter counts
        ("llama-2-7b", 6_738_415_616),
        ("llama-2-13b", 13_015_864_320),
        ("tinyllama-1.1b", 1_100_048_384),
        ("llama-68m", 68_030_208),
        ("llama-160m", 162_417_408),
        ("qwen3-0.6b", 596_049_920),
    ],
)
def test_catalog_shapes_give_the_published_parameter_counts(name, params):
    assert catalog()[name].total_params == params


def test_catalog_carries_gqa_head_dim_and_tied_embeddings():
    models = catalog()
    tiny = models["tinyllama-1.1b"]
    assert (tiny.heads, tiny.kv_heads, tiny.head_dim) == (32, 4, 64)
    qwen = models["qwen3-0.6b"]
    assert qwen.head_dim == 128 and qwen.q_width == 2048 != qwen.hidden  # explicit head_dim
    assert qwen.tied_embeddings and qwen.qk_norm
    assert not models["llama-2-7b"].tied_embeddings


@pytest.mark.parametrize("spec", ["llama-2-7b", "LLAMA-2-7B", "meta-llama/Llama-2-7b-hf", "llama2-7b"])
def test_resolve_model_by_name_alias_or_hf_id(spec):
    assert resolve_model(spec).shape.name == "llama-2-7b"


def test_unknown_model_lists_the_known_ones_and_suggests():
    with pytest.raises(InputError) as err:
        resolve_model("llama-7b", option="--target")
    message = str(err.value)
    assert message.startswith("--target: unknown model 'llama-7b'")
    assert "did you mean 'llama-2-7b'" in message
    for name in catalog():
        assert name in message


# --------------------------------------------------------------------------- config.json


def test_config_json_file_and_folder(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    spec = read_config_json(folder / "config.json")
    assert spec.shape.name == "my-model"  # named after its folder
    assert (spec.shape.layers, spec.shape.heads, spec.shape.kv_heads, spec.shape.head_dim) == (3, 8, 2, 8)
    assert spec.weights_dir is None  # no checkpoint next to it
    (folder / "model.safetensors").write_bytes(b"")
    spec = resolve_model(str(folder))  # a folder holding config.json
    assert spec.weights_dir == folder and spec.shape.dtype == "float16"
    (tmp_path / "other.json").write_text(json.dumps(LLAMA_CONFIG))
    assert resolve_model(str(tmp_path / "other.json")).shape.name == "other"


def test_catalog_names_win_over_same_named_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llama-68m").mkdir()
    assert resolve_model("llama-68m").origin == "catalog"
    with pytest.raises(InputError, match="no config.json"):
        resolve_model("./llama-68m")


def test_kv_heads_default_to_heads_and_text_config_is_unwrapped():
    config = {k: v for k, v in LLAMA_CONFIG.items() if k != "num_key_value_heads"}
    assert shape_from_config(config, name="x").kv_heads == 8
    wrapped = {"model_type": "llava", "text_config": LLAMA_CONFIG}
    assert shape_from_config(wrapped, name="x").intermediate == 160


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        ({"hidden_size": None}, "hidden_size", "missing"),
        ({"num_hidden_layers": "32"}, "num_hidden_layers", "positive integer"),
        ({"vocab_size": 0}, "vocab_size", "positive integer"),
        ({"num_key_value_heads": 3}, "num_key_value_heads", "multiple"),
        ({"hidden_size": 66, "num_attention_heads": 4, "num_key_value_heads": 4}, "hidden_size", "head_dim"),
        ({"tie_word_embeddings": "yes"}, "tie_word_embeddings", "true or false"),
        ({"num_local_experts": 8}, "num_local_experts", "mixture-of-experts"),
        ({"layer_types": ["mamba", "full_attention", "full_attention"]}, "layer_types", "not supported"),
        ({"layer_types": ["linear_attention", "full_attention"]}, "layer_types", "num_hidden_layers is 3"),
        ({"layer_types": ["linear_attention"] * 2 + ["full_attention"]}, "linear_num_key_heads", "missing"),
        ({"layer_types": ["linear_attention"] * 2 + ["full_attention"], "linear_num_key_heads": 3,
          "linear_num_value_heads": 4}, "linear_num_value_heads", "multiple"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, change, key, reason):
    config = {**LLAMA_CONFIG, **change}
    config = {k: v for k, v in config.items() if v is not None}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(InputError) as err:
        read_config_json(path)
    assert err.value.key == key and err.value.path == str(path)
    assert reason in str(err.value)


@pytest.mark.parametrize(("text", "reason"), [("{not json", "malformed JSON"), ("[1, 2]", "JSON object")])
def test_malformed_config_json(tmp_path, text, reason):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(InputError, match=reason):
        read_config_json(path)


def test_missing_config_json(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        resolve_model(str(tmp_path / "nope.json"))
    with pytest.raises(InputError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_shape_counts_by_hand():
    s = ModelShape("t", layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=32)
    # attention: q 8x8 + k,v 2 x 8x4 + o 8x8 = 192; mlp 3 x 8x16 = 384; norms 2 x 8 = 16
    assert (s.attention_params, s.mlp_params, s.norm_params, s.layer_params) == (192, 384, 16, 592)
    # layers 2 x 592 + embedding 32x8 + head 32x8 + final norm 8
    assert s.total_params == 1184 + 256 + 256 + 8
    # a decode step streams layers, head and final norm (the embedding is a row lookup)
    assert s.weight_bytes(2) == (1184 + 256 + 8) * 2
    assert s.kv_bytes_per_token(4) == 2 * 2 * 4 * 4


# --------------------------------------------------------------------------- the hardware catalog


def test_every_hardware_entry_loads_with_a_source():
    files = sorted(hardware_dir().glob("*.toml"))
    specs = hardware_catalog()
    assert len(files) == len(specs) >= 7
    kinds = {s.kind for s in specs.values()}
    assert {"gpu", "soc", "phone", "cpu"} <= kinds
    for spec in specs.values():
        assert spec.source.strip() and spec.bandwidth_bytes_per_s > 0 and spec.memory_bytes > 0
        assert "float32" in spec.peak_flops
        assert all(v > 0 for v in spec.peak_flops.values())


def test_a100_figures():
    a100 = resolve_hardware("a100")
    assert a100.name == "A100-80GB"
    assert a100.bandwidth_bytes_per_s == pytest.approx(2039e9)
    assert a100.flops("bfloat16") == pytest.approx(312e12)
    assert a100.default_dtype() == "bfloat16"


def test_unknown_hardware_lists_the_known_ones():
    with pytest.raises(InputError) as err:
        resolve_hardware("A100-40GB")
    assert "did you mean 'A100-80GB'" in str(err.value)
    for name in hardware_catalog():
        assert name in str(err.value)


def test_missing_dtype_peak_is_named():
    phone = resolve_hardware("Snapdragon-8-Gen-3")
    with pytest.raises(InputError, match="no bfloat16 peak"):
        phone.flops("bfloat16")
