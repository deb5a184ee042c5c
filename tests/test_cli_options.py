"""Option values coerced without typer's pydantic adapters (cli.app) give what typer itself gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer._click import Context
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param

from multispin_cli.cli import app

VALUES = ("0", "5", "-3", "007", "1_000", " 4", "1.5", "-2.25", "1e3", "2E-2", "nan", "inf", "abc", "", "x.toml",
          "profiles", "table", "json", "JSON", "homogeneous", "both", "vllm", "llama.cpp", "true", "1")


def _params():
    command = typer.main.get_command(app)
    out = [(command, p) for p in command.params]
    for sub in command.commands.values():
        out += [(sub, p) for p in sub.params]
    return out


def _outcome(runtime, value, param, ctx):
    try:
        result = runtime.coerce(value, param=param, ctx=ctx)
        return "ok", type(result), repr(result)
    except (BadParameter, ValueError) as exc:
        return "error", type(exc).__name__, str(exc)


def test_every_option_value_is_coerced_as_typer_does():
    checked = 0
    for command, param in _params():
        plain = param.get_runtime_param()
        full = build_runtime_param(param.type_descriptor)
        ctx = Context(command)
        for value in (param.default, *VALUES):
            if param.multiple or param.nargs != 1:
                continue
            assert _outcome(plain, value, param, ctx) == _outcome(full, value, param, ctx), (command.name, param.name,
                                                                                             value)
            checked += 1
    assert checked > 500


def test_a_plan_does_not_load_pydantic():
    """Loading pydantic and building its adapters costs more than planning a mid-size cell."""
    code = ("import sys; from multispin_cli.cli import main; sys.argv = ['multispin', 'plan', 'paper-llama2-a100', "
            "'-f', 'json', '-m', 'homogeneous', '--rows', '5', '--seed', '1']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('pydantic' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip().splitlines()[-1] == "False"
    assert '"draft_length"' in result.stdout


@pytest.mark.parametrize("args,needle", [
    (["--rows", "-1"], "--rows: input should be greater than or equal to 0"),
    (["--mode", "sideways"], "--mode: 'sideways' is not one of"),
    (["--seed", "x"], "--seed: input should be a valid integer"),
])
def test_bad_values_still_get_typers_messages(args, needle):
    from builders import invoke

    result = invoke("plan", "paper-llama2-a100", *args)
    assert result.exit_code == 2
    assert needle in result.stderr and result.stdout == ""


@pytest.mark.parametrize("args", [
    ["plan", "paper-llama2-a100", "-f", "json", "-m", "both"],
    ["plan", "--help"],
    ["--help"],
    ["pln", "x"],
    ["plan"],
])
def test_the_entry_point_builds_only_the_command_it_runs_with_the_same_output(args, monkeypatch, capsys):
    import typer.main as typer_main

    from multispin_cli.cli import main

    def run(entry):
        with pytest.raises(SystemExit) as stop:
            entry()
        out = capsys.readouterr()
        return stop.value.code, out.out, out.err

    built = []
    build = typer_main.get_command_from_info
    monkeypatch.setattr(typer_main, "get_command_from_info", lambda **kw: built.append(kw) or build(**kw))
    monkeypatch.setattr(sys, "argv", ["multispin", *args])
    mine = run(main)
    assert len(built) == (1 if args[0] == "plan" else len(app.registered_commands))
    assert run(lambda: app(args)) == mine  # every command built
    assert len(app.registered_commands) > 10


def test_every_command_is_listed_with_the_module_that_registers_it():
    """The console script imports only the invoked command's module, found in cli.COMMANDS: a command
    missing there (or listed under another module) would not run from the shell."""
    import multispin_cli.cli as cli

    registered = {typer.main.get_command_name(c.callback.__name__) if c.name is None else c.name:
                  c.callback.__module__.rsplit(".", 1)[1] for c in app.registered_commands}
    assert registered == cli.COMMANDS
    modules = {p.stem for p in Path(cli.__file__).parent.glob("*.py") if "@app.command" in p.read_text()}
    assert modules == set(cli.COMMANDS.values())


@pytest.mark.parametrize("args,loaded", [
    (["plan", "no-such.toml"], {"plan"}),
    (["schema"], {"catalog"}),
    (["--help"], {"plan", "hardware", "export", "schedule", "simulate", "calibrate", "catalog", "sweep", "capacity",
                  "validate"}),
])
def test_the_entry_point_imports_only_the_command_it_runs(args, loaded):
    code = ("import sys; from multispin_cli.cli import main; sys.argv = ['multispin', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('multispin_cli.cli.')), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    modules = set(eval(proc.stderr.strip().splitlines()[-1]))
    assert modules - {"app", "options"} == loaded


def test_the_entry_point_collects_at_a_slower_pace_while_it_runs_and_then_restores_it(monkeypatch, capsys):
    """main() slows the cyclic collector for the run (a CLI process keeps what it imports) and puts
    the caller's pace back, so an in-process caller (as here) is left as it was."""
    import gc

    import multispin_cli.planners.report as planning
    from multispin_cli.cli import main

    seen = []
    plan_report = planning.plan_report
    monkeypatch.setattr(planning, "plan_report", lambda *a, **k: seen.append(gc.get_threshold()) or plan_report(*a, **k))
    monkeypatch.setattr(sys, "argv", ["multispin", "plan", "paper-llama2-a100", "-f", "json", "-m", "homogeneous"])
    before = gc.get_threshold()
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 0 and '"draft_length"' in capsys.readouterr().out
    assert seen and seen[0][0] > before[0]
    assert gc.get_threshold() == before
