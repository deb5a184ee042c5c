"""`multispin plan PROFILE.toml`: the optimal draft lengths, bandwidth split and goodput."""

from __future__ import annotations

from typing import Annotated

import typer

from multispin_cli.cli.app import app, reported_errors, warn
from multispin_cli.cli.options import Format, FormatOpt, Mode, ModeOpt, OutputOpt, PlotOpt, ProfileArg, RowsOpt, SeedOpt


@app.command(short_help="Optimal draft lengths, bandwidth split and goodput.")
def plan(
    profile: ProfileArg,
    mode: ModeOpt = Mode.both,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    rows: RowsOpt = 40,
    plot: PlotOpt = None,
    samples: Annotated[int | None, typer.Option("--samples", metavar="N", help="Fading draws for the adaptive plan "
                                                "(profiles with fading only; default: sized automatically).")] = None,
    seed: SeedOpt = 0,
) -> None:
    """Plan draft lengths and uplink bandwidth for every user of a deployment profile."""
    with reported_errors():
        from multispin_cli.documents.output import emit
        from multispin_cli.documents.profile import load_profile
        from multispin_cli.planners.report import plan_report, resource_block_warnings, verify_table_warnings
        from multispin_cli.render.document import plan_document, plan_json, to_toml

        if plot is not None:
            from multispin_cli.render.plotting import check_plot_target

            check_plot_target(plot)
        from multispin_cli.errors import InputError

        if samples is not None and samples < 1:
            raise InputError(f"must be a positive integer, got {samples}", key="--samples")
        if seed < 0:
            raise InputError(f"must be a non-negative integer, got {seed}", key="--seed")
        loaded = load_profile(profile)
        for line in loaded.warnings:
            warn(line)
        report = plan_report(loaded.system, mode=mode.value, samples=samples, seed=seed)
        for line in verify_table_warnings(loaded.system, report) + resource_block_warnings(loaded.system, report):
            warn(line)
        if fmt is Format.table:
            from multispin_cli.render.insights import explain
            from multispin_cli.render.tables import plan_view
            from multispin_cli.render.text import FILE_WIDTH, render_text, stdout_console

            console = stdout_console() if output is None else None
            width = console.width if console is not None else FILE_WIDTH
            view = plan_view(
                loaded, report, insights=explain(loaded.system, report.plans), max_rows=rows, width=width
            )
            if report.adaptive is not None:
                from rich.console import Group

                from multispin_cli.render.adaptive import adaptive_view

                view = Group(view, adaptive_view(loaded, report.adaptive, max_rows=rows))
            if console is not None:
                console.print(view)
            else:
                emit(render_text(view), output)
        else:
            emit(to_toml(plan_document(loaded, report)) if fmt is Format.toml else plan_json(loaded, report), output)
        if output is not None:
            typer.echo(f"multispin: wrote {fmt.value} plan to {output}", err=True)
        if plot is not None:
            from multispin_cli.render.plotting import plot_plan

            plot_plan(loaded, report, plot)
            typer.echo(f"multispin: wrote plot to {plot}", err=True)
