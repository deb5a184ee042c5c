"""`multispin export PLAN --engine ENGINE`: a plan's draft lengths in a serving engine's words."""

from __future__ import annotations

import enum
from typing import Annotated, Optional

import typer

from multispin_cli.cli.app import app, reported_errors, warn
from multispin_cli.cli.options import DeviceOpt, Engine, OutputOpt, PlanArg, UserOpt, choices, complete_engine


class PlanChoice(str, enum.Enum):
    """Which plan of the file to export."""

    homogeneous = "homogeneous"
    heterogeneous = "heterogeneous"


EXPORT_HELP = (
    "Export each user's planned draft length as the configuration a serving engine reads.\n\n"
    "Users who share one configuration (a homogeneous plan, one device group) give one config. "
    "Draft length 0 means no speculation for that user, said in each engine's own terms (vLLM and hf: null; "
    "SGLang: no flags; llama.cpp: --spec-type none; TensorRT-LLM: speculative_config: null)."
)


@app.command(help=EXPORT_HELP, short_help="A plan as vLLM, SGLang, llama.cpp, TensorRT-LLM or hf config.")
def export(
    plan_file: PlanArg,
    # A string checked by the engine registry (which knows aliases such as tensorrt-llm), with the
    # choices shown and completed like an enum's.
    engine: Annotated[str, typer.Option("--engine", "-e", metavar=choices(Engine), autocompletion=complete_engine,
                                        help="The serving engine (hf: transformers); rule: the adaptive plan's per-user "
                                        "lengths and skip thresholds as JSON for a scheduler.", show_default=False)],
    user: UserOpt = None,
    device: DeviceOpt = None,
    which: Annotated[
        Optional[PlanChoice],
        typer.Option("--mode", "-m", help="Which plan of the file (default: heterogeneous if it holds one).",
                     show_default=False),
    ] = None,
    which_alias: Annotated[Optional[PlanChoice], typer.Option("--plan", "-p", hidden=True)] = None,
    legacy: Annotated[
        bool, typer.Option("--legacy", help="llama.cpp only: the older spelling (--draft-max, --draft-min).")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Export each user's planned draft length as the configuration a serving engine reads."""
    with reported_errors():
        from multispin_cli.documents.output import emit
        from multispin_cli.documents.planfile import load_plan_file
        from multispin_cli.errors import InputError
        from multispin_cli.render.export import export_plan, get_engine

        if engine == "rule":
            from multispin_cli.render.adaptive import rule_document
            from multispin_cli.render.document import to_json

            loaded = load_plan_file(plan_file)
            emit(to_json(rule_document(loaded.document, path=loaded.path)), output)
            if output is not None:
                typer.echo(f"multispin: wrote the adaptive rule to {output}", err=True)
            return
        if which is not None and which_alias is not None and which != which_alias:
            raise InputError("give --mode once (--plan is its old name)", key="--mode")
        chosen = which or which_alias
        eng = get_engine(engine)
        loaded = load_plan_file(plan_file)
        section = loaded.section(chosen.value if chosen is not None else None)
        result = export_plan(section, eng, user=user, device=device, target_model=loaded.target_model,
                             legacy=legacy, path=loaded.path)
        for note in result.notes:
            warn(note)
        emit(result.text, output)
        if output is not None:
            typer.echo(f"multispin: wrote {eng.name} config of the {section.name} plan to {output}", err=True)
