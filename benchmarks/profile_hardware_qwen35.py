"""`multispin profile-hardware` for the Multi-SPIN paper's hybrid pair, Qwen3.5-0.8B drafting for
Qwen3.5-27B (a benchmark, not a test).

Runs `--quick` in a fresh process and prints its wall time, peak memory, the fitted draft and
verification timings and the roofline ratios, then the A100-80GB estimate of the same pair.

    python benchmarks/profile_hardware_qwen35.py [--runs N] [--full]

The numpy backend holds the 27B target's LM head (5 GB in float32) and one layer of each kind
(about 1.5 GB each) in memory: about 9 GiB in all. Timings vary with whatever else the machine
runs: measure on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import profile_hardware as base  # noqa: E402  (the issue-4 benchmark's runner and summary)

base.PAIR[:] = ["--draft", "qwen3.5-0.8b", "--target", "qwen3.5-27b"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs of each configuration")
    parser.add_argument("--full", action="store_true", help="also run the default (not --quick) grid")
    args = parser.parse_args()
    configs = [("--quick", ["--quick"])] + ([("default", [])] if args.full else [])
    for label, extra in configs:
        for i in range(args.runs):
            doc, wall = base.run(extra)
            base.summary(f"{label} run {i + 1}", doc, wall)
    doc, _ = base.run(["--estimate", "A100-80GB"])
    base.summary("estimate on A100-80GB (roofline)", doc, None)


if __name__ == "__main__":
    main()
