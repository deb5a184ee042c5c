"""Run the planners and baselines a report asks for: the library's one entry point for `plan`."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System
from multispin_cli.planners.baselines import all_baselines
from multispin_cli.planners.homogeneous import plan_homogeneous

if TYPE_CHECKING:  # imported where used: a homogeneous plan of a static cell needs neither
    from multispin_cli.planners.adaptive import AdaptivePlan

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


def _at_least(plan: Plan, others: list[Plan]) -> Plan:
    """``plan``, or the best of ``others`` in its name where one beats it.

    Every baseline is a plan the planners consider (one common length; the heterogeneous search
    starts from the homogeneous optimum), so by construction no baseline beats a plan. This is the
    last line of defence against a numerical failure inside a planner: a plan below a baseline is
    never reported.
    """
    best = max(others, key=lambda p: p.goodput_tokens_per_s, default=None)
    value = plan.goodput_tokens_per_s
    if best is None or not best.goodput_tokens_per_s > (value if math.isfinite(value) else -math.inf):
        return plan
    return replace(best, name=plan.name, goodput_by_length=plan.goodput_by_length,
                   upper_bound_tokens_per_s=plan.upper_bound_tokens_per_s)


def _checked_bound(plan: Plan, others: list[Plan]) -> Plan:
    """The plan with its upper bound raised to every known plan's goodput, or dropped if not finite.

    A bound that is not a finite number proves nothing and is not printed.
    """
    bound = plan.upper_bound_tokens_per_s
    if bound is None:
        return plan
    if not math.isfinite(bound):
        return replace(plan, upper_bound_tokens_per_s=None)
    known = max([plan.goodput_tokens_per_s] + [p.goodput_tokens_per_s for p in others])
    return replace(plan, upper_bound_tokens_per_s=max(bound, known))


def plan_report(system: System, *, mode: Mode = "both", samples: int | None = None, seed: int = 0,
                adaptive: bool = True) -> PlanReport:
    """Plan the cell in the given mode and evaluate the baselines beside it.

    For a cell whose channel fades, also solve the adaptive rule (``samples`` fading draws from
    ``seed``; None sizes them automatically), starting from the homogeneous and heterogeneous plans,
    unless ``adaptive`` is False (a caller that reports only the static plans, such as a sweep's
    rows, skips its cost).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    baselines = all_baselines(system)
    homogeneous = _at_least(plan_homogeneous(system), list(baselines.values()))
    heterogeneous = None
    if mode in ("heterogeneous", "both"):
        from multispin_cli.planners.heterogeneous import plan_heterogeneous

        others = [homogeneous, *baselines.values()]
        heterogeneous = _checked_bound(_at_least(plan_heterogeneous(system, start=homogeneous), others), others)
    rule = None
    if adaptive and system.fades:
        from multispin_cli.planners.adaptive import plan_adaptive

        starts = [p for p in (homogeneous, heterogeneous) if p is not None]
        rule = plan_adaptive(system, starts, system.fading, samples=samples, seed=seed)
    if mode == "heterogeneous":
        baselines = {**baselines, "homogeneous": homogeneous}
        homogeneous = None
    return PlanReport(mode, homogeneous, heterogeneous, baselines, rule)


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
