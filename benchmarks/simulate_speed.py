"""How fast `multispin simulate` plays rounds: 100,000 rounds x 100 users (the issue asks < 5 s).

Run: ``python benchmarks/simulate_speed.py``. Timings depend on the machine, so the script also
measures peers in the same run and prints ratios against them:

* a naive simulator, one Python loop iteration per round and per user (the obvious way to write
  it), timed on 1,000 rounds and scaled per user-round;
* the analytic evaluation of the same plan (``goodput.evaluate``), the cost of one prediction.

The cell: 100 users (half fixed-SNR, half power-limited), per-user acceptance, the heterogeneous
plan; timed without fading, with Rayleigh fading, and with fading plus draft-time jitter.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from builders import busy_cell  # noqa: E402

from multispin_cli.analysis.simulation import SimulationOptions, simulate_plan  # noqa: E402
from multispin_cli.model.goodput import compute_seconds, evaluate, upload_bits  # noqa: E402
from multispin_cli.planners.heterogeneous import plan_heterogeneous  # noqa: E402
from multispin_cli.planners.homogeneous import plan_homogeneous  # noqa: E402

ROUNDS, USERS = 100_000, 100
NAIVE_ROUNDS = 1_000


def naive(system, lengths, bandwidth, rounds: int, seed: int = 0) -> float:
    """The same model, one round and one user at a time (with fading), for comparison only."""
    rng = np.random.default_rng(seed)
    compute = compute_seconds(system, lengths)
    bits = upload_bits(system, lengths)
    snr = system.channel.snr_at(bandwidth)
    server = float(evaluate(system, lengths, bandwidth).verify_s + system.downlink_s)
    tokens = elapsed = 0.0
    for _ in range(rounds):
        deadline = 0.0
        for k in range(system.users):
            accepted = 0
            for i in range(int(lengths[k])):
                if rng.random() < system.accept_prob[k, i]:
                    accepted += 1
                else:
                    break
            tokens += accepted + 1
            if lengths[k] > 0:
                rate = bandwidth[k] * np.log2(1.0 + snr[k] * rng.exponential())
                deadline = max(deadline, compute[k] + bits[k] / rate)
        elapsed += deadline + server
    return tokens / elapsed


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    system = busy_cell(np.random.default_rng(42), USERS)
    plan = plan_heterogeneous(system, start=plan_homogeneous(system))
    lengths, bandwidth = plan.evaluation.draft_lengths, plan.evaluation.bandwidth_hz
    print(f"cell: {USERS} users, heterogeneous plan, mean draft length {lengths.mean():.2f}, "
          f"predicted {plan.goodput_tokens_per_s:,.1f} tok/s")

    analytic = best_of(lambda: evaluate(system, lengths, bandwidth), repeat=50)
    naive_s = best_of(lambda: naive(system, lengths, bandwidth, NAIVE_ROUNDS), repeat=1)
    naive_per_user_round = naive_s / (NAIVE_ROUNDS * USERS)
    print(f"analytic evaluation:             {analytic * 1e6:9.1f} us per plan")
    print(f"naive loop, {NAIVE_ROUNDS:,} rounds:         {naive_s:9.3f} s  "
          f"({naive_per_user_round * 1e9:.0f} ns per user-round)")
    for label, opts in (
        ("no fading", SimulationOptions(rounds=ROUNDS)),
        ("rayleigh fading", SimulationOptions(rounds=ROUNDS, fading="rayleigh")),
        ("fading + jitter 0.2", SimulationOptions(rounds=ROUNDS, fading="rayleigh", draft_jitter=0.2)),
    ):
        seconds = best_of(lambda: simulate_plan(system, lengths, bandwidth, opts))
        per = seconds / (ROUNDS * USERS)
        verdict = "OK" if seconds < 5.0 else "SLOW"
        print(f"simulate {ROUNDS:,} x {USERS} ({label}): {seconds:6.3f} s [{verdict} vs 5 s]  "
              f"{per * 1e9:5.1f} ns per user-round = naive / {naive_per_user_round / per:,.0f}; "
              f"= {seconds / analytic:,.0f} analytic evaluations")


if __name__ == "__main__":
    main()
