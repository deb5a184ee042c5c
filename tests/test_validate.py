"""`multispin validate` and its engine: transformers' assisted generation run for real on tiny random
models built here from a config (no download); skipped when the extra `validate` is missing."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

pytest.importorskip("torch", reason="the extra `validate` (torch, transformers) is not installed")
pytest.importorskip("transformers", reason="the extra `validate` (torch, transformers) is not installed")

from typer.testing import CliRunner  # noqa: E402

from multispin_cli.cli import app  # noqa: E402
from multispin_cli.errors import InputError  # noqa: E402
from multispin_cli.hardware import engine  # noqa: E402
from multispin_cli.hardware.validation import engine_system  # noqa: E402
from multispin_cli.model.goodput import evaluate  # noqa: E402

CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
    "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96,
    "max_position_embeddings": 256, "initializer_range": 5e-4, "tie_word_embeddings": False,
}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "config.json"
    path.write_text(json.dumps(CONFIG))
    return path


@pytest.fixture(scope="module")
def twin(config):
    """A layer-skip draft with all of the target's layers: the target itself, so it accepts everything."""
    return engine.build_pair(target=str(config), draft=None, draft_layers=3, init_std=None, seed=0)


def test_plain_decoding_counts_one_token_per_round(twin):
    prompt = engine.prompt_ids(twin, 8, 0)
    run = engine.run_engine(twin, prompt, 0, 24)
    assert run.rounds == run.tokens == 23  # the first round (prefill) commits one token and is left out
    assert run.accepted == 0 and run.draft_s == 0.0
    assert 0 < run.verify_s < run.seconds


def test_a_perfect_draft_commits_l_plus_one_tokens_every_round(twin):
    prompt = engine.prompt_ids(twin, 8, 0)
    run = engine.run_engine(twin, prompt, 3, 41)
    # 41 tokens: the first round commits 4, then 9 rounds of 4 = 36, and a last one of 1
    assert run.tokens == 37 and run.rounds == 10 and run.accepted == 27
    assert run.draft_s > 0 and run.verify_s > 0


def test_profile_of_a_perfect_draft(twin):
    profile = engine.profile_engine(twin, max_draft_length=3, prompt_len=8, new_tokens=24, repeats=2, seed=5)
    assert profile.verify_tokens == (1, 2, 3, 4)
    assert all(t > 0 for t in profile.verify_s)
    assert min(profile.acceptance_by_position) > 0.9  # identical models agree at every position
    assert profile.draft_s_per_token > 0 and profile.draft_overhead_s >= 0 and profile.round_overhead_s >= 0
    system = engine_system(profile, 3)
    ev = evaluate(system, np.array([3]), np.zeros(1))
    assert ev.bandwidth_hz[0] == 0.0 and ev.tokens_per_round[0] > 3.5  # no uplink; nearly L + 1 per round
    assert ev.round_s == pytest.approx(profile.draft_overhead_s + 3 * profile.draft_s_per_token
                                       + profile.verify_s[3] + profile.round_overhead_s)


def test_layer_skip_draft_shares_the_target_weights(config):
    pair = engine.build_pair(target=str(config), draft=None, draft_layers=1, init_std=None, seed=0)
    t, d = pair.target.state_dict(), pair.draft.state_dict()
    assert set(d) < set(t) and len(pair.draft.model.layers) == 1
    for name, tensor in d.items():
        assert np.array_equal(tensor.numpy(), t[name].numpy()), name
    with pytest.raises(InputError, match="--draft-layers"):
        engine.build_pair(target=str(config), draft=None, draft_layers=4, init_std=None)


def test_verify_sweeps_spread_their_contexts_over_the_runs_and_time_every_n_twice(twin):
    profiler = engine.EngineProfiler(twin, max_draft_length=3, prompt_len=8, new_tokens=24, seed=5)
    for _ in range(4):
        profiler.sweep_verify()
    assert profiler.contexts == [8 + 12, 8 + 6, 8 + 18, 8 + 3]  # 1/2, 1/4, 3/4, 1/8 of the new tokens
    assert [len(s) for s in profiler.verify_samples] == [8, 8, 8, 8]
    assert all(t > 0 for s in profiler.verify_samples for t in s)


def test_sweep_slowdowns_follow_the_machine_not_the_covariate():
    from multispin_cli.hardware.fit import sweep_slowdowns

    # Two operations whose time grows with a covariate (a KV cache's length), timed in eight sweeps at four
    # lengths while the machine ran at these multiples of its usual time (as slow on average at every
    # length: a drift that the covariate does not explain).
    speed = [1.2, 0.9, 1.0, 1.08, 0.9, 1.2, 1.08, 1.0]
    sweeps = [[(n, x, speed[k] * (0.1 * n) * np.exp(0.01 * n * x)) for n in (1, 2) for _ in range(2)]
              for k, x in enumerate((4, 8, 16, 24, 4, 8, 16, 24))]
    got = sweep_slowdowns(sweeps)
    assert got / np.exp(np.mean(np.log(got))) == pytest.approx(np.array(speed) / np.exp(np.mean(np.log(speed))))
    assert sweep_slowdowns([[], []]).tolist() == [1.0, 1.0]
    # one stalled pass in a sweep does not move its slowdown (a median over its passes)
    sweeps[0][0] = (1, 16, 10.0)
    assert sweep_slowdowns(sweeps)[0] == pytest.approx(got[0], rel=0.05)


