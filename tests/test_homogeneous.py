"""The homogeneous planner's common-length solve against the general equal-finish split."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from builders import random_system

from multispin_cli.model.channel import Channel
from multispin_cli.planners.homogeneous import (
    best_common_length,
    common_length_deadlines,
    goodput_by_length,
    plan_homogeneous,
)
from multispin_cli.planners.split import equal_finish_split


def _general(system):
    """Deadline of every common length by the general split, one length per plan."""
    lengths = np.repeat(np.arange(system.max_draft_length + 1)[:, None], system.users, axis=1)
    return equal_finish_split(system, lengths)[0]


@pytest.mark.parametrize("seed", range(40))
def test_every_common_length_gets_the_general_splits_deadline(seed):
    rng = np.random.default_rng(500 + seed)
    system = random_system(rng, int(rng.integers(1, 40)), int(rng.integers(0, 12)),
                           power_share=float(rng.choice([0.0, 0.5, 1.0])),
                           no_uplink_share=float(rng.choice([0.0, 0.3])), round_overhead=bool(seed % 2))
    fast = common_length_deadlines(system)
    np.testing.assert_allclose(fast, _general(system), rtol=1e-12, atol=0)
    # the plan: the same length as the general split's goodput curve, with that split
    goodput, bandwidth = goodput_by_length(system)
    plan = plan_homogeneous(system)
    best = int(np.argmax(goodput))
    assert plan.draft_length == best == best_common_length(system)
    np.testing.assert_allclose(plan.goodput_by_length, goodput, rtol=1e-12)
    assert plan.goodput_by_length[best] == goodput[best]
    np.testing.assert_array_equal(plan.evaluation.bandwidth_hz, bandwidth[best])


def test_users_near_their_rate_limit_and_far_below_it():
    """Power-limited users from a tiny share of their limit to nearly all of it: the warm-started
    inverse rate must fall back to the full one where its steps do not converge."""
    rng = np.random.default_rng(3)
    base = random_system(rng, 60, 8, power_share=1.0)
    q = np.geomspace(2e2, 1e9, 60)  # from a user who can barely carry one draft to a strong one
    system = replace(base, channel=Channel(np.ones(60, bool), np.full(60, np.nan), q),
                     bandwidth_hz=1e6, bits_per_token=500.0, header_bits=100.0)
    np.testing.assert_allclose(common_length_deadlines(system), _general(system), rtol=1e-12, atol=0)


def test_cells_outside_the_fast_path_use_the_general_split():
    rng = np.random.default_rng(4)
    system = random_system(rng, 5, 4, power_share=0.0)
    blocks = replace(system, resource_block_hz=180e3, min_resource_blocks=np.ones(5, int), bandwidth_hz=180e3 * 50)
    assert common_length_deadlines(blocks) is None
    goodput, bandwidth = goodput_by_length(blocks)
    plan = plan_homogeneous(blocks)
    assert plan.draft_length == int(np.argmax(goodput)) == best_common_length(blocks)
    np.testing.assert_array_equal(plan.goodput_by_length, goodput)


def test_nobody_on_the_uplink_waits_for_the_slowest_device():
    rng = np.random.default_rng(5)
    system = random_system(rng, 4, 5)
    wired = replace(system, no_uplink=np.ones(4, bool))
    expected = (wired.draft_overhead_s[None, :] + wired.draft_s_per_token[None, :] * np.arange(6)[:, None]).max(1)
    np.testing.assert_allclose(common_length_deadlines(wired), np.where(np.arange(6) > 0, expected, 0.0),
                               rtol=1e-15)
