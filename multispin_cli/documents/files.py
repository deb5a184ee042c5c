"""Reading input files within limits: regular files only, of bounded size, parsed without recursing
without end.

Every file multispin reads (profiles, the fragments they include, plan files, metrics and histogram
files, model configs) goes through here, so a path to ``/dev/zero``, a named pipe with no writer or
a 10 GB file ends at once with one clear error instead of hanging or exhausting memory, and a
deeply nested document is an error, not a ``RecursionError``.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from multispin_cli.errors import InputError

_READS: ContextVar[list[Path] | None] = ContextVar("multispin_reads", default=None)

MAX_FILE_BYTES = 16 * 2**20  # 16 MiB: far above any profile, plan or metrics file (4,096 users: ~2 MB)
MAX_NESTING = 64  # arrays and tables inside each other; multispin's own files nest at most 5 deep


@contextmanager
def recording_reads():
    """Collect the path of every file read inside the block: what a loaded profile depends on
    (the profile, its fragments, its devices file), for a sweep's ``--resume`` to fingerprint."""
    token = _READS.set([])
    try:
        yield _READS.get()
    finally:
        _READS.reset(token)


def note_read(path: str | Path) -> None:
    """Record a file read by a reader that does not go through :func:`read_bytes`."""
    seen = _READS.get()
    if seen is not None:
        seen.append(Path(path))


def digests(paths) -> tuple[tuple[str, str], ...]:
    """``(path, sha256 of its bytes)`` of each distinct file, in the order first read."""
    import hashlib  # here: its OpenSSL costs every run a few ms, and only some commands hash files

    out = {}
    for path in paths:
        if str(path) not in out:
            out[str(path)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return tuple(out.items())


def read_bytes(path: str | Path, error: type[InputError] = InputError, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``error`` (path named) otherwise.

    The file is opened without blocking (a named pipe without a writer does not hang) and checked
    to be a regular file before anything is read (``/dev/zero`` is refused, not read forever).
    """
    path = Path(path)
    note_read(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error("no such file", path=path) from None
    except IsADirectoryError:
        raise error("is a directory, not a file", path=path) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error("is a directory, not a file", path=path)
        if not stat.S_ISREG(info.st_mode):
            kind = "a named pipe" if stat.S_ISFIFO(info.st_mode) else (
                "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a regular file")
            raise error(f"cannot read: {kind}; give a regular file", path=path)
        if info.st_size > limit:
            raise error(f"too large ({info.st_size:,} bytes; the limit is {limit:,})", path=path)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", path=path) from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while being read
        raise error(f"too large (more than {limit:,} bytes)", path=path)
    return data


def read_text(path: str | Path, error: type[InputError] = InputError, *, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file (see :func:`read_bytes`)."""
    data = read_bytes(path, error, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error("not UTF-8 text", path=path) from None


def nesting_depth(text: str) -> int:
    """How deeply brackets and braces nest in TOML or JSON text, counted as if none were inside a
    string (vectorised: a 16 MiB file takes milliseconds)."""
    codes = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    step = np.isin(codes, _OPENERS).astype(np.int64) - np.isin(codes, _CLOSERS)
    return int(np.cumsum(step).max(initial=0))


_OPENERS = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSERS = np.frombuffer(b"]}", dtype=np.uint8)


def _check_nesting(text: str, path, error: type[InputError]) -> None:
    # Brackets inside strings can only make the count larger or (an unmatched closer in a string)
    # smaller; a document that slips past still ends in a caught RecursionError, not a traceback.
    if nesting_depth(text) > MAX_NESTING:
        raise error(f"nested more than {MAX_NESTING} levels deep", path=path)


def parse_toml(text: str, path, error: type[InputError] = InputError) -> dict:
    """TOML text as a dict; ``error`` with the line for bad TOML or nesting beyond MAX_NESTING."""
    _check_nesting(text, path, error)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"invalid TOML: {exc}", path=path) from None
    except RecursionError:
        raise error(f"nested more than {MAX_NESTING} levels deep", path=path) from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(text: str, path, error: type[InputError] = InputError):
    """JSON text (strict: no NaN or Infinity); ``error`` for bad JSON or nesting beyond MAX_NESTING."""
    _check_nesting(text, path, error)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc}", path=path) from None
    except ValueError as exc:
        raise error(f"invalid JSON: {exc}", path=path) from None
    except RecursionError:
        raise error(f"nested more than {MAX_NESTING} levels deep", path=path) from None
