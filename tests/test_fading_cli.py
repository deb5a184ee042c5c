"""Fading through the CLI: profile keys, the [adaptive] plan, simulate --policy, export, bad input."""

from __future__ import annotations

import json
import tomllib

import pytest
from builders import MINIMAL_PROFILE, assert_one_line_error, invoke

FADED = MINIMAL_PROFILE.replace("max_draft_length = 8", 'max_draft_length = 8\nfading = "rayleigh"')
ADAPTIVE_KEYS = {"policy", "goodput_tokens_per_s", "ci95_low_tokens_per_s", "ci95_high_tokens_per_s",
                 "round_ms_p50", "round_ms_p95", "round_ms_p99", "oracle_tokens_per_s", "static_tokens_per_s"}
USER_KEYS = {"name", "draft_length", "skip_below_snr_db", "mean_bandwidth_mhz", "tokens_per_s"}


def test_without_fading_the_plan_has_no_adaptive_section(write_profile):
    doc = tomllib.loads(invoke("plan", write_profile(), "-f", "toml").stdout)
    assert "adaptive" not in doc
    # fading = "none" spelled out changes nothing, byte for byte
    spelled = MINIMAL_PROFILE.replace("max_draft_length = 8", 'max_draft_length = 8\nfading = "none"')
    a = invoke("plan", write_profile(), "-f", "json").stdout
    b = invoke("plan", write_profile(spelled), "-f", "json").stdout
    assert json.loads(a)["heterogeneous"] == json.loads(b)["heterogeneous"]


def test_plan_under_fading_has_the_adaptive_section_in_every_format(write_profile):
    path = write_profile(FADED)
    result = invoke("plan", path, "-f", "toml", "--samples", 300, "--seed", 2)
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(result.stdout)
    section = doc["adaptive"]
    assert ADAPTIVE_KEYS <= set(section) and section["policy"] == "adaptive"
    assert section["ci95_low_tokens_per_s"] <= section["goodput_tokens_per_s"] <= section["ci95_high_tokens_per_s"]
    assert section["goodput_tokens_per_s"] >= section["static_tokens_per_s"]
    assert section["goodput_tokens_per_s"] <= section["oracle_tokens_per_s"] * 1.02
    assert [u["name"] for u in section["users"]] == ["fast-1", "fast-2", "slow"]
    for user in section["users"]:
        assert USER_KEYS <= set(user)
    again = invoke("plan", path, "-f", "json", "--samples", 300, "--seed", 2)
    assert json.loads(again.stdout)["adaptive"] == section  # same seed, same numbers
    table = invoke("plan", path, "--samples", 300)
    assert table.exit_code == 0 and "Adaptive rule" in table.stdout and "oracle" in table.stdout


def test_simulate_runs_each_plan_under_its_policy_and_reads_the_rule_back(write_profile, tmp_path):
    path = write_profile(FADED)
    plan_path = tmp_path / "plan.toml"
    assert invoke("plan", path, "-f", "toml", "--samples", 300, "-o", plan_path).exit_code == 0
    result = invoke("simulate", path, "--plan", plan_path, "--rounds", 800, "-f", "toml")
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(result.stdout)
    policies = {p["name"]: p["policy"] for p in doc["plans"]}
    assert policies["adaptive"] == "adaptive" and policies["oracle"] == "oracle"
    assert policies["heterogeneous"] == "static" and policies["autoregressive"] == "static"
    assert doc["simulation"]["fading"] == "rayleigh"
    rates = {p["name"]: p["simulated_tokens_per_s"] for p in doc["plans"]}
    assert rates["adaptive"] >= rates["heterogeneous"]
    only = tomllib.loads(invoke("simulate", path, "--plan", plan_path, "--rounds", 300, "--policy",
                                "adaptive-split", "--no-baselines", "-f", "toml").stdout)
    assert {p["policy"] for p in only["plans"]} == {"adaptive-split"}


def test_policy_a_plan_file_cannot_run_is_an_error(write_profile, tmp_path):
    plan_path = tmp_path / "plan.toml"
    invoke("plan", write_profile(), "-f", "toml", "-o", plan_path)
    faded = write_profile(FADED, name="faded.toml")
    assert_one_line_error(invoke("simulate", faded, "--plan", plan_path, "--policy", "adaptive", "--rounds", 10),
                          "no adaptive plan")
    assert_one_line_error(invoke("simulate", write_profile(), "--policy", "oracle", "--rounds", 10), "--policy")


