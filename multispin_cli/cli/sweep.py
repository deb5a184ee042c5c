"""`multispin sweep PROFILE`: plan many variants of a profile (a grid and/or random scenarios)."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from multispin_cli.cli.app import Mode, app, reported_errors, show, warn
from multispin_cli.cli.options import OutputOpt, ProfileArg


class SweepFormat(str, enum.Enum):
    """Sweep output formats: a table for people, csv/json/parquet for programs."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


class Environment(str, enum.Enum):
    """3GPP TR 38.901 path-loss environments for random scenarios."""

    umi_los = "umi-los"
    umi_nlos = "umi-nlos"
    uma_los = "uma-los"
    uma_nlos = "uma-nlos"


@app.command(short_help="Plan a grid of profile variants and random scenarios.")
def sweep(
    profile: ProfileArg,
    sets: Annotated[list[str], typer.Option("--set", metavar="KEY=VALUES",
                                            help="Swept key and values: V1,V2 or A..B, A..B:log, A..B:N.")] = [],
    scenarios: Annotated[int, typer.Option("--scenarios", metavar="N", min=0, help="Random scenarios per grid point.")] = 0,
    seed: Annotated[int, typer.Option("--seed", "-s", metavar="N", min=0, help="Seed of the scenarios.")] = 0,
    radius_m: Annotated[float, typer.Option("--radius-m", metavar="M", min=11, help="Cell radius users are dropped in.")] = 200.0,
    environment: Annotated[Environment, typer.Option("--environment", help="Path-loss model of the scenarios.")]
    = Environment.umi_nlos,
    acceptance_spread: Annotated[float, typer.Option("--acceptance-spread", metavar="F", min=0, max=0.9,
                                                     help="Acceptance drawn within +- this.")] = 0.1,
    mode: Annotated[Mode, typer.Option("--mode", "-m", help="Which plans to compute per cell.")] = Mode.both,
    fmt: Annotated[SweepFormat, typer.Option("--format", "-f", help="Output format.")] = SweepFormat.table,
    output: OutputOpt = None,
    rows: Annotated[int, typer.Option("--rows", metavar="N", min=0, help="Rows in the table view (0 shows all).")] = 40,
    plot: Annotated[Optional[Path], typer.Option("--plot", metavar="FILE", help="Plot goodput against the first key.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", metavar="N", min=1, help="Local processes (default: CPUs).")]
    = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", metavar="N", min=1, help="Cells per task.")] = 16,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="tcp://HOST:PORT",
                                                     help="Run on this Dask scheduler.")] = None,
    scheduler_file: Annotated[Optional[Path], typer.Option("--scheduler-file", metavar="FILE",
                                                           help="Dask scheduler file to connect to.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip chunks an interrupted run wrote.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Leave invalid cells out, warn.")] = False,
) -> None:
    """Plan every cell of a grid of profile values (and random scenarios) and tabulate goodput."""
    with reported_errors():
        from multispin_cli.analysis.scenarios import ScenarioSpec
        from multispin_cli.documents.catalog import resolve_profile
        from multispin_cli.documents.chunks import ChunkStore, fingerprint
        from multispin_cli.documents.output import emit, write_atomic
        from multispin_cli.errors import InputError
        from multispin_cli.execution.runner import run_description
        from multispin_cli.execution.sweep import plan_names, sweep_job
        from multispin_cli.render import sweep as render

        if scheduler and scheduler_file:
            raise InputError("give --scheduler or --scheduler-file, not both", key="--scheduler")
        if (scheduler or scheduler_file) and workers is not None:
            raise InputError("--workers sizes a local run; a Dask cluster has its own workers", key="--workers")
        if resume and output is None:
            raise InputError("--resume needs --output (chunks are kept in OUTPUT.parts/)", key="--resume")
        if fmt is SweepFormat.parquet and output is None:
            raise InputError("parquet is binary: give --output FILE", key="--format")
        if plot is not None:
            from multispin_cli.render.plotting import check_plot_target

            check_plot_target(plot)
            if not sets:
                raise InputError("--plot draws goodput against the first --set key: give one", key="--plot")
        if fmt is SweepFormat.parquet:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                from multispin_cli.errors import MissingExtraError

                raise MissingExtraError("--format parquet", "parquet", "pyarrow") from None
        spec = None
        if scenarios:
            spec = ScenarioSpec(scenarios, seed, radius_m=radius_m, environment=environment.value,
                                acceptance_spread=acceptance_spread)
        job = sweep_job(resolve_profile(profile), sets, mode=mode.value, scenarios=spec)
        store = None
        if output is not None:
            store = ChunkStore(output, fingerprint(run_description(job)), resume=resume)
        result = _run(job, store, workers, chunk_size, scheduler, scheduler_file, skip_invalid)
        for _, message in result.invalid:
            warn(f"skipped {message}")
        keys = [a.key for a in job.grid.axes]
        columns = render.sweep_columns(keys, spec is not None, plan_names(job.mode))
        if fmt is SweepFormat.csv:
            emit(render.to_csv(result.rows, columns), output)
        elif fmt is SweepFormat.json:
            header = {"profile": str(profile), "cells": len(job.grid), "rows": len(result.rows), "mode": job.mode,
                      "keys": keys, "skipped_cells": [i for i, _ in result.invalid]}
            if spec is not None:
                header["scenarios"] = {"count": spec.count, "seed": spec.seed, "radius_m": spec.radius_m,
                                       "environment": spec.environment,
                                       "acceptance_spread": spec.acceptance_spread}
            emit(render.to_json(result.rows, columns, header), output)
        elif fmt is SweepFormat.parquet:
            write_atomic(output, render.to_parquet(result.rows, columns))
        else:

            view = render.sweep_table(result.rows, columns, keys, rows)
            show(view, output)
        if store is not None:
            store.clear()
            typer.echo(f"multispin: wrote {len(result.rows)} rows ({fmt.value}) to {output}", err=True)
        if plot is not None:
            render.plot_sweep(result.rows, keys[0], plan_names(job.mode), plot)
            typer.echo(f"multispin: wrote plot to {plot}", err=True)


def _run(job, store, workers, chunk_size, scheduler, scheduler_file, skip_invalid):
    from contextlib import nullcontext

    from multispin_cli.execution.backends import dask_backend, local_backend
    from multispin_cli.execution.runner import run_sweep
    from multispin_cli.render.text import stderr_console

    if scheduler or scheduler_file:
        context = dask_backend(address=scheduler, scheduler_file=scheduler_file)
    else:
        context = nullcontext(local_backend(workers or os.cpu_count() or 1))
    console = stderr_console()
    with context as backend:
        if not console.is_terminal:
            return run_sweep(job, backend, chunk_size=chunk_size, store=store, skip_invalid=skip_invalid)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task(f"cells ({backend.name})", total=len(job.grid))
            return run_sweep(job, backend, chunk_size=chunk_size, store=store, skip_invalid=skip_invalid,
                             progress=lambda n: bar.advance(task, n))
