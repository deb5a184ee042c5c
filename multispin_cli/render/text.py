"""Turning rich renderables into text: for the terminal, or plain for files and pipes."""

from __future__ import annotations

import io
import sys

from rich.console import Console

FILE_WIDTH = 160


def render_text(renderable, *, width: int | None = None) -> str:
    """Plain text (no colour codes) of a rich renderable, as a file would hold it."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or FILE_WIDTH, color_system=None, force_terminal=False,
                      legacy_windows=False, soft_wrap=False)
    console.print(renderable)
    return buffer.getvalue()


def stdout_console() -> Console:
    """A console on the current stdout (created per call, so redirections and test runners work)."""
    return Console(file=sys.stdout)


def stderr_console() -> Console:
    """A console on stderr, for progress bars and notes."""
    return Console(file=sys.stderr)
