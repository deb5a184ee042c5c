"""The `multispin` command line: thin Typer commands over the library."""

from multispin_cli.cli.app import app, main
from multispin_cli.cli import plan as _plan  # noqa: F401  (registers `multispin plan`)

__all__ = ["app", "main"]
