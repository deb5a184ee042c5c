"""`multispin profiles`, `multispin init` and `multispin schema`: getting started without reading the source."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from multispin_cli.cli.app import app, reported_errors
from multispin_cli.cli.options import OutputOpt


@app.command(short_help="List the shipped profiles (each plans by its name).")
def profiles() -> None:
    """List the shipped example profiles, one line each: `multispin plan NAME` plans one from any folder."""
    with reported_errors():
        from multispin_cli.documents.catalog import profile_summary, shipped_profiles

        shipped = shipped_profiles()
        width = max(map(len, shipped), default=0)
        for name, path in shipped.items():
            typer.echo(f"{name:<{width}}  {profile_summary(path, width=78 - width)}".rstrip())


@app.command(short_help="Write a commented starter profile that plans as is.")
def init(output: OutputOpt = None) -> None:
    """Write a commented starter profile (to stdout, or --output FILE) that `multispin plan` plans as is."""
    with reported_errors():
        from multispin_cli.documents.output import emit
        from multispin_cli.documents.starter import STARTER_PROFILE

        emit(STARTER_PROFILE.replace("{name}", str(output) if output is not None else "my.toml"), output)
        if output is not None:
            typer.echo(f"multispin: wrote a starter profile to {output}; plan it with: multispin plan {output}",
                       err=True)


class SchemaKind(str, enum.Enum):
    """Documents with a JSON Schema."""

    profile = "profile"


@app.command(short_help="A JSON Schema of the profile format, for editors.")
def schema(
    kind: Annotated[SchemaKind, typer.Argument(metavar="KIND", help="Which document: profile.")] = SchemaKind.profile,
    output: OutputOpt = None,
) -> None:
    """Print the JSON Schema of a document, for editors that check TOML against it (Taplo, Even Better TOML)."""
    with reported_errors():
        import json

        from multispin_cli.documents.jsonschema import profile_schema
        from multispin_cli.documents.output import emit

        emit(json.dumps(profile_schema(), indent=2) + "\n", output)
        if output is not None:
            typer.echo(f"multispin: wrote the {kind.value} schema to {output}", err=True)
