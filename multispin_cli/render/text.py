"""Turning rich renderables into text: for the terminal, or plain for files and pipes."""

from __future__ import annotations

import io
import sys

from rich.console import Console

FILE_WIDTH = 160


def strip_trailing(text: str) -> str:
    """Text without the spaces rich pads every line with."""
    return "\n".join(line.rstrip() for line in text.split("\n"))


def render_text(renderable, *, width: int | None = None) -> str:
    """Plain text (no colour codes) of a rich renderable, as a file would hold it."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or FILE_WIDTH, color_system=None, force_terminal=False,
                      legacy_windows=False, soft_wrap=False)
    console.print(renderable)
    return strip_trailing(buffer.getvalue())


class _StrippedLines(io.TextIOBase):
    """A text stream that drops trailing spaces from every line it passes on (for pipes and files)."""

    def __init__(self, stream):
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        if lines:
            self.stream.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self.pending:  # a line without its newline yet: pass it on as it is
            self.stream.write(self.pending)
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()


def stdout_console() -> Console:
    """A console on the current stdout (created per call, so redirections and test runners work).

    On a terminal rich writes as usual; into a pipe or file, lines carry no trailing padding."""
    stream = sys.stdout
    return Console(file=stream if stream.isatty() else _StrippedLines(stream))


def stderr_console() -> Console:
    """A console on stderr, for progress bars and notes."""
    return Console(file=sys.stderr)
