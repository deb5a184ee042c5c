"""`multispin schedule PROFILE.toml --batch-sizes 1,2,4,...`: the best draft length per batch size."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from multispin_cli.cli.app import app, reported_errors, show, warn
from multispin_cli.cli.options import BatchSizesOpt, Format, OutputOpt, PlotOpt, ProfileArg, ScheduleEngine, choices

DEFAULT_BATCH_SIZES = "1,2,4,8,16,32,64,128"


SCHEDULE_HELP = (
    "Plan the best common draft length for each batch size (users drawn from the profile).\n\n"
    "B users are drawn evenly from the profile (its whole mix repeated when B exceeds its users) and share the "
    "cell's uplink band; each batch size is planned like `multispin plan --mode homogeneous`."
)


@app.command(help=SCHEDULE_HELP, short_help="The best draft length per batch size, as engine schedules.")
def schedule(
    profile: ProfileArg,
    batch_sizes: BatchSizesOpt = DEFAULT_BATCH_SIZES,
    engine: Annotated[
        Optional[str],
        typer.Option("--engine", "-e", metavar=choices(ScheduleEngine), help="Print this engine's per-batch-size "
                     "config instead of the table.", show_default=False),
    ] = None,
    fmt: Annotated[
        Optional[Format], typer.Option("--format", "-f", help="table for people, toml or json for programs "
                                       "[default: table].", show_default=False)
    ] = None,
    output: OutputOpt = None,
    plot: PlotOpt = None,
) -> None:
    """Plan the best common draft length for each batch size (users drawn from the profile)."""
    with reported_errors():
        from multispin_cli.documents.output import emit
        from multispin_cli.documents.profile import load_profile
        from multispin_cli.errors import InputError
        from multispin_cli.planners.schedule import parse_batch_sizes, plan_schedule

        if engine is not None and fmt is not None:
            raise InputError("give --engine or --format, not both", key="--engine")
        sizes = parse_batch_sizes(batch_sizes)
        eng = None
        if engine is not None:
            from multispin_cli.render.export import get_engine

            eng = get_engine(engine)
        if plot is not None:
            from multispin_cli.render.plotting import check_plot_target

            check_plot_target(plot)
        loaded = load_profile(profile)
        for line in loaded.warnings:
            warn(line)
        result = plan_schedule(loaded.system, sizes)
        from multispin_cli.render.schedule import common_draft_model

        if eng is not None:
            from multispin_cli.render.export import export_schedule

            exported = export_schedule(sizes, result.scheduled_lengths.tolist(), eng,
                                       draft_model=common_draft_model(loaded), label=loaded.name)
            for note in exported.notes:
                warn(note)
            emit(exported.text, output)
            what = f"{eng.name} schedule"
        elif fmt in (None, Format.table):
            from multispin_cli.render.schedule import schedule_view

            view = schedule_view(loaded, result)
            show(view, output)
            what = "table schedule"
        else:
            from multispin_cli.render.document import to_json, to_toml
            from multispin_cli.render.schedule import schedule_document

            doc = schedule_document(loaded, result)
            emit(to_toml(doc) if fmt is Format.toml else to_json(doc), output)
            what = f"{fmt.value} schedule"
        if output is not None:
            typer.echo(f"multispin: wrote {what} to {output}", err=True)
        if plot is not None:
            from multispin_cli.render.plotting import plot_schedule

            plot_schedule(loaded, result, plot)
            typer.echo(f"multispin: wrote plot to {plot}", err=True)
