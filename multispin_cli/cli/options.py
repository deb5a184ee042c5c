"""The CLI's one vocabulary: every option that means the same thing in two commands is defined here once.

Same idea, same long name, short flag, metavar and help in every command (the README's "Options"
list and tests/test_cli_help.py hold the commands to it). Commands import these ``Annotated`` types
instead of spelling the option again; an option only one command has stays in that command.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer


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


class Engine(str, enum.Enum):
    """Serving engines `multispin export` writes configuration for."""

    vllm = "vllm"
    sglang = "sglang"
    llama_cpp = "llama.cpp"
    trtllm = "trtllm"
    hf = "hf"


class ScheduleEngine(str, enum.Enum):
    """Engines that read a draft length per batch size."""

    vllm = "vllm"
    trtllm = "trtllm"


def choices(enum_type: type[enum.Enum]) -> str:
    """A metavar listing an enum's values, as typer shows choices: ``<a|b|c>``."""
    return "<" + "|".join(str(e.value) for e in enum_type) + ">"


def complete_engine(incomplete: str) -> list[str]:
    return [e.value for e in Engine if e.value.startswith(incomplete)]


def _complete_profile(incomplete: str) -> list[str]:
    """Shell completion of PROFILE: the shipped profiles' names (files complete as files anyway)."""
    from multispin_cli.documents.catalog import shipped_profiles

    return [name for name in shipped_profiles() if name.startswith(incomplete)]


PROFILE_HELP = "Deployment profile: a TOML file, or a shipped profile's name (see multispin profiles)."

ProfileArg = Annotated[
    Path, typer.Argument(metavar="PROFILE", help=PROFILE_HELP, show_default=False, autocompletion=_complete_profile)
]
PlanArg = Annotated[
    Path, typer.Argument(metavar="PLAN", help="Plan file written by multispin plan --format toml|json.",
                         show_default=False)
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table for people, toml or json for programs.")]
OutputOpt = Annotated[
    Optional[Path], typer.Option("--output", "-o", metavar="FILE", help="Write here (atomically) instead of stdout.",
                                 show_default=False)
]
RowsOpt = Annotated[int, typer.Option("--rows", metavar="N", help="User rows in the table (0 shows all).", min=0)]
PlotOpt = Annotated[
    Optional[Path], typer.Option("--plot", metavar="FILE", help="Also draw a figure to this .png or .svg file "
                                 "(extra plot).", show_default=False)
]
ModeOpt = Annotated[
    Mode, typer.Option("--mode", "-m", help="homogeneous: one draft length for all; heterogeneous: one per user; "
                       "both.")
]
SeedOpt = Annotated[int, typer.Option("--seed", "-s", metavar="N", help="Random seed: the same seed gives the same "
                                      "numbers.", min=0)]
BatchSizesOpt = Annotated[
    str, typer.Option("--batch-sizes", "-b", metavar="LIST", help="Batch sizes: a list like 1,2,4,8 and ranges "
                      "like 1-16.")
]
UserOpt = Annotated[
    Optional[str], typer.Option("--user", "-u", metavar="NAME", help="Only this user (default: every user).",
                                show_default=False)
]
DeviceOpt = Annotated[
    Optional[str], typer.Option("--device", metavar="NAME", help="Only the users of this [[devices]] group "
                                "(name-1 .. name-N).", show_default=False)
]
QuickOpt = Annotated[bool, typer.Option("--quick", help="A smaller grid and fewer repeats.")]
