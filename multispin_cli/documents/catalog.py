"""Where the shipped TOML files live: example profiles, the model catalog, the hardware catalog.

In a source checkout (or an editable install) they are the repository's ``profiles/`` folder; in
an installed wheel they are package data under ``multispin_cli/profiles``. Both look the same.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def profiles_dir() -> Path:
    """The folder holding the shipped profiles, ``models/`` and ``hardware/``."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "profiles").is_dir():
        return root / "profiles"
    return Path(str(files("multispin_cli") / "profiles"))
