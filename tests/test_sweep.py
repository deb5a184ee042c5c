"""`multispin sweep`: overrides, grids, scenarios, output formats, resume, and agreement with `plan`."""

from __future__ import annotations

import csv
import io
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from builders import FILE_HEAD, FILE_ROWS, assert_one_line_error, invoke

from multispin_cli.analysis.scenarios import ScenarioSpec, draw_users
from multispin_cli.analysis.sweep import Axis, SweepGrid
from multispin_cli.documents.chunks import ChunkStore, fingerprint
from multispin_cli.documents.overrides import apply_overrides, parse_set, parse_values, sweep_keys
from multispin_cli.documents.profile import SCHEMA, load_profile, profile_from_data, read_toml
from multispin_cli.errors import InputError
from multispin_cli.execution.backends import InlineBackend
from multispin_cli.execution.runner import run_description, run_sweep
from multispin_cli.execution.sweep import sweep_job
from multispin_cli.model.pathloss import path_loss_db

PLANS = ("homogeneous", "heterogeneous", "autoregressive", "fixed_equal", "mean_user")


def _rows(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["rows"]


# ------------------------------------------------------------------ the done-when check


def test_a_3x2_grid_equals_six_separate_plan_runs(write_profile, tmp_path):
    path = write_profile()
    rows = _rows(invoke("sweep", path, "--set", "system.bandwidth_mhz=0.5,2,8",
                        "--set", "devices.fast.acceptance=0.6,0.85", "-f", "json", "--workers", "1"))
    assert [(r["system.bandwidth_mhz"], r["devices.fast.acceptance"]) for r in rows] == [
        (0.5, 0.6), (0.5, 0.85), (2.0, 0.6), (2.0, 0.85), (8.0, 0.6), (8.0, 0.85)]
    base = tomllib.loads(path.read_text())
    for i, row in enumerate(rows):
        data = json.loads(json.dumps(base))
        data["system"]["bandwidth_mhz"] = row["system.bandwidth_mhz"]
        data["devices"][0]["acceptance"] = row["devices.fast.acceptance"]
        cell = tmp_path / f"cell{i}.toml"
        cell.write_text(tomli_w.dumps(data))
        planned = invoke("plan", cell, "-f", "json")
        assert planned.exit_code == 0, planned.stderr
        doc = json.loads(planned.stdout)
        sections = {"homogeneous": doc["homogeneous"], "heterogeneous": doc["heterogeneous"], **doc["baselines"]}
        assert row["users"] == doc["plan"]["users"] == 3
        for name in PLANS:
            assert row[f"{name}.goodput_tokens_per_s"] == sections[name]["goodput_tokens_per_s"], (i, name)
            assert row[f"{name}.round_ms"] == sections[name]["round_ms"], (i, name)
        for name in ("homogeneous", "heterogeneous"):
            assert row[f"{name}.mean_draft_length"] == sections[name]["mean_draft_length"]
        for name in ("autoregressive", "fixed_equal", "mean_user"):
            assert row[f"{name}.mean_draft_length"] == sections[name]["draft_length"]


# ------------------------------------------------------------------ keys and values


def test_every_numeric_schema_key_is_addressable(write_profile):
    data = read_toml(write_profile())
    keys = sweep_keys(data)
    for table, schema in SCHEMA.items():
        for key in schema:
            if key.kind not in ("int", "float"):
                continue
            if table == "devices":
                assert f"devices.fast.{key.name}" in keys and f"devices.slow.{key.name}" in keys
            else:
                assert f"{table}.{key.name}" in keys
    assert "system.name" not in keys and "devices.fast.name" not in keys


@pytest.mark.parametrize(("spec", "values"), [
    ("1,2.5,4", (1.0, 2.5, 4.0)),
    ("1..4", (1.0, 2.0, 3.0, 4.0)),
    ("1..64:log", (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)),
    ("3..50:log", (3.0, 6.0, 12.0, 24.0, 48.0)),
    ("0..1:5", (0.0, 0.25, 0.5, 0.75, 1.0)),
    ("-3..-1", (-3.0, -2.0, -1.0)),
])
def test_value_lists_and_ranges(spec, values):
    assert parse_values(spec) == values


@pytest.mark.parametrize(("spec", "needle"), [
    ("", "V1,V2"), ("1,,2", "V1,V2"), ("a,b", "'a' is not a number"), ("4..1", "backwards"),
    ("0.5..2", "A..B:N"), ("0..8:log", "above 0"), ("1..4:lin", "'log' or a count"), ("1,nan", "finite"),
])
def test_bad_values_are_input_errors(spec, needle):
    with pytest.raises(InputError, match=needle):
        parse_values(spec)


def test_set_checks_the_key_and_integer_keys(write_profile):
    data = read_toml(write_profile())
    assert parse_set("devices.fast.count=1..3", data) == Axis("devices.fast.count", (1, 2, 3))
    with pytest.raises(InputError, match="did you mean 'devices.fast.count'"):
        parse_set("devices.fats.count=1,2", data)
    with pytest.raises(InputError, match="takes integers, got 1.5"):
        parse_set("devices.fast.count=1,1.5", data)
    with pytest.raises(InputError, match="not KEY=VALUES"):
        parse_set("system.bandwidth_mhz", data)
    with pytest.raises(InputError, match="twice"):
        parse_set("system.bandwidth_mhz=1,1", data)


def test_overrides_replace_the_exclusive_keys_and_leave_the_base_alone(write_profile):
    data = read_toml(write_profile())
    changed = apply_overrides(data, [("devices.slow.snr_db", 7.0), ("server.verify_base_ms", 10.0)])
    slow = changed["devices"][1]
    assert slow["snr_db"] == 7.0 and "tx_power_dbm" not in slow and "path_loss_db" not in slow
    assert "tx_power_dbm" in data["devices"][1] and data["server"]["verify_base_ms"] == 30
    system = profile_from_data(changed, "x.toml").system
    assert system.verify(0) == pytest.approx(0.010)


def test_unknown_key_is_one_line_naming_it_and_the_nearest(write_profile):
    result = invoke("sweep", write_profile(), "--set", "system.bandwith_mhz=1,2")
    assert_one_line_error(result, "unknown profile key 'system.bandwith_mhz' (did you mean 'system.bandwidth_mhz'?)")


def test_invalid_cell_stops_naming_it_or_is_skipped(write_profile, tmp_path):
    path = write_profile()
    out = tmp_path / "rows.csv"
    stop = invoke("sweep", path, "--set", "devices.fast.acceptance=0.5,1.0,0.7", "-f", "csv", "-o", out)
    assert_one_line_error(stop, "cell 1 (devices.fast.acceptance=1): ")
    assert "must be in [0, 1), got 1" in stop.stderr and not out.exists()
    skip = invoke("sweep", path, "--set", "devices.fast.acceptance=0.5,1.0,0.7", "-f", "csv", "--skip-invalid")
    assert skip.exit_code == 0
    assert [r["cell"] for r in csv.DictReader(io.StringIO(skip.stdout))] == ["0", "2"]
    assert skip.stderr.count("warning: skipped cell 1 (devices.fast.acceptance=1)") == 1


# ------------------------------------------------------------------ determinism, formats, resume


def test_workers_and_chunk_sizes_give_identical_bytes(write_profile):
    path = write_profile()
    args = ("sweep", path, "--set", "devices.fast.count=1..5", "--set", "system.bandwidth_mhz=1,3", "-f", "csv")
    one = invoke(*args, "--workers", "1", "--chunk-size", "16")
    two = invoke(*args, "--workers", "2", "--chunk-size", "3")
    assert one.exit_code == two.exit_code == 0
    assert one.stdout == two.stdout and one.stdout.count("\n") == 11


def test_csv_json_parquet_and_table_carry_the_same_rows(write_profile, tmp_path):
    path = write_profile()
    args = ("sweep", path, "--set", "system.bandwidth_mhz=1,2", "--workers", "1")
    as_json = _rows(invoke(*args, "-f", "json"))
    as_csv = list(csv.DictReader(io.StringIO(invoke(*args, "-f", "csv").stdout)))
    assert [float(r["heterogeneous.goodput_tokens_per_s"]) for r in as_csv] == [
        r["heterogeneous.goodput_tokens_per_s"] for r in as_json]
    table = invoke(*args)
    assert table.exit_code == 0 and "Sweep: 2 cells" in table.stdout
    pq = pytest.importorskip("pyarrow.parquet", reason="parquet extra (pyarrow) not installed")
    target = tmp_path / "rows.parquet"
    result = invoke(*args, "-f", "parquet", "-o", target)
    assert result.exit_code == 0 and result.stdout == ""
    assert pq.read_table(target).to_pylist() == as_json


def test_parquet_needs_a_file(write_profile):
    assert_one_line_error(invoke("sweep", write_profile(), "-f", "parquet"), "give --output FILE")


def test_resume_reads_stored_chunks_instead_of_computing_them(write_profile, tmp_path):
    path = write_profile()
    out = tmp_path / "rows.json"
    job = sweep_job(path, ["system.bandwidth_mhz=1..6"])
    store = ChunkStore(out, fingerprint(run_description(job)), resume=False)

    class Interrupted(InlineBackend):
        def run(self, job, chunks):
            yield from list(super().run(job, chunks))[:2]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(job, Interrupted(), chunk_size=2, store=store)
    stored = sorted(p.name for p in (tmp_path / "rows.json.parts").glob("cells-*"))
    assert stored == ["cells-000000000-000000002.json", "cells-000000002-000000004.json"]
    # Mark a stored row: a resumed run must use it rather than compute the chunk again.
    first = tmp_path / "rows.json.parts" / stored[0]
    content = json.loads(first.read_text())
    content["rows"][0]["users"] = 99
    first.write_text(json.dumps(content))
    resumed = invoke("sweep", path, "--set", "system.bandwidth_mhz=1..6", "-f", "json", "-o", out, "--resume",
                     "--chunk-size", "2", "--workers", "1")
    assert resumed.exit_code == 0, resumed.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["users"] for r in rows] == [99, 3, 3, 3, 3, 3]
    assert not (tmp_path / "rows.json.parts").exists()
    fresh = invoke("sweep", path, "--set", "system.bandwidth_mhz=1..6", "-f", "json", "--workers", "1")
    assert json.loads(fresh.stdout)["rows"][1:] == rows[1:]


