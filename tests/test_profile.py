"""Deployment profiles: conversion to SI units, includes, and one clear error for every bad input."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from builders import MINIMAL_PROFILE
from typer.testing import CliRunner

from multispin_cli.cli import app
from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.profile import SCHEMA, load_profile
from multispin_cli.errors import ProfileError
from multispin_cli.planners.report import plan_report


def test_minimal_profile_in_si_units(write_profile):
    profile = load_profile(write_profile())
    system = profile.system
    assert system.names == ("fast-1", "fast-2", "slow")
    assert system.bandwidth_hz == 2e6
    assert system.bits_per_token == 16 * (15 + 16)
    np.testing.assert_allclose(system.draft_s_per_token, [0.002, 0.002, 0.005])
    np.testing.assert_allclose(system.draft_overhead_s, [0.0, 0.0, 0.001])
    np.testing.assert_array_equal(system.channel.power_limited, [False, False, True])
    assert system.channel.spectral_efficiency[0] == pytest.approx(math.log2(1 + 10**1.5))
    # Q = P g / N0: 23 dBm - 110 dB = -87 dBm over -174 dBm/Hz -> 10^8.7 Hz
    assert system.channel.snr_bandwidth_hz[2] == pytest.approx(10**8.7, rel=1e-9)
    assert system.verify(10) == pytest.approx(0.0305)
    assert system.batching == "ragged" and system.downlink_s == 0 and system.max_draft_length == 8
    assert profile.target == "test-target"


def test_distance_uses_the_log_distance_path_loss(write_profile):
    text = MINIMAL_PROFILE.replace("path_loss_db = 110", "distance_m = 100").replace(
        "max_draft_length = 8", "max_draft_length = 8\npath_loss_exponent = 3.0\ncarrier_ghz = 3.5\nnoise_figure_db = 7"
    )
    q = load_profile(write_profile(text)).system.channel.snr_bandwidth_hz[2]
    fspl_1m = 20 * math.log10(4 * math.pi * 3.5e9 / 299_792_458)
    loss = fspl_1m + 30 * math.log10(100)
    assert 10 * math.log10(q) == pytest.approx(23 - loss + 174 - 7, abs=1e-9)


def test_per_position_acceptance_and_includes(write_profile, tmp_path):
    (tmp_path / "timings.toml").write_text(
        '[server]\ntarget = "measured"\nverify_model = "table"\nverify_base_ms = 1\nverify_ms_per_token = 1\n'
        "verify_table = [[1, 20.0], [64, 24.0]]\nverify_r2 = 0.9\n"
        "[draft]\nmodel = \"tiny\"\ndraft_ms_per_token = 3.5\ndraft_overhead_ms = 0.5\n[measurement]\nbackend = \"numpy\"\n"
    )
    (tmp_path / "acc.toml").write_text("[acceptance]\nacceptance_by_position = [0.9, 0.8]\nacceptance_ci95_low = 0.7\n")
    text = MINIMAL_PROFILE.replace("verify_base_ms = 30\nverify_ms_per_token = 0.05", 'timings = "timings.toml"')
    text = text.replace(
        'name = "slow"\nacceptance = 0.6\ndraft_ms_per_token = 5',
        'name = "slow"\ncalibration = "acc.toml"\ntimings = "timings.toml"\ndraft_ms_per_token = 5',
    ).replace("draft_overhead_ms = 1\n", "")
    profile = load_profile(write_profile(text))
    system = profile.system
    assert profile.target == "test-target"  # the profile's own key wins over the fragment's
    assert not system.verify.affine and system.verify(64) == pytest.approx(0.024)
    assert system.draft_s_per_token[2] == pytest.approx(0.005)  # own key wins
    assert system.draft_overhead_s[2] == pytest.approx(0.0005)  # from the fragment
    np.testing.assert_allclose(system.accept_prob[2, :4], [0.9, 0.8, 0.8, 0.8])


@pytest.mark.parametrize("path", sorted(profiles_dir().glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_profile_plans(path):
    profile = load_profile(path)
    report = plan_report(profile.system, mode="both")
    assert report.heterogeneous.goodput_tokens_per_s >= report.homogeneous.goodput_tokens_per_s * (1 - 1e-12)
    text = path.read_text()
    assert text.startswith("#") and "Where the numbers come from" in text  # each says its sources


def test_at_least_four_profiles_ship():
    assert len(list(profiles_dir().glob("*.toml"))) >= 4


# ---------------------------------------------------------------- bad input

NO_DEVICES = '[system]\nbandwidth_mhz = 1\n[payload]\nkind = "bits"\nbits_per_token = 8\n[server]\nverify_base_ms = 1\n'
NO_DEVICES += "verify_ms_per_token = 0\n"

BAD = [
    ("missing key", ("bandwidth_mhz = 2\n", ""), "system.bandwidth_mhz", "missing"),
    ("wrong type", ("bandwidth_mhz = 2", 'bandwidth_mhz = "wide"'), "system.bandwidth_mhz", "must be a number"),
    ("unknown key", ("bandwidth_mhz = 2", "bandwith_mhz = 2"), "system.bandwith_mhz", "did you mean 'bandwidth_mhz'"),
    ("unknown table", ("[payload]", "[paylod]"), "paylod", "did you mean [payload]"),
    ("acceptance one", ("acceptance = 0.8", "acceptance = 1.0"), "devices[1].acceptance", "[0, 1)"),
    ("acceptance negative", ("acceptance = 0.8", "acceptance = -0.1"), "devices[1].acceptance", "at least 0"),
    ("zero time", ("draft_ms_per_token = 2", "draft_ms_per_token = 0"), "devices[1].draft_ms_per_token",
     "at least 1e-06"),
    ("negative time", ("verify_ms_per_token = 0.05", "verify_ms_per_token = -1"), "server.verify_ms_per_token",
     "at least 0"),
    ("zero bandwidth", ("bandwidth_mhz = 2", "bandwidth_mhz = 0"), "system.bandwidth_mhz", "at least 0.001"),
    ("nan", ("bandwidth_mhz = 2", "bandwidth_mhz = nan"), "system.bandwidth_mhz", "finite"),
    ("inf", ("verify_base_ms = 30", "verify_base_ms = inf"), "server.verify_base_ms", "finite"),
    ("count float", ("count = 2", "count = 2.5"), "devices[1].count", "integer"),
    ("boolean", ("count = 2", "count = true"), "devices[1].count", "integer"),
    ("bad choice", ('kind = "top-k"', 'kind = "topk"'), "payload.kind", "did you mean 'top-k'"),
    ("no channel", ("snr_db = 15\n", ""), "devices[1].snr_db", "gives no channel"),
    ("two channels", ("snr_db = 15", "snr_db = 15\ntx_power_dbm = 20"), "devices[1]", "more than one channel"),
    ("power without loss", ("path_loss_db = 110", ""), "devices[2].path_loss_db", "exactly one"),
    ("both acceptances", ("acceptance = 0.8", "acceptance = 0.8\nacceptance_by_position = [0.5]"),
     "devices[1].acceptance", "exactly one"),
    ("verify table zero", ("verify_base_ms = 30\nverify_ms_per_token = 0.05",
                           "verify_table = [[1, 20.0], [8, 0.0]]"), "server.verify_table[2]", "positive"),
    ("no uplink with a channel", ("snr_db = 15", 'snr_db = 15\nuplink = "none"'), "devices[1].snr_db",
     'not used with uplink = "none"'),
    ("bad uplink", ("snr_db = 15", 'snr_db = 15\nuplink = "wired"'), "devices[1].uplink", "must be one of"),
    ("negative round overhead", ("verify_base_ms = 30", "verify_base_ms = 30\nround_overhead_ms = -1"),
     "server.round_overhead_ms", "at least 0"),
    ("verify table tokens", ("verify_base_ms = 30\nverify_ms_per_token = 0.05",
                             "verify_table = [[4, 20.0], [4, 21.0]]"), "server.verify_table[2]", "must increase"),
    ("no verify time", ("verify_base_ms = 30\nverify_ms_per_token = 0.05", ""), "server.verify_base_ms", "missing"),
    ("both verify forms", ("verify_ms_per_token = 0.05", "verify_ms_per_token = 0.05\nverify_table = [[1, 2.0]]"),
     "server.verify_model", "both"),
    ("top_k over vocab", ("top_k = 16", "top_k = 40000"), "payload.top_k", "must not exceed"),
    ("duplicate names", ('name = "slow"', 'name = "fast-1"'), "devices", "two users are named 'fast-1'"),
    ("empty devices", (None, "devices = []\n" + NO_DEVICES), "devices", "non-empty"),
    ("half an affine fit", ("verify_ms_per_token = 0.05\n", ""), "server.verify_ms_per_token", "missing"),
    ("no devices", (None, NO_DEVICES), "", "no [[devices]]"),
    ("payload needs vocab", ("vocab_size = 32000\n", ""), "payload.vocab_size", 'required for kind = "top-k"'),
    ("unreadable toml", ("bandwidth_mhz = 2", "bandwidth_mhz = = 2"), "", "invalid TOML"),
    ("missing include", ("draft_ms_per_token = 2", 'timings = "nowhere.toml"'), "", "nowhere.toml: no such file"),
]


def _bad_profile(write_profile, edit):
    old, new = edit
    text = new if old is None else MINIMAL_PROFILE.replace(old, new, 1)
    assert text != MINIMAL_PROFILE
    return write_profile(text)


@pytest.mark.parametrize("case,edit,key,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_profile_raises_one_clear_error(write_profile, case, edit, key, reason):
    path = _bad_profile(write_profile, edit)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path.parent) in message or "nowhere" in message
    assert key in message and reason in message
    if case == "unreadable toml":
        assert re.search(r"line \d+", message)


@pytest.mark.parametrize("case,edit,key,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_profile_through_the_cli_is_one_line_and_exit_2(write_profile, case, edit, key, reason):
    path = _bad_profile(write_profile, edit)
    result = CliRunner().invoke(app, ["plan", str(path), "--format", "toml"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("multispin: error: ")
    assert key in lines[0] and reason in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_profile_file():
    result = CliRunner().invoke(app, ["plan", "no/such/profile.toml"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "multispin: error: no/such/profile.toml: no such file"


def test_every_schema_key_is_documented_in_the_readme():
    readme = (profiles_dir().parent / "README.md").read_text()
    for table, keys in SCHEMA.items():
        for key in keys:
            assert f"`{key.name}`" in readme, f"[{table}] {key.name} is not in the README's profile reference"


def test_falling_table_round_overhead_and_no_uplink_load(write_profile):
    text = MINIMAL_PROFILE.replace("verify_base_ms = 30\nverify_ms_per_token = 0.05",
                                   "verify_table = [[1, 20.0], [3, 25.0], [4, 21.0], [8, 30.0]]\n"
                                   "round_overhead_ms = 4.5")
    text = text.replace("snr_db = 15", 'uplink = "none"')
    system = load_profile(write_profile(text)).system
    assert system.verify(np.array([3.0, 4.0])) == pytest.approx([0.025, 0.021])
    assert system.round_overhead_s == pytest.approx(4.5e-3)
    assert system.off_uplink.tolist() == [True, True, False]
