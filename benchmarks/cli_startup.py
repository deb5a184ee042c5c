"""Start-up time of the CLI (`multispin --version`) against a bare `import typer`, measured in the same run.

Shell completion is on (`--install-completion`); this checks that start-up stays light: the
difference between the two is what multispin itself adds. Run: python benchmarks/cli_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

REPEATS = 9


def median_seconds(args: list[str]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    typer_only = median_seconds([sys.executable, "-c", "import typer"])
    cli = median_seconds([sys.executable, "-m", "multispin_cli", "--version"])
    print(f"import typer          {typer_only:.3f} s")
    print(f"multispin --version   {cli:.3f} s  ({cli / typer_only:.2f}x; multispin adds {cli - typer_only:.3f} s)")


if __name__ == "__main__":
    main()
