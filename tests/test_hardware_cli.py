"""`multispin profile-hardware` through the CLI: output, errors, and the round trip into `multispin plan`."""

from __future__ import annotations

import json
import sys
import tomllib

import pytest
from typer.testing import CliRunner

from multispin_cli.cli import app
from multispin_cli.documents.profile import load_profile
from multispin_cli.hardware import numpy_backend as nb
from multispin_cli.hardware.fragment import toml_dumps
from multispin_cli.hardware.models import catalog
from multispin_cli.hardware.roofline import LocalPeaks, hardware_catalog

TINY_CONFIG = {
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 256,
    "tie_word_embeddings": False,
}
# --force: a tiny model on a shared test machine measures mostly noise, which the checks rightly refuse
FAST = ["--quick", "--context", "16", "--max-draft-length", "3", "--force"]


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "tiny" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(TINY_CONFIG))
    return str(path)


@pytest.fixture()
def fast_peaks(monkeypatch):
    """Skip the 256 MiB bandwidth test in CLI tests that do not look at it."""
    monkeypatch.setattr(nb, "measure_local_peaks", lambda machine, settings: LocalPeaks(
        20e9, 100e9, "test bandwidth", "test matmul", "float32"))


def _run(*args):
    result = CliRunner().invoke(app, ["profile-hardware", *args])
    return result


