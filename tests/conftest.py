"""Fixtures shared by the tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from builders import MINIMAL_PROFILE


@pytest.fixture
def write_profile(tmp_path: Path):
    """Write profile text (dedented) to a file and return its path."""

    def write(text: str = MINIMAL_PROFILE, name: str = "profile.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
