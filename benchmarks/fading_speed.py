"""Per-round decision time of the fading policies, and planning time under fading.

Run: ``python benchmarks/fading_speed.py [--users 64 1000] [--samples N] [--no-plan]`` (draws: automatic
unless ``--samples``).

* decision: one round's decision as a scheduler makes it, round after round
  (``round_scheduler.RoundScheduler.step`` on one row of CSI gains: the staircase rule plus the
  exact equal-finish split, warm-started from the previous round), on independent rounds and on
  correlated ones (coherence 30 ms); the issue asks at most 1 ms for 64 users and 10 ms for 1,000.
  For comparison, the general ``policies.decide`` on one row, the same decision batched over 1,000
  rounds (per round), and, as a peer measured in the same run, one analytic evaluation of a plan
  (``goodput.evaluate``);
* planning: ``plan_report`` with Rayleigh fading (static planners plus the adaptive rule by
  sample-average approximation and the oracle on a subset of the draws).

Cells: ``model.synthetic.busy_cell`` (half fixed-SNR, half power-limited users). Wall-clock times
on whatever machine runs it: compare the ratios, not the absolute numbers, across machines.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from multispin_cli.model.fading import Fading, draw_gains
from multispin_cli.model.goodput import evaluate
from multispin_cli.model.synthetic import busy_cell
from multispin_cli.planners.adaptive import _price
from multispin_cli.planners.heterogeneous import plan_heterogeneous
from multispin_cli.planners.policies import Controller, decide, staircase, verify_slope
from multispin_cli.planners.report import plan_report
from multispin_cli.planners.round_scheduler import RoundScheduler


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def per_round(system, control, csi) -> float:
    """Median seconds of one ``RoundScheduler.step`` over consecutive rounds."""
    scheduler = RoundScheduler(system, control)
    times = []
    for row in csi:
        t = time.perf_counter()
        scheduler.step(row)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="*", default=[64, 1000])
    parser.add_argument("--samples", type=int, default=None, help="fading draws (default: automatic)")
    parser.add_argument("--no-plan", action="store_true")
    args = parser.parse_args()
    for users in args.users:
        system = busy_cell(np.random.default_rng(0), users)
        fading = Fading.uniform(users, "rayleigh")
        system = replace(system, fading=fading)
        plan = plan_heterogeneous(system).evaluation
        gamma = plan.goodput_tokens_per_s
        rule = staircase(system, gamma=gamma, slope=verify_slope(system, plan.verify_tokens),
                         price=_price(system, plan.draft_lengths, plan.draft_upload_s, gamma),
                         deadline_s=plan.draft_upload_s)
        csi, true, _ = draw_gains(fading, 1000, np.random.default_rng(1))
        rho = float(np.exp(-plan.round_s / 0.030))
        correlated, _, _ = draw_gains(fading, 300, np.random.default_rng(2), rho=rho)
        split = Controller("adaptive-split", plan.draft_lengths, plan.bandwidth_hz)
        adaptive = Controller("adaptive", plan.draft_lengths, plan.bandwidth_hz, rule=rule)
        one = csi[:1]
        peer = best_of(lambda: evaluate(system, plan.draft_lengths, plan.bandwidth_hz), 50)
        for control in (split, adaptive):
            independent = per_round(system, control, csi[:300])
            coherent = per_round(system, control, correlated)
            single = best_of(lambda: decide(system, control, one), 50)
            batch = best_of(lambda: decide(system, control, csi), 3) / csi.shape[0]
            drafting = (decide(system, control, csi)[0] > 0).mean()
            print(f"{users:5d} users  {control.policy:15s} ({100 * drafting:.0f}% drafting) one round "
                  f"{1e3 * independent:6.3f} ms (correlated {1e3 * coherent:6.3f} ms)  decide() on one row "
                  f"{1e3 * single:6.3f} ms, batched {1e3 * batch:7.4f} ms/round  evaluate() peer {1e3 * peer:.3f} ms "
                  f"-> {independent / peer:.1f}x", flush=True)
        if not args.no_plan:
            t = time.perf_counter()
            report = plan_report(system, samples=args.samples, seed=0)
            secs = time.perf_counter() - t
            ad = report.adaptive
            print(f"{users:5d} users  planning under fading ({ad.samples} draws, oracle on {ad.oracle_samples}): "
                  f"{secs:.1f} s; adaptive {ad.goodput_tokens_per_s:,.1f} tok/s, oracle {ad.oracle_tokens_per_s:,.1f}, "
                  f"adaptive-split {ad.adaptive_split_tokens_per_s:,.1f}, static {ad.static_tokens_per_s:,.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
