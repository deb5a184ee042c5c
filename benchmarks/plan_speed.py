"""Plan time of both planners, and the heterogeneous planner against a generic scipy solver.

Run: ``python benchmarks/plan_speed.py`` (``--quick`` skips K = 10,000). Prints

1. planner time for K = 10, 100, 1,000, 10,000 users (median of repeats), with the heterogeneous
   plan's gain over the homogeneous one and its gap to the proven upper bound;
2. on the same K = 10 and 50 instances, scipy's SLSQP (and with ``--trust-constr`` also
   trust-constr, which takes minutes) on the continuous
   relaxation (draft lengths and bandwidths as real variables, the deadline as an auxiliary
   variable), rounded to integer lengths and then given the exact equal-finish split: their time,
   their goodput, and the ratios;
3. the whole CLI call (`multispin plan --format toml`) on a generated 2,000-user profile.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from multispin_cli.model.acceptance import geometric_expected_tokens
from multispin_cli.planners.heterogeneous import plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.planners.split import split_goodput
from multispin_cli.model.synthetic import busy_cell
from multispin_cli.model.system import System


def timed(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def relaxation_peer(system: System, method: str) -> tuple[float, float]:
    """Generic peer: scipy ``method`` on the continuous relaxation, then rounding; (seconds, goodput).

    Variables: draft lengths and bandwidths (MHz) as reals and the deadline; objective the
    goodput with G(L) continued smoothly (the synthetic cells are geometric); constraints: every
    user's phase within the deadline, the bandwidths summing to W. Finite-difference gradients, as a
    generic user would run it. The rounded lengths then get the exact equal-finish split, so the
    peer is scored by the same yardstick.
    """
    k, max_len = system.users, system.max_draft_length
    alpha = system.accept_prob[:, 0]  # the synthetic cells are geometric
    ch = system.channel
    total_mhz = system.bandwidth_hz / 1e6
    v0, v1 = system.verify.base_s, system.verify.per_token_s

    def rate(w_mhz):
        w = np.maximum(w_mhz, 1e-9) * 1e6
        return np.where(ch.power_limited, w * np.log2(1 + np.nan_to_num(ch.snr_bandwidth_hz) / w),
                        np.nan_to_num(ch.spectral_efficiency) * w)

    def unpack(x):
        return x[:k], x[k:2 * k], x[-1]

    def objective(x):
        lengths, _, deadline = unpack(x)
        tokens = geometric_expected_tokens(lengths, alpha).sum()
        return -tokens / (deadline + v0 + v1 * (lengths + 1).sum() + system.downlink_s)

    def slack(x):  # deadline - phase >= 0 for every user
        lengths, w, deadline = unpack(x)
        phase = system.draft_overhead_s + system.draft_s_per_token * lengths + (
            system.header_bits + system.bits_per_token * lengths) / rate(w)
        return deadline - phase

    x0 = np.concatenate([np.full(k, max_len / 2), np.full(k, total_mhz / k), [1.0]])
    bounds = [(0, max_len)] * k + [(1e-6 * total_mhz, total_mhz)] * k + [(0, 100.0)]
    constraints = [{"type": "ineq", "fun": slack}, {"type": "eq", "fun": lambda x: x[k:2 * k].sum() - total_mhz}]
    options = {"maxiter": 500, "ftol": 1e-10} if method == "SLSQP" else {"maxiter": 2000, "gtol": 1e-8}
    start = time.perf_counter()
    result = minimize(objective, x0, method=method, bounds=bounds, options=options, constraints=constraints)
    lengths = np.clip(np.rint(unpack(result.x)[0]), 0, max_len).astype(int)
    goodput = float(split_goodput(system, lengths)[0])
    return time.perf_counter() - start, goodput


def profile_text(system: System) -> str:
    """A deployment profile with the same users as ``system`` (fixed-SNR users only, for brevity)."""
    lines = [f"[system]\nbandwidth_mhz = {system.bandwidth_hz / 1e6}\nmax_draft_length = {system.max_draft_length}",
             "[payload]\nkind = \"bits\"\nbits_per_token = 500\nheader_bits = 100",
             f"[server]\nverify_base_ms = 30\nverify_ms_per_token = {20 / system.users}"]
    for i in range(system.users):
        eff = system.channel.spectral_efficiency[i]
        snr_db = 10 * np.log10(2 ** eff - 1) if np.isfinite(eff) else 10.0
        lines.append(f"[[devices]]\nname = \"u{i}\"\nacceptance = {system.accept_prob[i, 0]:.4f}\n"
                     f"draft_ms_per_token = {system.draft_s_per_token[i] * 1e3:.4f}\n"
                     f"draft_overhead_ms = {system.draft_overhead_s[i] * 1e3:.4f}\nsnr_db = {snr_db:.3f}")
    return "\n\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip K = 10,000")
    parser.add_argument("--trust-constr", action="store_true",
                        help="also run scipy's trust-constr as a peer (minutes at K = 50)")
    args = parser.parse_args()

    print("## Planner time (median of repeats; this machine)\n")
    print("| users K | homogeneous s | heterogeneous s | het / hom goodput | gap to bound |")
    print("|---:|---:|---:|---:|---:|")
    for users in (10, 100, 1000) + (() if args.quick else (10_000,)):
        system = busy_cell(np.random.default_rng(users), users)
        repeats = 5 if users <= 1000 else 1
        t_hom, hom = timed(lambda: plan_homogeneous(system), repeats)
        t_het, het = timed(lambda: plan_heterogeneous(system, start=hom), repeats)
        gap = het.upper_bound_tokens_per_s / het.goodput_tokens_per_s - 1
        print(f"| {users:,} | {t_hom:.4f} | {t_het:.3f} | {het.goodput_tokens_per_s / hom.goodput_tokens_per_s:.3f} "
              f"| {100 * gap:.3f} % |")

    print("\n## Against generic solvers (scipy on the continuous relaxation, rounded; same instances)\n")
    print("| users K | peer | multispin s | peer s | speed-up | multispin tok/s | peer tok/s | goodput ratio |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for users in (10, 50):
        system = busy_cell(np.random.default_rng(users), users)
        t_ms, het = timed(lambda: plan_heterogeneous(system, start=plan_homogeneous(system)), 9)
        for method in ("SLSQP", "trust-constr") if args.trust_constr else ("SLSQP",):
            t_peer, peer_goodput = relaxation_peer(system, method)
            print(f"| {users} | {method} | {t_ms:.4f} | {t_peer:.3f} | {t_peer / t_ms:,.0f}x "
                  f"| {het.goodput_tokens_per_s:,.1f} | {peer_goodput:,.1f} "
                  f"| {het.goodput_tokens_per_s / peer_goodput:.3f} |")

    print("\n## Whole CLI call on 2,000 users\n")
    system = busy_cell(np.random.default_rng(2000), 2000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cell-2000.toml"
        path.write_text(profile_text(system))
        command = [sys.executable, "-m", "multispin_cli", "plan", str(path), "--format", "toml"]
        t_cli, done = timed(lambda: subprocess.run(command, capture_output=True, check=True), 3)
        t_import, _ = timed(lambda: subprocess.run([sys.executable, "-m", "multispin_cli", "--version"],
                                                   capture_output=True, check=True), 3)
    print("| command | seconds |")
    print("|---|---:|")
    print(f"| `multispin plan cell-2000.toml --format toml` (both modes) | {t_cli:.2f} |")
    print(f"| `multispin --version` (start-up alone, the peer) | {t_import:.2f} |")


if __name__ == "__main__":
    main()
