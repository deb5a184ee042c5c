"""Stale CSI: the server's wait limit drops late uploads, the planner picks it only where it pays,
and plan files carry it to simulate and export."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace

import numpy as np
import pytest
from builders import MINIMAL_PROFILE, assert_one_line_error, invoke

from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.profile import load_profile
from multispin_cli.model.fading import Fading
from multispin_cli.model.synthetic import busy_cell
from multispin_cli.planners.policies import Controller, decide, settle
from multispin_cli.planners.report import plan_report


def test_a_late_upload_is_dropped_and_the_round_ends_at_the_limit():
    system = busy_cell(np.random.default_rng(0), 4, max_len=4)
    lengths = np.full((1, 4), 3)
    csi = np.ones((1, 4))
    _, bandwidth = decide(system, Controller("adaptive-split", lengths[0], np.zeros(4)), csi)
    planned_len, planned = settle(system, lengths, bandwidth, csi, csi)
    assert np.all(planned_len == 3)
    true = np.array([[1.0, 1.0, 1.0, 1e-4]])  # user 4's channel collapsed since its CSI
    kept, slow = settle(system, lengths, bandwidth, csi, true)
    assert np.all(kept == 3) and slow[0] > 2 * planned[0]  # unlimited: the round waits for it
    kept, capped = settle(system, lengths, bandwidth, csi, true, wait_factor=1.5)
    assert list(kept[0]) == [3, 3, 3, 0]
    assert capped[0] == pytest.approx(1.5 * planned[0])
    # on exact CSI a limit changes nothing
    same, deadline = settle(system, lengths, bandwidth, csi, csi, wait_factor=1.1)
    assert np.all(same == 3) and deadline[0] == pytest.approx(planned[0])


def test_the_wait_limit_is_searched_only_under_stale_csi():
    system = busy_cell(np.random.default_rng(1), 5, max_len=5)
    fresh = plan_report(replace(system, fading=Fading.uniform(5, "rayleigh")), samples=200).adaptive
    assert np.isinf(fresh.control.wait_factor)
    walking = load_profile(profiles_dir() / "qwen3-l4-walking-fading.toml").system  # 5 ms old CSI
    ad = plan_report(walking, samples=300).adaptive
    assert np.isfinite(ad.control.wait_factor)  # here it pays
    assert ad.goodput_tokens_per_s >= ad.adaptive_split_tokens_per_s
    assert ad.goodput_tokens_per_s >= ad.static_tokens_per_s


STALE = MINIMAL_PROFILE.replace(
    "max_draft_length = 8", 'max_draft_length = 8\nfading = "rayleigh"\ncoherence_ms = 20\ncsi_delay_ms = 8')


def test_plan_files_carry_the_wait_limit_to_simulate_and_export(write_profile, tmp_path):
    path = write_profile(STALE)
    plan_path = tmp_path / "plan.toml"
    assert invoke("plan", path, "-f", "toml", "--samples", 300, "-o", plan_path).exit_code == 0
    doc = tomllib.loads(plan_path.read_text())
    wait = doc["adaptive"]["wait_factor"]
    assert wait == "unlimited" or wait >= 1
    rule = json.loads(invoke("export", plan_path, "--engine", "rule").stdout)
    assert rule["wait_factor"] == wait
    sim = invoke("simulate", path, "--plan", plan_path, "--rounds", 400, "-f", "toml")
    assert sim.exit_code == 0, sim.stderr
    bad = plan_path.read_text().replace(f"wait_factor = {json.dumps(wait)}", "wait_factor = 0.5")
    assert "wait_factor = 0.5" in bad
    broken = tmp_path / "broken.toml"
    broken.write_text(bad)
    assert_one_line_error(invoke("simulate", path, "--plan", broken, "--rounds", 100), "adaptive.wait_factor")