def test_export_of_an_adaptive_plan_gives_the_rule(write_profile, tmp_path):
    path = write_profile(FADED)
    plan_path = tmp_path / "plan.toml"
    invoke("plan", path, "-f", "toml", "--samples", 300, "-o", plan_path)
    result = invoke("export", plan_path, "--engine", "rule")
    assert result.exit_code == 0, result.stderr
    rule = json.loads(result.stdout)
    assert rule["policy"] == "adaptive" and len(rule["users"]) == 3
    for user in rule["users"]:
        assert {"name", "draft_length", "skip_below_snr_db", "length_above_snr_db"} <= set(user)
    assert_one_line_error(invoke("export", tmp_path / "missing.toml", "--engine", "rule"), "no such file")
    plain = tmp_path / "plain.toml"
    invoke("plan", write_profile(name="plain-profile.toml"), "-f", "toml", "-o", plain)
    assert_one_line_error(invoke("export", plain, "--engine", "rule"), "no [adaptive] plan")


@pytest.mark.parametrize("edit,key", [
    ('fading = "nakagami"', "system.fading"),
    ('fading = "rayleigh"\nshadowing_db = -1', "system.shadowing_db"),
    ('fading = "rayleigh"\ncoherence_ms = nan', "system.coherence_ms"),
    ('fading = "rayleigh"\ncsi_delay_ms = -5', "system.csi_delay_ms"),
    ('fading = "rayleigh"\nrician_k_db = 6', "system.rician_k_db"),
    ('fading = "rician"', "rician_k_db"),
])
def test_bad_fading_keys_are_one_line_naming_the_key(write_profile, edit, key):
    text = MINIMAL_PROFILE.replace("max_draft_length = 8", f"max_draft_length = 8\n{edit}")
    assert_one_line_error(invoke("plan", write_profile(text)), key)


def test_a_device_overrides_the_fading(write_profile):
    from multispin_cli.documents.profile import load_profile

    text = FADED.replace('name = "slow"', 'name = "slow"\nfading = "rician"\nrician_k_db = 10')
    system = load_profile(write_profile(text)).system
    assert list(system.fading.faded) == [True, True, True]
    assert system.fading.rician_k[2] == pytest.approx(10.0) and system.fading.rician_k[0] == 0
    assert_one_line_error(invoke("plan", write_profile(FADED.replace('name = "slow"', 'name = "slow"\nrician_k_db = 3'))),
                          "rician_k_db")


def test_samples_zero_is_bad_input(write_profile):
    assert_one_line_error(invoke("plan", write_profile(FADED), "--samples", 0), "--samples")


def test_simulate_offers_rician_fading_with_a_k_factor(write_profile):
    path = write_profile()
    result = invoke("simulate", path, "--fading", "rician", "--rician-k-db", 6, "--rounds", 300, "--samples", 200,
                    "-f", "toml", "--no-baselines")
    assert result.exit_code == 0, result.stderr
    doc = tomllib.loads(result.stdout)
    assert doc["simulation"]["fading"] == "rician"
    assert {p["policy"] for p in doc["plans"]} >= {"static", "adaptive", "oracle"}
    # a strong line of sight fades less than Rayleigh: the static plan loses less
    rayleigh = tomllib.loads(invoke("simulate", path, "--fading", "rayleigh", "--rounds", 300, "--samples", 200,
                                    "-f", "toml", "--no-baselines").stdout)
    rates = {p["name"]: p["simulated_tokens_per_s"] for p in doc["plans"]}
    worse = {p["name"]: p["simulated_tokens_per_s"] for p in rayleigh["plans"]}
    assert rates["heterogeneous"] > worse["heterogeneous"]
    assert_one_line_error(invoke("simulate", path, "--fading", "rician", "--rounds", 100), "rician_k_db")
    assert_one_line_error(invoke("simulate", path, "--rician-k-db", 6, "--rounds", 100), "--rician-k-db")
