"""`multispin calibrate` through the CLI, and the loop calibrate -> profile -> plan -> simulate."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from builders import MINIMAL_PROFILE, assert_one_line_error, invoke

from multispin_cli.documents.profile import load_profile

# 1,000 drafts of 4 tokens, accepted far more often early than late: the geometric model is rejected.
FALLING = "accepted,count\n0,80\n1,120\n2,200\n3,250\n4,350\n"
# Close to geometric with alpha = 0.7: not rejected.
GEOMETRIC = "accepted,count\n0,300\n1,210\n2,147\n3,103\n4,240\n"


def test_counters_toml_has_acceptance_and_its_interval():
    result = invoke("calibrate", "--drafts", 10_000, "--accepted-tokens", 20_000, "--draft-length", 4, "-f", "toml")
    assert result.exit_code == 0 and result.stderr == ""
    doc = tomllib.loads(result.stdout)
    acc = doc["acceptance"]
    assert set(acc) == {"acceptance", "acceptance_ci95_low", "acceptance_ci95_high"}
    assert acc["acceptance_ci95_low"] < acc["acceptance"] < acc["acceptance_ci95_high"]
    a = acc["acceptance"]
    assert a + a**2 + a**3 + a**4 == pytest.approx(2.0, rel=1e-8)  # expected accepted per draft = A / N
    assert doc["calibration"]["recommended"] == "acceptance"


def test_a_rejected_geometric_model_writes_per_position(tmp_path):
    path = tmp_path / "falling.csv"
    path.write_text(FALLING)
    doc = tomllib.loads(invoke("calibrate", "--histogram", path, "-f", "toml").stdout)
    acc, meta = doc["acceptance"], doc["calibration"]
    assert "acceptance" not in acc and "acceptance_by_position" in acc
    np.testing.assert_allclose(acc["acceptance_by_position"], [920 / 1000, 800 / 920, 600 / 800, 350 / 600])
    assert meta["geometric_rejected"] is True and meta["fit_p_value"] < 0.05
    assert meta["recommended"] == "acceptance_by_position" == meta["written"]
    assert 0 < meta["geometric_acceptance"] < 1  # the other form is kept for the record
    forced = tomllib.loads(invoke("calibrate", "--histogram", path, "--form", "geometric", "-f", "toml").stdout)
    assert set(forced["acceptance"]) == {"acceptance", "acceptance_ci95_low", "acceptance_ci95_high"}
    table = invoke("calibrate", "--histogram", path).stdout
    assert "reject the geometric model" in table and "acceptance_by_position" in table


def test_geometric_data_keep_the_single_rate_and_can_be_forced_per_position():
    doc = tomllib.loads(invoke("calibrate", "--histogram", "-", "-f", "toml", input=GEOMETRIC).stdout)
    assert doc["calibration"]["geometric_rejected"] is False
    assert set(doc["acceptance"]) == {"acceptance", "acceptance_ci95_low", "acceptance_ci95_high"}
    assert doc["acceptance"]["acceptance"] == pytest.approx(0.7, abs=0.02)
    forced = tomllib.loads(invoke("calibrate", "--histogram", "-", "--form", "per-position", "-f", "toml",
                                  input=GEOMETRIC).stdout)
    assert "acceptance_by_position" in forced["acceptance"] and "acceptance" not in forced["acceptance"]


def test_metrics_from_stdin_json_and_label_filter():
    text = ("vllm:spec_decode_num_drafts_total{model_name=\"m\"} 100\n"
            "vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"m\",position=\"0\"} 80\n"
            "vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"m\",position=\"1\"} 60\n"
            "vllm:spec_decode_num_drafts_total{model_name=\"other\"} 7\n")
    result = invoke("calibrate", "--metrics", "-", "--label", "model_name=m", "-f", "json", input=text)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["calibration"]["drafts"] == 100 and doc["calibration"]["accepted_by_position"] == [80, 60]
    assert doc["calibration"]["geometric_acceptance"] == pytest.approx(140 / 180)


def test_every_drafted_token_accepted_is_written_per_position():
    doc = tomllib.loads(invoke("calibrate", "--drafts", 50, "--accepted-tokens", 200, "-L", 4, "-f", "toml").stdout)
    assert doc["acceptance"]["acceptance_by_position"] == [1.0]
    assert_one_line_error(invoke("calibrate", "--drafts", 50, "--accepted-tokens", 200, "-L", 4, "--form", "geometric"),
                          "must be below 1")


def test_warnings_go_to_stderr_and_output_files_are_atomic(tmp_path):
    text = ("vllm:spec_decode_num_drafts_total 100\nvllm:spec_decode_num_draft_tokens_total 150\n"
            "vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} 60\n"
            "vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"1\"} 30\n")
    out = tmp_path / "cal.toml"
    result = invoke("calibrate", "--metrics", "-", "-f", "toml", "-o", out, input=text)
    assert result.exit_code == 0 and result.stdout == ""
    assert "warning: drafts averaged 1.5 tokens" in result.stderr and "wrote toml calibration" in result.stderr
    written = out.read_text()
    assert written.startswith("# Acceptance calibrated by `multispin calibrate`") and 'calibration = "cal.toml"' in written
    tomllib.loads(written)


@pytest.mark.parametrize("args,stdin,needle", [
    ((), None, "exactly one source"),
    (("--metrics", "-", "--histogram", "-"), "", "exactly one source"),
    (("--drafts", 10), None, "missing --accepted-tokens, --draft-length"),
    (("--drafts", 10, "--accepted-tokens", 50, "--draft-length", 4), None, "50 accepted tokens but only 10 drafts"),
    (("--drafts", 10, "--accepted-tokens", -1, "--draft-length", 4), None, "negative"),
    (("--metrics", "-"), "vllm:spec_decode_num_drafts_total{ 10\n", "<stdin>: line 1: malformed metrics text"),
    (("--metrics", "-"), "vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_draft_tokens_total 40\n"
     "vllm:spec_decode_num_accepted_tokens_total 41\n", "41 accepted tokens but only 40 draft tokens"),
    (("--histogram", "-"), "accepted,count\n", "empty histogram"),
    (("--histogram", "-"), "accepted,count\n0,0\n", "empty histogram"),
    (("--histogram", "missing.csv"), None, "missing.csv: no such histogram file"),
    (("--histogram", "-", "--label", "a=b"), "accepted,count\n0,1\n", "--label filters --metrics"),
    (("--metrics", "-", "--label", "nolabel"), "x 1\n", "KEY=VALUE"),
    (("--histogram", "-", "--form", "per-position"), None, "per-position"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, args, stdin, needle):
    monkeypatch.chdir(tmp_path)
    if args[-2:] == ("--form", "per-position"):
        args = ("--drafts", 10, "--accepted-tokens", 5, "--draft-length", 2, "--form", "per-position")
    assert_one_line_error(invoke("calibrate", *args, input=stdin), needle)


def test_the_loop_calibrate_profile_plan_simulate(write_profile, tmp_path):
    """calibrate -> a profile that includes the fragment -> plan -> simulate the plan file."""
    (tmp_path / "slow.csv").write_text(FALLING)
    assert invoke("calibrate", "--histogram", tmp_path / "slow.csv", "-f", "toml", "-o", tmp_path / "slow-acc.toml"
                  ).exit_code == 0
    assert invoke("calibrate", "--drafts", 5000, "--accepted-tokens", 12_000, "-L", 5, "-f", "toml",
                  "-o", tmp_path / "fast-acc.toml").exit_code == 0
    text = (MINIMAL_PROFILE.replace('name = "fast"\ncount = 2\nacceptance = 0.8',
                                    'name = "fast"\ncount = 2\ncalibration = "fast-acc.toml"')
            .replace('name = "slow"\nacceptance = 0.6', 'name = "slow"\ncalibration = "slow-acc.toml"'))
    profile_path = write_profile(text)
    system = load_profile(profile_path).system
    fast = tomllib.loads((tmp_path / "fast-acc.toml").read_text())["acceptance"]["acceptance"]
    slow = tomllib.loads((tmp_path / "slow-acc.toml").read_text())["acceptance"]["acceptance_by_position"]
    np.testing.assert_allclose(system.accept_prob[0], fast)
    np.testing.assert_allclose(system.accept_prob[2, :4], slow)
    np.testing.assert_allclose(system.accept_prob[2, 4:], slow[-1])

    plan_path = tmp_path / "plan.toml"
    assert invoke("plan", profile_path, "-f", "toml", "-o", plan_path).exit_code == 0
    result = invoke("simulate", profile_path, "--plan", plan_path, "--rounds", 20_000, "-f", "toml")
    assert result.exit_code == 0, result.stderr
    for entry in tomllib.loads(result.stdout)["plans"]:
        if entry["kind"] == "plan":
            assert entry["ci95_low_tokens_per_s"] <= entry["predicted_tokens_per_s"] <= entry["ci95_high_tokens_per_s"]
