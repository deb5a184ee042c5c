"""Why ``validate`` predicts with expected times, not medians (a benchmark, not a test).

Builds issue 14's pair (see ``validate_engine.py``; no download) and runs the engine at L = 0 and
L = 4 (``--new-tokens`` each, ``--repeats`` times, interleaved with ``validate``'s verify sweeps),
then prints, per run, the mean and the median of its verification passes at N = L + 1 and, for
each N, the runs' mean pass against the sweeps' median and expected time (outliers out, then the
mean). A run's tokens/s is its total time, so its mean pass is what a prediction has to match;
pass times are skewed to the right, so a median falls short of it. About 2 minutes of CPU on this
2-core machine (pin it to one core with ``taskset -c 1`` when others are running).

    python benchmarks/verify_pass_skew.py [--repeats 4] [--new-tokens 96] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from validate_engine import CONFIG

from multispin_cli.hardware.engine import EngineProfiler, build_pair, prompt_ids, run_engine
from multispin_cli.hardware.fit import typical_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="multispin-skew-"))
    (folder / "config.json").write_text(json.dumps(CONFIG))
    pair = build_pair(target=str(folder / "config.json"), draft=None, draft_layers=1, init_std=None, seed=args.seed)
    prompt = prompt_ids(pair, 32, args.seed)
    profiler = EngineProfiler(pair, max_draft_length=4, prompt_len=32, new_tokens=args.new_tokens,
                              seed=args.seed + 1000)
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    means: dict[int, list[float]] = {0: [], 4: []}
    for rep in range(args.repeats):
        for length in (0, 4):
            run = run_engine(pair, prompt, length, args.new_tokens)
            passes = np.array([verify for n, _, verify, _ in run.round_rows if n == length]) * 1e3
            means[length].append(float(passes.mean()))
            print(f"run {rep + 1}, L = {length}: {passes.size} passes of N = {length + 1}, mean {passes.mean():.1f} ms, "
                  f"median {np.median(passes):.1f} ms (mean {100 * (passes.mean() / np.median(passes) - 1):+.1f} %)")
            profiler.sweep_verify()
    for length in (0, 4):
        samples = np.array(profiler.verify_samples[length]) * 1e3
        runs = float(np.median(means[length]))
        print(f"N = {length + 1}: the runs' mean pass {runs:.1f} ms (median over runs); the sweeps' {samples.size} "
              f"passes: median {np.median(samples):.1f} ms ({100 * (np.median(samples) / runs - 1):+.1f} %), "
              f"expected {typical_seconds(samples):.1f} ms ({100 * (typical_seconds(samples) / runs - 1):+.1f} %)")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
