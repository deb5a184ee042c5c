"""Whole-process cost of `multispin plan` at city scale: wall time, CPU time and peak memory.

Run: ``python benchmarks/cli_scale.py [--users 1000 10000 100000] [--repeats 3] [--source csv|toml]``.
For each size it writes a profile of that many distinct users (half fixed-SNR, half power-limited,
acceptance 0.4-0.95, 1-10 ms per draft token, L_max 16, 200 kHz of band per user), either as
``[[devices]]`` tables or as a ``devices_file`` CSV next to a small profile, then times

    python -m multispin_cli plan P --mode heterogeneous --format json
    python -m multispin_cli plan P --mode homogeneous --format json

as child processes (wall time, user + system CPU and peak resident memory from ``wait4``), and
prints the median and range over the repeats as a Markdown table. ``--bytecode-cache`` lets the
children cache bytecode in a temporary folder (one untimed warm-up run first): where
``PYTHONDONTWRITEBYTECODE`` is set, an editable checkout otherwise compiles every multispin module
on each run, which an installed (pip byte-compiled) package never does. Timings depend on the
machine and on what else runs on it: quote them with the machine and its load. The last column,
``pace``, is the seconds a fixed pure-Python loop took just before the row (``timing.pace``): the
development VM's CPU speed drifts by up to 2x over minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import pace  # benchmarks/timing.py (run as python benchmarks/NAME.py)

HEADER = """[system]
name = "city-{users}"
bandwidth_mhz = {bandwidth_mhz}
max_draft_length = 16
downlink_ms = 2

[payload]
kind = "bits"
bits_per_token = 500
header_bits = 100

[server]
verify_base_ms = 30
verify_ms_per_token = {slope_ms}
"""

COLUMNS = ("name", "acceptance", "draft_ms_per_token", "draft_overhead_ms", "snr_db", "tx_power_dbm", "path_loss_db")


def population(users: int, seed: int = 13) -> dict[str, np.ndarray]:
    """Distinct users, drawn like the synthetic busy cell: a column per device key."""
    rng = np.random.default_rng(seed)
    pl = rng.random(users) < 0.5
    return {
        "name": np.array([f"u{i}" for i in range(users)]),
        "acceptance": np.round(rng.uniform(0.4, 0.95, users), 4),
        "draft_ms_per_token": np.round(10 ** rng.uniform(0, 1, users), 4),
        "draft_overhead_ms": np.round(rng.uniform(0, 3, users), 4),
        "snr_db": np.where(pl, np.nan, np.round(rng.uniform(0, 25, users), 3)),
        "tx_power_dbm": np.where(pl, 23.0, np.nan),
        "path_loss_db": np.where(pl, np.round(rng.uniform(122, 147, users), 3), np.nan),
    }


def write_profile(folder: Path, users: int, source: str) -> Path:
    cols = population(users)
    head = HEADER.format(users=users, bandwidth_mhz=users * 0.2, slope_ms=20 / users)
    path = folder / f"city-{users}-{source}.toml"
    if source == "csv":
        csv = folder / f"city-{users}.csv"
        lines = [",".join(COLUMNS)]
        for i in range(users):
            lines.append(",".join("" if (isinstance(cols[c][i], float) and np.isnan(cols[c][i])) else str(cols[c][i])
                                  for c in COLUMNS))
        csv.write_text("\n".join(lines) + "\n")
        path.write_text(f'devices_file = "{csv.name}"\n\n' + head)
        return path
    parts = [head]
    for i in range(users):
        entry = [f'[[devices]]\nname = "{cols["name"][i]}"']
        for c in COLUMNS[1:]:
            v = cols[c][i]
            if not np.isnan(v):
                entry.append(f"{c} = {v}")
        parts.append("\n".join(entry))
    path.write_text("\n\n".join(parts) + "\n")
    return path


def run(command: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def child_env(bytecode_cache: str | None = None) -> dict[str, str] | None:
    """The children's environment: this one's (None), or with bytecode cached under ``bytecode_cache``."""
    if bytecode_cache is None:
        return None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = bytecode_cache
    return env


def summary(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    return f"{med:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--source", choices=("csv", "toml"), default="csv",
                        help="users as a devices_file CSV (default) or as [[devices]] tables")
    parser.add_argument("--bytecode-cache", action="store_true",
                        help="cache bytecode (in a temporary folder) as an installed package has it")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout of an older multispin: time its heterogeneous plan of the same "
                             "[[devices]] profile too, runs interleaved with this one's so both see the same load")
    args = parser.parse_args()
    if args.baseline is not None:
        compare(args)
        return
    bytecode = "cached" if args.bytecode_cache else "as this environment has it"
    print(f"users from {args.source}; bytecode {bytecode}; median (range) of {args.repeats} runs\n")
    print("| users | heterogeneous, whole process s | CPU s | peak memory MiB | homogeneous s | its CPU s "
          "| its peak MiB | pace s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(str(Path(tmp) / "pycache") if args.bytecode_cache else None)
        for users in args.users:
            path = write_profile(Path(tmp), users, args.source)
            base = [sys.executable, "-m", "multispin_cli", "plan", str(path), "--format", "json", "--mode"]
            if args.bytecode_cache and users == args.users[0]:
                run(base + ["homogeneous"], env)  # untimed: fills the cache
            speed = pace()  # the VM's CPU speed drifts: a fixed Python loop's time, beside the row
            het = [run(base + ["heterogeneous"], env) for _ in range(args.repeats)]
            hom = [run(base + ["homogeneous"], env) for _ in range(args.repeats)]
            print(f"| {users:,} | {summary([h[0] for h in het], '.2f')} | {summary([h[1] for h in het], '.2f')} "
                  f"| {summary([h[2] for h in het], '.0f')} | {summary([h[0] for h in hom], '.2f')} "
                  f"| {summary([h[1] for h in hom], '.2f')} | {summary([h[2] for h in hom], '.0f')} | {speed:.3f} |",
                  flush=True)


def compare(args) -> None:
    """Before and after on the same profiles, interleaved: the older checkout reads [[devices]]."""
    print(f"heterogeneous plan, whole process; median (range) of {args.repeats} interleaved runs\n")
    print("| users | before: [[devices]] s | CPU s | MiB | after: [[devices]] s | CPU s | MiB "
          "| after: devices_file s | CPU s | MiB | CPU before / after (CSV) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    old_env = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        for users in args.users:
            toml = write_profile(Path(tmp), users, "toml")
            csv = write_profile(Path(tmp), users, "csv")
            tail = ["--format", "json", "--mode", "heterogeneous"]
            cmd = [sys.executable, "-m", "multispin_cli", "plan"]
            runs = {"before": [], "toml": [], "csv": []}
            for _ in range(args.repeats):
                runs["before"].append(run(cmd + [str(toml)] + tail, env=old_env))
                runs["toml"].append(run(cmd + [str(toml)] + tail))
                runs["csv"].append(run(cmd + [str(csv)] + tail))
            cells = []
            for key in ("before", "toml", "csv"):
                r = runs[key]
                cells += [summary([x[0] for x in r], ".2f"), summary([x[1] for x in r], ".2f"),
                          summary([x[2] for x in r], ".0f")]
            ratio = statistics.median(x[1] for x in runs["before"]) / statistics.median(x[1] for x in runs["csv"])
            print(f"| {users:,} | " + " | ".join(cells) + f" | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