def _one_error_line(result, code=2):
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("multispin: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_toml_fragment_of_a_tiny_config(tiny, fast_peaks):
    result = _run("--draft", tiny, "--target", tiny, *FAST, "--format", "toml")
    assert result.exit_code == 0, result.stderr
    assert "error" not in result.stderr
    doc = tomllib.loads(result.stdout)  # stdout carries only the document
    server, draft = doc["server"], doc["draft"]
    assert server["target"] == "tiny" and server["verify_model"] in ("affine", "table")
    assert server["verify_base_ms"] > 0 and server["verify_ms_per_token"] >= 0
    assert server["verify_r2"] <= 1
    tokens = [n for n, _ in server["verify_table"]]
    times = [t for _, t in server["verify_table"]]
    assert tokens == sorted(set(tokens)) and all(t > 0 for t in times)  # as measured: it may fall
    assert draft["draft_ms_per_token"] > 0 and draft["draft_overhead_ms"] >= 0
    target = doc["measurement"]["target"]
    assert "multiplied by the 2 layers" in target["layer_scaling"]
    assert len(target["grid"]) == 6 and target["grid_columns"][:4] == ["batch", "tokens_per_sequence", "tokens", "ms"]
    # the table is the grid's largest time per N, no running maximum; its falls are counted
    largest = {n: max(row[3] for row in target["grid"] if row[2] == n) for n in tokens}
    assert times == pytest.approx([largest[n] for n in tokens], rel=1e-3)
    assert target["table_points_falling"] == sum(t < max(times[:i]) for i, t in enumerate(times) if i)
    assert result.stdout.startswith("# written by multispin profile-hardware")


def test_json_and_table_formats(tiny, fast_peaks, tmp_path):
    result = _run("--draft", tiny, "--target", tiny, *FAST, "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"server", "draft", "measurement"}
    result = _run("--draft", tiny, "--target", tiny, *FAST)
    assert result.exit_code == 0, result.stderr
    for needle in ("Machine", "Draft tiny", "Target tiny", "draft_ms_per_token", "T_v(N)", "BLAS"):
        assert needle in result.stdout
    out = tmp_path / "view.txt"
    result = _run("--draft", tiny, "--target", tiny, *FAST, "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert "Target tiny" in out.read_text() and "wrote table timings" in result.stderr


def test_list_shows_both_catalogs():
    result = _run("--list")
    assert result.exit_code == 0
    for name in [*catalog(), *hardware_catalog()]:
        assert name in result.stdout


def test_estimate_is_deterministic_and_names_no_machine():
    args = ["--estimate", "A100-80GB", "--format", "toml"]
    one, two = _run(*args), _run(*args)
    assert one.exit_code == 0 and one.stdout == two.stdout
    doc = tomllib.loads(one.stdout)
    assert "machine" not in doc["measurement"] and "wall_s" not in doc["measurement"]
    assert doc["measurement"]["target"]["device"] == "A100-80GB"
    # a 7B decode step on an A100 is memory-bound: about 13.2 GB / 2039 GB/s
    assert doc["server"]["verify_table"][0][1] == pytest.approx(6.6, rel=0.05)
    assert doc["measurement"]["target"]["decode_vs_bandwidth_bound"] == pytest.approx(1.0, abs=0.05)


def test_estimate_warns_when_the_model_does_not_fit_the_device():
    result = _run("--target", "llama-2-13b", "--estimate", "RTX-4090", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)
    assert "multispin: warning: the target llama-2-13b in bfloat16" in result.stderr
    assert "more than RTX-4090's 24 GiB" in result.stderr


def _profile(tmp_path, fragment_name):
    profile = tmp_path / "cell.toml"
    profile.write_text(f"""
[system]
name = "round trip"
bandwidth_mhz = 20
max_draft_length = 6

[payload]
vocab_size = 32000

[server]
timings = "{fragment_name}"

[[devices]]
name = "phone"
count = 3
acceptance = 0.8
snr_db = 12
timings = "{fragment_name}"
""")
    return profile


@pytest.mark.parametrize("mode", ["measured", "engine loop", "estimated"])
def test_round_trip_fragment_profile_plan(tiny, fast_peaks, tmp_path, mode):
    if mode == "engine loop":
        pytest.importorskip("transformers", reason="the extra `validate` (torch, transformers) is not installed")
    fragment = tmp_path / "timings.toml"
    args = ["--draft", tiny, "--target", tiny, *FAST] if mode != "estimated" else [
        "--estimate", "RTX-4090", "--draft-estimate", "Snapdragon-8-Gen-3", "--batch-sizes", "3"]
    if mode == "engine loop":
        args.append("--engine-loop")
    result = _run(*args, "--format", "toml", "--output", str(fragment))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and "wrote toml timings" in result.stderr
    doc = tomllib.loads(fragment.read_text())
    if mode == "estimated":  # one batch size: T_v is affine in N, and the affine form is chosen
        assert doc["server"]["verify_model"] == "affine" and doc["server"]["verify_r2"] > 0.99

    loaded = load_profile(_profile(tmp_path, fragment.name))
    server, draft = doc["server"], doc["draft"]
    system = loaded.system
    if mode == "engine loop":  # the serving loop's own time per round, measured and carried into the profile
        assert 0 < server["round_overhead_ms"] < 1e3
        assert system.round_overhead_s == pytest.approx(server["round_overhead_ms"] / 1e3)
        assert doc["measurement"]["target"]["round_overhead_spread_percent"] >= 0
    else:  # --quick leaves the engine loop out; estimates have none
        assert "round_overhead_ms" not in server and system.round_overhead_s == 0
    assert loaded.target == server["target"]
    assert system.draft_s_per_token == pytest.approx([draft["draft_ms_per_token"] / 1e3] * 3)
    assert system.draft_overhead_s == pytest.approx([draft["draft_overhead_ms"] / 1e3] * 3)
    if server["verify_model"] == "table":
        tokens = [n for n, _ in server["verify_table"]]
        assert list(system.verify.tokens) == tokens
        assert system.verify(tokens[-1]) == pytest.approx(server["verify_table"][-1][1] / 1e3)
    else:
        assert system.verify.base_s == pytest.approx(server["verify_base_ms"] / 1e3)
        assert system.verify.per_token_s == pytest.approx(server["verify_ms_per_token"] / 1e3)

    plan = CliRunner().invoke(app, ["plan", str(_profile(tmp_path, fragment.name)), "--format", "json"])
    assert plan.exit_code == 0, plan.stderr
    assert json.loads(plan.stdout)


# --------------------------------------------------------------------------- bad input


def test_unknown_model_lists_the_known_ones():
    line = _one_error_line(_run("--target", "llama-7b"))
    assert "--target: unknown model 'llama-7b'" in line and "llama-2-7b" in line and "qwen3-8b" in line


def test_unknown_hardware_lists_the_known_ones():
    line = _one_error_line(_run("--estimate", "TPU-v5"))
    assert "unknown hardware 'TPU-v5'" in line and "A100-80GB" in line


def test_malformed_config_json(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"hidden_size": 64,')
    line = _one_error_line(_run("--target", str(bad)))
    assert str(bad) in line and "invalid JSON" in line


def test_config_json_missing_a_key(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({k: v for k, v in TINY_CONFIG.items() if k != "intermediate_size"}))
    line = _one_error_line(_run("--draft", str(bad)))
    assert "intermediate_size: missing" in line


def test_backend_not_installed_names_the_extra(monkeypatch, tiny):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    line = _one_error_line(_run("--draft", tiny, "--target", tiny, "--backend", "torch"))
    assert "pip install 'multispin[torch]'" in line


def test_impossible_sizes_are_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(nb, "make_target", lambda *a, **k: pytest.fail("allocated"))
    line = _one_error_line(_run("--context", "1000000"))
    assert "refusing to measure" in line and "would need" in line and "available" in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--batch-sizes", "1,x"], "--batch-sizes: 'x' is not a batch size"),
        (["--batch-sizes", "0"], "--batch-sizes: '0': batch sizes must be positive"),
        (["--dtype", "float16"], "float32 only"),
        (["--estimate", "Snapdragon-8-Gen-3", "--dtype", "bfloat16"], "no bfloat16 peak"),
    ],
)
def test_bad_options(args, needle):
    assert needle in _one_error_line(_run(*args))


def test_usage_errors_are_one_line():
    result = _run("--context", "-1")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_toml_writer_round_trips():
    doc = {"server": {"verify_table": [[1, 2.5], [2, 3.0]], "name": 'a "quoted" \\ name'},
           "measurement": {"notes": ["x" * 120], "nested": {"flag": True, "tiny": 1e-7}}}
    assert tomllib.loads(toml_dumps(doc)) == doc


def test_batch_sizes_take_ranges_as_in_schedule():
    from multispin_cli.cli.hardware import _batch_sizes

    assert _batch_sizes("1-3,8") == (1, 2, 3, 8)
    assert _batch_sizes(None) is None
