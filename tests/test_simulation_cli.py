"""`multispin simulate` through the CLI: the documented TOML, seeds, plan files and clean errors."""

from __future__ import annotations

import json
import tomllib

import pytest
from builders import MINIMAL_PROFILE, assert_one_line_error, invoke

REQUIRED = {"name", "predicted_tokens_per_s", "simulated_tokens_per_s", "ci95_low_tokens_per_s",
            "ci95_high_tokens_per_s", "round_ms_p50", "round_ms_p95", "round_ms_p99", "rounds", "seed", "fading",
            "users"}


def test_toml_has_a_plans_entry_per_plan_and_baseline(write_profile):
    result = invoke("simulate", write_profile(), "--rounds", 2000, "--seed", 3, "-f", "toml")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    doc = tomllib.loads(result.stdout)
    head = doc["simulation"]
    assert head["rounds"] == 2000 and head["seed"] == 3 and head["fading"] == "none" and head["users"] == 3
    names = [p["name"] for p in doc["plans"]]
    assert names == ["homogeneous", "heterogeneous", "autoregressive", "fixed_equal", "mean_user"]
    assert [p["kind"] for p in doc["plans"]] == ["plan"] * 2 + ["baseline"] * 3
    for entry in doc["plans"]:
        assert REQUIRED <= set(entry)
        assert entry["ci95_low_tokens_per_s"] <= entry["simulated_tokens_per_s"] <= entry["ci95_high_tokens_per_s"]
        assert entry["round_ms_p50"] <= entry["round_ms_p95"] <= entry["round_ms_p99"]
        assert abs(entry["simulated_tokens_per_s"] / entry["predicted_tokens_per_s"] - 1) < 0.03
        assert [u["name"] for u in entry["users"]] == ["fast-1", "fast-2", "slow"]
        assert sum(u["simulated_tokens_per_s"] for u in entry["users"]) == pytest.approx(
            entry["simulated_tokens_per_s"], rel=1e-8)
    auto = doc["plans"][2]
    assert auto["simulated_tokens_per_s"] == auto["predicted_tokens_per_s"]  # nothing random without drafts


def test_predicted_matches_the_plan_command(write_profile):
    path = write_profile()
    plan = tomllib.loads(invoke("plan", path, "-f", "toml").stdout)
    sim = tomllib.loads(invoke("simulate", path, "--rounds", 100, "-f", "toml").stdout)
    entries = {p["name"]: p for p in sim["plans"]}
    for name in ("homogeneous", "heterogeneous"):
        assert entries[name]["predicted_tokens_per_s"] == plan[name]["goodput_tokens_per_s"]
        assert entries[name]["predicted_round_ms"] == plan[name]["round_ms"]
    for name, baseline in plan["baselines"].items():
        assert entries[name]["predicted_tokens_per_s"] == baseline["goodput_tokens_per_s"]


def test_same_seed_gives_byte_identical_output_and_json_matches_toml(write_profile):
    path = write_profile()
    args = ("simulate", path, "--rounds", 3000, "--fading", "rayleigh", "--draft-jitter", 0.2, "--seed", 5)
    first, second = invoke(*args, "-f", "toml").stdout, invoke(*args, "-f", "toml").stdout
    assert first == second and first
    other = invoke(*args[:-1], 6, "-f", "toml").stdout
    assert other != first
    assert json.loads(invoke(*args, "-f", "json").stdout) == tomllib.loads(first)
    assert invoke(*args).stdout == invoke(*args).stdout  # the table too


def test_fading_is_reported_and_changes_only_round_times(write_profile):
    path = write_profile()
    calm = tomllib.loads(invoke("simulate", path, "--rounds", 3000, "-f", "toml").stdout)
    faded = tomllib.loads(invoke("simulate", path, "--rounds", 3000, "--fading", "rayleigh", "-f", "toml").stdout)
    assert faded["simulation"]["fading"] == "rayleigh"
    by_name = {b["name"]: b for b in faded["plans"]}
    assert {"adaptive", "oracle"} <= set(by_name) and by_name["adaptive"]["policy"] == "adaptive"
    for a in calm["plans"]:
        b = by_name[a["name"]]
        assert b["policy"] == "static" and "policy" not in a
        assert [u["simulated_tokens_per_round"] for u in a["users"]] == [u["simulated_tokens_per_round"] for u in b["users"]]
        if a["name"] != "autoregressive":
            assert b["round_ms_p99"] > a["round_ms_p99"]
    assert any("fading" in note for note in faded["simulation"]["notes"])


