"""Gap between the heterogeneous plan and its proven upper bound on random cells with a measured
``verify_table`` (issue 12, item 6). A benchmark, not a test.

    python benchmarks/bound_gap.py [--cells 60] [--seed 0] [--falling]

Each cell: 16-50 users of :func:`multispin_cli.model.synthetic.busy_cell` (L_max 8-16) whose server
time is a table like profile-hardware's: 6-10 measured points between N = 1 and K (L_max + 1), the
time rising by steps (monotone; with --falling some points dip, as CPU tables do). Prints the gap
``bound / plan - 1`` (percent) quantiles and the planner's time. Run it on two checkouts to compare.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from multispin_cli.model.synthetic import busy_cell
from multispin_cli.model.verifier import VerifyTime
from multispin_cli.planners.heterogeneous import plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous


def table_cell(rng: np.random.Generator, falling: bool):
    users = int(rng.integers(16, 51))
    max_len = int(rng.integers(8, 17))
    cell = busy_cell(rng, users, max_len=max_len)
    top = users * (max_len + 1)
    points = int(rng.integers(6, 11))
    n = np.unique(np.concatenate([[1, users], np.round(np.geomspace(2, top, points))])).astype(float)
    slope = rng.uniform(0.5, 2.0) * 0.02 / users
    seconds = 0.03 + slope * n * rng.uniform(0.85, 1.15, n.size)
    seconds = np.maximum.accumulate(seconds)
    if falling:
        dips = rng.random(n.size) < 0.3
        seconds = np.where(dips, seconds * rng.uniform(0.8, 0.97, n.size), seconds)
    return replace(cell, verify=VerifyTime.from_table(n, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--falling", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    gaps, times = [], []
    for _ in range(args.cells):
        system = table_cell(rng, args.falling)
        start = time.perf_counter()
        plan = plan_heterogeneous(system, start=plan_homogeneous(system))
        times.append(time.perf_counter() - start)
        gaps.append(100 * (plan.upper_bound_tokens_per_s / plan.goodput_tokens_per_s - 1))
    gaps = np.array(gaps)
    q = np.percentile(gaps, [50, 90, 100])
    print(f"{args.cells} cells (seed {args.seed}{', falling tables' if args.falling else ''}): gap to the bound "
          f"median {q[0]:.3f} %, p90 {q[1]:.3f} %, max {q[2]:.3f} %; share under 0.1 %: "
          f"{np.mean(gaps < 0.1):.0%}; plan time median {np.median(times) * 1e3:.0f} ms, max {max(times) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