def test_resume_refuses_another_runs_chunks(write_profile, tmp_path):
    path = write_profile()
    out = tmp_path / "rows.csv"
    job = sweep_job(path, ["system.bandwidth_mhz=1,2"])
    ChunkStore(out, fingerprint(run_description(job)), resume=False)
    result = invoke("sweep", path, "--set", "system.bandwidth_mhz=1,3", "-o", out, "--resume")
    assert_one_line_error(result, "holds chunks of a different run")


def test_plot_draws_goodput_against_the_first_key(write_profile, tmp_path):
    pytest.importorskip("matplotlib", reason="plot extra (matplotlib) not installed")
    target = tmp_path / "sweep.svg"
    result = invoke("sweep", write_profile(), "--set", "system.bandwidth_mhz=1,2,4", "-f", "csv", "--plot", target,
                    "--workers", "1")
    assert result.exit_code == 0, result.stderr
    svg = target.read_text()
    assert "system.bandwidth_mhz" in svg and "heterogeneous" in svg and "autoregressive" in svg


# ------------------------------------------------------------------ scenarios


def test_path_loss_matches_the_38901_formulas():
    # UMi LOS below the breakpoint (d'BP = 4 * 9 * 0.5 * 3.5e9 / c = 210 m): 32.4 + 21 log10 d3D + 20 log10 fc.
    d3d = math.hypot(100.0, 8.5)
    assert path_loss_db("umi-los", 100.0, 3.5) == pytest.approx(32.4 + 21 * math.log10(d3d) + 20 * math.log10(3.5))
    nlos = 35.3 * math.log10(d3d) + 22.4 + 21.3 * math.log10(3.5)
    assert path_loss_db("umi-nlos", 100.0, 3.5) == pytest.approx(nlos)
    d = np.array([20.0, 100.0, 400.0, 1500.0])
    for kind in ("umi", "uma"):
        assert np.all(path_loss_db(f"{kind}-nlos", d, 3.5) >= path_loss_db(f"{kind}-los", d, 3.5))
        assert np.all(np.diff(path_loss_db(f"{kind}-los", d, 3.5)) > 0)


