"""Rich tables for people: the plan summary and the per-user plan, read at a glance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from multispin_cli.model.plan import Plan
from multispin_cli.planners.needs import plan_needs
from multispin_cli.planners.report import PlanReport
from multispin_cli.documents.profile import Profile
from multispin_cli.model.units import MHZ, MS

DEFAULT_ROWS = 40
BAR_WIDTH = 6


def pct(value: float) -> Text:
    if not np.isfinite(value):
        return Text("n/a", style="dim")
    style = "green" if value > 0.0005 else ("red" if value < -0.0005 else "dim")
    return Text(f"{100 * value:+.1f}%", style=style)


def _lengths(plan: Plan) -> str:
    if plan.draft_length is not None:
        return str(plan.draft_length)
    lengths = plan.evaluation.draft_lengths
    lo, hi = int(lengths.min()), int(lengths.max())
    return str(lo) if lo == hi else f"{lo}..{hi}"


def new_table(title: str | None = None) -> Table:
    return Table(
        title=title, title_justify="left", title_style="bold", header_style="bold", box=box.SIMPLE_HEAD,
        pad_edge=False, padding=(0, 1), collapse_padding=True,
    )


def headline(profile: Profile) -> Text:
    """One line naming the cell."""
    system = profile.system
    return Text.assemble(
        (profile.name, "bold"),
        f": {system.users} users, {system.bandwidth_hz / MHZ:g} MHz uplink, target {profile.target}, "
        f"{system.batching} batching, L_max {system.max_draft_length}",
    )


def summary_table(profile: Profile, report: PlanReport) -> Table:
    """Every plan and baseline, and each plan's goodput gain over every row below it."""
    table = new_table("Plans")
    table.add_column("\nplan", no_wrap=True)
    table.add_column("draft\nlength", justify="right")
    table.add_column("goodput\ntok/s", justify="right")
    table.add_column("round\nms", justify="right")
    planned = report.plans[::-1]  # heterogeneous first
    for plan in planned:
        table.add_column(f"{plan.name[:3]}\ngain", justify="right")
    for row in [*planned, *report.baselines.values()]:
        ev = row.evaluation
        gains = [
            pct(plan.gain_over(row))
            if row is not plan and row not in planned[: planned.index(plan)] and row.goodput_tokens_per_s > 0
            else Text("")
            for plan in planned
        ]
        round_ms = f"{ev.round_s / MS:.2f}" if ev.feasible else "infeasible"
        name = Text(row.name, style="bold" if row in planned else "")
        table.add_row(name, _lengths(row), f"{ev.goodput_tokens_per_s:,.1f}", round_ms, *gains)
    het = report.heterogeneous
    if het is not None and het.upper_bound_tokens_per_s is not None:
        gap = het.upper_bound_tokens_per_s / het.goodput_tokens_per_s - 1.0
        table.caption = (
            f"No plan exceeds {het.upper_bound_tokens_per_s:,.1f} tok/s (proven bound; heterogeneous "
            f"within {100 * gap:.2f}%)."
        )
        table.caption_justify = "left"
    return table


@dataclass(frozen=True)
class _Row:
    first: int
    count: int


def _groups(profile: Profile, plans: list[Plan]) -> list[_Row]:
    """Runs of consecutive users from one device entry that got the same plan: one row each."""
    key_of = []
    for k in range(profile.system.users):
        key = (profile.users[k],)
        for plan in plans:
            ev = plan.evaluation
            key += (int(ev.draft_lengths[k]), round(float(ev.bandwidth_hz[k]), 3))
        key_of.append(key)
    rows: list[_Row] = []
    for k, key in enumerate(key_of):
        if rows and key_of[rows[-1].first] == key:
            rows[-1] = _Row(rows[-1].first, rows[-1].count + 1)
        else:
            rows.append(_Row(k, 1))
    return rows


def _bar(share: float) -> str:
    cells = share * BAR_WIDTH
    full = int(cells)
    partial = " ▏▎▍▌▋▊▉"[int((cells - full) * 8)] if full < BAR_WIDTH else ""
    return ("█" * full + partial).ljust(BAR_WIDTH)


