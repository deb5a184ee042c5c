"""Per-position acceptance end to end: the definition of G, both planners, the profile and the plan output.

test_model.py checks the closed forms of ``expected_tokens``; here G is checked against the
distribution it summarises, the planners against exhaustive search on cells whose acceptance is
*not* geometric, and the single-rate profile against its one-entry per-position twin.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import replace

import numpy as np
import pytest
from builders import MINIMAL_PROFILE, random_system
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from multispin_cli.cli import app
from multispin_cli.documents.profile import load_profile
from multispin_cli.model.acceptance import expected_tokens, position_matrix
from multispin_cli.planners.exhaustive import exhaustive_best
from multispin_cli.planners.heterogeneous import plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.planners.report import plan_report

runner = CliRunner()


def brute_force_tokens(probs: list[float], length: int) -> float:
    """E[committed tokens] by enumerating every accept/reject sequence of ``length`` positions."""
    total = 0.0
    for outcome in itertools.product((True, False), repeat=length):
        p, accepted = 1.0, 0
        stopped = False
        for i, ok in enumerate(outcome):
            if stopped:
                if ok:  # after the first rejection nothing is checked: count each prefix once
                    p = 0.0
                continue
            p *= probs[i] if ok else 1.0 - probs[i]
            if ok:
                accepted += 1
            else:
                stopped = True
        total += p * (accepted + 1)
    return total


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6), st.integers(0, 7))
def test_g_is_the_mean_of_the_accepted_prefix_plus_one(probs, max_len):
    row = position_matrix(acceptance=[probs], max_draft_length=max_len)[0]
    g = expected_tokens(row)
    for length in range(max_len + 1):
        assert g[length] == pytest.approx(brute_force_tokens(list(row), length), rel=1e-12, abs=1e-12)


def per_position_system(rng: np.random.Generator, users: int, max_len: int, batching: str):
    """A random cell whose users accept early positions far more often than late ones (or the reverse)."""
    system = random_system(rng, users, max_len, batching=batching)
    rows = []
    for _ in range(users):
        shape = rng.integers(3)
        if shape == 0:  # falling: typical of real draft models
            probs = np.sort(rng.uniform(0.2, 0.99, max_len))[::-1]
        elif shape == 1:  # arbitrary, with certain and impossible positions
            probs = rng.choice([0.0, 0.3, 0.7, 1.0], max_len)
        else:
            probs = rng.uniform(0, 1, max_len)
        rows.append(list(probs))
    return replace(system, accept_prob=position_matrix(acceptance=rows, max_draft_length=max_len))


@pytest.mark.parametrize("seed,batching", [(s, b) for s in range(16) for b in ("ragged", "padded")])
def test_planners_match_exhaustive_search_with_per_position_acceptance(seed, batching):
    rng = np.random.default_rng(7000 + seed)
    users, max_len = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    system = per_position_system(rng, users, max_len, batching)
    homogeneous = plan_homogeneous(system)
    _, best_common = exhaustive_best(system, homogeneous=True)
    assert homogeneous.goodput_tokens_per_s == pytest.approx(best_common, rel=1e-9)
    plan = plan_heterogeneous(system, start=homogeneous)
    _, best = exhaustive_best(system)
    assert best * (1 - 1e-3) <= plan.goodput_tokens_per_s <= best * (1 + 1e-9)
    np.testing.assert_allclose(plan.evaluation.tokens_per_round,
                               system.tokens_per_round[np.arange(users), plan.evaluation.draft_lengths])


def _twin_profiles(write_profile):
    geometric = write_profile(MINIMAL_PROFILE, name="geometric.toml")
    by_position = write_profile(
        MINIMAL_PROFILE.replace("acceptance = 0.8", "acceptance_by_position = [0.8]")
        .replace("acceptance = 0.6", "acceptance_by_position = [0.6, 0.6, 0.6]"),
        name="by_position.toml",
    )
    return geometric, by_position


def test_single_rate_and_its_per_position_twin_plan_identically(write_profile):
    geometric, by_position = _twin_profiles(write_profile)
    a, b = load_profile(geometric).system, load_profile(by_position).system
    np.testing.assert_array_equal(a.accept_prob, b.accept_prob)
    ra, rb = plan_report(a), plan_report(b)
    for pa, pb in zip([*ra.plans, *ra.baselines.values()], [*rb.plans, *rb.baselines.values()]):
        assert pa.name == pb.name
        np.testing.assert_array_equal(pa.evaluation.draft_lengths, pb.evaluation.draft_lengths)
        assert pa.goodput_tokens_per_s == pb.goodput_tokens_per_s
    # and the documents `multispin plan` writes agree except for where they came from
    docs = [tomllib.loads(runner.invoke(app, ["plan", str(p), "-f", "toml"]).stdout) for p in (geometric, by_position)]
    for doc in docs:
        del doc["plan"]["profile"], doc["plan"]["name"]
    assert docs[0] == docs[1]


def test_per_position_acceptance_changes_the_plan_the_way_g_says(write_profile):
    # Same first-position rate, but the second position is rarely accepted: drafts beyond 1 barely pay.
    falling = write_profile(MINIMAL_PROFILE.replace("acceptance = 0.8", "acceptance_by_position = [0.8, 0.05]"),
                            name="falling.toml")
    geometric = load_profile(write_profile(MINIMAL_PROFILE, name="geometric.toml"))
    profile = load_profile(falling)
    np.testing.assert_allclose(profile.system.tokens_per_round[0, :4], [1, 1.8, 1.84, 1.842])
    het_falling = plan_report(profile.system).heterogeneous.evaluation.draft_lengths
    het_geometric = plan_report(geometric.system).heterogeneous.evaluation.draft_lengths
    assert het_falling[:2].max() < het_geometric[:2].min()  # the 'fast' users draft less
    doc = tomllib.loads(runner.invoke(app, ["plan", str(falling), "-f", "toml"]).stdout)
    for user in doc["heterogeneous"]["users"][:2]:
        assert user["tokens_per_round"] == pytest.approx(profile.system.tokens_per_round[0, user["draft_length"]])
