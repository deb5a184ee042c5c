"""`multispin profile-hardware`: measure (or estimate) draft and verification timings for a profile."""

from __future__ import annotations

import enum
import time
from typing import Annotated, Optional

import typer

from multispin_cli.cli.app import app, reported_errors, show, warn
from multispin_cli.cli.options import Format, OutputOpt


class Backend(str, enum.Enum):
    """Measuring backends: numpy (no extra dependency) or torch (extra `torch`)."""

    numpy = "numpy"
    torch = "torch"


class DType(str, enum.Enum):
    """Weight and compute dtypes."""

    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


def _batch_sizes(text: str | None) -> tuple[int, ...] | None:
    """--batch-sizes as every command reads it: a list like 1,2,4,8 and ranges like 1-16."""
    if text is None:
        return None
    from multispin_cli.planners.schedule import parse_batch_sizes

    return parse_batch_sizes(text)


@app.command("profile-hardware", short_help="Measure draft and target timings here, or estimate them.")
def profile_hardware(
    draft: Annotated[str, typer.Option("--draft", "-d", metavar="MODEL", help="Draft model: a catalog name (see --list), or the path "
                                       "of a Hugging Face config.json or model folder.")] = "llama-68m",
    target: Annotated[str, typer.Option("--target", "-t", metavar="MODEL", help="Target model: a catalog name, or the path of a "
                                        "Hugging Face config.json or model folder.")] = "llama-2-7b",
    backend: Annotated[Backend, typer.Option("--backend", help="numpy: synthetic weights at the exact shapes, no extra "
                                             "dependency. torch (extra `torch`): CUDA when present, real weights "
                                             "when the model is a local folder.")] = Backend.numpy,
    estimate: Annotated[Optional[str], typer.Option(
        "--estimate", metavar="HARDWARE", help="Predict from the roofline of this catalog hardware instead of "
        "measuring here: the target, and the draft unless --draft-estimate says otherwise.")] = None,
    draft_estimate: Annotated[Optional[str], typer.Option(
        "--draft-estimate", metavar="HARDWARE", help="Put the draft on this catalog hardware (the roofline); "
        "'local' measures it on this machine.")] = None,
    dtype: Annotated[Optional[DType], typer.Option("--dtype", help="Timing dtype. numpy: float32 only; torch: default bfloat16 "
                                                   "on CUDA, float32 on CPU; estimates: the device's 16-bit "
                                                   "dtype.")] = None,
    context: Annotated[int, typer.Option("--context", metavar="N", help="Tokens already in the KV cache of every sequence.", min=0)] = 512,
    max_draft_length: Annotated[int, typer.Option("--max-draft-length", "-L", metavar="N", help="Largest draft length L: the "
                                                  "grid verifies L + 1 tokens per sequence for L in 0, 1, 2, 4, .., "
                                                  "this.", min=1, max=128)] = 8,
    batch_sizes: Annotated[Optional[str], typer.Option("--batch-sizes", "-b", metavar="LIST", help="Sequences "
                                                       "per verification pass: a list like 1,2,4,8 and ranges "
                                                       "like 1-16 (default 1,2,4,8; 1,4 with --quick).",
                                                       show_default=False)] = None,
    repeats: Annotated[Optional[int], typer.Option("--repeats", metavar="N", help="Timed runs per point after "
                                                   "one warm-up; the median is kept (default 3; 2 with --quick).",
                                                   min=1, max=1000,
                                                   show_default=False)] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A smaller grid and fewer repeats (4-7 s for the "
                                        "default pair on 2 cores).")] = False,
    engine_loop: Annotated[Optional[bool], typer.Option("--engine-loop/--no-engine-loop", help="Measure the "
                                                        "engine's own time per round (round_overhead_ms) with "
                                                        "transformers' decoding loop (default: on, off with "
                                                        "--quick).", show_default=False)] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table for people; toml (the fragment a profile "
                                        "includes) or json for programs.")] = Format.table,
    output: OutputOpt = None,
    list_catalog: Annotated[bool, typer.Option("--list", help="List the model and hardware catalogs and "
                                               "exit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Write the timings even when the measurement fails its "
                                        "checks (noted in the fragment).")] = False,
) -> None:
    """Measure draft and verification timings on this machine (or estimate them for catalog hardware) and
    write the timings fragment that a deployment profile includes with timings = "file.toml"."""
    started = time.perf_counter()
    with reported_errors():
        from multispin_cli.documents.output import emit
        from multispin_cli.hardware.models import catalog, resolve_model
        from multispin_cli.hardware.roofline import hardware_catalog, resolve_hardware
        from multispin_cli.render.text import stderr_console

        if list_catalog:
            from multispin_cli.hardware.view import catalog_view

            view = catalog_view(catalog(), hardware_catalog())
            show(view, output)
            return

        from dataclasses import replace

        from multispin_cli.errors import MeasurementError
        from multispin_cli.hardware.profiling import Settings, run_profile, with_wall_time
        from multispin_cli.hardware.quality import profile_problems

        settings = Settings.make(quick=quick, batch_sizes=_batch_sizes(batch_sizes), repeats=repeats,
                                 engine_loop=engine_loop,
                                 context=context, max_draft_length=max_draft_length, backend=backend.value,
                                 dtype=dtype.value if dtype else None)
        settings.check()
        draft_spec = resolve_model(draft, option="--draft")
        target_spec = resolve_model(target, option="--target")
        target_hw = resolve_hardware(estimate) if estimate else None
        local_draft = draft_estimate is not None and draft_estimate.strip().lower() == "local"
        draft_hw = resolve_hardware(draft_estimate, option="--draft-estimate") if (
            draft_estimate and not local_draft) else None

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = stderr_console()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task("starting", total=None)

            def progress(label: str, done: int, total: int) -> None:
                bar.update(task, description=label, completed=done, total=total)

            def measure():
                return run_profile(draft_spec, target_spec, settings, estimate=target_hw, draft_estimate=draft_hw,
                                   measure_draft_here=local_draft, progress=progress)

            profile = measure()
            problems = profile_problems(profile)
            if problems and fmt is not Format.table and not force:
                # Repeat once: a passing burst of load is the usual cause; refuse if it persists.
                warn(f"the measurement failed its checks ({'; '.join(problems)}); measuring once more")
                profile = measure()
                problems = profile_problems(profile)
                if problems:
                    raise MeasurementError(
                        f"refusing to write timings that failed their checks twice: {'; '.join(problems)}. "
                        "Measure on an idle machine, or pass --force to write them anyway")
        if problems:
            failed = tuple(f"check failed: {p}" for p in problems)
            profile = replace(profile, notes=profile.notes + failed, warnings=profile.warnings + failed)
        profile = with_wall_time(profile, time.perf_counter() - started)
        for message in profile.warnings:
            warn(message)

        if fmt is Format.table:
            from multispin_cli.hardware.view import profile_view

            view = profile_view(profile)
            show(view, output)
        else:
            from multispin_cli.hardware.fragment import to_json, to_toml

            emit(to_toml(profile) if fmt is Format.toml else to_json(profile), output)
        if output is not None:
            d, v = profile.draft, profile.verify
            typer.echo(f"multispin: wrote {fmt.value} timings to {output} (draft {d.seconds_per_token * 1e3:.3g} "
                       f"ms/token; verify {v.form}, R^2 {v.fit.r2:.3f}; {profile.wall_seconds:.1f} s)", err=True)
