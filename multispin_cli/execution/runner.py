"""Run a sweep: split the cells into chunks, skip the chunks already stored, run the rest on a
backend, and return the rows in cell order (identical whatever the backend, workers and chunking)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Callable

from multispin_cli import __version__
from multispin_cli.documents.chunks import ChunkStore
from multispin_cli.errors import InputError
from multispin_cli.execution.backends import Backend
from multispin_cli.execution.cells import ChunkResult, SweepJob

DEFAULT_CHUNK_SIZE = 16


@dataclass(frozen=True)
class SweepResult:
    """The valid cells' rows in cell order, the skipped cells' messages, and chunk counts."""

    rows: list[dict]
    invalid: list[tuple[int, str]]
    chunks: int
    resumed_chunks: int


def run_description(job: SweepJob) -> dict:
    """What identifies a run's results (for `--resume`): everything but where and how it runs."""
    return {
        "multispin_version": __version__,
        "profile": job.path,
        "base": json.loads(json.dumps(job.base, default=str)),
        "axes": [[a.key, list(a.values)] for a in job.grid.axes],
        "scenarios": asdict(job.scenarios) if job.scenarios is not None else None,
        "mode": job.mode,
        "inputs": [list(pair) for pair in job.inputs],
    }


def run_sweep(job: SweepJob, backend: Backend, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
              store: ChunkStore | None = None, skip_invalid: bool = False,
              progress: Callable[[int], None] | None = None) -> SweepResult:
    """All cells of ``job``; an invalid cell stops the run (an InputError naming it) unless
    ``skip_invalid``, in which case it is left out of the rows and listed in ``invalid``."""
    chunks = job.grid.chunks(chunk_size)
    done: dict[int, ChunkResult] = {}
    todo = []
    for chunk in chunks:
        stored = store.load(chunk.start, chunk.stop) if store is not None else None
        if stored is not None:
            done[chunk.start] = ChunkResult(chunk.start, stored["rows"], [tuple(x) for x in stored["invalid"]])
            if progress:
                progress(len(chunk))
        else:
            todo.append(chunk)
    resumed = len(done)
    if not skip_invalid:
        _stop_on_invalid(done.values())
    if todo:
        stops = {c.start: c.stop for c in todo}
        results = backend.run(job, todo)
        try:
            first_bad = None  # the first chunk with an invalid cell, once every chunk before it is in
            for result in results:
                if store is not None:
                    store.save(result.start, stops[result.start], {"rows": result.rows, "invalid": result.invalid})
                done[result.start] = result
                if progress:
                    progress(len(result.rows) + len(result.invalid))
                if result.invalid and not skip_invalid:
                    first_bad = result.start if first_bad is None else min(first_bad, result.start)
                if first_bad is not None and all(c.start in done for c in todo if c.start < first_bad):
                    # the lowest invalid cell of the whole sweep, whatever order the chunks finished in
                    _stop_on_invalid([done[first_bad]])
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
    rows = [row for start in sorted(done) for row in done[start].rows]
    invalid = sorted(cell for result in done.values() for cell in result.invalid)
    return SweepResult(rows, invalid, len(chunks), resumed)


def _stop_on_invalid(results) -> None:
    invalid = sorted(cell for result in results for cell in result.invalid)
    if invalid:
        raise InputError(f"{invalid[0][1]} (--skip-invalid leaves such cells out)")
