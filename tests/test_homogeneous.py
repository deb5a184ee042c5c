"""The homogeneous planner's common-length solve against the general equal-finish split."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from builders import random_system

from multispin_cli.model.channel import Channel
from multispin_cli.planners.homogeneous import (
    _goodput_by_length,
    alike_best_length,
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


def _copies(system, accept, tau, overhead, snr):
    """The cell with every user replaced by the same one (the mean-user baseline's averaged cell)."""
    k = system.users
    return replace(system, accept_prob=np.broadcast_to(accept, system.accept_prob.shape).copy(),
                   draft_s_per_token=np.full(k, tau), draft_overhead_s=np.full(k, overhead),
                   channel=Channel.fixed_snr(np.full(k, snr), system.channel.link))


@pytest.mark.parametrize("seed", range(30))
def test_users_all_alike_get_the_length_of_k_copies(seed):
    """The closed form for K users alike picks the length the common-length solve over K copies picks,
    from goodputs that agree to rounding (so no tie between lengths is decided differently)."""
    rng = np.random.default_rng(700 + seed)
    system = random_system(rng, int(rng.integers(1, 300)), int(rng.integers(0, 16)), batching=("ragged", "padded")[seed % 2],
                           table=bool(seed % 3 == 0), round_overhead=bool(seed % 4 == 1))
    system = replace(system, bandwidth_hz=system.bandwidth_hz * 10 ** rng.uniform(-1.5, 1.5),
                     header_bits=float(rng.choice([0.0, 100.0])))
    accept = rng.uniform(0.3, 0.95, system.max_draft_length)
    tau, overhead, snr = 10 ** rng.uniform(-3.5, -1.5), rng.uniform(0, 0.004), 10 ** rng.uniform(-1, 3)
    copies = _copies(system, accept, tau, overhead, snr)
    goodput, _ = _goodput_by_length(copies)
    assert alike_best_length(system, accept, tau, overhead, snr) == best_common_length(copies) == int(np.argmax(goodput))


def test_users_alike_outside_the_shortcut_are_left_to_the_solve():
    rng = np.random.default_rng(6)
    system = random_system(rng, 5, 4, power_share=0.0)
    accept = np.full(4, 0.8)
    assert alike_best_length(system, accept, 1e-3, 0.0, 10.0) is not None
    blocks = replace(system, resource_block_hz=180e3, min_resource_blocks=np.ones(5, int), bandwidth_hz=180e3 * 50)
    assert alike_best_length(blocks, accept, 1e-3, 0.0, 10.0) is None
    wired = replace(system, no_uplink=np.array([True, False, False, False, False]))
    assert alike_best_length(wired, accept, 1e-3, 0.0, 10.0) is None
    assert alike_best_length(system, accept, 1e-3, 0.0, 0.0) is None  # no rate: K copies say so themselves
