"""Where chunks run: inline, in a local process pool, or on an existing Dask cluster.

Each backend maps ``run_chunk(job, start, stop)`` over chunks and yields results as they finish
(any order: the runner sorts rows by cell). A chunk is a pure function of its cell numbers, so a
chunk lost with a worker is simply computed again elsewhere.
"""

from __future__ import annotations

import logging
import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol

from multispin_cli.errors import InputError, MissingExtraError
from multispin_cli.execution.cells import ChunkResult, SweepJob, run_chunk

CONNECT_TIMEOUT_S = 3.0


class Backend(Protocol):
    def run(self, job: SweepJob, chunks: list[range]) -> Iterator[ChunkResult]: ...


class InlineBackend:
    """This process, one chunk after another (``--workers 1``)."""

    name = "local, 1 worker"

    def run(self, job, chunks):
        for chunk in chunks:
            yield run_chunk(job, chunk.start, chunk.stop)


class ProcessBackend:
    """A pool of ``workers`` local processes (forkserver: no state inherited from the parent)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.name = f"local, {workers} workers"

    def run(self, job, chunks):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["multispin_cli.execution.cells"])
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        try:
            futures = [pool.submit(run_chunk, job, c.start, c.stop) for c in chunks]
            for future in as_completed(futures):
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def local_backend(workers: int) -> Backend:
    return InlineBackend() if workers == 1 else ProcessBackend(workers)


class DaskBackend:
    """Chunks as tasks on an existing ``dask.distributed`` cluster (the ``dask`` extra)."""

    def __init__(self, client, address: str):
        self.client = client
        self.name = f"dask scheduler {address}"

    def run(self, job, chunks):
        from distributed import as_completed as dask_completed

        tag = uuid.uuid4().hex[:12]  # keys unique to this run: never another run's cached result
        futures = [
            self.client.submit(run_chunk, job, c.start, c.stop, key=f"multispin-{tag}-cells-{c.start}-{c.stop}",
                               retries=3)
            for c in chunks
        ]
        try:
            for future in dask_completed(futures):
                yield future.result()
        finally:
            self.client.cancel(futures)


def _distributed():
    try:
        import distributed
    except ImportError:
        raise MissingExtraError("--scheduler", "dask", "distributed") from None
    return distributed


@contextmanager
def dask_backend(*, address: str | None = None, scheduler_file: Path | None = None,
                 timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[DaskBackend]:
    """Connect to a running scheduler; an unreachable one is an InputError within ``timeout_s``."""
    distributed = _distributed()
    where = address or str(scheduler_file)
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise InputError("no such scheduler file", path=scheduler_file, key="--scheduler-file")
    quiet = [logging.getLogger(n) for n in ("distributed", "distributed.client", "distributed.comm")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.CRITICAL)
    try:
        kwargs = {"address": address} if address else {"scheduler_file": str(scheduler_file)}
        try:
            client = distributed.Client(**kwargs, timeout=f"{timeout_s}s")
        except (OSError, TimeoutError, ValueError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise InputError(f"cannot reach the Dask scheduler at {where} within {timeout_s:g} s ({reason})",
                             key="--scheduler") from None
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)
    try:
        yield DaskBackend(client, client.scheduler.address)
    finally:
        client.close()
