"""A sweep's cells (a grid of profile keys, times random scenarios) and the numbers kept per cell.

Cells are numbered 0..N-1 in a fixed order: the grid in row-major order of the ``--set`` keys
(the last key varies fastest), and within each grid point the scenarios 0..S-1. A cell's number
alone decides what it computes, so any split into chunks gives the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from multispin_cli.model.units import MS
from multispin_cli.planners.report import PlanReport

# Plans and baselines in the order their columns appear (absent ones are left out).
PLAN_ORDER = ("homogeneous", "heterogeneous", "autoregressive", "fixed_equal", "mean_user")
METRICS = ("goodput_tokens_per_s", "round_ms", "mean_draft_length")


@dataclass(frozen=True)
class Axis:
    """One swept profile key (dotted address) and its values, in the order given."""

    key: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Cell:
    """One cell: its number, the swept values (one per axis) and its scenario (None: no draws)."""

    index: int
    values: tuple[float, ...]
    scenario: int | None

    def label(self, axes: tuple[Axis, ...]) -> str:
        """``cell 4 (system.bandwidth_mhz=20, scenario 1)``: for messages."""
        parts = [f"{a.key}={_text(v)}" for a, v in zip(axes, self.values)]
        if self.scenario is not None:
            parts.append(f"scenario {self.scenario}")
        return f"cell {self.index}" + (f" ({', '.join(parts)})" if parts else "")


@dataclass(frozen=True)
class SweepGrid:
    """The cartesian product of the axes, each point repeated for ``scenarios`` draws (0: none)."""

    axes: tuple[Axis, ...]
    scenarios: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.axes)

    def __len__(self) -> int:
        return math.prod(self.shape) * max(self.scenarios, 1)

    def cell(self, index: int) -> Cell:
        if not 0 <= index < len(self):
            raise IndexError(index)
        per = max(self.scenarios, 1)
        point, scenario = divmod(index, per)
        idx = np.unravel_index(point, self.shape) if self.axes else ()
        values = tuple(a.values[int(i)] for a, i in zip(self.axes, idx))
        return Cell(index, values, scenario if self.scenarios else None)

    def chunks(self, size: int) -> list[range]:
        """Consecutive cell ranges of at most ``size`` cells."""
        if size < 1:
            raise ValueError("chunk size must be at least 1")
        return [range(start, min(start + size, len(self))) for start in range(0, len(self), size)]


def _text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def report_metrics(report: PlanReport) -> dict[str, float | None]:
    """Goodput, round time (ms; None when the plan cannot run) and mean draft length per plan."""
    plans = {p.name: p for p in report.plans} | dict(report.baselines)
    out: dict[str, float | None] = {}
    for name in PLAN_ORDER:
        plan = plans.get(name)
        if plan is None:
            continue
        ev = plan.evaluation
        out[f"{name}.goodput_tokens_per_s"] = float(ev.goodput_tokens_per_s)
        out[f"{name}.round_ms"] = float(ev.round_s / MS) if ev.feasible else None
        out[f"{name}.mean_draft_length"] = float(np.mean(ev.draft_lengths))
    return out
