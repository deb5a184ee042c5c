"""What one chunk of a sweep computes: each cell's profile (base plus overrides plus draws),
validated like a file, planned, and reduced to one row. Runs the same in any process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from multispin_cli.analysis.scenarios import ScenarioSpec, draw_users
from multispin_cli.analysis.sweep import SweepGrid, report_metrics
from multispin_cli.documents.overrides import apply_drop, apply_overrides, base_acceptance
from multispin_cli.documents.profile import SYSTEM_KEYS, Profile, profile_from_data
from multispin_cli.errors import InputError
from multispin_cli.planners.report import plan_report

_CARRIER_DEFAULT_GHZ = next(k.default for k in SYSTEM_KEYS if k.name == "carrier_ghz")


@dataclass(frozen=True, eq=False)
class SweepJob:
    """Everything a worker needs: the parsed base profile, its path, the grid and the mode."""

    base: dict
    path: str
    grid: SweepGrid
    mode: str = "both"
    scenarios: ScenarioSpec | None = field(default=None)


@dataclass(frozen=True)
class ChunkResult:
    """Rows of the valid cells of one chunk, and (cell number, message) for the invalid ones."""

    start: int
    rows: list[dict]
    invalid: list[tuple[int, str]]


def cell_profile(job: SweepJob, index: int) -> Profile:
    """The validated profile of cell ``index``."""
    cell = job.grid.cell(index)
    data = apply_overrides(job.base, zip((a.key for a in job.grid.axes), cell.values))
    if job.scenarios is not None and cell.scenario is not None:
        carrier = data.get("system", {}).get("carrier_ghz", _CARRIER_DEFAULT_GHZ)
        drop = draw_users(job.scenarios, cell.scenario, base_acceptance(data), float(carrier))
        data = apply_drop(data, drop, job.scenarios.tx_power_dbm)
    return profile_from_data(data, Path(job.path))


def cell_row(job: SweepJob, index: int) -> dict:
    """One output row: the cell's number, swept values, scenario, user count and plan metrics."""
    cell = job.grid.cell(index)
    profile = cell_profile(job, index)
    row: dict = {"cell": index}
    row.update({a.key: v for a, v in zip(job.grid.axes, cell.values)})
    if cell.scenario is not None:
        row["scenario"] = cell.scenario
    row["users"] = profile.system.users
    row.update(report_metrics(plan_report(profile.system, mode=job.mode)))
    return row


def run_chunk(job: SweepJob, start: int, stop: int) -> ChunkResult:
    """Cells ``start`` to ``stop - 1``, one after another (the planners vectorise over users)."""
    rows, invalid = [], []
    for index in range(start, stop):
        try:
            rows.append(cell_row(job, index))
        except InputError as exc:
            invalid.append((index, f"{job.grid.cell(index).label(job.grid.axes)}: {exc}"))
    return ChunkResult(start, rows, invalid)
