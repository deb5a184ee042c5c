"""`multispin validate`: run a real speculative-decoding engine and compare it with the prediction."""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Annotated, Optional

import typer

from multispin_cli.cli.app import Format, app, reported_errors, show
from multispin_cli.cli.options import FormatOpt, OutputOpt, SeedOpt


def _lengths(text: str | None, top: int) -> tuple[int, ...]:
    """``--lengths`` like 0-8 or 0,2,4 (default: 0..top)."""
    from multispin_cli.errors import InputError

    if text is None:
        return tuple(range(top + 1))
    values: set[int] = set()
    try:
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            low, _, high = part.partition("-")
            values.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise InputError(f"must be draft lengths like 0-8 or 0,2,4, got {text!r}", key="--lengths") from None
    if not values:
        raise InputError("must name at least one draft length, like 0-8", key="--lengths")
    return tuple(sorted(values))


@app.command("validate")
def validate(
    target: Annotated[str, typer.Option("--target", "-t", metavar="MODEL", help="Target model: a catalog name, or "
                                        "the path of a Hugging Face config.json or model folder (random weights "
                                        "unless the folder has some).")],
    draft: Annotated[Optional[str], typer.Option("--draft", "-d", metavar="MODEL", help="Draft model, as --target; "
                                                 "default: a layer-skip draft of the target (see --draft-layers).",
                                                 show_default=False)] = None,
    draft_layers: Annotated[Optional[int], typer.Option("--draft-layers", metavar="N", help="Layer-skip draft: the "
                                                        "target's embeddings, first N decoder layers, final norm "
                                                        "and head (default 1).", min=1, show_default=False)] = None,
    init_std: Annotated[Optional[float], typer.Option("--init-std", metavar="STD", help="initializer_range for "
                                                      "random weights (small values make a layer-skip draft agree "
                                                      "with its target).", show_default=False)] = None,
    max_draft_length: Annotated[int, typer.Option("--max-draft-length", "-L", metavar="N", help="Run every draft "
                                                  "length 0..L.", min=0, max=64)] = 8,
    lengths: Annotated[Optional[str], typer.Option("--lengths", metavar="LIST", help="Draft lengths to run "
                                                   "instead, like 0-8 or 0,2,4.", show_default=False)] = None,
    new_tokens: Annotated[int, typer.Option("--new-tokens", metavar="N", help="Tokens each run generates.",
                                            min=8)] = 256,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", metavar="N", help="Prompt length (random token "
                                               "ids).", min=1)] = 32,
    repeats: Annotated[int, typer.Option("--repeats", metavar="N", help="Runs per draft length (interleaved); the "
                                         "median is kept.", min=1, max=100)] = 3,
    max_repeats: Annotated[Optional[int], typer.Option("--max-repeats", metavar="N", help="Run a draft length "
                                                       "again (interleaved) while its median is not known within "
                                                       "--stability, up to N runs (default: twice --repeats).",
                                                       min=1, max=200, show_default=False)] = None,
    stability: Annotated[float, typer.Option("--stability", metavar="PERCENT", help="How well each median "
                                             "tokens/s must be known: half its 75 % confidence interval.",
                                             min=0.01, max=99.0)] = 2.0,
    seed: SeedOpt = 0,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Check the prediction against a real engine (transformers).

    Runs transformers' assisted generation at each draft length and compares its tokens/s with
    multispin's prediction from its own timings and acceptance (needs the extra validate).
    """
    started = time.perf_counter()
    with reported_errors():
        from multispin_cli.documents.output import emit
        from multispin_cli.hardware.validation import ValidationSettings, run_validation, to_json, to_toml, view
        from multispin_cli.render.text import stderr_console

        settings = ValidationSettings(target=target, draft=draft, draft_layers=draft_layers, init_std=init_std,
                                      lengths=_lengths(lengths, max_draft_length), new_tokens=new_tokens,
                                      prompt_tokens=prompt_tokens, repeats=repeats, seed=seed,
                                      max_repeats=max_repeats, stability=stability / 100)
        settings.check()
        console = stderr_console()
        with console.status("starting", spinner="dots") if console.is_terminal else nullcontext() as status:
            def progress(text: str) -> None:
                if status is not None:
                    status.update(text)

            result = run_validation(settings, progress=progress)
        if fmt is Format.table:
            rendered = view(result)
            show(rendered, output)
        else:
            emit(to_toml(result) if fmt is Format.toml else to_json(result), output)
        if output is not None:
            typer.echo(f"multispin: wrote {fmt.value} to {output} (worst error {100 * result.worst_error:.1f} %; "
                       f"{time.perf_counter() - started:.0f} s)", err=True)
