"""`multispin schedule`: the best common draft length per batch size, and its engine tables."""

from __future__ import annotations

import json
import textwrap
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from test_export import MIXED, invoke, one_line_error, parse_yaml_documents

from multispin_cli.documents.profile import load_profile
from multispin_cli.errors import InputError
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.planners.schedule import batch_system, draw_users, parse_batch_sizes, plan_schedule
from multispin_cli.render.export import batch_ranges, export_schedule, trtllm_schedule, vllm_schedule

# Identical phones; speculation pays alone (L = 4 at B = 1) and stops paying at B = 256, where the
# verification batch and the shared uplink make every draft cost more than it earns.
IDENTICAL = """
[system]
name = "identical phones"
bandwidth_mhz = 5
max_draft_length = 8

[payload]
kind = "token-ids"
vocab_size = 32000
header_bits = 32

[server]
target = "llama-7b"
target_model = "meta-llama/Llama-2-7b-chat-hf"
verify_base_ms = 25
verify_ms_per_token = 0.4

[[devices]]
name = "phone"
count = {count}
acceptance = 0.8
draft_ms_per_token = 4
snr_db = 10
draft_model = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
"""

SIZES = (1, 2, 3, 4, 8, 16, 32, 64, 128, 256, 512)


def write(tmp_path: Path, text: str, name: str = "cell.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def identical(tmp_path):
    return write(tmp_path, IDENTICAL.format(count=4))


def test_identical_devices_schedule_is_non_increasing_and_reaches_zero(identical):
    schedule = plan_schedule(load_profile(identical).system, SIZES)
    lengths = schedule.draft_lengths
    assert lengths[0] > 0, "speculation must pay for one user, or the test proves nothing"
    assert np.all(np.diff(lengths) <= 0), lengths
    assert lengths[-1] == 0 and schedule.stops_at is not None
    assert np.all(lengths[schedule.batch_sizes >= schedule.stops_at] == 0)
    assert len(set(lengths.tolist())) >= 3  # a real staircase, not a constant
    # where L = 0 the scheduled goodput is the target alone; elsewhere speculation gains
    off = lengths == 0
    assert np.allclose(schedule.goodput_tokens_per_s[off], schedule.autoregressive_tokens_per_s[off])
    assert np.all(schedule.gain[~off] > 0)


def test_schedule_matches_the_homogeneous_planner_on_a_profile_of_that_many_users(identical, tmp_path):
    """Independent construction: a profile with count = B, planned by plan_homogeneous."""
    schedule = plan_schedule(load_profile(identical).system, SIZES)
    for i, b in enumerate(schedule.batch_sizes):
        own = load_profile(write(tmp_path, IDENTICAL.format(count=b), f"b{b}.toml")).system
        plan = plan_homogeneous(own)
        assert schedule.draft_lengths[i] == plan.draft_length, b
        assert schedule.goodput_tokens_per_s[i] == pytest.approx(plan.goodput_tokens_per_s, rel=1e-9)
        assert np.allclose(schedule.goodput_by_length[i], plan.goodput_by_length, rtol=1e-9)


def test_mixed_profile_schedule_matches_the_homogeneous_planner_on_the_drawn_users(tmp_path):
    system = load_profile(write(tmp_path, MIXED)).system
    schedule = plan_schedule(system, (1, 2, 5, 7, 12))
    for i, b in enumerate(schedule.batch_sizes):
        assert schedule.draft_lengths[i] == plan_homogeneous(batch_system(system, b)).draft_length
        assert schedule.users[i].size == b


def test_users_are_drawn_as_a_representative_mix():
    # a profile listing four phones (0-3) then four laptops (4-7)
    assert draw_users(8, 2).tolist() == [2, 6]  # one of each, not two phones
    assert draw_users(8, 4).tolist() == [1, 3, 5, 7]
    assert draw_users(8, 8).tolist() == list(range(8))
    counts = Counter(draw_users(8, 19).tolist())  # two of each plus three spread over the list
    assert sorted(counts.values()) == [2] * 5 + [3] * 3
    assert {k for k, c in counts.items() if c == 3} == {1, 4, 6}
    assert draw_users(3, 2).tolist() == draw_users(3, 2).tolist()  # deterministic
    for k in (1, 5, 8):
        for b in (1, 2, 7, 40):
            drawn = draw_users(k, b)
            assert drawn.size == b and drawn.min() >= 0 and drawn.max() < k
            assert np.bincount(drawn, minlength=k).max() - np.bincount(drawn, minlength=k).min() <= 1


def test_the_band_is_shared_by_the_batch(identical):
    system = load_profile(identical).system
    for b in (1, 8, 64):
        big = batch_system(system, b)
        assert big.users == b and big.bandwidth_hz == system.bandwidth_hz


@pytest.mark.parametrize(
    "text, sizes",
    [("1,2,4,8", (1, 2, 4, 8)), (" 8, 1 ,2,2", (1, 2, 8)), ("1-4,16", (1, 2, 3, 4, 16)), ("5", (5,))],
)
def test_batch_sizes_parse(text, sizes):
    assert parse_batch_sizes(text) == sizes


@pytest.mark.parametrize("text", ["0", "-1", "a", "4-2", "1,,x", "", "1-100000", "2.5"])
def test_bad_batch_sizes(text):
    with pytest.raises(InputError, match="--batch-sizes"):
        parse_batch_sizes(text)


# --------------------------------------------------------------------------- engine tables


def vllm_lookup(ranges, b):
    """vLLM's rule: the range holding b, else the last K (vllm/v1/spec_decode/dynamic/utils.py)."""
    for lo, hi, k in ranges:
        if lo <= b <= hi:
            return k
    return ranges[-1][2]


def trtllm_lookup(schedule: dict, b):
    """TensorRT-LLM's rule: the smallest key >= b, and 0 above the largest key."""
    keys = [k for k in sorted(schedule) if k >= b]
    return schedule[keys[0]] if keys else 0


def test_engine_tables_reproduce_the_schedule_at_every_planned_batch_size(identical):
    schedule = plan_schedule(load_profile(identical).system, SIZES)
    sizes, lengths = schedule.batch_sizes.tolist(), schedule.draft_lengths.tolist()
    vllm = vllm_schedule(sizes, lengths, "draft")
    table = vllm["num_speculative_tokens_per_batch_size"]
    assert table[0][0] == 1
    assert all(nxt[0] == cur[1] + 1 for cur, nxt in zip(table, table[1:]))  # contiguous
    assert all(k <= vllm["num_speculative_tokens"] for _, _, k in table)
    assert vllm["num_speculative_tokens"] == max(lengths)
    trt = trtllm_schedule(sizes, lengths, "draft")["speculative_config"]
    assert trt["max_draft_len"] == max(lengths)
    for b, n in zip(sizes, lengths):
        assert vllm_lookup(table, b) == n
        assert trtllm_lookup(trt["draft_len_schedule"], b) == n
    assert trtllm_lookup(trt["draft_len_schedule"], 10_000) == 0


def test_ranges_merge_and_keep_zeros_that_are_not_at_the_end():
    assert batch_ranges([1, 2, 4, 8, 16], [0, 3, 3, 1, 0]) == [(1, 1, 0), (2, 4, 3), (5, 8, 1), (9, 16, 0)]
    assert trtllm_schedule([1, 2, 4, 8, 16], [0, 3, 3, 1, 0], "d")["speculative_config"]["draft_len_schedule"] == {
        1: 0, 4: 3, 8: 1}
    assert vllm_schedule([1, 4], [0, 0], "d") is None
    assert trtllm_schedule([1, 4], [0, 0], "d") == {"speculative_config": None}
    assert vllm_schedule([2, 4], [3, 3], "d") == {"method": "draft_model", "model": "d", "num_speculative_tokens": 3}


def test_schedule_export_refuses_engines_without_a_table():
    with pytest.raises(InputError, match="exports to: vllm, trtllm"):
        export_schedule([1], [2], "sglang")


# --------------------------------------------------------------------------- CLI


SIZES_ARG = ",".join(map(str, SIZES))


def test_cli_table(identical):
    result = invoke("schedule", identical, "--batch-sizes", SIZES_ARG)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    words = " ".join(result.stdout.split())  # the caption wraps at the console width
    assert "Schedule" in words and "Speculation stops paying by batch size 256 (the engine tables turn it off " \
        "above 128)." in words
    rows = [r for r in (line.split() for line in result.stdout.splitlines())
            if len(r) == 7 and r[0].isdigit() and r[1].isdigit()]
    schedule = plan_schedule(load_profile(identical).system, SIZES)
    assert [(int(r[0]), int(r[1])) for r in rows] == list(zip(SIZES, schedule.draft_lengths.tolist()))


def test_cli_documents_carry_the_schedule(identical):
    schedule = plan_schedule(load_profile(identical).system, SIZES)
    as_toml = tomllib.loads(invoke("schedule", identical, "-b", SIZES_ARG, "-f", "toml").stdout)
    as_json = json.loads(invoke("schedule", identical, "-b", SIZES_ARG, "-f", "json").stdout)
    assert as_toml == as_json
    assert [b["batch_size"] for b in as_toml["batches"]] == list(SIZES)
    assert [b["draft_length"] for b in as_toml["batches"]] == schedule.draft_lengths.tolist()
    head = as_toml["schedule"]
    assert head["speculation_off_from_batch_size"] == 256 and head["profile_users"] == 4
    assert head["draft_model"] == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    table = as_toml["engines"]["vllm"]["num_speculative_tokens_per_batch_size"]
    assert [vllm_lookup(table, b) for b in SIZES] == schedule.draft_lengths.tolist()
    keys = {int(k): v for k, v in as_toml["engines"]["trtllm"]["draft_len_schedule"].items()}
    assert [trtllm_lookup(keys, b) for b in SIZES] == schedule.draft_lengths.tolist()


def test_cli_engine_exports(identical):
    schedule = plan_schedule(load_profile(identical).system, SIZES)
    vllm = invoke("schedule", identical, "-b", SIZES_ARG, "--engine", "vllm")
    assert vllm.exit_code == 0 and vllm.stderr == ""
    config = json.loads(vllm.stdout)
    assert config["method"] == "draft_model" and config["model"] == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    assert [vllm_lookup(config["num_speculative_tokens_per_batch_size"], b) for b in SIZES] == \
        schedule.draft_lengths.tolist()
    trt = invoke("schedule", identical, "-b", SIZES_ARG, "--engine", "trtllm")
    assert trt.exit_code == 0, trt.stderr
    ((comment, doc),) = parse_yaml_documents(trt.stdout)
    spec = doc["speculative_config"]
    assert comment.startswith("#") and spec["decoding_type"] == "DraftTarget"
    assert [trtllm_lookup(spec["draft_len_schedule"], b) for b in SIZES] == schedule.draft_lengths.tolist()


def test_cli_no_speculation_anywhere_says_so(tmp_path):
    path = write(tmp_path, IDENTICAL.format(count=2).replace("acceptance = 0.8", "acceptance = 0.05"))
    result = invoke("schedule", path, "-b", "1,2,4", "--engine", "vllm")
    assert result.exit_code == 0
    assert json.loads(result.stdout) is None and "without --speculative-config" in result.stderr


def test_cli_output_file(identical, tmp_path):
    out = tmp_path / "sched.json"
    result = invoke("schedule", identical, "-f", "json", "-o", out)
    assert result.exit_code == 0 and result.stdout == ""
    assert json.loads(out.read_text())["batches"][0]["batch_size"] == 1


def test_cli_bad_input(identical):
    one_line_error(invoke("schedule", identical, "--engine", "sglang"), "sglang", "vllm, trtllm")
    one_line_error(invoke("schedule", identical, "--engine", "nope"), "unknown engine", "trtllm")
    one_line_error(invoke("schedule", identical, "--engine", "vllm", "-f", "json"), "not both")
    one_line_error(invoke("schedule", identical, "-b", "1,0"), "--batch-sizes")
    one_line_error(invoke("schedule", identical.with_name("missing.toml")), "no such file")
