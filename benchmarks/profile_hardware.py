"""Issue 4's targets for `multispin profile-hardware` on this machine (a benchmark, not a test).

Runs the default pair (llama-68m drafting for llama-2-7b) with the default grid and with --quick,
each in a fresh process, and prints wall time, peak memory, the draft and verification timings, the
fit quality and the roofline ratios, then the A100-80GB estimate of the same pair beside them.

    python benchmarks/profile_hardware.py [--runs N]

Targets: default < 60 s, --quick < 15 s, peak RSS < 4 GiB, decode within 2x of weights / bandwidth.
Timings vary with whatever else the machine runs: measure on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PAIR = ["--draft", "llama-68m", "--target", "llama-2-7b"]


def run(extra: list[str]) -> tuple[dict, float]:
    """One CLI run in a fresh process: its JSON document and the wall time seen from outside."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "multispin_cli", "profile-hardware", *PAIR, "--format", "json",
                           *extra], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"profile-hardware failed ({done.returncode}): {done.stderr.strip()}")
    for line in done.stderr.splitlines():
        print(f"  stderr: {line}")
    return json.loads(done.stdout), wall


def summary(label: str, doc: dict, wall: float | None) -> None:
    server, draft, m = doc["server"], doc["draft"], doc["measurement"]
    target, dm = m["target"], m["draft"]
    print(f"{label}")
    if wall is not None:
        print(f"  wall {wall:.1f} s (in-process {m.get('wall_s')} s), peak RSS {m.get('peak_rss_gib')} GiB "
              f"(planned {m.get('memory_planned_gib')} GiB), load average at start {os.getloadavg()[0]:.2f}")
        print(f"  machine: {m.get('local_memory_bandwidth_gb_per_s')} GB/s, {m.get('local_matmul_gflop_per_s')} "
              f"GFLOP/s float32")
    print(f"  draft {dm['model']}: {draft['draft_ms_per_token']} ms/token + {draft['draft_overhead_ms']} ms/round "
          f"(R^2 {dm['fit_r2']}); roofline {dm.get('roofline_ms_per_token')} ms/token"
          + (f", measured/roofline {dm['measured_vs_roofline']}" if "measured_vs_roofline" in dm else ""))
    print(f"  target {target['model']}: decode {target['decode_ms']} ms; weights {target['weights_gib']} GiB; "
          f"bandwidth bound {target.get('bandwidth_bound_ms')} ms; ratio {target.get('decode_vs_bandwidth_bound')}"
          + (f"; decode/roofline {target['decode_vs_roofline']}" if "decode_vs_roofline" in target else ""))
    table = server["verify_table"]
    print(f"  verify: {server['verify_base_ms']} + {server['verify_ms_per_token']} N ms, R^2 {server['verify_r2']} "
          f"-> {server['verify_model']}; table {table[0]} .. {table[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs of each configuration")
    args = parser.parse_args()
    for label, extra, limit in (("default", [], 60.0), ("--quick", ["--quick"], 15.0)):
        for i in range(args.runs):
            doc, wall = run(extra)
            summary(f"{label} run {i + 1}", doc, wall)
            rss = doc["measurement"].get("peak_rss_gib") or 0
            ratio = doc["measurement"]["target"].get("decode_vs_bandwidth_bound") or 0
            verdict = "ok" if wall < limit and rss < 4 and ratio < 2 else "MISSED"
            print(f"  targets (< {limit:g} s, < 4 GiB, ratio < 2): {verdict}")
    doc, _ = run(["--estimate", "A100-80GB"])
    summary("estimate on A100-80GB (roofline)", doc, None)


if __name__ == "__main__":
    main()
