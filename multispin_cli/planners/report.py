"""Run the planners and baselines a report asks for: the library's one entry point for `plan`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from multispin_cli.planners.adaptive import DEFAULT_SAMPLES, AdaptivePlan, plan_adaptive
import numpy as np

from multispin_cli.planners.baselines import all_baselines
from multispin_cli.planners.heterogeneous import plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System

Mode = Literal["homogeneous", "heterogeneous", "both"]
MODES: tuple[str, ...] = ("homogeneous", "heterogeneous", "both")


@dataclass(frozen=True, eq=False)
class PlanReport:
    """The plans a mode asks for, and the baselines every plan is compared with.

    In ``heterogeneous`` mode the homogeneous optimum is reported as a baseline (docs/model.md 4); in
    ``both`` mode it is a plan of its own.
    """

    mode: str
    homogeneous: Plan | None
    heterogeneous: Plan | None
    baselines: dict[str, Plan]
    adaptive: AdaptivePlan | None = None  # only for a fading cell

    @property
    def plans(self) -> list[Plan]:
        """The planned (not baseline) plans, homogeneous first."""
        return [p for p in (self.homogeneous, self.heterogeneous) if p is not None]


def plan_report(system: System, *, mode: Mode = "both", samples: int = DEFAULT_SAMPLES, seed: int = 0) -> PlanReport:
    """Plan the cell in the given mode and evaluate the baselines beside it.

    For a cell whose channel fades, also solve the adaptive rule (``samples`` fading draws from
    ``seed``), starting from the homogeneous and heterogeneous plans.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    baselines = all_baselines(system)
    homogeneous = plan_homogeneous(system)
    heterogeneous = None
    if mode in ("heterogeneous", "both"):
        heterogeneous = plan_heterogeneous(system, start=homogeneous)
    adaptive = None
    if system.fades:
        starts = [p for p in (homogeneous, heterogeneous) if p is not None]
        adaptive = plan_adaptive(system, starts, system.fading, samples=samples, seed=seed)
    if mode == "heterogeneous":
        baselines = {**baselines, "homogeneous": homogeneous}
        homogeneous = None
    return PlanReport(mode, homogeneous, heterogeneous, baselines, adaptive)


def verify_table_warnings(system: System, report: PlanReport) -> list[str]:
    """One line per plan whose batch lies outside a measured ``verify_table`` (time extrapolated)."""
    verify = system.verify
    lines = []
    for plan in report.plans:
        n = plan.evaluation.verify_tokens
        if not verify.covers(n):
            lines.append(
                f"the {plan.name} plan verifies {n:g} tokens per round, outside the measured verify_table "
                f"({verify.tokens[0]:g}-{verify.tokens[-1]:g}); its time is extrapolated"
            )
    return lines


def resource_block_warnings(system: System, report: PlanReport) -> list[str]:
    """One line per plan that leaves users at L = 0 because the blocks cannot give every user its
    minimum (the planners then choose who drafts; see the README)."""
    blocks = system.resource_blocks
    if blocks is None or int(system.min_resource_blocks.sum()) <= blocks:
        return []
    lines = []
    for plan in report.plans:
        idle = [system.names[k] for k in np.flatnonzero(plan.evaluation.draft_lengths == 0)]
        shown = ", ".join(idle[:4]) + (", ..." if len(idle) > 4 else "")
        lines.append(
            f"the {blocks} resource blocks cannot give all {system.users} users their min_resource_blocks "
            f"({int(system.min_resource_blocks.sum())} needed): the {plan.name} plan leaves {len(idle)} at "
            f"L = 0 ({shown})"
        )
    return lines
