"""Every command's help, checked the same way: one vocabulary, readable at 80 columns, nothing eaten.

The commands are read from the registered Typer app, so a command added later is checked too.
The vocabulary below is the README's "Options" list of the Commands section.
"""

from __future__ import annotations

import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from multispin_cli.cli import app

# long name -> (short flag or None, metavar or None for a choice/flag shown by its values)
VOCABULARY = {
    "--format": ("-f", None),
    "--output": ("-o", "FILE"),
    "--rows": (None, "N"),
    "--plot": (None, "FILE"),
    "--seed": ("-s", "N"),
    "--samples": (None, "N"),
    "--rounds": ("-n", "N"),
    "--mode": ("-m", None),
    "--policy": (None, None),
    "--device": (None, "NAME"),
    "--user": ("-u", "NAME"),
    "--max-draft-length": ("-L", "N"),
    "--batch-sizes": ("-b", "LIST"),
    "--engine": ("-e", None),
    "--plan": ("-p", "PLAN"),
    "--workers": (None, "N"),
    "--quick": (None, None),
    "--force": (None, None),
}
ARGUMENT_NAMES = {"profile": "PROFILE", "plan_file": "PLAN", "plan": "PLAN"}
TYPE_PLACEHOLDERS = ("<str>", "<path>", "<int>", "<int ", "<float>", "<float ", "<bool>", "<text>", "<list")

GROUP = get_command(app)
COMMANDS = sorted(GROUP.commands)


def _help(*args: str, width: int = 80) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=width, env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _visible_params(name: str):
    return [p for p in GROUP.commands[name].params if not getattr(p, "hidden", False) and p.name != "help"]


def _options(name: str):
    return [p for p in _visible_params(name) if p.param_type_name == "option"]


def test_the_registry_holds_every_command():
    assert {"plan", "simulate", "export", "schedule", "calibrate", "profile-hardware", "profiles", "init",
            "schema"} <= set(COMMANDS)


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_fits_and_has_no_type_placeholders(command, width):
    text = _help(*([command] if command else []), width=width)
    for line in text.splitlines():
        assert len(line) <= width, line
        assert line == line.rstrip(), f"trailing spaces: {line!r}"
    for placeholder in TYPE_PLACEHOLDERS:
        assert placeholder not in text, f"{command}: {placeholder} shown instead of a metavar"
    usage = text.splitlines()[0]
    assert "{" not in usage, usage
    assert "..." not in text.split("Commands:")[-1] or command, "a command's one-line help was cut"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_word_survives_rendering(command):
    """Markup never eats text ([acceptance]) and wrapping never splits a word (--draft-max)."""
    text = " ".join(_help(command).split())
    words = set(text.split())
    params = _visible_params(command)
    for param in params:
        assert param.help, f"{command}: {param.name} has no help"
        for word in param.help.split():
            assert word in words, f"{command}: '{word}' of the help of {param.name} is not in the output"


@pytest.mark.parametrize("command", COMMANDS)
def test_options_follow_the_vocabulary(command):
    for option in _options(command):
        longs = [o for o in option.opts if o.startswith("--")]
        shorts = [o for o in option.opts if not o.startswith("--")]
        assert len(longs) == 1, f"{command}: {option.opts} needs one long name"
        assert len(shorts) <= 1, f"{command}: {option.opts}"
        long = longs[0]
        if long in VOCABULARY:
            short, metavar = VOCABULARY[long]
            assert shorts == ([short] if short else []), f"{command} {long}: short flag {shorts}, want {short}"
            if metavar is not None:
                assert option.metavar == metavar, f"{command} {long}: metavar {option.metavar}, want {metavar}"
        if not option.is_flag and not option.is_bool_flag:
            shown = option.metavar or ""
            choice = getattr(getattr(option, "type_descriptor", None), "is_choice", False)
            assert choice or shown, f"{command} {long}: give it a metavar (FILE, N, NAME, ...)"
            # a word in capitals (N, FILE, KEY=VALUES, tcp://HOST:PORT) or a list of choices
            assert not shown or re.search(r"\b[A-Z][A-Z_]*\b", shown) or re.fullmatch(r"<[a-z0-9.|-]+>", shown), (
                command, long, shown)


def test_same_name_same_flag_and_metavar_across_commands():
    seen: dict[str, tuple[str, tuple, str | None]] = {}
    shorts: dict[str, tuple[str, str]] = {}
    for command in COMMANDS:
        for option in _options(command):
            long = next(o for o in option.opts if o.startswith("--"))
            short = tuple(o for o in option.opts if not o.startswith("--"))
            metavar = option.metavar if option.metavar and not option.metavar.startswith("<") else None
            if long in seen:
                first, first_short, first_metavar = seen[long]
                assert short == first_short, f"{long}: {short} in {command}, {first_short} in {first}"
                assert metavar == first_metavar, f"{long}: {metavar} in {command}, {first_metavar} in {first}"
            else:
                seen[long] = (command, short, metavar)
            for s in short:
                other = shorts.setdefault(s, (command, long))
                assert other[1] == long, f"{s} is {long} in {command} but {other[1]} in {other[0]}"


@pytest.mark.parametrize("command", COMMANDS)
def test_positional_arguments_are_named_in_capitals(command):
    for param in _visible_params(command):
        if param.param_type_name == "argument":
            assert param.metavar and param.metavar.isupper(), f"{command}: argument {param.name}"
            if param.name in ARGUMENT_NAMES:
                assert param.metavar == ARGUMENT_NAMES[param.name]


def test_bare_multispin_prints_help_once():
    result = CliRunner().invoke(app, [], terminal_width=80)
    assert result.exit_code == 0
    assert result.stdout.count("Usage: multispin") == 1
    assert "Commands:" in result.stdout and result.stderr == ""


def test_shell_completion_is_offered():
    text = _help()
    assert "--install-completion" in text and "--show-completion" in text


def test_old_spellings_still_work(tmp_path):
    """Renamed options keep their old spelling as a hidden alias (listed in the CHANGELOG)."""
    plan = tmp_path / "plan.toml"
    assert CliRunner().invoke(app, ["plan", "qwen3-l4-laptops-phones", "-f", "toml", "-o", str(plan)]).exit_code == 0
    new = CliRunner().invoke(app, ["export", str(plan), "-e", "vllm", "--mode", "homogeneous"])
    for old in (["--plan", "homogeneous"], ["-p", "homogeneous"]):
        result = CliRunner().invoke(app, ["export", str(plan), "-e", "vllm", *old])
        assert result.exit_code == 0 and result.stdout == new.stdout
    counters = ["calibrate", "--drafts", "100", "--accepted-tokens", "250", "-f", "json"]
    assert (CliRunner().invoke(app, [*counters, "-L", "5"]).stdout
            == CliRunner().invoke(app, [*counters, "--draft-length", "5"]).stdout != "")
