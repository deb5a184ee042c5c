"""A population of users from a file: ``devices_file = "users.csv"`` (or ``.parquet``) in a profile.

One row per user, one column per ``[[devices]]`` key, named as in the profile (units in the names).
This module only reads the file into columns; :mod:`multispin_cli.documents.profile` validates them
with the same key specs and bounds as ``[[devices]]`` entries, a whole column at a time.

CSV is read with the standard library (comma-separated, a header line, RFC 4180 quoting); an empty
cell means "not set" (the key's default). Parquet needs the optional ``parquet`` extra (pyarrow).
"""

from __future__ import annotations

import difflib
import gc
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multispin_cli.documents.files import note_read
from multispin_cli.errors import MissingExtraError, ProfileError

SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True, eq=False)
class Columns:
    """A file's users as columns: lists of strings (``""`` where empty) or arrays of numbers (Parquet,
    NaN where null).

    ``csv_lines``: error messages also give the line in the file where the row starts.
    """

    path: Path
    rows: int
    values: dict[str, list[str] | np.ndarray]
    csv_lines: bool = False

    def where(self, row: int, column: str) -> str:
        """How an error message names a cell: its row (counted from 1 after the header) and column."""
        line = f" (line {_line_of(self.path, row)})" if self.csv_lines else ""
        return f"row {row + 1}{line}, column {column}"


def _line_of(path: Path, row: int) -> int:
    """The line where data row ``row`` (from 0, blank lines skipped) starts; read again, for errors only."""
    import csv

    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        start, seen = reader.line_num + 1, -1
        for fields in reader:
            if fields:
                seen += 1
                if seen == row:
                    return start
            start = reader.line_num + 1
    return start


def read_columns(path: Path, allowed: tuple[str, ...]) -> Columns:
    """Read a CSV or Parquet file of users; columns must be among ``allowed`` (the device keys)."""
    note_read(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ProfileError(f"a devices file must be .csv or .parquet, got '{path.suffix or path.name}'", path=path)
    if not path.exists():
        raise ProfileError("no such file", path=path)
    if path.is_dir():
        raise ProfileError("is a directory, not a devices file", path=path)
    columns = _read_parquet(path) if suffix != ".csv" else _read_csv(path)
    for name in columns.values:
        if name not in allowed:
            hint = difflib.get_close_matches(name, list(allowed), n=1)
            more = f" (did you mean '{hint[0]}'?)" if hint else f"; known columns: {', '.join(allowed)}"
            raise ProfileError(f"unknown column{more}", path=path, key=f"column {name}")
    if columns.rows == 0:
        raise ProfileError("has no users (a header and at least one row are needed)", path=path)
    return columns


def _read_csv(path: Path) -> Columns:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ProfileError("not UTF-8 text", path=path) from None
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror}", path=path) from None
    lines = [line for line in text.splitlines() if line]  # blank lines carry no user
    if not lines:
        raise ProfileError("is empty (a header line naming the columns is needed)", path=path)
    if '"' not in text:
        # No quoting: every line is its cells joined by commas, so one split gives all cells and a
        # slice each column (no list per row: 100,000 users in a few tens of milliseconds).
        header = lines[0].split(",")
        width = len(header)
        rows = lines[1:]
        if text.count(",") == (width - 1) * len(lines):
            cells = ",".join(rows).split(",") if rows else []
            if len(cells) == width * len(rows):
                _check_header(path, header)
                values = {name.strip(): cells[j::width] for j, name in enumerate(header)}
                return Columns(path, len(rows), values, csv_lines=True)
    # Quoted cells, or a row of the wrong width: the csv module (and the row to blame).
    import csv

    gc_was_on = gc.isenabled()
    gc.disable()  # a list per row: the collector would otherwise scan them over and over
    try:
        records = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except csv.Error as exc:
        raise ProfileError(f"invalid CSV: {exc}", path=path) from None
    finally:
        if gc_was_on:
            gc.enable()
    header, rows = records[0], records[1:]
    _check_header(path, header)
    width = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(width != len(header))
    if bad.size:
        i = int(bad[0])
        raise ProfileError(f"has {width[i]} fields, the header has {len(header)}", path=path,
                           key=f"row {i + 1} (line {_line_of(path, i)})")
    columns = list(zip(*rows)) if rows else [()] * len(header)
    values = {name.strip(): list(column) for name, column in zip(header, columns)}
    return Columns(path, len(rows), values, csv_lines=True)


def _check_header(path: Path, header: list[str]) -> None:
    seen = set()
    for i, name in enumerate(name.strip() for name in header):
        if not name:
            raise ProfileError(f"column {i + 1} of the header has no name", path=path)
        if name in seen:
            raise ProfileError("appears twice in the header", path=path, key=f"column {name}")
        seen.add(name)


def _read_parquet(path: Path) -> Columns:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("reading devices from Parquet", "parquet", "pyarrow") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own error types for unreadable files
        raise ProfileError(f"invalid Parquet: {exc}", path=path) from None
    import pyarrow as pa

    values = {}
    for name, column in zip(table.column_names, table.columns):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            values[name] = column.to_numpy(zero_copy_only=False).astype(float)  # nulls become NaN
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            values[name] = column.fill_null("").to_pylist()
        else:
            raise ProfileError(f"must hold numbers or strings, got Parquet type {kind}", path=path,
                               key=f"column {name}")
    return Columns(path, table.num_rows, values)
