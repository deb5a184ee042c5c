"""The Typer application, its error policy and the helpers every command shares.

Error policy: a user's mistake (bad option, bad profile, bad plan file) prints one line on stderr
and exits 2; a failure of multispin itself exits 1; stdout carries only the requested output.
"""

from __future__ import annotations

import atexit
import errno
import gc
import os
import re
import sys
import warnings
from contextlib import contextmanager
from typing import Annotated, Iterator

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from multispin_cli import __version__
from multispin_cli.cli.options import Format, Mode  # noqa: F401  (re-exported: commands import them here)
from multispin_cli.errors import MultispinError


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _plain_help() -> None:
    """Plain help text: a positional argument is named by its metavar alone (`multispin plan
    [OPTIONS] PROFILE`, not typer's `{PROFILE}` with a `<path>` type beside it), and text wraps at
    spaces only. Each patch is skipped if typer changes shape (tests/test_cli_help.py notices)."""
    from typer.core import TyperArgument

    display_type, usage_name = (getattr(TyperArgument, n, None) for n in ("display_type_rich", "_usage_display_name"))
    if display_type is None or usage_name is None:
        return

    def plain_type(self, ctx):
        return None if self.metavar is not None else display_type(self, ctx)

    def plain_usage(self):
        name = usage_name(self)
        return self.metavar if self.metavar is not None and self.required and self.nargs == 1 else name

    TyperArgument.display_type_rich = plain_type
    TyperArgument._usage_display_name = plain_usage

    # Wrap help text at spaces only, never inside an option name (`--draft-` / `max`).
    try:
        from typer._click._textwrap import TextWrapper
    except ImportError:  # pragma: no cover - a typer without its vendored click
        return
    wrapper_init = TextWrapper.__init__

    def no_hyphen_breaks(self, *args, **kwargs):
        kwargs.setdefault("break_on_hyphens", False)
        wrapper_init(self, *args, **kwargs)

    TextWrapper.__init__ = no_hyphen_breaks


_plain_help()

_DEFER = object()
_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?([eE][-+]?[0-9]{1,2})?")


def _plain_params() -> None:
    """Plain option values (a path, a choice, a number, a string or a flag) are turned into Python
    values here, without typer's pydantic adapters: importing pydantic and building an adapter per
    option costs more than planning a cell of 10,000 users. Anything else (lists, parsers, a value
    out of range or that does not parse) still goes to typer's own coercion, so its results and
    error messages are the same. Skipped if typer changes shape (tests/test_cli_help.py notices)."""
    try:
        from dataclasses import dataclass
        from enum import Enum
        from pathlib import Path
        from typing import Any

        from typer._coercion import RuntimeParam, build_runtime_param
        from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path
        from typer.core import _TyperParameter
    except ImportError:  # pragma: no cover - a typer without these internals
        return
    original = getattr(_TyperParameter, "get_runtime_param", None)
    if original is None or "_runtime_param" not in getattr(_TyperParameter, "__annotations__", {}):
        return  # pragma: no cover

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        kind: str = "str"
        descriptor: Any = None

        def _coerce_value(self, value, param, ctx):
            result = self._plain(value, param, ctx)
            if result is not _DEFER:
                return result
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

        def _plain(self, value, param, ctx):
            info, kind = self.parameter_info, self.kind
            if kind == "choice":
                try:
                    return coerce_cli_choice(value, choices=list(self.annotation), case_sensitive=info.case_sensitive,
                                             ctx=ctx)
                except ValueError:
                    return _DEFER
            if kind == "path":
                path_type = info.path_type or self.annotation
                if not isinstance(value, path_type):
                    if path_type is not Path or type(value) is not str or not value:
                        return _DEFER
                    value = Path(value)
                return coerce_cli_path(value, info, path_type=path_type, param=param, ctx=ctx)
            if kind in ("str", "bool"):
                return value if type(value) is (str if kind == "str" else bool) else _DEFER
            number = int if kind == "int" else float
            if type(value) is str and (_INT if kind == "int" else _FLOAT).fullmatch(value):
                value = number(value)
            if type(value) is not number or info.min is not None and not value >= info.min or \
                    info.max is not None and not value <= info.max:
                return _DEFER
            return value

    def plain_kind(param) -> str | None:
        descriptor = param.type_descriptor
        info, annotation = descriptor.parameter_info, descriptor.annotation
        if descriptor.file_annotation is not None or info.parser is not None or param.multiple or param.nargs != 1:
            return None
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            return "choice"
        if annotation in (int, float):
            return None if info.clamp else annotation.__name__
        if annotation in (str, bool):
            return annotation.__name__
        if isinstance(annotation, type) and issubclass(annotation, Path) and routes_to_path(annotation, info):
            return "path"
        return None

    def get_runtime_param(self):
        if self._runtime_param is None:
            kind = plain_kind(self)
            if kind is not None:
                descriptor = self.type_descriptor
                self._runtime_param = PlainParam(descriptor.parameter_info, descriptor.annotation, kind, descriptor)
        return original(self)

    _TyperParameter.get_runtime_param = get_runtime_param


