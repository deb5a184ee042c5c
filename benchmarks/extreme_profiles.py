"""Time the hypothesis run of 1,000 random extreme profiles (tests/test_extreme_inputs.py).

    python benchmarks/extreme_profiles.py

Prints the wall and CPU seconds of the run (CPU time is the fairer figure on a shared machine) and
hypothesis's statistics: how many profiles were rejected with exit 2, planned, and checked against
exhaustive search.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_extreme_inputs.py",
                    "-k", "sound_plans", "--hypothesis-show-statistics"], cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"1,000 extreme profiles: {wall:.1f} s wall, {usage.ru_utime + usage.ru_stime:.1f} s CPU "
          "(including pytest start-up, about 2 s)")


if __name__ == "__main__":
    main()
