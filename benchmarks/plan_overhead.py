"""Where `multispin plan` spends its time apart from the heterogeneous search, and the homogeneous planner.

Run: ``python benchmarks/plan_overhead.py [--users 1000 10000 100000] [--repeats 3] [--baseline DIR]
[--bytecode-cache] [--mode homogeneous|heterogeneous]``.
For each size it writes cli_scale.py's profile (users from a CSV devices_file) and prints

* the phases of one run in this process (CPU seconds, the least of the repeats): loading the
  profile, the homogeneous planner (library call), the baselines, (the heterogeneous planner,)
  plan_report, the JSON document;
* the whole command ``multispin plan P --mode MODE --format json`` as a child process (wall
  time, CPU time, peak resident memory; median and range). With ``--baseline DIR`` (a checkout of an
  older multispin, e.g. ``git worktree add /tmp/old <commit>``) the same command of that checkout
  runs interleaved with this one's, so both see the same load, and the two outputs are compared
  byte for byte. With ``--mode heterogeneous`` the child also times its heterogeneous planner
  (library call, wall and CPU), and the command's own cost is printed: its wall and CPU time less
  the planner's, run by run (the part of the command that is not the search; on a busy machine
  the CPU time is the steadier of the two).

Where ``PYTHONDONTWRITEBYTECODE`` is set (as in some sandboxes) an editable checkout compiles every
module of multispin from source on each run, which an installed package (byte-compiled by pip) never
does: ``--bytecode-cache`` lets the children cache bytecode in a temporary folder (one untimed
warm-up run first), to time the command as installed.

Timings depend on the machine and on what else runs on it: quote them with the machine and its load.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_scale import summary, write_profile  # noqa: E402

# A child that runs the CLI of the checkout at $MULTISPIN_ROOT, even where another copy is installed
# in editable mode (its import hook is dropped so that the path wins).
RUNNER = ("import os, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
          "sys.path.insert(0, os.environ['MULTISPIN_ROOT']); sys.argv[0] = 'multispin'; "
          "from multispin_cli.cli import main; main()")
# The same, with the heterogeneous planner's wall time written on stderr at exit (its module is
# imported first, to wrap it: the command imports it anyway in heterogeneous mode).
TIMED_RUNNER = ("import atexit, os, sys, time; "
                "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
                "sys.path.insert(0, os.environ['MULTISPIN_ROOT']); sys.argv[0] = 'multispin'; "
                "import multispin_cli.planners.heterogeneous as h; inner = h.plan_heterogeneous; spent = [0.0, 0.0]\n"
                "def timed(*a, **k):\n"
                "    start, cpu = time.perf_counter(), time.process_time(); out = inner(*a, **k)\n"
                "    spent[0] += time.perf_counter() - start; spent[1] += time.process_time() - cpu\n"
                "    return out\n"
                "h.plan_heterogeneous = timed; "
                "atexit.register(lambda: os.write(2, f'planner-seconds {spent[0]!r} {spent[1]!r}\\n'.encode()))\n"
                "from multispin_cli.cli import main; main()")


def phases(path: Path, repeats: int, mode: str = "homogeneous") -> dict[str, float]:
    from multispin_cli.documents.profile import load_profile
    from multispin_cli.planners.heterogeneous import plan_heterogeneous
    from multispin_cli.planners.baselines import all_baselines
    from multispin_cli.planners.homogeneous import plan_homogeneous
    from multispin_cli.planners.report import plan_report
    from multispin_cli.render.document import plan_json

    best: dict[str, float] = {}

    def timed(name, work):
        start = time.process_time()
        result = work()
        best[name] = min(best.get(name, float("inf")), time.process_time() - start)
        return result

    for _ in range(repeats):
        profile = timed("load profile", lambda: load_profile(path))
        timed("plan_homogeneous", lambda: plan_homogeneous(profile.system))
        timed("baselines", lambda: all_baselines(profile.system))
        if mode == "heterogeneous":
            timed("plan_heterogeneous", lambda: plan_heterogeneous(profile.system))
        report = timed("plan_report", lambda: plan_report(profile.system, mode=mode))
        timed("JSON document", lambda: plan_json(profile, report))
    return best


def child_env(bytecode_cache: str | None = None) -> dict[str, str]:
    """The children's environment: this one's, or with bytecode cached under ``bytecode_cache``."""
    env = dict(os.environ)
    if bytecode_cache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = bytecode_cache
    return env


def run(root: Path, args: list[str], env: dict[str, str] | None = None,
        timed: bool = False) -> tuple[float, float, float, bytes, float, float]:
    """Wall seconds, CPU seconds, peak RSS (MiB), stdout and the heterogeneous planner's wall and CPU
    seconds (``timed``; else 0) of the CLI of ``root`` as a child process."""
    env = {**(os.environ if env is None else env), "MULTISPIN_ROOT": str(root)}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", TIMED_RUNNER if timed else RUNNER, *args],
                                stdout=subprocess.PIPE, stderr=err, env=env)
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err.seek(0)
        lines = err.read().decode().splitlines()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{root}: multispin {' '.join(args)} failed")
    planner, planner_cpu = (float(x) for x in lines[-1].split()[-2:]) if timed else (0.0, 0.0)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out, planner, planner_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None, help="a checkout of an older multispin to compare")
    parser.add_argument("--bytecode-cache", action="store_true",
                        help="cache bytecode (in a temporary folder) as an installed package has it")
    parser.add_argument("--mode", choices=("homogeneous", "heterogeneous"), default="homogeneous",
                        help="the plan mode the command runs (heterogeneous: also its cost apart from the planner)")
    parser.add_argument("--phases-of", type=Path, default=None, help=argparse.SUPPRESS)  # the child that times phases
    args = parser.parse_args()
    if args.phases_of is not None:
        for name, seconds in phases(args.phases_of, args.repeats, args.mode).items():
            print(f"  {name:18s} {seconds:.3f}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(str(Path(tmp) / "pycache") if args.bytecode_cache else None)
        print("bytecode: " + ("cached (as installed)" if args.bytecode_cache else
                              "as this environment has it" + (" (PYTHONDONTWRITEBYTECODE: compiled on every run)"
                                                              if os.environ.get("PYTHONDONTWRITEBYTECODE") else "")))
        for users in args.users:
            path = write_profile(Path(tmp), users, "csv")
            print(f"\n{users:,} users, CPU seconds of each phase (least of {args.repeats}):")
            # In a child of its own: a forked child's peak memory counts this process's at the fork.
            subprocess.run([sys.executable, __file__, "--phases-of", str(path), "--repeats", str(args.repeats),
                            "--mode", args.mode], check=True)
            command = ["plan", str(path), "--mode", args.mode, "--format", "json"]
            timed = args.mode == "heterogeneous"
            roots = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
            runs: dict[str, list] = {name: [] for name in roots}
            if args.bytecode_cache:  # untimed: fills the cache
                for root in roots.values():
                    run(root, command, env)
            for _ in range(args.repeats):
                for name, root in roots.items():
                    runs[name].append(run(root, command, env, timed))
            print(f"  whole command, median (range) of {args.repeats}:")
            for name, r in runs.items():
                print(f"  {name:9s} wall {summary([x[0] for x in r], '.2f')} s, CPU {summary([x[1] for x in r], '.2f')} s, "
                      f"peak {summary([x[2] for x in r], '.0f')} MiB")
                if timed:
                    print(f"  {'':9s} planner {summary([x[4] for x in r], '.2f')} s (CPU {summary([x[5] for x in r], '.2f')}"
                          f" s); the command less its planner: wall {summary([x[0] - x[4] for x in r], '.2f')} s, "
                          f"CPU {summary([x[1] - x[5] for x in r], '.2f')} s")
            if args.baseline:
                same = runs["this"][0][3] == runs["baseline"][0][3]
                print(f"  outputs byte-identical: {same}")
                ratio = statistics.median(x[0] for x in runs["baseline"]) / statistics.median(x[0] for x in runs["this"])
                print(f"  baseline / this, wall: {ratio:.2f}")


if __name__ == "__main__":
    main()
