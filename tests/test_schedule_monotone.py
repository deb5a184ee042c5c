"""The exported schedule is the best non-increasing one (checked against brute force), and says so."""

from __future__ import annotations

import itertools
import json

import numpy as np
from builders import invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from multispin_cli.planners.schedule import monotone_lengths

MIXED = """
[system]
bandwidth_mhz = 5
[payload]
kind = "top-k"
vocab_size = 32000
top_k = 16
header_bits = 20000
[server]
verify_base_ms = 30
verify_ms_per_token = 0.5
[[devices]]
name = "fast"
count = 2
acceptance = 0.9
draft_ms_per_token = 1
snr_db = 20
[[devices]]
name = "slow"
acceptance = 0.5
draft_ms_per_token = 8
draft_overhead_ms = 20
snr_db = 0
"""


def _value(g: np.ndarray, lengths) -> float:
    return sum(g[i, L] / g[i].max() for i, L in enumerate(lengths))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_monotone_lengths_match_brute_force(rows, lengths, seed):
    g = np.random.default_rng(seed).random((rows, lengths)) + 0.01
    got = monotone_lengths(g, g.argmax(axis=1))
    assert np.all(np.diff(got) <= 0)
    best = max((c for c in itertools.product(range(lengths), repeat=rows)
                if all(c[i] >= c[i + 1] for i in range(rows - 1))), key=lambda c: _value(g, c))
    assert abs(_value(g, got) - _value(g, best)) < 1e-12


def test_an_already_monotone_optimum_is_kept():
    g = np.array([[1.0, 2.0, 3.0], [1.0, 3.0, 2.0], [3.0, 2.0, 1.0]])
    assert monotone_lengths(g, g.argmax(axis=1)).tolist() == [2, 1, 0]


def test_a_zigzag_optimum_is_exported_monotone_and_the_table_says_so(write_profile):
    path = write_profile(MIXED)
    doc = json.loads(invoke("schedule", path, "-b", "1-8", "-f", "json").stdout)
    best = [b["draft_length"] for b in doc["batches"]]
    scheduled = [b["scheduled_draft_length"] for b in doc["batches"]]
    assert np.any(np.diff(best) > 0), "this cell's optimum should go up somewhere"
    assert np.all(np.diff(scheduled) <= 0)
    vllm = json.loads(invoke("schedule", path, "-b", "1-8", "-e", "vllm").stdout)
    ranges = vllm["num_speculative_tokens_per_batch_size"]
    assert [k for _, _, k in ranges] == sorted((k for _, _, k in ranges), reverse=True)
    table = invoke("schedule", path, "-b", "1-8", env={"COLUMNS": "80"}).stdout
    assert "sched" in table and "non-increasing" in table
