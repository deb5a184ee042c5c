"""Resource blocks and link adaptation through the CLI: the keys, their errors, the plan document's
needed-bandwidth keys and the table's "needs X of W MHz" line."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from builders import MINIMAL_PROFILE, assert_one_line_error, invoke

from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.profile import load_profile
from multispin_cli.planners.needs import plan_needs
from multispin_cli.planners.report import plan_report

RB_PROFILE = MINIMAL_PROFILE.replace("bandwidth_mhz = 2", 'resource_blocks = 11\nsubcarrier_spacing_khz = 15\n'
                                     'rate_model = "nr-cqi"\nsnr_gap_db = 1')


def test_block_plan_document_has_whole_blocks_and_the_needed_band(write_profile):
    result = invoke("plan", write_profile(RB_PROFILE), "--format", "toml")
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(result.stdout)
    head = doc["plan"]
    assert head["resource_blocks"] == 11 and head["subcarrier_spacing_khz"] == 15
    assert head["bandwidth_mhz"] == pytest.approx(11 * 0.18) and head["rate_model"] == "nr-cqi"
    for name in ("homogeneous", "heterogeneous"):
        section = doc[name]
        users = section["users"]
        assert sum(u["resource_blocks"] for u in users) <= 11
        for user in users:
            assert user["bandwidth_mhz"] == pytest.approx(user["resource_blocks"] * 0.18)
            assert (user["resource_blocks"] >= 1) == (user["draft_length"] > 0)
            assert user["needed_resource_blocks"] <= user["resource_blocks"]
            assert user["needed_bandwidth_mhz"] == pytest.approx(user["needed_resource_blocks"] * 0.18)
        assert section["needed_resource_blocks"] == sum(u["needed_resource_blocks"] for u in users)
        assert section["needed_bandwidth_mhz"] + section["spare_bandwidth_mhz"] == pytest.approx(11 * 0.18)


def test_table_says_what_the_plan_needs_of_the_band(write_profile):
    result = invoke("plan", write_profile(RB_PROFILE))
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "plan needs " in text and "of 1.98 MHz (" in text and "of 11 RBs)" in text and " spare." in text


def test_continuous_document_reports_needed_and_spare_band(write_profile):
    doc = json.loads(invoke("plan", write_profile(), "--format", "json").stdout)
    for name in ("homogeneous", "heterogeneous"):
        section = doc[name]
        assert 0 < section["needed_bandwidth_mhz"] <= 2.0
        assert section["needed_bandwidth_mhz"] + section["spare_bandwidth_mhz"] == pytest.approx(2.0)
        assert sum(u["needed_bandwidth_mhz"] for u in section["users"]) == pytest.approx(
            section["needed_bandwidth_mhz"], rel=1e-8)
        assert "needed_resource_blocks" not in section


@pytest.mark.parametrize(
    "old,new,needle",
    [
        ("subcarrier_spacing_khz = 15", "subcarrier_spacing_khz = 45", "system.subcarrier_spacing_khz"),
        ("resource_blocks = 11", "resource_blocks = 0", "system.resource_blocks"),
        ("resource_blocks = 11", "resource_blocks = 2.5", "system.resource_blocks"),
        ("resource_blocks = 11", "resource_blocks = 11\nbandwidth_mhz = 2", "system.resource_blocks"),
        ("resource_blocks = 11", "resource_blocks = 11\nmin_resource_blocks = 12", "system.min_resource_blocks"),
        ('name = "slow"', 'name = "slow"\nmin_resource_blocks = 12', "devices[2].min_resource_blocks"),
        ('rate_model = "nr-cqi"', 'rate_model = "nr-cqi"\nmax_spectral_efficiency_bps_per_hz = 4',
         "system.max_spectral_efficiency_bps_per_hz"),
        ('rate_model = "nr-cqi"', 'rate_model = "cqi"', "system.rate_model"),
        ("snr_gap_db = 1", "snr_gap_db = -1", "system.snr_gap_db"),
    ],
)
def test_bad_block_and_link_keys_exit_2_naming_the_key(write_profile, old, new, needle):
    text = RB_PROFILE.replace(old, new)
    assert text != RB_PROFILE
    result = invoke("plan", write_profile(text))
    assert_one_line_error(result, needle)


def test_block_keys_without_resource_blocks_are_errors(write_profile):
    text = MINIMAL_PROFILE.replace("bandwidth_mhz = 2", "bandwidth_mhz = 2\nsubcarrier_spacing_khz = 30")
    assert_one_line_error(invoke("plan", write_profile(text)), "system.subcarrier_spacing_khz")
    text = MINIMAL_PROFILE.replace("bandwidth_mhz = 2\n", "")
    assert_one_line_error(invoke("plan", write_profile(text)), "system.bandwidth_mhz")


def test_too_few_blocks_for_every_minimum_plans_some_users_at_zero_with_a_warning(write_profile):
    text = RB_PROFILE.replace("resource_blocks = 11", "resource_blocks = 4\nmin_resource_blocks = 2")
    result = invoke("plan", write_profile(text), "--format", "toml")
    assert result.exit_code == 0, result.stderr
    assert "cannot give all 3 users their min_resource_blocks (6 needed)" in result.stderr
    doc = tomllib.loads(result.stdout)
    users = doc["heterogeneous"]["users"]
    assert sum(u["resource_blocks"] for u in users) <= 4
    assert all(u["resource_blocks"] >= 2 for u in users if u["draft_length"] > 0)


@pytest.mark.parametrize("path", sorted(profiles_dir().glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_profile_replans_on_exactly_its_needed_band_with_the_same_goodput(path):
    system = load_profile(path).system
    report = plan_report(system, mode="both")
    for plan in report.plans:
        needs = plan_needs(system, plan)
        if needs.needed_hz == 0:  # nobody drafts: the band is not used at all
            assert plan.evaluation.draft_lengths.max() == 0
            continue
        again = plan_report(system.with_bandwidth(needs.needed_hz), mode="both")
        replanned = again.heterogeneous if plan.name == "heterogeneous" else again.homogeneous
        assert replanned.goodput_tokens_per_s == pytest.approx(plan.goodput_tokens_per_s, rel=1e-3)
        if needs.user_blocks is not None:
            assert np.array_equal(needs.user_blocks * system.resource_block_hz, needs.user_hz)
