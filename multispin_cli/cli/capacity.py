"""`multispin capacity PROFILE`: the most users of a kind at a per-user rate, or the least band
for a goodput target, with the plan at the answer."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from multispin_cli.cli.app import Format, Mode, app, reported_errors
from multispin_cli.cli.options import OutputOpt, ProfileArg


@app.command(short_help="The most users of a device at a rate, or the least band for a goodput.")
def capacity(
    profile: ProfileArg,
    device: Annotated[Optional[str], typer.Option("--device", metavar="NAME", help="The devices entry (by name) whose count grows.")]
    = None,
    min_user_tokens_per_s: Annotated[Optional[float], typer.Option(
        "--min-user-tokens-per-s", metavar="RATE", min=0, help="Every user at least this rate (tokens/s).")] = None,
    mean: Annotated[bool, typer.Option("--mean", help="Judge the users' mean rate, not the worst.")] = False,
    percentile: Annotated[Optional[float], typer.Option(
        "--percentile", metavar="P", min=0, max=100, help="Fading: each user's rate met in P % of rounds.")] = None,
    samples: Annotated[int, typer.Option("--samples", metavar="N", min=10,
                                         help="Fading draws behind --percentile (the adaptive plan's).")] = 2000,
    min_bandwidth_for_goodput: Annotated[Optional[float], typer.Option(
        "--min-bandwidth-for-goodput", metavar="RATE", min=0, help="Least band for this sum goodput (tokens/s).")] = None,
    step_mhz: Annotated[float, typer.Option("--step-mhz", metavar="MHZ", min=1e-6, help="Band resolution of the search.")]
    = 0.1,
    max_count: Annotated[int, typer.Option("--max-count", metavar="N", min=2, help="Largest count searched.")] = 4096,
    mode: Annotated[Mode, typer.Option("--mode", "-m", help="Plans to compute; the best one is judged.")]
    = Mode.both,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    output: OutputOpt = None,
    rows: Annotated[int, typer.Option("--rows", metavar="N", min=0, help="User rows in the table view (0 shows all).")] = 40,
) -> None:
    """Find the most users of a device, or the least band, that meets a target."""
    with reported_errors():
        from multispin_cli.documents.output import emit
        from multispin_cli.errors import InputError
        from multispin_cli.execution.capacity import bandwidth_for_goodput, user_capacity
        from multispin_cli.render.capacity import capacity_document, capacity_view
        from multispin_cli.render.document import to_json, to_toml

        users_q = device is not None or min_user_tokens_per_s is not None
        band_q = min_bandwidth_for_goodput is not None
        if users_q == band_q:
            raise InputError("ask one question: --device NAME --min-user-tokens-per-s X, or "
                             "--min-bandwidth-for-goodput G", key="--device")
        from multispin_cli.documents.catalog import resolve_profile

        profile = resolve_profile(profile)  # a shipped profile's name works too
        if users_q:
            if device is None or min_user_tokens_per_s is None:
                raise InputError("--device and --min-user-tokens-per-s go together", key="--device")
            result = user_capacity(profile, device, min_user_tokens_per_s, mean=mean, mode=mode.value,
                                   max_count=max_count, percentile=percentile, samples=samples)
            target = min_user_tokens_per_s
        else:
            if mean:
                raise InputError("--mean applies to --min-user-tokens-per-s", key="--mean")
            if percentile is not None:
                raise InputError("--percentile applies to --min-user-tokens-per-s", key="--percentile")
            result = bandwidth_for_goodput(profile, min_bandwidth_for_goodput, step_mhz=step_mhz, mode=mode.value)
            target = min_bandwidth_for_goodput
        if fmt is Format.table:
            from multispin_cli.render.text import FILE_WIDTH, render_text, stdout_console

            console = stdout_console() if output is None else None
            view = capacity_view(result, target, mean=mean, device=device, max_rows=rows,
                                 width=console.width if console is not None else FILE_WIDTH)
            if console is not None:
                console.print(view)
            else:
                emit(render_text(view), output)
        else:
            doc = capacity_document(result, target, mean=mean, device=device, step_mhz=step_mhz)
            emit(to_toml(doc) if fmt is Format.toml else to_json(doc), output)
        if output is not None:
            typer.echo(f"multispin: wrote {fmt.value} capacity to {output}", err=True)