def test_modes_and_no_baselines(write_profile):
    path = write_profile()
    doc = tomllib.loads(invoke("simulate", path, "-m", "heterogeneous", "--rounds", 100, "-f", "toml").stdout)
    assert [p["name"] for p in doc["plans"]] == ["heterogeneous", "autoregressive", "fixed_equal", "mean_user",
                                               "homogeneous"]
    doc = tomllib.loads(invoke("simulate", path, "-m", "homogeneous", "--no-baselines", "--rounds", 100,
                               "-f", "toml").stdout)
    assert [p["name"] for p in doc["plans"]] == ["homogeneous"]


def test_table_shows_predicted_simulated_and_notes(write_profile):
    result = invoke("simulate", write_profile(), "--rounds", 2000)
    assert result.exit_code == 0 and result.stderr == ""
    for needle in ("Simulated goodput", "predicted", "simulated", "95% CI", "heterogeneous", "Users (heterogeneous)",
                   "Notes", "Ranking"):
        assert needle in result.stdout, needle
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_plan_file_is_simulated_against_the_profile(write_profile, tmp_path, fmt):
    profile = write_profile()
    plan_path = tmp_path / f"plan.{fmt}"
    assert invoke("plan", profile, "-f", fmt, "-o", plan_path).exit_code == 0
    plan = tomllib.loads(invoke("plan", profile, "-f", "toml").stdout)
    result = invoke("simulate", profile, "--plan", plan_path, "--rounds", 2000, "-f", "toml")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    doc = tomllib.loads(result.stdout)
    assert doc["simulation"]["source"] == str(plan_path)
    entries = {p["name"]: p for p in doc["plans"]}
    for name in ("homogeneous", "heterogeneous"):
        assert entries[name]["kind"] == "plan"
        assert entries[name]["predicted_tokens_per_s"] == pytest.approx(plan[name]["goodput_tokens_per_s"], rel=1e-8)
        assert [u["draft_length"] for u in entries[name]["users"]] == [u["draft_length"] for u in plan[name]["users"]]


def test_plan_file_users_in_another_order_are_matched_by_name(write_profile, tmp_path):
    profile = write_profile()
    plan = tomllib.loads(invoke("plan", profile, "-m", "heterogeneous", "-f", "toml").stdout)
    plan["heterogeneous"]["users"].reverse()
    import tomli_w

    path = tmp_path / "reversed.toml"
    path.write_text(tomli_w.dumps(plan))
    doc = tomllib.loads(invoke("simulate", profile, "--plan", path, "--rounds", 100, "-f", "toml").stdout)
    entry = doc["plans"][0]
    assert entry["name"] == "heterogeneous"
    by_name = {u["name"]: u for u in plan["heterogeneous"]["users"]}
    assert [u["draft_length"] for u in entry["users"]] == [by_name[u["name"]]["draft_length"] for u in entry["users"]]
    assert "homogeneous" in [p["name"] for p in doc["plans"] if p["kind"] == "baseline"]


def test_a_plan_for_other_users_is_one_line_exit_2(write_profile, tmp_path):
    other = write_profile(MINIMAL_PROFILE.replace('name = "slow"', 'name = "sluggish"'), name="other.toml")
    plan_path = tmp_path / "plan.toml"
    invoke("plan", other, "-f", "toml", "-o", plan_path)
    assert_one_line_error(invoke("simulate", write_profile(), "--plan", plan_path), "does not match the profile")


def test_a_plan_beyond_the_profile_is_one_line_exit_2(write_profile, tmp_path):
    wide = write_profile(MINIMAL_PROFILE.replace("bandwidth_mhz = 2", "bandwidth_mhz = 20")
                         .replace("max_draft_length = 8", "max_draft_length = 16"), name="wide.toml")
    plan_path = tmp_path / "plan.toml"
    invoke("plan", wide, "-f", "toml", "-o", plan_path)
    assert_one_line_error(invoke("simulate", write_profile(), "--plan", plan_path), "MHz, more than the profile")
    doc = tomllib.loads(plan_path.read_text())
    for section in ("homogeneous", "heterogeneous"):
        for user in doc[section]["users"]:
            user["bandwidth_mhz"] /= 10
        doc[section]["users"][0]["draft_length"] = 12
    import tomli_w

    plan_path.write_text(tomli_w.dumps(doc))
    assert_one_line_error(invoke("simulate", write_profile(), "--plan", plan_path), "max_draft_length")


