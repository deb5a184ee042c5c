"""`multispin plan` through the CLI: formats that parse back, clean stdout, atomic files, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest
from builders import invoke

from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.planfile import load_plan_file


def test_toml_is_the_documented_structure_and_nothing_else_is_on_stdout(write_profile):
    result = invoke("plan", write_profile(), "--format", "toml")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    doc = tomllib.loads(result.stdout)
    assert set(doc) == {"plan", "homogeneous", "heterogeneous", "baselines"}
    head = doc["plan"]
    assert head["mode"] == "both" and head["users"] == 3 and head["bandwidth_mhz"] == 2.0
    for name in ("homogeneous", "heterogeneous"):
        section = doc[name]
        assert {"goodput_tokens_per_s", "round_ms", "users"} <= set(section)
        assert [u["name"] for u in section["users"]] == ["fast-1", "fast-2", "slow"]
        for user in section["users"]:
            assert {"name", "draft_length", "bandwidth_mhz", "tokens_per_round", "tokens_per_s"} <= set(user)
        total = sum(u["bandwidth_mhz"] for u in section["users"])
        assert total == pytest.approx(2.0, rel=1e-9) or total == 0
        # per-user rates add up to the sum goodput
        assert sum(u["tokens_per_s"] for u in section["users"]) == pytest.approx(section["goodput_tokens_per_s"], rel=1e-8)
    assert "draft_length" in doc["homogeneous"]
    assert doc["heterogeneous"]["upper_bound_tokens_per_s"] >= doc["heterogeneous"]["goodput_tokens_per_s"]
    assert set(doc["baselines"]) == {"autoregressive", "fixed_equal", "mean_user"}
    for baseline in doc["baselines"].values():
        assert baseline["goodput_tokens_per_s"] > 0 and "draft_length" in baseline
    assert set(doc["heterogeneous"]["gain_percent"]) == {"homogeneous", "autoregressive", "fixed_equal", "mean_user"}


def test_json_carries_the_same_document_as_toml(write_profile):
    path = write_profile()
    as_toml = tomllib.loads(invoke("plan", path, "-f", "toml").stdout)
    as_json = json.loads(invoke("plan", path, "-f", "json").stdout)
    assert as_json == as_toml


def test_same_input_gives_byte_identical_output(write_profile):
    path = write_profile()
    for fmt in ("toml", "json", "table"):
        first, second = invoke("plan", path, "-f", fmt), invoke("plan", path, "-f", fmt)
        assert first.stdout == second.stdout and first.stdout


def test_modes(write_profile):
    path = write_profile()
    hom = tomllib.loads(invoke("plan", path, "--mode", "homogeneous", "-f", "toml").stdout)
    assert "heterogeneous" not in hom and "homogeneous" in hom
    assert "homogeneous" not in hom["baselines"]
    het = tomllib.loads(invoke("plan", path, "--mode", "heterogeneous", "-f", "toml").stdout)
    assert "homogeneous" not in het and "heterogeneous" in het
    assert het["baselines"]["homogeneous"]["goodput_tokens_per_s"] == hom["homogeneous"]["goodput_tokens_per_s"]


def test_table_view_shows_plans_users_and_gains(write_profile):
    result = invoke("plan", write_profile())
    assert result.exit_code == 0 and result.stderr == ""
    out = result.stdout
    for word in ("heterogeneous", "homogeneous", "autoregressive", "fixed_equal", "mean_user", "fast-1..2", "slow",
                 "tok/s", "gain", "No plan exceeds"):
        assert word in out


def test_output_file_is_written_atomically_and_stdout_stays_empty(write_profile, tmp_path):
    target = tmp_path / "plan.toml"
    result = invoke("plan", write_profile(), "-f", "toml", "-o", target)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "wrote toml plan" in result.stderr
    assert load_plan_file(target).section().users  # reads back as a plan
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml", "profile.toml"]


def test_an_interrupted_write_leaves_the_old_file(write_profile, tmp_path, monkeypatch):
    target = tmp_path / "plan.toml"
    target.write_text("old plan\n")

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    result = invoke("plan", write_profile(), "-f", "toml", "-o", target)
    assert result.exit_code == 130
    assert target.read_text() == "old plan\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml", "profile.toml"]  # no temp file left


def test_output_into_a_missing_folder_is_a_clear_error(write_profile, tmp_path):
    result = invoke("plan", write_profile(), "-o", tmp_path / "nope" / "plan.toml")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args,needle",
    [
        (["plan"], "multispin: error: PROFILE: missing argument"),
        (["plan", "x.toml", "--mode", "sideways"], "multispin: error: --mode: 'sideways' is not one of"),
        (["plan", "x.toml", "--format", "yaml"], "multispin: error: --format: 'yaml' is not one of"),
        (["plan", "x.toml", "--rows", "-1"], "multispin: error: --rows: "),
        (["plna"], "multispin: error: No such command"),
        (["schedule", "x.toml", "-m", "both"], "multispin: error: No such option: -m"),
        (["export", "p.toml"], "multispin: error: --engine: missing option"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, needle):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Value error" not in result.stderr  # no validation library's prefix


def test_version_and_help():
    assert invoke("--version").stdout.startswith("multispin ")
    help_text = invoke("plan", "--help").stdout
    assert "--mode" in help_text and "--format" in help_text and "--output" in help_text


def test_python_dash_m_runs_the_cli():
    shipped = sorted(profiles_dir().glob("*.toml"))[0]
    done = subprocess.run([sys.executable, "-m", "multispin_cli", "plan", str(shipped), "-f", "json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["plan"]["users"] > 0


def test_internal_errors_are_one_line_exit_1(write_profile, monkeypatch):
    import multispin_cli.planners.report as planning

    def broken(*args, **kwargs):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(planning, "plan_report", broken)
    result = invoke("plan", write_profile())
    assert result.exit_code == 1
    assert result.stderr.startswith("multispin: internal error: ZeroDivisionError: oops")
    assert "Traceback" not in result.stderr


def test_a_plan_beyond_the_measured_table_warns_on_stderr_only(write_profile):
    from builders import MINIMAL_PROFILE

    text = MINIMAL_PROFILE.replace("verify_base_ms = 30\nverify_ms_per_token = 0.05", "verify_table = [[1, 30.0], [2, 30.1]]")
    result = invoke("plan", write_profile(text), "-f", "toml")
    assert result.exit_code == 0
    assert tomllib.loads(result.stdout)["plan"]["users"] == 3
    assert "outside the measured verify_table (1-2); its time is extrapolated" in result.stderr
    assert result.stderr.startswith("multispin: warning: ")
