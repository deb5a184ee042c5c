"""Fading with whole resource blocks and step rates: the per-round split is the static planners'
exact one on each round's channel, and the adaptive plan keeps its guarantees there."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import numpy as np
import pytest
from builders import MINIMAL_PROFILE, invoke

from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.profile import load_profile
from multispin_cli.model.fading import Fading
from multispin_cli.planners.faded_split import admit, faded_least_deadline_split
from multispin_cli.planners.policies import decide, lost_uploads
from multispin_cli.planners.report import plan_report
from multispin_cli.planners.resource_blocks import least_deadline_split

NR = profiles_dir() / "nr-30khz-51rb-qwen3.toml"


def nr_system(users: int | None = None):
    system = load_profile(NR).system
    if users is not None:
        system = system.take(np.arange(users))
    return replace(system, fading=Fading.uniform(system.users, "rayleigh"))


def test_each_round_gets_the_static_planners_exact_least_deadline():
    system = nr_system()
    rng = np.random.default_rng(3)
    lengths = rng.integers(0, system.max_draft_length + 1, size=(40, system.users))
    gains = rng.exponential(size=(40, system.users))
    deadline, bandwidth = faded_least_deadline_split(system, lengths, system.channel.faded(gains))
    block = system.resource_block_hz
    for r in range(40):
        alone = replace(system, channel=system.channel.faded(gains[r]))
        want, _ = least_deadline_split(alone, lengths[r][None])
        assert deadline[r] == pytest.approx(want[0], rel=1e-12) or (np.isinf(want[0]) and np.isinf(deadline[r]))
        if np.isfinite(deadline[r]):
            blocks = bandwidth[r] / block
            np.testing.assert_allclose(blocks, np.round(blocks), atol=1e-9)  # whole blocks
            assert blocks.sum() <= system.resource_blocks + 1e-9
            assert np.all(blocks[(lengths[r] > 0)] >= system.min_resource_blocks[lengths[r] > 0])
    # gain 1 everywhere: the static split itself
    same, _ = faded_least_deadline_split(system, lengths, system.channel.faded(np.ones(lengths.shape)))
    np.testing.assert_array_equal(same, least_deadline_split(system, lengths)[0])


def test_continuous_band_with_step_rates_matches_the_static_bisection():
    system = nr_system()
    system = replace(system, resource_block_hz=None, min_resource_blocks=None)
    rng = np.random.default_rng(4)
    lengths = rng.integers(0, 6, size=(10, system.users))
    gains = rng.exponential(size=(10, system.users))
    deadline, bandwidth = faded_least_deadline_split(system, lengths, system.channel.faded(gains))
    for r in range(10):
        want, _ = least_deadline_split(replace(system, channel=system.channel.faded(gains[r])), lengths[r][None])
        assert deadline[r] == pytest.approx(want[0], rel=1e-9)
        assert bandwidth[r].sum() <= system.bandwidth_hz * (1 + 1e-9)


def test_admission_drops_the_weakest_when_the_minimum_blocks_do_not_fit():
    system = nr_system()
    system = replace(system, min_resource_blocks=np.full(system.users, 10))  # 5 users fit in 51 blocks
    lengths = np.full((2, system.users), 3)
    gains = np.vstack([np.arange(1, system.users + 1), np.ones(system.users)]).astype(float)
    kept = admit(system, lengths, gains)
    assert (kept[0] > 0).sum() == 5 and np.all(kept[0, -5:] == 3)  # the five strongest
    assert (kept[1] > 0).sum() == 5
    assert np.all(np.isfinite(faded_least_deadline_split(system, kept, system.channel.faded(gains))[0]))


def test_an_upload_below_the_lowest_cqi_level_is_lost_not_waited_for():
    system = nr_system()
    lengths = np.full((1, system.users), 4)
    bandwidth = np.full((1, system.users), system.resource_block_hz)
    dead = system.channel.faded(np.full((1, system.users), 1e-9))
    assert np.all(lost_uploads(system, lengths, bandwidth, dead) == 0)
    assert np.all(lost_uploads(system, lengths, bandwidth, system.channel.faded(np.ones((1, system.users)))) == 4)


def test_adaptive_plan_on_resource_blocks_beats_static_and_split_on_its_draws():
    system = nr_system(6)
    report = plan_report(system, samples=200, seed=1)
    ad = report.adaptive
    assert ad.goodput_tokens_per_s >= ad.static_tokens_per_s
    assert ad.goodput_tokens_per_s >= ad.adaptive_split_tokens_per_s
    assert ad.goodput_tokens_per_s <= ad.oracle_tokens_per_s * 1.02
    lengths, bandwidth = decide(system, ad.control, np.random.default_rng(2).exponential(size=(50, system.users)))
    blocks = bandwidth / system.resource_block_hz
    np.testing.assert_allclose(blocks, np.round(blocks), atol=1e-9)
    assert np.all(blocks.sum(axis=1) <= system.resource_blocks + 1e-9)


def test_plan_and_simulate_a_fading_profile_with_resource_blocks_and_cqi(write_profile, tmp_path):
    text = MINIMAL_PROFILE.replace(
        "max_draft_length = 8",
        'max_draft_length = 8\nfading = "rayleigh"\nresource_blocks = 24\nsubcarrier_spacing_khz = 30\n'
        'rate_model = "nr-cqi"')
    text = "\n".join(line for line in text.splitlines() if not line.startswith("bandwidth_mhz"))
    path = write_profile(text)
    plan_path = tmp_path / "plan.toml"
    result = invoke("plan", path, "-f", "toml", "--samples", 200, "-o", plan_path)
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(plan_path.read_text())
    assert doc["adaptive"]["goodput_tokens_per_s"] >= doc["adaptive"]["static_tokens_per_s"]
    sim = invoke("simulate", path, "--plan", plan_path, "--rounds", 500, "-f", "toml")
    assert sim.exit_code == 0, sim.stderr
    rates = {p["name"]: p["simulated_tokens_per_s"] for p in tomllib.loads(sim.stdout)["plans"]}
    assert rates["adaptive"] > 0 and rates["oracle"] > 0
