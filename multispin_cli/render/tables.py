"""Rich tables for people: the plan summary and the per-user plan, read at a glance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from multispin_cli.documents.profile import Profile
from multispin_cli.model.plan import Plan
from multispin_cli.model.units import MHZ, MS
from multispin_cli.planners.needs import plan_needs
from multispin_cli.planners.report import PlanReport

DEFAULT_ROWS = 40
BAR_WIDTH = 6


def plural(count: int, noun: str) -> str:
    """``1 user``, ``2 users``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def target_label(profile: Profile) -> str:
    """``target NAME`` for the headline, or ``''`` when the profile gives the target no label."""
    return f"target {profile.target}" if profile.target and profile.target != "target" else ""


def band(hz: float) -> str:
    """A bandwidth for people: MHz from 1 MHz, kHz from 1 kHz, Hz below (3 significant digits).

    Documents keep MHz (``bandwidth_mhz``); tables choose the unit that keeps the digits readable
    (a share of 0.000508 MHz is 508 Hz)."""
    if not np.isfinite(hz):
        return "inf"
    if hz <= 0:
        return "0"
    for scale, unit in ((1e6, "MHz"), (1e3, "kHz"), (1.0, "Hz")):
        if hz >= scale or unit == "Hz":
            return f"{_sig3(hz / scale)} {unit}"
    raise AssertionError(hz)


def _sig3(value: float) -> str:
    """3 significant digits without an exponent for 0.001 <= value < 1000."""
    text = f"{value:.3g}"
    if "e" in text:  # 3 significant digits of a value >= 1000 or < 0.001 (not reached from band())
        text = f"{value:.4g}"
    return text


def fit_numbers(table: Table, numeric: set[int]) -> Table:
    """Numeric columns never shrink: each is at least as wide as its widest cell, so a narrow
    terminal wraps the text columns and never cuts a number short with an ellipsis."""
    for index in numeric:
        column = table.columns[index]
        cells = [str(c) for c in column._cells]
        widest = max((len(c) for c in cells), default=0)
        head = max((len(line) for line in str(column.header).splitlines()), default=0)
        column.min_width = max(widest, head)
        column.no_wrap = True
        column.overflow = "fold"
    return table


def pct(value: float) -> Text:
    if not np.isfinite(value):
        return Text("n/a", style="dim")
    style = "green" if value > 0.0005 else ("red" if value < -0.0005 else "dim")
    return Text(f"{100 * value:+.1f}%" if abs(value) < 1e4 else f"{100 * value:+.2g}%", style=style)


def short(value: float, fmt: str) -> str:
    """``value`` in ``fmt`` while it stays short; past a billion in 3 significant digits (2.83e+20),
    so an absurd but finite number (a hopeless baseline's round) is not cut off by the column."""
    return format(value, fmt) if abs(value) < 1e9 else f"{value:.3g}"


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
    parts = [plural(system.users, "user"), f"{system.bandwidth_hz / MHZ:g} MHz uplink", target_label(profile),
             f"{system.batching} batching", f"L_max {system.max_draft_length}"]
    return Text.assemble((profile.name, "bold"), ": " + ", ".join(p for p in parts if p))


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
        round_ms = short(ev.round_s / MS, ".2f") if ev.feasible else "infeasible"
        name = Text(row.name, style="bold" if row in planned else "")
        table.add_row(name, _lengths(row), f"{ev.goodput_tokens_per_s:,.1f}", round_ms, *gains)
    fit_numbers(table, set(range(1, len(table.columns))))
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


def _min_width(table: Table) -> int:
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=10_000)
    return Measurement.get(console, console.options, table).minimum


def users_table(profile: Profile, report: PlanReport, *, max_rows: int = DEFAULT_ROWS, width: int = 80,
                bars: bool = True) -> Table:
    """Per user (identical neighbours folded into one row): inputs, then each plan's choice.

    With two plans side by side in fewer than 100 columns the channel column gives way to the
    bandwidth bars, and the bars give way too when the numbers would not fit otherwise.
    """
    if bars:
        table = users_table(profile, report, max_rows=max_rows, width=width, bars=False)
        with_bars = _users_table(profile, report, max_rows=max_rows, width=width, bars=True)
        return with_bars if _min_width(with_bars) <= width else table
    return _users_table(profile, report, max_rows=max_rows, width=width, bars=False)


def _users_table(profile: Profile, report: PlanReport, *, max_rows: int, width: int, bars: bool) -> Table:
    system = profile.system
    plans = report.plans
    last = plans[-1]
    channel = len(plans) == 1 or width >= 100
    table = new_table("Users")
    tag = (lambda plan: f"{plan.name[:3]}\n") if len(plans) > 1 else (lambda plan: "\n")
    labels = [_user_label(system.names, r.first, r.count) for r in _groups(profile, plans)]
    table.add_column("\nuser", overflow="fold", min_width=min(20, max(map(len, labels), default=4)))
    table.add_column("\naccept", justify="right", overflow="fold")
    table.add_column("draft\nms/tok", justify="right")
    if channel:
        table.add_column("\nchannel", no_wrap=True)
    for plan in plans:
        table.add_column(f"{tag(plan)}L", justify="right")
        table.add_column(f"{tag(plan)}band", justify="right")
    if bars:
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
            cells += [str(int(ev.draft_lengths[k])), band(ev.bandwidth_hz[k])]
        ev = last.evaluation
        if bars:
            cells.append(_bar(ev.bandwidth_hz[k] / widest))
        if len(plans) == 1:
            cells.append(f"{ev.tokens_per_round[k]:.3f}")
        cells.append(f"{ev.user_tokens_per_s[k]:.2f}")
        table.add_row(*cells)
    text_columns = {0, 1, 3} if channel else {0, 1}
    share_column = {i for i, c in enumerate(table.columns) if str(c.header).endswith("share")}
    fit_numbers(table, set(range(len(table.columns))) - text_columns - share_column)
    notes = []
    notes.append("band: each user's part of the uplink" + (f"; share: the {last.name} band as bars" if bars else ""))
    if len(shown) < len(groups):
        hidden = sum(r.count for r in groups[len(shown):])
        notes.append(f"{len(groups) - len(shown)} more rows ({hidden} users) not shown: --rows 0 shows all")
    if notes:
        table.caption = "\n".join(notes)
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