def _user_label(names: tuple[str, ...], first: int, count: int) -> str:
    if count == 1:
        return names[first]
    a, b = names[first], names[first + count - 1]
    stem_a, _, tail_a = a.rpartition("-")
    stem_b, _, tail_b = b.rpartition("-")
    if stem_a and stem_a == stem_b and tail_a.isdigit() and tail_b.isdigit():
        return f"{stem_a}-{tail_a}..{tail_b}"
    return f"{a}..{b} ({count})"


def users_table(profile: Profile, report: PlanReport, *, max_rows: int = DEFAULT_ROWS, width: int = 80) -> Table:
    """Per user (identical neighbours folded into one row): inputs, then each plan's choice.

    With two plans side by side in fewer than 100 columns the channel column gives way to the
    bandwidth bars.
    """
    system = profile.system
    plans = report.plans
    last = plans[-1]
    channel = len(plans) == 1 or width >= 100
    table = new_table("Users")
    tag = (lambda plan: f"{plan.name[:3]}\n") if len(plans) > 1 else (lambda plan: "\n")
    table.add_column("\nuser", no_wrap=True)
    table.add_column("\naccept", justify="right")
    table.add_column("draft\nms/tok", justify="right")
    if channel:
        table.add_column("\nchannel", no_wrap=True)
    for plan in plans:
        table.add_column(f"{tag(plan)}L", justify="right")
        table.add_column(f"{tag(plan)}MHz", justify="right")
    table.add_column(f"{tag(last)}share", no_wrap=True)
    if len(plans) == 1:
        table.add_column("tokens\n/round", justify="right")
    table.add_column(f"{tag(last)}tok/s", justify="right")
    groups = _groups(profile, plans)
    shown = groups if max_rows <= 0 else groups[:max_rows]
    widest = float(last.evaluation.bandwidth_hz.max()) or 1.0
    for row in shown:
        k = row.first
        info = profile.users[k]
        cells = [_user_label(system.names, k, row.count), info.acceptance, f"{system.draft_s_per_token[k] / MS:.3g}"]
        if channel:
            cells.append(info.channel)
        for plan in plans:
            ev = plan.evaluation
            cells += [str(int(ev.draft_lengths[k])), f"{ev.bandwidth_hz[k] / MHZ:.3g}"]
        ev = last.evaluation
        cells.append(_bar(ev.bandwidth_hz[k] / widest))
        if len(plans) == 1:
            cells.append(f"{ev.tokens_per_round[k]:.3f}")
        cells.append(f"{ev.user_tokens_per_s[k]:.2f}")
        table.add_row(*cells)
    notes = []
    notes.append("share: each user's bandwidth, bars scaled to the largest")
    if len(shown) < len(groups):
        hidden = sum(r.count for r in groups[len(shown):])
        notes.append(f"{len(groups) - len(shown)} more rows ({hidden} users) not shown: --rows 0 shows all")
    if notes:
        table.caption = "; ".join(notes)
        table.caption_justify = "left"
    return table


def _band(hz: float) -> str:
    """A bandwidth in the unit that reads best: kHz below 1 MHz."""
    return f"{hz / 1e3:.3g} kHz" if hz < MHZ else f"{hz / MHZ:.3g} MHz"


def needs_line(profile: Profile, report: PlanReport) -> Text:
    """One line: how much of the band the best plan needs (beyond it the devices set the pace)."""
    system = profile.system
    plan = report.plans[-1]
    needs = plan_needs(system, plan)
    need = _band(needs.needed_hz).removesuffix(" MHz")
    text = f"The {plan.name} plan needs {need} of {system.bandwidth_hz / MHZ:g} MHz"
    if needs.user_blocks is not None:
        text += f" ({int(needs.user_blocks.sum())} of {system.resource_blocks} RBs)"
    return Text(text + f", {_band(needs.spare_hz)} spare.")


def plan_view(
    profile: Profile, report: PlanReport, *, insights: list[str] = (), max_rows: int = DEFAULT_ROWS, width: int = 80
) -> Group:
    """Everything `multispin plan` shows a person, laid out for a console ``width`` columns wide."""
    parts = [
        headline(profile),
        summary_table(profile, report),
        needs_line(profile, report),
        users_table(profile, report, max_rows=max_rows, width=width),
    ]
    if insights:
        parts += [Text("Why", style="bold")]
        parts += [Text(f"- {line}") for line in insights]
    return Group(*parts)
