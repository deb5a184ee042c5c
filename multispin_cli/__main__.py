"""`python -m multispin_cli` runs the command-line interface."""

from multispin_cli.cli import main

main()
