"""The `multispin` command line: thin Typer commands over the library.

Each command lives in a module that registers it on the Typer application when imported. ``app``,
taken from this package, has every command; the console script (:func:`main`) imports only the
module of the command it runs (compiling and running the others costs more than planning a small
cell). A new command module must be listed in ``COMMANDS`` (tests/test_cli_options.py checks).
"""

from importlib import import_module

from multispin_cli.cli.app import main  # binds ``app`` here to that module; __getattr__ serves the application

del app  # noqa: F821  (the name is the application's, below)

# Each command by name, with the module that registers it, in the order the help lists them.
COMMANDS = {
    "plan": "plan",
    "profile-hardware": "hardware",
    "export": "export",
    "schedule": "schedule",
    "simulate": "simulate",
    "calibrate": "calibrate",
    "profiles": "catalog",
    "init": "catalog",
    "schema": "catalog",
    "sweep": "sweep",
    "capacity": "capacity",
    "validate": "validate",
}


def load_commands(name: str | None = None) -> None:
    """Import the module of command ``name``, or of every command (None, or a name that is none)."""
    modules = [COMMANDS[name]] if name in COMMANDS else dict.fromkeys(COMMANDS.values())
    for module in modules:
        import_module(f"{__name__}.{module}")


def __getattr__(name: str):
    if name == "app":
        load_commands()
        return import_module(f"{__name__}.app").app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
