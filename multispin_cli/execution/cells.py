"""What one chunk of a sweep computes: each cell's profile (base plus overrides plus draws),
validated like a file, planned, and reduced to one row. Runs the same in any process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from multispin_cli.analysis.scenarios import Drop, ScenarioSpec, draw_users
from multispin_cli.analysis.sweep import SweepGrid, report_metrics
from multispin_cli.documents.overrides import (
    DropTemplate,
    apply_drop,
    apply_overrides,
    base_acceptance,
    file_row_edits,
)
from multispin_cli.documents.profile import SYSTEM_KEYS, Profile, profile_from_data
from multispin_cli.errors import InputError
from multispin_cli.model.system import System
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
    inputs: tuple[tuple[str, str], ...] = ()  # (path, sha256) of every file the base profile reads


@dataclass(frozen=True)
class ChunkResult:
    """Rows of the valid cells of one chunk, and (cell number, message) for the invalid ones."""

    start: int
    rows: list[dict]
    invalid: list[tuple[int, str]]


def _point_data(job: SweepJob, values: tuple) -> tuple[dict, dict]:
    """The profile of a grid point: the base with the point's swept values set, and the edits of
    its devices-file rows (``profile_from_data``'s ``file_rows``)."""
    pairs = list(zip((a.key for a in job.grid.axes), values))
    return apply_overrides(job.base, pairs), file_row_edits(job.base, pairs)


def _drop(job: SweepJob, data: dict, scenario: int) -> Drop:
    carrier = data.get("system", {}).get("carrier_ghz", _CARRIER_DEFAULT_GHZ)
    return draw_users(job.scenarios, scenario, base_acceptance(data), float(carrier))


def cell_profile(job: SweepJob, index: int) -> Profile:
    """The validated profile of cell ``index`` (the long way: overrides, draws, the full loader)."""
    cell = job.grid.cell(index)
    data, rows = _point_data(job, cell.values)
    if job.scenarios is not None and cell.scenario is not None:
        data = apply_drop(data, _drop(job, data, cell.scenario), job.scenarios.tx_power_dbm)
    return profile_from_data(data, Path(job.path), file_rows=rows)


class CellSystems:
    """The planning input of a chunk's cells, one after another.

    A cell without scenarios is loaded like a file. The scenarios of one grid point share the
    point's profile: the first one is loaded like a file, and its System becomes a
    :class:`DropTemplate` that the next ones edit in place of a reload (the same arrays, bit for bit;
    a drawn value the loader would refuse goes the long way, for the loader's message). So a cell's
    System does not depend on which cells share its chunk.
    """

    def __init__(self, job: SweepJob):
        self.job = job
        self._values: tuple | None = None  # the grid point the cached data belongs to
        self._data: dict = {}
        self._rows: dict = {}
        self._template: DropTemplate | None = None

    def system(self, index: int) -> System:
        job = self.job
        cell = job.grid.cell(index)
        if job.scenarios is None or cell.scenario is None:
            return cell_profile(job, index).system
        if cell.values != self._values:
            self._values, self._template = cell.values, None
            self._data, self._rows = _point_data(job, cell.values)
        drop = _drop(job, self._data, cell.scenario)
        if self._template is not None:
            system = self._template.system_for(drop)
            if system is not None:
                return system
        system = profile_from_data(apply_drop(self._data, drop, job.scenarios.tx_power_dbm), Path(job.path),
                                   file_rows=self._rows).system
        if self._template is None:
            self._template = DropTemplate.of(self._data, system, job.scenarios.tx_power_dbm)
        return system


def cell_row(job: SweepJob, index: int, systems: CellSystems | None = None) -> dict:
    """One output row: the cell's number, swept values, scenario, user count and plan metrics."""
    cell = job.grid.cell(index)
    system = (systems or CellSystems(job)).system(index)
    row: dict = {"cell": index}
    row.update({a.key: v for a, v in zip(job.grid.axes, cell.values)})
    if cell.scenario is not None:
        row["scenario"] = cell.scenario
    row["users"] = system.users
    row.update(report_metrics(plan_report(system, mode=job.mode, adaptive=False)))  # rows hold the static plans
    return row


def run_chunk(job: SweepJob, start: int, stop: int) -> ChunkResult:
    """Cells ``start`` to ``stop - 1``, one after another (the planners vectorise over users)."""
    rows, invalid = [], []
    systems = CellSystems(job)
    for index in range(start, stop):
        try:
            rows.append(cell_row(job, index, systems))
        except InputError as exc:
            invalid.append((index, f"{job.grid.cell(index).label(job.grid.axes)}: {exc}"))
    return ChunkResult(start, rows, invalid)