def test_scenario_draws_depend_on_seed_and_scenario_only():
    spec = ScenarioSpec(3, seed=7, radius_m=300.0, acceptance_spread=0.2)
    base = np.array([0.7, 0.7, np.nan, 0.9])
    a, b = draw_users(spec, 1, base, 3.5), draw_users(spec, 1, base, 3.5)
    assert np.array_equal(a.path_loss_db, b.path_loss_db) and np.array_equal(a.acceptance, b.acceptance, equal_nan=True)
    assert not np.array_equal(a.distance_m, draw_users(spec, 2, base, 3.5).distance_m)
    assert np.all((a.distance_m >= 10) & (a.distance_m <= 300))
    assert np.isnan(a.acceptance[2]) and np.all(np.abs(a.acceptance[[0, 1, 3]] - base[[0, 1, 3]]) <= 0.2 + 1e-12)


def test_scenario_cells_are_power_limited_users_at_drawn_losses(write_profile):
    path = write_profile()
    args = ("sweep", path, "--scenarios", "4", "--seed", "3", "-f", "json", "--workers", "1")
    rows = _rows(invoke(*args))
    assert [r["scenario"] for r in rows] == [0, 1, 2, 3] and all(r["users"] == 3 for r in rows)
    assert len({r["heterogeneous.goodput_tokens_per_s"] for r in rows}) == 4
    assert _rows(invoke(*args, "--workers", "2", "--chunk-size", "1")) == rows
    other = _rows(invoke("sweep", path, "--scenarios", "4", "--seed", "4", "-f", "json", "--workers", "1"))
    assert other != rows
    job = sweep_job(path, [], scenarios=ScenarioSpec(4, seed=3))
    from multispin_cli.execution.cells import cell_profile

    profile = cell_profile(job, 2)
    assert profile.system.names == ("fast-1", "fast-2", "slow")
    assert np.all(profile.system.channel.power_limited)


