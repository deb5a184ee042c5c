"""`multispin calibrate`: a device's acceptance from serving-engine counts, as a fragment a profile includes."""

from __future__ import annotations

import enum
import sys
from typing import Annotated, Optional

import typer

from multispin_cli.cli.app import app, reported_errors, show, warn
from multispin_cli.cli.options import Format, OutputOpt


class Form(str, enum.Enum):
    """Which acceptance form the fragment's [acceptance] table holds."""

    auto = "auto"
    geometric = "geometric"
    per_position = "per-position"


def _read(source: str, what: str) -> tuple[str, str | None]:
    """The text of a file, or of stdin for '-', and the path to name in errors (within the limits
    of multispin_cli.documents.files: a regular file, at most MAX_FILE_BYTES)."""
    from multispin_cli.documents.files import MAX_FILE_BYTES, read_text
    from multispin_cli.errors import InputError

    if source == "-":
        text = sys.stdin.read(MAX_FILE_BYTES + 1)
        if len(text) > MAX_FILE_BYTES:
            raise InputError(f"standard input: more than {MAX_FILE_BYTES:,} characters", key=f"--{what}")
        return text, None
    try:
        return read_text(source, InputError), source
    except InputError as exc:
        if exc.reason == "no such file":
            raise InputError(f"no such {what} file", path=source) from None
        raise


def _labels(pairs: list[str]) -> dict[str, str]:
    from multispin_cli.errors import InputError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"must be KEY=VALUE, got {pair!r}", key="--label")
        out[key.strip()] = value.strip().strip('"')
    return out


@app.command(short_help="Acceptance rates from serving-engine metrics, with 95% intervals.")
def calibrate(
    metrics: Annotated[
        Optional[str],
        typer.Option("--metrics", metavar="FILE", help="vLLM Prometheus text (a saved /metrics page), or - for "
                     "stdin.", show_default=False),
    ] = None,
    histogram: Annotated[
        Optional[str],
        typer.Option("--histogram", metavar="FILE", help="Histogram of accepted lengths per round: CSV (header: "
                     "accepted,count) or JSON (a list of counts n0, n1, ...); - for stdin.", show_default=False),
    ] = None,
    drafts: Annotated[Optional[int], typer.Option("--drafts", metavar="N", help="Counters: number of drafts N.",
                                                  show_default=False)] = None,
    accepted_tokens: Annotated[Optional[int], typer.Option("--accepted-tokens", metavar="N", help="Counters: "
                                                           "accepted draft tokens A (not counting the target's "
                                                           "own token).", show_default=False)] = None,
    draft_length: Annotated[Optional[int], typer.Option("--draft-length", metavar="N", help="Tokens per draft L "
                                                        "(needed with counters; else read from the data).",
                                                        show_default=False)] = None,
    draft_length_short: Annotated[Optional[int], typer.Option("-L", hidden=True)] = None,
    label: Annotated[list[str], typer.Option("--label", metavar="KEY=VALUE", help="Metrics: keep only series "
                                             "with this label value, e.g. model_name=NAME (repeatable).",
                                             show_default=False)] = [],  # noqa: B006
    form: Annotated[Form, typer.Option("--form", help="What the fragment's [acceptance] table holds: auto "
                                       "(per-position when the data reject the geometric model), geometric, "
                                       "per-position.")] = Form.auto,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table for people; toml writes the fragment a "
                                        "profile includes (calibration = \"file.toml\"); json.")] = Format.table,
    output: OutputOpt = None,
) -> None:
    """Estimate a draft model's acceptance (with 95% intervals) from vLLM metrics, a histogram or counters."""
    with reported_errors():
        from multispin_cli.analysis.calibration import calibrate as fit
        from multispin_cli.documents.metrics import from_counters, parse_histogram, parse_prometheus
        from multispin_cli.documents.output import emit
        from multispin_cli.errors import InputError
        from multispin_cli.render.calibration import HEADER, calibration_document
        from multispin_cli.render.document import to_json, to_toml

        if draft_length is not None and draft_length_short is not None and draft_length != draft_length_short:
            raise InputError("give --draft-length once (-L is its old short form)", key="--draft-length")
        draft_length = draft_length if draft_length is not None else draft_length_short
        counters = drafts is not None or accepted_tokens is not None
        given = [name for name, on in (("--metrics", metrics is not None), ("--histogram", histogram is not None),
                                       ("--drafts/--accepted-tokens", counters)) if on]
        if len(given) != 1:
            raise InputError("give exactly one source: --metrics FILE, --histogram FILE, or --drafts N "
                             "--accepted-tokens A --draft-length L" + (f" (got {', '.join(given)})" if given else ""))
        if label and metrics is None:
            raise InputError("--label filters --metrics series; there are none here")
        if metrics is not None:
            text, path = _read(metrics, "metrics")
            counts = parse_prometheus(text, path=path or "<stdin>", labels=_labels(label), draft_length=draft_length)
        elif histogram is not None:
            text, path = _read(histogram, "histogram")
            counts = parse_histogram(text, path=path or "<stdin>", draft_length=draft_length)
        else:
            missing = [n for n, v in (("--drafts", drafts), ("--accepted-tokens", accepted_tokens),
                                      ("--draft-length", draft_length)) if v is None]
            if missing:
                raise InputError(f"counters need --drafts, --accepted-tokens and --draft-length (missing "
                                 f"{', '.join(missing)})")
            counts = from_counters(drafts, accepted_tokens, draft_length)
        for message in counts.warnings:
            warn(message)
        cal = fit(counts)

        if fmt is Format.table:
            from multispin_cli.render.calibration import calibration_view

            view = calibration_view(cal, form.value)
            show(view, output)
        else:
            doc = calibration_document(cal, form.value)
            if fmt is Format.toml:
                name = output.name if output is not None else "calibration.toml"
                emit(HEADER.format(name=name) + to_toml(doc), output)
            else:
                emit(to_json(doc), output)
        if output is not None:
            typer.echo(f"multispin: wrote {fmt.value} calibration to {output}", err=True)
