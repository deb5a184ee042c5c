"""profile-hardware checks its own measurements: monotone rounds, a positive slope, R^2, agreement
with the roofline, the load during the run; it repeats once, then refuses unless --force."""

from __future__ import annotations

import json
import tomllib

import pytest
from typer.testing import CliRunner

from multispin_cli.cli import app
from multispin_cli.hardware import numpy_backend as nb
from multispin_cli.hardware import profiling
from multispin_cli.hardware.fit import fit_affine, measured_table
from multispin_cli.hardware.models import catalog
from multispin_cli.hardware.profiling import DraftResult, VerifyPoint, VerifyResult
from multispin_cli.hardware.quality import draft_problems, load_problems, verify_problems
from multispin_cli.hardware.roofline import LocalPeaks

SHAPE = catalog()["llama-68m"]


def _draft(rounds, roofline=None, measured=True) -> DraftResult:
    lengths, seconds = zip(*rounds)
    fit = fit_affine(lengths, seconds, min_intercept=0.0, min_slope=profiling.MIN_DRAFT_SLOPE_S)
    return DraftResult(SHAPE, measured, "test", "float32", "here", tuple(rounds), fit, roofline)


def _verify(points, measured=True) -> VerifyResult:
    pts = tuple(VerifyPoint(b, n, t, roof) for b, n, t, roof in points)
    tokens = [p.tokens for p in pts]
    seconds = [p.seconds for p in pts]
    return VerifyResult(SHAPE, measured, "test", "float32", "here", 1, pts, fit_affine(tokens, seconds),
                        measured_table(tokens, seconds), "table", 1e8, None)


def test_a_sound_draft_passes():
    assert draft_problems(_draft([(1, 3.1e-3), (2, 5.0e-3), (4, 9.1e-3), (8, 17.0e-3)], roofline=1e-3)) == []


def test_the_reviewed_busy_run_is_caught():
    """The review's run: rounds falling as L grows, the slope clamped to ~0, R^2 below zero."""
    problems = draft_problems(_draft([(1, 20e-3), (2, 12e-3), (4, 11e-3), (8, 10e-3)], roofline=1e-3))
    text = " | ".join(problems)
    assert "faster as they get longer" in text and "clamped" in text and "R^2" in text and "roofline" in text


def test_a_draft_faster_than_the_roofline_is_caught():
    problems = draft_problems(_draft([(1, 1.1e-4), (2, 2.1e-4), (4, 4.1e-4)], roofline=1e-3))
    assert len(problems) == 1 and "roofline" in problems[0]


def test_estimates_are_not_checked():
    assert draft_problems(_draft([(1, 20e-3), (2, 12e-3)], measured=False)) == []


def test_a_sound_verify_table_passes():
    points = [(1, 1, 17.7, 10.0), (1, 2, 17.9, 10.0), (2, 2, 18.3, 10.1), (4, 2, 19.0, 10.2)]
    assert verify_problems(_verify(points)) == []


def test_a_verify_time_that_jumps_is_caught():
    """17.7 s then 148 s between neighbouring batch sizes (the review's busy run)."""
    points = [(1, 1, 17.7, 10.0), (1, 2, 17.9, 10.0), (2, 2, 148.0, 10.1)]
    problems = verify_problems(_verify(points))
    assert len(problems) == 1 and "jumps" in problems[0]


def test_a_verify_pass_below_the_roofline_is_caught():
    problems = verify_problems(_verify([(1, 1, 1.0, 10.0), (1, 2, 1.1, 10.0)]))
    assert "roofline" in problems[0]


def test_load_during_the_run():
    assert load_problems(0.05, 8) == [] and load_problems(None, 8) == []
    assert "90% of the 8 CPUs" in load_problems(0.9, 8)[0]


# ---------------------------------------------------------------- through the CLI

TINY = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 256}
ARGS = ["--quick", "--context", "16", "--max-draft-length", "3", "--format", "toml"]


@pytest.fixture()
def busy_machine(monkeypatch, tmp_path):
    """A machine that other processes keep 95 % busy while measuring (the one reading the tests
    replace: the load of a real machine cannot be set), and a tiny model to measure."""
    monkeypatch.setattr(profiling, "others_share_since", lambda before: 0.95)
    monkeypatch.setattr(nb, "measure_local_peaks", lambda machine, settings: LocalPeaks(
        20e9, 100e9, "test bandwidth", "test matmul", "float32"))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY))
    return str(path)


def test_a_busy_run_is_repeated_then_refused(busy_machine, tmp_path):
    out = tmp_path / "timings.toml"
    result = CliRunner().invoke(app, ["profile-hardware", "-d", busy_machine, "-t", busy_machine, *ARGS, "-o", out])
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert "measuring once more" in lines[0] and "95% of the" in lines[0]
    assert lines[-1].startswith("multispin: error: refusing to write timings that failed their checks twice")
    assert "--force" in lines[-1] and not out.exists()


def test_force_writes_the_failing_run_with_its_problems_noted(busy_machine, tmp_path):
    out = tmp_path / "timings.toml"
    result = CliRunner().invoke(app, ["profile-hardware", "-d", busy_machine, "-t", busy_machine, *ARGS, "-o", out,
                                      "--force"])
    assert result.exit_code == 0, result.stderr
    assert "measuring once more" not in result.stderr and "check failed: other processes kept 95%" in result.stderr
    notes = tomllib.loads(out.read_text())["measurement"]["notes"]
    assert any(n.startswith("check failed: other processes kept 95%") for n in notes)


def test_plan_warns_about_timings_written_with_force(busy_machine, tmp_path):
    out = tmp_path / "timings.toml"
    forced = CliRunner().invoke(app, ["profile-hardware", "-d", busy_machine, "-t", busy_machine, *ARGS, "-o", out,
                                      "--force"])
    assert forced.exit_code == 0, forced.stderr
    profile = tmp_path / "cell.toml"
    profile.write_text('[system]\nbandwidth_mhz = 5\nmax_draft_length = 3\n[payload]\nvocab_size = 256\n'
                       '[server]\ntimings = "timings.toml"\n[[devices]]\nname = "d"\ncount = 2\nacceptance = 0.7\n'
                       'timings = "timings.toml"\nsnr_db = 10\n')
    result = CliRunner().invoke(app, ["plan", str(profile), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)
    lines = result.stderr.strip().splitlines()  # one per failed check (the tiny model's noise may add some)
    assert all(line.startswith(f"multispin: warning: {out}: written with --force although its check failed: ")
               for line in lines), result.stderr
    assert any("other processes kept 95%" in line for line in lines)