def _assert_same_system(a, b):
    """Every field of two Systems (and of their channels and fading) equal, bit for bit."""
    import dataclasses

    def same(x, y, where):
        if dataclasses.is_dataclass(x):
            assert type(x) is type(y), where
            for f in dataclasses.fields(x):
                same(getattr(x, f.name), getattr(y, f.name), f"{where}.{f.name}")
        elif isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and x.dtype == y.dtype and x.shape == y.shape, where
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), where
        else:
            assert x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)), where

    same(a, b, "system")


EDITED_CELLS = {
    "minimal": "",
    "per-position, own powers, fading, noise figure": """
        [system]
        bandwidth_mhz = 5
        max_draft_length = 6
        noise_figure_db = 7
        carrier_ghz = 28
        fading = "rayleigh"
        shadowing_db = 3

        [payload]
        kind = "top-k"
        vocab_size = 32000
        top_k = 16

        [server]
        verify_base_ms = 30
        verify_ms_per_token = 0.05

        [[devices]]
        name = "pos"
        count = 3
        acceptance_by_position = [0.9, 0.7, 0.5]
        draft_ms_per_token = 2
        snr_db = 10

        [[devices]]
        name = "loud"
        count = 2
        acceptance = 0.7
        draft_ms_per_token = 4
        tx_power_dbm = 10
        distance_m = 50
        """,
    "resource blocks and a devices file": """
        devices_file = "more.csv"

        [system]
        resource_blocks = 24
        subcarrier_spacing_khz = 30
        max_draft_length = 8

        [payload]
        kind = "top-k"
        vocab_size = 32000
        top_k = 16

        [server]
        verify_base_ms = 30
        verify_ms_per_token = 0.05

        [[devices]]
        name = "fast"
        count = 4
        acceptance = 0.8
        draft_ms_per_token = 2
        snr_db = 15
        """,
}


@pytest.mark.parametrize("name", list(EDITED_CELLS))
def test_scenario_cells_edited_in_place_equal_cells_loaded_from_scratch(write_profile, tmp_path, name):
    """The scenarios of a grid point after the first are array edits of its System: the same arrays,
    bit for bit, as the drop written into the profile and loaded, so chunking cannot change a row."""
    from multispin_cli.execution.cells import CellSystems, cell_profile

    (tmp_path / "more.csv").write_text("name,acceptance,draft_ms_per_token,snr_db\nextra,0.5,3,10\n")
    path = write_profile(EDITED_CELLS[name]) if EDITED_CELLS[name] else write_profile()
    job = sweep_job(path, ["system.max_draft_length=4,8"], scenarios=ScenarioSpec(5, seed=11, acceptance_spread=0.3))
    systems = CellSystems(job)
    for index in range(len(job.grid)):
        _assert_same_system(systems.system(index), cell_profile(job, index).system)
    assert systems._template is not None and systems._template.users == cell_profile(job, 0).system.users - (
        1 if "devices file" in name else 0)


