"""Policies on a Rayleigh-fading uplink, for every shipped profile: the issue's acceptance numbers.

Run: ``python benchmarks/fading_policies.py [--rounds 50000] [--oracle-rounds 5000] [PROFILE ...]``.
For each profile (forced to ``fading = "rayleigh"``, independent rounds, no CSI delay; with
``--own-fading`` a fading profile keeps its own) it plans the adaptive rule (draws sized
automatically or ``--samples``, seed 0) and then simulates, with another seed (1) and common random
numbers, every plan under its policies: the static plans, adaptive-split, adaptive, the oracle
(fewer rounds: its per-round search is costly), autoregressive and the baselines. It prints a
markdown table with 95 % intervals, the adaptive plan's prediction error, its ratio to the oracle,
and the planning wall time. Timings are wall-clock on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from multispin_cli.analysis.simulation import SimulationOptions, simulate_controlled
from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.profile import load_profile
from multispin_cli.model.fading import Fading
from multispin_cli.planners.policies import Controller
from multispin_cli.planners.report import plan_report


def run(path, rounds: int, oracle_rounds: int, samples: int | None, own_fading: bool) -> list[str]:
    loaded = load_profile(path)
    system = loaded.system
    if not (own_fading and system.fades):
        system = replace(system, fading=Fading.uniform(system.users, "rayleigh"))
    start = time.perf_counter()
    report = plan_report(system, samples=samples, seed=0)
    plan_s = time.perf_counter() - start
    ad = report.adaptive
    opts = SimulationOptions(rounds=rounds, seed=1, fading="profile",
                             correlation_round_s=report.homogeneous.evaluation.round_s)
    entries = []
    for p in report.plans:
        ev = p.evaluation
        entries.append((f"static {p.name}", Controller("static", ev.draft_lengths, ev.bandwidth_hz), ev, opts))
        entries.append((f"adaptive-split {p.name}", Controller("adaptive-split", ev.draft_lengths, ev.bandwidth_hz),
                        ev, opts))
    entries.append(("adaptive", ad.control, ad.expected, opts))
    entries.append(("oracle", ad.oracle_control, ad.expected, replace(opts, rounds=oracle_rounds)))
    for name, p in report.baselines.items():
        ev = p.evaluation
        entries.append((name, Controller("static", ev.draft_lengths, ev.bandwidth_hz), ev, opts))
    results = {}
    for name, control, predicted, o in entries:
        t = time.perf_counter()
        results[name] = (simulate_controlled(system, control, predicted, o, name=name), time.perf_counter() - t)
    label = "its own fading" if own_fading and loaded.system.fades else "Rayleigh fading"
    lines = [f"### {loaded.name} ({system.users} users), {label}", "",
             f"planning {plan_s:.1f} s wall ({ad.samples} draws, wait limit {ad.control.wait_factor:g}); "
             f"adaptive predicted {ad.goodput_tokens_per_s:,.1f} tok/s "
             f"(oracle in planning {ad.oracle_tokens_per_s:,.1f} on {ad.oracle_samples} draws)", "",
             "| policy | rounds | simulated tok/s | 95 % CI | sim wall s |", "|---|---:|---:|---:|---:|"]
    for name, (r, secs) in results.items():
        low, high = r.ci95_tokens_per_s
        lines.append(f"| {name} | {r.options.rounds:,} | {r.goodput_tokens_per_s:,.1f} | {low:,.1f}-{high:,.1f} "
                     f"| {secs:.1f} |")
    a = results["adaptive"][0].goodput_tokens_per_s
    o = results["oracle"][0].goodput_tokens_per_s
    others = {n: r.goodput_tokens_per_s for n, (r, _) in results.items() if n not in ("adaptive", "oracle")}
    worst = max(others, key=others.get)
    lines += ["", f"adaptive / oracle = {100 * a / o:.2f} %; adaptive vs best other ({worst}): "
              f"{100 * (a / others[worst] - 1):+.2f} %; prediction error {100 * (ad.goodput_tokens_per_s / a - 1):+.2f} %",
              ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profiles", nargs="*")
    parser.add_argument("--rounds", type=int, default=50_000)
    parser.add_argument("--oracle-rounds", type=int, default=5_000)
    parser.add_argument("--samples", type=int, default=None, help="fading draws (default: automatic)")
    parser.add_argument("--own-fading", action="store_true",
                        help="keep a fading profile's own fading (correlation, CSI delay) instead of Rayleigh")
    args = parser.parse_args()
    paths = args.profiles or sorted(str(p) for p in profiles_dir().glob("*.toml"))
    for path in paths:
        print("\n".join(run(path, args.rounds, args.oracle_rounds, args.samples, args.own_fading)), flush=True)


if __name__ == "__main__":
    main()