_plain_params()


def _usage_message(exc: TyperException) -> str:
    """A usage error in the house style, ``OPTION: reason``, like the library's ``KEY: reason``."""
    message = _one_line(exc.format_message())
    param = getattr(exc, "param", None)
    if param is None:
        return message
    longs = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
    name = longs[0] if longs else (param.metavar or param.name or "").upper() or "argument"
    if type(exc).__name__ == "MissingParameter":
        return f"{name}: missing {'option' if longs else 'argument'}"
    message = re.sub(r"^Invalid value for [^:]*: ", "", message)
    message = message.replace("Value error, ", "")
    return f"{name}: {message[:1].lower()}{message[1:]}"


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
                # The exception holds the help text (rendered once, here; bare `multispin` is not an error).
                typer.echo(exc.format_message())
                code = 0
            else:
                where = ctx.command_path if ctx is not None else "multispin"
                typer.echo(f"multispin: error: {_usage_message(exc)} (see '{where} --help')", err=True)
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
    add_completion=True,  # --install-completion / --show-completion (loaded only when asked for)
    pretty_exceptions_enable=False,
    # Plain click help: wraps cleanly at 80 columns, shows choices as [a|b], and never reads
    # brackets in help texts ("[acceptance]") as markup.
    rich_markup_mode=None,
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


def show(view, output) -> None:
    """A rich table for people: on the terminal, or as plain text written atomically to ``output``.

    Imports rich lazily, so commands that print TOML or JSON never pay for it.
    """
    from multispin_cli.documents.output import emit
    from multispin_cli.render.text import render_text, stdout_console

    if output is None:
        stdout_console().print(view)
    else:
        emit(render_text(view), output)


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
    from multispin_cli.cli import load_commands

    # A run imports thousands of functions, classes and tables and keeps them to the end: the
    # collector's default pace (a pass every 700 new objects) scans them over and over, 20-30 ms
    # of a run. Collect at a slower pace while it runs (garbage in cycles is still collected) ...
    pace = gc.get_threshold()
    gc.set_threshold(50_000, 20, 20)
    # ... and exit without collecting what the run leaves: at exit the collector would take apart
    # numpy's, typer's and multispin's modules object by object, 50-90 ms of every run. Frozen
    # objects are never collected; the operating system frees them with the process (files are
    # written and closed by then, and the interpreter still flushes stdout and stderr).
    atexit.register(gc.freeze)
    warnings.showwarning = _warning_line
    name = _invoked_command(sys.argv[1:])
    load_commands(name)  # only its module (every command's for the help, or a name that is none)
    try:
        with _only_command(name):
            app()
    finally:
        gc.set_threshold(*pace)


def _invoked_command(args: list[str]) -> str | None:
    """The command a command line runs (its first word that is not an option: the group's own
    options are flags), or None for the group's help, no command, or shell completion."""
    if any(name.endswith("_COMPLETE") for name in os.environ):
        return None
    for arg in args:
        if arg in ("-h", "--help"):
            return None
        if not arg.startswith("-"):
            return arg
    return None


@contextmanager
def _only_command(name: str | None) -> Iterator[None]:
    """While inside, the app holds only the command ``name`` (if it has one of that name): typer
    builds every registered command's options on each run (their signatures and types), which
    costs more than a small plan; a run needs only its own. The group's help and an unknown name
    (with its suggestions) still see every command."""
    from typer.main import get_command_name

    commands = app.registered_commands
    keep = [c for c in commands if (c.name or get_command_name(getattr(c.callback, "__name__", ""))) == name]
    if name is None or len(keep) != 1:
        yield
        return
    app.registered_commands = keep
    try:
        yield
    finally:
        app.registered_commands = commands