def test_a_drawn_value_the_loader_refuses_is_not_edited_in(write_profile):
    from multispin_cli.analysis.scenarios import Drop
    from multispin_cli.execution.cells import CellSystems

    job = sweep_job(write_profile(), [], scenarios=ScenarioSpec(2, seed=1))
    systems = CellSystems(job)
    systems.system(0)
    template = systems._template
    drop = draw_users(job.scenarios, 1, [0.8, 0.8, 0.6], 3.5)
    assert template.system_for(drop) is not None
    for loss in (450.0, -1.0, np.nan):  # path_loss_db is checked to lie in [0, 400]
        bad = Drop(drop.distance_m, drop.shadow_db, np.array([100.0, loss, 100.0]), drop.acceptance)
        assert template.system_for(bad) is None
    assert template.system_for(Drop(drop.distance_m, drop.shadow_db, drop.path_loss_db,
                                    np.array([0.8, 1.0, 0.6]))) is None  # acceptance lies in [0, 1)


def test_grid_numbering_is_row_major_with_scenarios_innermost():
    grid = SweepGrid((Axis("a", (1, 2)), Axis("b", (10, 20, 30))), scenarios=2)
    assert len(grid) == 12
    cells = [grid.cell(i) for i in range(12)]
    assert [(c.values, c.scenario) for c in cells[:4]] == [((1, 10), 0), ((1, 10), 1), ((1, 20), 0), ((1, 20), 1)]
    assert cells[11].values == (2, 30) and cells[11].scenario == 1
    assert [len(c) for c in grid.chunks(5)] == [5, 5, 2]


def test_load_profile_is_profile_from_data(write_profile):
    path = write_profile()
    a, b = load_profile(path), profile_from_data(read_toml(path), path)
    assert a.system.names == b.system.names and a.path == b.path


@pytest.mark.parametrize(("args", "needle"), [
    (("--plot", "x.svg"), "--plot draws goodput against the first --set key"),
    (("--resume",), "--resume needs --output"),
    (("--scheduler", "tcp://127.0.0.1:9", "--scheduler-file", "s.json"), "not both"),
    (("--scheduler", "tcp://127.0.0.1:9", "--workers", "2"), "a Dask cluster has its own workers"),
    (("--set", "system.bandwidth_mhz=1", "--set", "system.bandwidth_mhz=2"), "system.bandwidth_mhz is set twice"),
])
def test_conflicting_options_are_one_line(write_profile, tmp_path, monkeypatch, args, needle):
    pytest.importorskip("matplotlib", reason="plot extra (matplotlib) not installed")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke("sweep", write_profile(), *args), needle)


def test_the_stopping_cell_is_the_lowest_invalid_one_whatever_the_order(write_profile):
    path = write_profile()
    job = sweep_job(path, ["devices.fast.acceptance=0.5,1.0,0.7,1.5,0.6"])

    class Reversed(InlineBackend):
        def run(self, job, chunks):
            yield from super().run(job, list(reversed(chunks)))

    with pytest.raises(InputError, match=r"^cell 1 \(devices.fast.acceptance=1\)"):
        run_sweep(job, Reversed(), chunk_size=1)
    result = run_sweep(job, Reversed(), chunk_size=2, skip_invalid=True)
    assert [r["cell"] for r in result.rows] == [0, 2, 4] and [i for i, _ in result.invalid] == [1, 3]


def test_resource_blocks_and_bandwidth_replace_each_other(write_profile):
    data = read_toml(write_profile())
    blocks = apply_overrides(data, [("system.resource_blocks", 20)])
    assert "bandwidth_mhz" not in blocks["system"]
    assert profile_from_data(blocks, "x.toml").system.resource_blocks == 20
    back = apply_overrides({**blocks, "system": {**blocks["system"], "min_resource_blocks": 2}},
                           [("system.bandwidth_mhz", 3.0)])
    assert back["system"] == {"bandwidth_mhz": 3.0, "max_draft_length": 8}


# ------------------------------------------------------------------ users from a devices file

