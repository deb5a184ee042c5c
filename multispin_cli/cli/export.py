"""`multispin export PLAN.toml --engine ENGINE`: a plan's draft lengths in a serving engine's words."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from multispin_cli.cli.app import app, reported_errors, warn

ENGINE_HELP = ("vllm, sglang, llama.cpp, trtllm or hf (transformers); or rule: the adaptive plan's per-user "
               "draft lengths and skip thresholds as JSON for a scheduler.")


class PlanChoice(str, enum.Enum):
    """Which plan of the file to export."""

    homogeneous = "homogeneous"
    heterogeneous = "heterogeneous"


EXPORT_HELP = (
    "Export each user's planned draft length as the configuration a serving engine reads.\n\n"
    "Draft length 0 means no speculation for that user, said in each engine's own terms (vLLM and hf: null; "
    "SGLang: no flags; llama.cpp: --spec-type none; TensorRT-LLM: speculative_config: null)."
)


@app.command(help=EXPORT_HELP)
def export(
    plan_file: Annotated[
        Path, typer.Argument(metavar="PLAN", help="Plan written by `multispin plan --format toml|json`.",
                             show_default=False)
    ],
    engine: Annotated[str, typer.Option("--engine", "-e", help=ENGINE_HELP, show_default=False)],
    user: Annotated[
        Optional[str], typer.Option("--user", "-u", help="Only this user's configuration (default: every user).")
    ] = None,
    which: Annotated[
        Optional[PlanChoice],
        typer.Option("--plan", "-p", help="Which plan of the file (default: heterogeneous if it holds one)."),
    ] = None,
    legacy: Annotated[
        bool, typer.Option("--legacy", help="llama.cpp only: the older --draft-max/--draft-min spelling.")
    ] = False,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write here (atomically) instead of stdout.")
    ] = None,
) -> None:
    """Export each user's planned draft length as the configuration a serving engine reads."""
    with reported_errors():
        from multispin_cli.render.export import export_plan, get_engine
        from multispin_cli.documents.output import emit
        from multispin_cli.documents.planfile import load_plan_file

        if engine == "rule":
            from multispin_cli.render.adaptive import rule_document
            from multispin_cli.render.document import to_json

            loaded = load_plan_file(plan_file)
            emit(to_json(rule_document(loaded.document, path=loaded.path)), output)
            if output is not None:
                typer.echo(f"multispin: wrote the adaptive rule to {output}", err=True)
            return
        eng = get_engine(engine)
        loaded = load_plan_file(plan_file)
        section = loaded.section(which.value if which is not None else None)
        result = export_plan(section, eng, user=user, target_model=loaded.target_model, legacy=legacy,
                             path=loaded.path)
        for note in result.notes:
            warn(note)
        emit(result.text, output)
        if output is not None:
            typer.echo(f"multispin: wrote {eng.name} config of the {section.name} plan to {output}", err=True)
