"""Plots (`--plot`, the optional `plot` extra): written, non-empty, and a clean error without matplotlib."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from test_export import MIXED, invoke, one_line_error
from test_schedule import IDENTICAL


@pytest.fixture
def mixed(tmp_path):
    path = tmp_path / "cell.toml"
    path.write_text(textwrap.dedent(MIXED))
    return path


def test_plan_plot_png_and_svg(mixed, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "plan.png"
    result = invoke("plan", mixed, "-f", "json", "--plot", png)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.lstrip().startswith("{")  # stdout is still only the plan
    assert f"wrote plot to {png}" in result.stderr
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    svg = tmp_path / "plan.svg"
    assert invoke("plan", mixed, "--mode", "homogeneous", "-f", "toml", "--plot", svg).exit_code == 0
    text = svg.read_text()
    assert "<svg" in text and "common draft length L" in text and "fixed_equal" in text
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_plan_plot_in_heterogeneous_mode_uses_the_homogeneous_baseline_sweep(mixed, tmp_path):
    pytest.importorskip("matplotlib")
    svg = tmp_path / "het.svg"
    result = invoke("plan", mixed, "--mode", "heterogeneous", "-f", "json", "--plot", svg)
    assert result.exit_code == 0, result.stderr
    assert "heterogeneous plan" in svg.read_text()


def test_schedule_plot(tmp_path):
    pytest.importorskip("matplotlib")
    profile = tmp_path / "same.toml"
    profile.write_text(textwrap.dedent(IDENTICAL.format(count=4)))
    png = tmp_path / "schedule.png"
    result = invoke("schedule", profile, "-b", "1,2,4,8,16,32,64,128,256", "-f", "json", "--plot", png)
    assert result.exit_code == 0, result.stderr
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
    svg = tmp_path / "schedule.svg"
    assert invoke("schedule", profile, "-b", "1-6", "--plot", svg).exit_code == 0
    assert "draft length by batch size" in svg.read_text()


def test_bad_plot_file_names(mixed, tmp_path):
    pytest.importorskip("matplotlib")
    one_line_error(invoke("plan", mixed, "--plot", tmp_path / "plan.pdf"), "--plot", ".png or .svg")
    one_line_error(invoke("plan", mixed, "--plot", tmp_path / "no" / "plan.png"), "does not exist")


def test_missing_extra_is_one_clean_line(mixed, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    out = tmp_path / "plan.png"
    result = invoke("plan", mixed, "--plot", out)
    one_line_error(result, "--plot", "matplotlib", "pip install 'multispin[plot]'")
    assert not out.exists()
    one_line_error(invoke("schedule", mixed, "--plot", out), "multispin[plot]")


def test_the_cli_does_not_import_matplotlib():
    code = "import sys, multispin_cli.cli; assert 'matplotlib' not in sys.modules, 'imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