def test_devices_file_rows_are_addressed_like_entries(write_profile, tmp_path):
    """devices.NAME.KEY sets the file row named NAME: the cells equal the same users as [[devices]]
    entries swept the same way (MINIMAL_PROFILE holds the file's rows as entries)."""
    (tmp_path / "users.csv").write_text(FILE_ROWS)
    from_file = write_profile(FILE_HEAD, "file.toml")
    entries = write_profile()
    sets = ("--set", "devices.fast.count=1,3", "--set", "devices.slow.snr_db=5,20", "--set",
            "devices.fast.acceptance=0.7")
    a = _rows(invoke("sweep", from_file, *sets, "-f", "json", "--workers", "1"))
    b = _rows(invoke("sweep", entries, *sets, "-f", "json", "--workers", "1"))
    assert a == b and [r["users"] for r in a] == [2, 2, 4, 4]
    # snr_db replaces the row's tx_power_dbm and path_loss_db, as it does in an entry
    job = sweep_job(from_file, ["devices.slow.snr_db=5"])
    from multispin_cli.execution.cells import cell_profile

    assert not cell_profile(job, 0).system.channel.power_limited.any()
    # scenarios redraw the [[devices]] users only: a profile of file users alone has none to draw
    assert_one_line_error(invoke("sweep", from_file, "--scenarios", "2"), "this profile has none")


def test_a_devices_file_row_name_is_checked_and_suggested(write_profile, tmp_path):
    (tmp_path / "users.csv").write_text(FILE_ROWS)
    path = write_profile(FILE_HEAD, "file.toml")
    assert_one_line_error(invoke("sweep", path, "--set", "devices.fsat.count=1,2"),
                          "unknown profile key 'devices.fsat.count' (did you mean 'devices.fast.count'?)")
    bad = invoke("sweep", path, "--set", "devices.fast.acceptance=0.5,1.5", "-f", "csv")
    assert_one_line_error(bad, "cell 1 (devices.fast.acceptance=1.5): ")
    assert "users.csv" in bad.stderr and "column acceptance" in bad.stderr


def test_a_fading_cell_row_holds_the_static_plans_without_solving_the_adaptive_rule(write_profile):
    """Rows report the static plans and baselines only, so a sweep skips the adaptive rule (seconds a
    cell); the numbers are those `plan` reports for the same cell."""
    from builders import MINIMAL_PROFILE

    from multispin_cli.analysis.sweep import report_metrics
    from multispin_cli.execution.cells import cell_profile
    from multispin_cli.planners.report import plan_report

    fading = MINIMAL_PROFILE.replace("max_draft_length = 8\n", 'max_draft_length = 8\nfading = "rayleigh"\n', 1)
    path = write_profile(fading)
    job = sweep_job(path, ["system.bandwidth_mhz=3"])
    rows = run_sweep(job, InlineBackend()).rows
    for index, row in enumerate(rows):
        system = cell_profile(job, index).system
        assert system.fades and plan_report(system, adaptive=False).adaptive is None
        full = plan_report(system, samples=20)
        assert full.adaptive is not None
        assert {k: v for k, v in row.items() if "." in k and not k.startswith("system.")} == report_metrics(full)


def test_resume_refuses_chunks_computed_from_another_devices_file(write_profile, tmp_path):
    """The run's fingerprint covers the contents of the files the profile reads, not only its
    text: after the devices file changes, a resumed run must not reuse rows computed from the old
    one."""
    users = tmp_path / "users.csv"
    users.write_text(FILE_ROWS)
    path = write_profile(FILE_HEAD, "file.toml")
    out = tmp_path / "rows.json"
    sets = ("--set", "system.bandwidth_mhz=1..4", "-f", "json", "-o", out, "--workers", "1")
    before = sweep_job(path, ["system.bandwidth_mhz=1..4"])
    assert [Path(p).name for p, _ in before.inputs] == ["file.toml", "users.csv"]
    ChunkStore(out, fingerprint(run_description(before)), resume=False)  # an interrupted run's folder
    assert invoke("sweep", path, *sets, "--resume").exit_code == 0  # same inputs: resumes
    ChunkStore(out, fingerprint(run_description(before)), resume=False)
    users.write_text(FILE_ROWS.replace("0.8", "0.6"))
    assert FILE_ROWS.count("0.8")  # (the edit changes the file)
    assert_one_line_error(invoke("sweep", path, *sets, "--resume"), "holds chunks of a different run")