def test_a_changed_profile_is_a_warning_not_an_error(write_profile, tmp_path):
    plan_path = tmp_path / "plan.toml"
    invoke("plan", write_profile(), "-f", "toml", "-o", plan_path)
    slower = write_profile(MINIMAL_PROFILE.replace("verify_base_ms = 30", "verify_base_ms = 40"), name="slower.toml")
    result = invoke("simulate", slower, "--plan", plan_path, "--rounds", 100, "-f", "toml")
    assert result.exit_code == 0
    assert "warning" in result.stderr and "profile changed" in result.stderr
    tomllib.loads(result.stdout)


@pytest.mark.parametrize("args,needle", [
    (("--plan", "PLAN", "--mode", "heterogeneous"), "not both"),
    (("--rounds", 0), "--rounds"),
    (("--fading", "nakagami"), "--fading"),
    (("--fading", "rician"), "rician_k_db"),  # rician needs a K factor: none in this profile
    (("--draft-jitter", -1), "--draft-jitter"),
    (("--draft-jitter", "nan"), "--draft-jitter"),
    (("--plan", "missing.toml"), "no such file"),
])
def test_bad_options_are_one_line_exit_2(write_profile, tmp_path, args, needle):
    plan_path = tmp_path / "plan.toml"
    invoke("plan", write_profile(), "-f", "toml", "-o", plan_path)
    args = [plan_path if a == "PLAN" else (tmp_path / a if a == "missing.toml" else a) for a in args]
    assert_one_line_error(invoke("simulate", write_profile(), *args), needle)


def test_not_a_plan_file_is_one_line_exit_2(write_profile):
    profile = write_profile()
    assert_one_line_error(invoke("simulate", profile, "--plan", profile), "[plan]")


def test_output_file_is_written_and_stdout_stays_empty(write_profile, tmp_path):
    out = tmp_path / "sim.toml"
    result = invoke("simulate", write_profile(), "--rounds", 500, "-f", "toml", "-o", out)
    assert result.exit_code == 0 and result.stdout == ""
    assert "wrote toml simulation" in result.stderr
    assert tomllib.loads(out.read_text())["plans"]


def test_progress_bar_only_on_a_terminal_and_only_for_long_runs(monkeypatch):
    import io
    import sys

    from multispin_cli.cli.simulate import _progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with _progress(1000, enabled=False) as advance:
        assert advance is None
    with _progress(1000, enabled=True) as advance:
        for _ in range(10):
            advance(100)
    assert "simulating" in screen.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe or file: never a bar
    with _progress(1000, enabled=True) as advance:
        assert advance is None


def test_a_plan_file_with_a_stranded_drafting_user_is_one_line_exit_2(write_profile, tmp_path):
    import tomli_w

    profile = write_profile()
    doc = tomllib.loads(invoke("plan", profile, "-f", "toml").stdout)
    user = next(u for u in doc["heterogeneous"]["users"] if u["draft_length"] > 0)
    user["bandwidth_mhz"] = 0.0
    path = tmp_path / "stranded.toml"
    path.write_text(tomli_w.dumps(doc))
    assert_one_line_error(invoke("simulate", profile, "--plan", path), f"user '{user['name']}' drafts")


def test_a_plan_that_cannot_run_is_listed_not_simulated(write_profile):
    import numpy as np

    from multispin_cli.analysis.simulation import SimulationOptions, simulate_plan
    from multispin_cli.documents.profile import load_profile
    from multispin_cli.render.simulation import SimulationRun, simulation_document, simulation_view
    from multispin_cli.render.text import render_text

    profile = load_profile(write_profile())
    system = profile.system
    options = SimulationOptions(rounds=200)
    good = simulate_plan(system, np.array([2, 2, 1]), np.full(3, system.bandwidth_hz / 3), options, name="good")
    stuck = simulate_plan(system, np.array([2, 2, 1]), np.array([1e6, 1e6, 0.0]), options, name="stuck")
    run = SimulationRun(profile.path, profile.name, system.names, "test", options, (good, stuck))
    text = render_text(simulation_view(run), width=80)
    assert "Not simulated: stuck" in text and "Every prediction lies inside" in text
    entry = simulation_document(run)["plans"][1]
    assert entry["feasible"] is False and entry["rounds"] == 0 and "round_ms_p50" not in entry
