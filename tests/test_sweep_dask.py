"""`multispin sweep --scheduler`: a real Dask scheduler and workers, started here as processes on
127.0.0.1, give the same bytes as the local run, also when a worker is killed mid-sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import assert_one_line_error, invoke

pytest.importorskip("distributed", reason="the dask extra (dask.distributed) is not installed")

GRID = ("--set", "devices.fast.count=1..6", "--set", "system.bandwidth_mhz=1,4")
BIG = ("--set", "devices.fast.count=40..55")  # slower cells: room to kill a worker mid-sweep


class Cluster:
    """A scheduler and named workers (no nanny: a killed worker stays dead), each its own process."""

    def __init__(self, folder: Path, workers: int):
        self.file = folder / "scheduler.json"
        self.procs: dict[str, subprocess.Popen] = {}
        try:
            self._launch(folder, workers)
        except BaseException:
            self.stop()
            raise

    def _launch(self, folder: Path, workers: int) -> None:
        self._start("scheduler", ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(self.file)], folder)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                json.loads(self.file.read_text())["address"]
                break
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        for i in range(workers):
            self._start(f"w{i}", ["distributed.cli.dask_worker", "--scheduler-file", str(self.file), "--nthreads",
                                  "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}"], folder)
        from distributed import Client

        with Client(scheduler_file=str(self.file), timeout="60s", set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
        self.address = json.loads(self.file.read_text())["address"]

    def _start(self, name: str, args: list[str], folder: Path) -> None:
        with open(folder / f"{name}.log", "wb") as log:  # the child keeps its own copy of the handle
            self.procs[name] = subprocess.Popen([sys.executable, "-m", *args], stdout=log,
                                                stderr=subprocess.STDOUT, cwd=folder)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    running = Cluster(folder, workers=2)
    try:
        yield running
    finally:
        running.stop()


def test_dask_run_gives_the_local_runs_bytes(write_profile, cluster):
    path = write_profile()
    local = invoke("sweep", path, *GRID, "-f", "csv", "--workers", "1")
    by_address = invoke("sweep", path, *GRID, "-f", "csv", "--scheduler", cluster.address, "--chunk-size", "5")
    by_file = invoke("sweep", path, *GRID, "-f", "csv", "--scheduler-file", cluster.file, "--chunk-size", "1")
    assert local.exit_code == by_address.exit_code == by_file.exit_code == 0, by_address.stderr
    assert by_address.stdout == local.stdout == by_file.stdout and local.stdout.count("\n") == 13
    assert by_address.stderr == ""


def test_unreachable_scheduler_is_one_line_within_seconds(write_profile):
    start = time.monotonic()
    result = invoke("sweep", write_profile(), "--scheduler", "tcp://127.0.0.1:9", "-f", "csv")
    assert time.monotonic() - start < 10
    assert_one_line_error(result, "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 3 s")


def test_missing_scheduler_file_is_an_input_error(write_profile, tmp_path):
    result = invoke("sweep", write_profile(), "--scheduler-file", tmp_path / "none.json")
    assert_one_line_error(result, "no such scheduler file")


def test_killing_a_worker_mid_sweep_still_gives_every_row(write_profile, tmp_path, cluster):
    # Runs on the module's cluster (the other tests pass with the one worker left, in any order).
    path = write_profile()
    expected = invoke("sweep", path, *BIG, "-f", "csv", "--workers", "1").stdout
    out = tmp_path / "rows.csv"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "multispin_cli", "sweep", str(path), *BIG, "-f", "csv", "-o", str(out),
         "--scheduler-file", str(cluster.file), "--chunk-size", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "80"})
    try:
        parts = Path(f"{out}.parts")
        deadline = time.monotonic() + 60
        while not list(parts.glob("cells-*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        done_at_kill = len(list(parts.glob("cells-*")))
        cluster.kill("w0")
        assert sweep.poll() is None and 1 <= done_at_kill < 16, ("the kill did not land mid-sweep",
                                                                 done_at_kill, sweep.poll())
        stdout, stderr = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
        sweep.communicate()
    assert sweep.returncode == 0, stderr.decode()
    assert stdout == b""
    assert out.read_text() == expected
    assert not parts.exists()
