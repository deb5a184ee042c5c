"""Sweep throughput: cells per second for random 32-user cells, locally with 1 and 2 worker
processes and through a local Dask cluster (2 worker processes), and memory per worker.

Run: ``python benchmarks/sweep_speed.py`` (10,000 cells of 32 users, the issue's size; it takes a
while on a laptop) or ``--cells 200`` for a quick look. Needs the ``dask`` extra for the Dask row.
The cells are ``--scenarios N`` draws around a 32-user profile (users dropped in a 200 m UMi NLOS
disc, acceptance within +-0.1), the workload of a city-scale what-if. Every backend's rows are
checked to be identical to the 1-worker rows. Memory: peak resident set size of a worker process
(the 1-worker row runs in this process, so it includes the benchmark's own imports; the others
are sampled with psutil every 0.1 s, which comes with the dask extra). CPU ms per cell: the CPU
time of this process and every process below it (workers, nannies, the forkserver) over the run,
per cell: unlike cells/s it barely moves when other jobs share the cores, and its growth over the
1-worker row is what the backend itself costs. The load average before and after is printed: on
a busy machine a second worker cannot help.

The full default run (10,000 cells, three backends) takes about 10 minutes on an idle 2-core
machine (about 35 cells/s per worker); ``--cells 1000`` takes about a minute.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

from multispin_cli.analysis.scenarios import ScenarioSpec
from multispin_cli.execution.backends import InlineBackend, ProcessBackend
from multispin_cli.execution.runner import run_sweep
from multispin_cli.execution.sweep import sweep_job

PROFILE = """
[system]
name = "bench-32"
bandwidth_mhz = 20
max_draft_length = 16

[payload]
kind = "top-k"
vocab_size = 32000
top_k = 16

[server]
verify_base_ms = 40
verify_ms_per_token = 0.15
"""
DEVICE = """
[[devices]]
name = "{name}"
count = {count}
acceptance = {acceptance}
draft_ms_per_token = {draft_ms}
tx_power_dbm = 23
distance_m = 100
"""


def write_profile(folder: Path, users: int) -> Path:
    kinds = [("phone", 0.65, 6.0), ("laptop", 0.75, 4.0), ("jetson", 0.7, 4.5), ("tablet", 0.6, 3.8)]
    text = PROFILE
    for i, (name, acc, ms) in enumerate(kinds):
        count = users // len(kinds) + (1 if i < users % len(kinds) else 0)
        if count:
            text += DEVICE.format(name=name, count=count, acceptance=acc, draft_ms=ms)
    path = folder / "bench.toml"
    path.write_text(text)
    return path


class MemoryWatch:
    """Peak resident set size of each process below this one, sampled every 0.1 s (psutil)."""

    def __init__(self):
        self.peaks: dict[int, int] = {}
        self.cpu_s: dict[int, float] = {}  # the last CPU time seen of each process below this one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    with child.oneshot():
                        self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), child.memory_info().rss)
                        times = child.cpu_times()
                        self.cpu_s[child.pid] = times.user + times.system
                except psutil.Error:
                    pass
            self._stop.wait(0.1)

    def __enter__(self):
        import psutil

        self.cpu_before: dict[int, float] = {}  # processes already running (a Dask cluster): their CPU so far
        for child in psutil.Process().children(recursive=True):
            try:
                times = child.cpu_times()
                self.cpu_before[child.pid] = times.user + times.system
            except psutil.Error:
                pass
        self._thread.start()
        return self

    def cpu_s_used(self) -> float:
        """CPU seconds the processes below this one used while watched."""
        return sum(cpu - self.cpu_before.get(pid, 0.0) for pid, cpu in self.cpu_s.items())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def worker_mib(self, workers: int) -> float:
        """The largest of the ``workers`` biggest processes (the workers, not the small helpers)."""
        biggest = sorted(self.peaks.values(), reverse=True)[:workers]
        return biggest[-1] / 2**20 if biggest else float("nan")


def timed(label, backend, job, chunk_size, workers):
    start, cpu = time.perf_counter(), time.process_time()
    if workers == 0:  # in this process
        result = run_sweep(job, backend, chunk_size=chunk_size)
        mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        cpu = time.process_time() - cpu
    else:
        with MemoryWatch() as watch:
            result = run_sweep(job, backend, chunk_size=chunk_size)
        mem = watch.worker_mib(workers)
        cpu = time.process_time() - cpu + watch.cpu_s_used()
    seconds = time.perf_counter() - start
    return label, seconds, result.rows, mem, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask row")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = write_profile(Path(tmp), args.users)
        job = sweep_job(path, [], scenarios=ScenarioSpec(args.cells, seed=1))
        print(f"{args.cells} cells of {args.users} users, chunks of {args.chunk_size} cells, {os.cpu_count()} CPUs")
        load = os.getloadavg()[0]
        results = []
        results.append(timed("local, 1 worker (in process)", InlineBackend(), job, args.chunk_size, 0))
        results.append(timed("local, 2 worker processes", ProcessBackend(2), job, args.chunk_size, 2))
        if not args.no_dask:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                print("dask extra not installed: no Dask row")
            else:
                from multispin_cli.execution.backends import DaskBackend

                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
                        Client(cl) as client:
                    results.append(timed("dask LocalCluster, 2 workers", DaskBackend(client, cl.scheduler_address),
                                         job, args.chunk_size, 2))
        reference = results[0][2]
        print(f"{'backend':<32} {'seconds':>8} {'cells/s':>8} {'vs 1 worker':>11} {'CPU ms/cell':>11} "
              f"{'peak RSS/worker':>16}  same rows")
        for label, seconds, rows, mem, cpu in results:
            print(f"{label:<32} {seconds:8.2f} {args.cells / seconds:8.1f} {results[0][1] / seconds:10.2f}x "
                  f"{cpu / args.cells * 1e3:11.1f} {mem:12.0f} MiB  {rows == reference}")
        print("load average (1 min) before / after: " + " / ".join(f"{x:.1f}" for x in (load, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