def test_every_engine_loop_run_sits_between_two_verify_sweeps(twin):
    profiler = engine.EngineProfiler(twin, max_draft_length=2, prompt_len=8, new_tokens=16, seed=5)
    profiler.sweep_rounds()
    assert len(profiler.contexts) == 1 + len(profiler.round_lengths())  # one before, one after each run
    assert [at for _, at in profiler.plain] == [1]  # the L = 0 run came after the first sweep
    assert {at for *_, at in profiler.rounds} == {2, 3}
    s = profiler.slowdowns()
    assert profiler.slowdown_at(1, s) == pytest.approx((s[0] + s[1]) / 2)
    assert profiler.slowdown_at(0, s) == pytest.approx(s[0]) and profiler.slowdown_at(len(s), s) == pytest.approx(s[-1])


def test_validate_cli_toml(config):
    result = CliRunner().invoke(app, ["validate", "-t", str(config), "--draft-layers", "1", "--lengths", "0,2",
                                      "--new-tokens", "16", "--prompt-tokens", "6", "--repeats", "1", "-f", "toml"])
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(result.stdout)
    assert [row["draft_length"] for row in doc["lengths"]] == [0, 2]
    # one run says nothing about the median's precision: every length is run again, up to twice --repeats
    assert doc["validate"]["max_repeats"] == 2 and [row["runs"] for row in doc["lengths"]] == [2, 2]
    assert all(row["uncertainty_percent"] >= 0 for row in doc["lengths"])
    assert doc["model"]["verify_samples"] >= 2 * 4 and doc["model"]["verify_uncertainty_percent"] >= 0
    assert doc["summary"]["plan_draft_length"] in (0, 1, 2)
    for row in doc["lengths"]:
        assert row["measured_tokens_per_s"] > 0 and row["predicted_tokens_per_s"] > 0 and row["slowdown"] > 0
        # the error is against the runs brought to the sweeps' average speed; the plain medians' error apart
        assert row["error_percent"] == pytest.approx(
            100 * (row["predicted_tokens_per_s"] / row["normalised_tokens_per_s"] - 1), abs=0.2)
        assert row["unadjusted_error_percent"] == pytest.approx(
            100 * (row["predicted_tokens_per_s"] / row["measured_tokens_per_s"] - 1), abs=0.2)
    assert len(doc["model"]["verify_table"]) == 3  # N = 1 .. max L + 1


@pytest.mark.parametrize("args,key", [
    (["--draft", "llama-68m", "--draft-layers", "1"], "--draft-layers"),
    (["--lengths", "0,x"], "--lengths"),
    (["--init-std", "-1"], "--init-std"),
    (["--repeats", "3", "--max-repeats", "2"], "--max-repeats"),
])
def test_validate_cli_bad_input_is_one_line(config, args, key):
    result = CliRunner().invoke(app, ["validate", "-t", str(config), *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert key in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_validate_cli_unknown_target():
    result = CliRunner().invoke(app, ["validate", "-t", "no-such-model"])
    assert result.exit_code == 2 and "--target" in result.stderr and "unknown model" in result.stderr


def test_replayed_agreement_predicts_the_engines_tokens_per_round(config):
    """The acceptance validate uses comes from the target's greedy text and the draft's teacher-forced
    guesses alone; replaying greedy rounds on them gives the engine's own tokens per round."""
    from multispin_cli.analysis.calibration import replayed_tokens_per_round

    pair = engine.build_pair(target=str(config), draft=None, draft_layers=1, init_std=0.02, seed=0)
    prompt = engine.prompt_ids(pair, 8, 3)
    text = engine._greedy_text(pair, prompt, 48)
    agree = engine.draft_agreement(pair, text, 8)
    assert 0 < agree.mean() < 1  # a draft that is neither perfect nor useless
    replay = replayed_tokens_per_round([agree], 5, skip_first_round=True)
    for length in (1, 2, 5):
        run = engine.run_engine(pair, prompt, length, 48)
        assert run.tokens / run.rounds == pytest.approx(replay[length], rel=1e-12), length


def test_repeats_stop_once_the_median_is_known_well_enough(config):
    from multispin_cli.hardware.validation import ValidationSettings, run_validation

    loose = run_validation(ValidationSettings(target=str(config), draft_layers=1, lengths=(0, 1), new_tokens=12,
                                              prompt_tokens=4, repeats=2, max_repeats=5, stability=0.99))
    assert [len(r.runs) for r in loose.lengths] == [2, 2]  # two runs within 99 % of each other: stable
    p = loose.profile
    assert p.loop_overhead_s >= 0 and p.loop_s_per_token >= 0
    system = engine_system(p, 1)
    for r in loose.lengths:  # the loop's share moves from the draft column to 'other'; the sum is the model's
        ev = evaluate(system, np.array([r.draft_length]), np.zeros(1))
        assert r.predicted_draft_s + r.predicted_overhead_s == pytest.approx(ev.phase_s[0] + system.server_fixed_s)
        loop = p.loop_overhead_s + p.loop_s_per_token * r.draft_length if r.draft_length else 0.0
        assert r.predicted_overhead_s == pytest.approx(system.server_fixed_s + loop)
    strict = run_validation(ValidationSettings(target=str(config), draft_layers=1, lengths=(0, 1), new_tokens=12,
                                               prompt_tokens=4, repeats=1, max_repeats=3, stability=1e-9))
    assert [len(r.runs) for r in strict.lengths] == [3, 3]  # never stable enough: up to --max-repeats
