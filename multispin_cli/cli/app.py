"""The Typer application, its error policy and the helpers every command shares.

Error policy: a user's mistake (bad option, bad profile, bad plan file) prints one line on stderr
and exits 2; a failure of multispin itself exits 1; stdout carries only the requested output.
"""

from __future__ import annotations

import enum
import errno
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Annotated, Iterator

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from multispin_cli import __version__
from multispin_cli.errors import MultispinError


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Group(TyperGroup):
    """Usage errors in one line (not click's four-line block), and quiet broken pipes."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(
                args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            )
        except TyperException as exc:
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                typer.echo(ctx.get_help())
                code = 0
            else:
                where = ctx.command_path if ctx is not None else "multispin"
                typer.echo(f"{where}: error: {_one_line(exc.format_message())} (see '{where} --help')", err=True)
                code = exc.exit_code
        except typer.Abort:
            typer.echo("multispin: interrupted", err=True)
            code = 130
        except BrokenPipeError:
            # The reader went away (`multispin plan ... | head`): stop quietly.
            _silence_stdout()
            code = 1
        code = code if isinstance(code, int) else 0
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            code = code or 1
        except OSError as exc:  # stdout on a full disk: one line, not Python's "Exception ignored"
            typer.echo(f"multispin: error: cannot write to standard output: {exc.strerror or exc}", err=True)
            _silence_stdout()
            code = code or 2
        if standalone_mode:
            sys.exit(code)
        return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (an in-process runner)
        pass


app = typer.Typer(
    name="multispin",
    cls=_Group,
    help="Plan draft lengths and uplink bandwidth for multi-user speculative decoding at the edge "
    "(Multi-SPIN): which draft length each device should use, how to split the FDMA uplink, and the "
    "sum token goodput the cell will deliver.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"multispin {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Multi-SPIN planning for speculative decoding at the edge."""


class Mode(str, enum.Enum):
    """Which planning problem to solve: one draft length for all, one per user, or both."""

    homogeneous = "homogeneous"
    heterogeneous = "heterogeneous"
    both = "both"


class Format(str, enum.Enum):
    """Output formats: a rich table for people, TOML or JSON for programs."""

    table = "table"
    toml = "toml"
    json = "json"


def warn(message: str) -> None:
    """A warning on stderr (never on stdout, which carries only the requested output)."""
    typer.echo(f"multispin: warning: {_one_line(message)}", err=True)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn library errors into one line on stderr and the matching exit code."""
    try:
        yield
    except MultispinError as exc:
        typer.echo(f"multispin: error: {_one_line(exc)}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("multispin: interrupted", err=True)
        raise typer.Exit(130) from None
    except (typer.Exit, TyperException, BrokenPipeError):
        raise
    except OSError as exc:
        if exc.errno not in _WRITE_FAILURES:
            _internal(exc)
        typer.echo(f"multispin: error: cannot write output: {_one_line(exc.strerror or exc)}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # a bug of ours: say so in one line, traceback on request
        _internal(exc)


_WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _internal(exc: BaseException) -> None:
    if os.environ.get("MULTISPIN_DEBUG"):
        raise exc
    typer.echo(
        f"multispin: internal error: {type(exc).__name__}: {_one_line(exc)} "
        "(set MULTISPIN_DEBUG=1 for a traceback, and please report it)",
        err=True,
    )
    raise typer.Exit(1) from None


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings (a numerical RuntimeWarning that slipped through) as one line on stderr,
    without the source line numpy would print."""
    typer.echo(f"multispin: warning: {category.__name__}: {_one_line(message)} (please report it)", err=True)


def main() -> None:
    """Console-script entry point."""
    warnings.showwarning = _warning_line
    app()
