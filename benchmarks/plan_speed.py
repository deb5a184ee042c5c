"""Plan time of both planners, and the heterogeneous planner against generic solvers of the same problem.

Run: ``python benchmarks/plan_speed.py`` (``--quick`` skips K = 10,000 and 100,000 and the 1,000-user peer). Prints

1. planner time for K = 10, 100, 1,000, 10,000, 100,000 users (median and range of 5 calls, 3 at
   100,000), with the heterogeneous plan's gain over the homogeneous one, its gap to the proven
   upper bound and the machine's pace just before (seconds of a fixed Python loop: the VM's speed
   drifts by up to 2x); then, at 2,000-10,000 users, the planner's price sweep (from 1,000 users)
   against the interval search it replaces there (the same problem, each with its proven bound);
2. the fair peer: an exact solver of the same problem written with a generic tool. The deadline
   range is cut into intervals; on each, the multiple-choice knapsack over draft lengths (one
   binary per user and length, bandwidth demands priced at the interval's right end) is solved by
   ``scipy.optimize.milp`` (HiGHS), inside Dinkelbach's iteration on the goodput ratio (denominator
   at the interval's left end), which gives the interval's exact integer upper bound; intervals whose
   bound beats the best plan by more than 0.001 % are split (branch and bound on the deadline). Every
   MILP solution is scored with the same exact equal-finish split as multispin's plans. Time and
   goodput of both at K = 10, 50, 200, 1,000, measured in one run, with the peer's status (every
   MILP solved to optimality, or no ratio); HiGHS's own console lines go to stderr;
3. scipy's SLSQP on the continuous relaxation (lengths and bandwidths real), reported as it ends:
   its status, the largest deadline violation of the point it returns, and the goodput of that
   point rounded and given the exact split. It is not a peer: its relaxation is not the problem.
4. the whole CLI call (`multispin plan --format toml`) on a generated 2,000-user profile.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp, minimize
from timing import pace, spread, timed, timed_each  # benchmarks/timing.py (run as python benchmarks/NAME.py)

from multispin_cli.model.acceptance import geometric_expected_tokens
from multispin_cli.model.synthetic import busy_cell
from multispin_cli.model.system import System
from multispin_cli.planners.heterogeneous import level_bandwidth, level_demand, plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.planners.split import equal_finish_split, split_goodput


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
    seconds = time.perf_counter() - start
    # How far its own point breaks its constraints: the deadline (as a share of D) and the band.
    deadline = unpack(result.x)[2]
    late = float(np.max(-slack(result.x), initial=0.0))  # seconds past its own deadline variable
    return {"seconds": seconds, "goodput": goodput, "status": int(result.status), "message": str(result.message),
            "late": late, "deadline": float(deadline), "relaxed_goodput": -float(result.fun)}


@contextlib.contextmanager
def native_stdout_on_stderr():
    """Send what native code writes to stdout to stderr meanwhile (HiGHS prints a debugging line
    now and then at 1,000 users, not through ``sys.stdout``): stdout keeps only the tables."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C's buffered output to the descriptor it was written for
        os.dup2(saved, 1)
        os.close(saved)


def milp_peer(system: System, *, tolerance: float = 1e-5, intervals: int = 16, split: int = 4,
              max_rounds: int = 12) -> dict:
    """The fair peer: branch and bound on the deadline, each interval's knapsack by HiGHS under Dinkelbach.

    Ragged batching with an affine verification time (the synthetic cells): the round is
    ``D + v0 + v1 sum(L_k + 1) + t_dn``. For an interval [a, b] of deadlines, any plan meeting a
    deadline in it fits the demands at b and has a round of at least a + ...: maximising
    ``sum G / (a + v0 + v1 (K + sum L) + t_dn)`` over the knapsack at b bounds the interval.
    """
    start = time.perf_counter()
    k, max_len = system.users, system.max_draft_length
    l1 = max_len + 1
    g = system.tokens_per_round  # (K, L+1)
    v0, v1 = system.verify.base_s, system.verify.per_token_s
    fixed = v0 + v1 * k + system.downlink_s
    levels = np.arange(l1)
    demand = level_demand(system)
    # The deadline range: the fastest one-token round alone on the band, and everyone at L_max.
    one = np.ones(k, dtype=int)
    alone = (system.draft_overhead_s + system.draft_s_per_token
             + (system.header_bits + system.bits_per_token) / system.channel.rate_bps(system.bandwidth_hz))
    d_lo = float(alone.min())
    d_hi = max(float(equal_finish_split(system, np.full(k, max_len))[0]), d_lo * (1 + 1e-9))
    del one
    pick_one = sparse.kron(sparse.eye(k), np.ones((1, l1)), format="csr")  # sum_l x[k, l] = 1
    best = {"goodput": float(split_goodput(system, np.zeros((1, k), dtype=int))[0][0]), "lengths": np.zeros(k, int)}
    solves, failed = 0, []

    def offer(lengths):
        value = float(split_goodput(system, lengths[None])[0][0])
        if value > best["goodput"]:
            best.update(goodput=value, lengths=lengths)

    def bound(a, b):
        nonlocal solves
        w = level_bandwidth(system, b, demand=demand)[0]  # (K, L+1), inf where a level cannot make b
        allowed = np.isfinite(w)
        w_fin = np.where(allowed, w, 0.0).ravel()
        constraints = [LinearConstraint(pick_one, 1, 1),
                       LinearConstraint(sparse.csr_matrix(w_fin[None, :]), -np.inf, system.bandwidth_hz)]
        var_bounds = Bounds(np.zeros(k * l1), allowed.ravel().astype(float))
        gamma = best["goodput"]
        den_min = a + fixed
        while True:
            # Dinkelbach: maximise sum G - gamma (a + fixed + v1 sum L) over the knapsack.
            c = -(g - gamma * v1 * levels[None, :]).ravel()
            res = milp(c, constraints=constraints, integrality=np.ones(k * l1), bounds=var_bounds,
                       options={"mip_rel_gap": 1e-9})
            solves += 1
            if res.status != 0 or res.x is None:  # not solved to optimality: the peer failed
                failed.append(f"{res.status} ({res.message})")
                return np.inf
            x = res.x.reshape(k, l1) > 0.5
            lengths = np.argmax(x, axis=1)
            offer(lengths)
            f_value = -res.fun - gamma * (a + fixed)
            if f_value <= 1e-12 * max(abs(gamma), 1.0) * den_min:
                return gamma + max(f_value, 0.0) / den_min
            gamma = float(g[np.arange(k), lengths].sum() / (a + fixed + v1 * lengths.sum()))

    points = np.geomspace(d_lo, d_hi, intervals + 1)
    left, right = points[:-1], points[1:]
    bounds = np.array([bound(a, b) for a, b in zip(left, right)])
    for _ in range(max_rounds):
        active = (bounds > best["goodput"] * (1 + tolerance)) & (right > left * (1 + tolerance / 4))
        if not active.any():
            break
        steps = np.arange(split + 1)[:, None] / split
        cuts = left[active] * (right[active] / left[active]) ** steps
        new_left, new_right = cuts[:-1].ravel(), cuts[1:].ravel()
        new_bounds = np.array([bound(a, b) for a, b in zip(new_left, new_right)])
        left = np.concatenate([left[~active], new_left])
        right = np.concatenate([right[~active], new_right])
        bounds = np.concatenate([bounds[~active], new_bounds])
    return {"seconds": time.perf_counter() - start, "goodput": best["goodput"], "lengths": best["lengths"],
            "upper_bound": max(float(bounds.max()), best["goodput"]), "milp_solves": solves,
            "status": "optimal" if not failed else f"{len(failed)} failed: {failed[0]}"}


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
    parser.add_argument("--quick", action="store_true", help="skip K = 10,000 and 100,000 and the 1,000-user peer")
    parser.add_argument("--trust-constr", action="store_true",
                        help="also run scipy's trust-constr as a peer (minutes at K = 50)")
    args = parser.parse_args()

    print("## Planner time (median (range) of 5 calls, 3 at 100,000 users; this machine)\n")
    print("| users K | homogeneous s | heterogeneous s | het / hom goodput | gap to bound | pace s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for users in (10, 100, 1000) + (() if args.quick else (10_000, 100_000)):
        system = busy_cell(np.random.default_rng(users), users)
        speed = pace()  # the VM's CPU speed drifts: a fixed Python loop's time, beside the row
        repeats = 5 if users <= 10_000 else 3
        t_hom, hom = timed_each(lambda: plan_homogeneous(system), repeats)
        t_het, het = timed_each(lambda: plan_heterogeneous(system, start=hom), repeats)
        gap = het.upper_bound_tokens_per_s / het.goodput_tokens_per_s - 1
        print(f"| {users:,} | {spread(t_hom, '.4f')} | {spread(t_het)} "
              f"| {het.goodput_tokens_per_s / hom.goodput_tokens_per_s:.3f} | {100 * gap:.3f} % | {speed:.3f} |",
              flush=True)

    print("\n## City scale: the price sweep against the interval search (both prove their bound; one run)\n")
    print("| users K | price sweep s | interval search s | interval / sweep time | sweep tok/s | its bound "
          "| interval tok/s | its bound | goodput ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for users in (2000, 5000) + (() if args.quick else (10_000,)):
        system = busy_cell(np.random.default_rng(users), users)
        hom = plan_homogeneous(system)
        t_sweep, fast = timed(lambda: plan_heterogeneous(system, start=hom), 3)
        t_int, slow = timed(lambda: plan_heterogeneous(system, start=hom, intervals_only=True), 1)
        g_fast, g_slow = fast.goodput_tokens_per_s, slow.goodput_tokens_per_s
        print(f"| {users:,} | {t_sweep:.3f} | {t_int:.3f} | {t_int / t_sweep:.1f}x | {g_fast:,.2f} "
              f"| {fast.upper_bound_tokens_per_s:,.2f} | {g_slow:,.2f} | {slow.upper_bound_tokens_per_s:,.2f} "
              f"| {g_fast / g_slow:.6f} |", flush=True)

    print("\n## Against an exact generic solver (HiGHS MILP per deadline interval, Dinkelbach; one run)\n")
    print("| users K | multispin s | MILP peer s | peer / multispin time | MILP solves | their status "
          "| multispin tok/s | peer tok/s | goodput ratio |")
    print("|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for users in (10, 50, 200) + (() if args.quick else (1000,)):
        system = busy_cell(np.random.default_rng(users), users)
        t_ms, het = timed(lambda: plan_heterogeneous(system, start=plan_homogeneous(system)), 5)
        with native_stdout_on_stderr():
            peer = milp_peer(system)
        solved = peer["status"] == "optimal"  # a failed peer is no ratio
        ratio = f"{peer['seconds'] / t_ms:,.0f}x" if solved else "no ratio"
        print(f"| {users:,} | {t_ms:.4f} | {peer['seconds']:.2f} | {ratio} | {peer['milp_solves']} "
              f"| {'all optimal' if solved else peer['status']} | {het.goodput_tokens_per_s:,.2f} "
              f"| {peer['goodput']:,.2f} | {het.goodput_tokens_per_s / peer['goodput']:.6f} |", flush=True)

    print("\n## scipy on the continuous relaxation, rounded (not a peer: reported as it ends)\n")
    print("| users K | method | status | its D ms | worst user past D, ms | s | its relaxed tok/s "
          "| rounded + exact split tok/s | multispin tok/s |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for users in (10, 50):
        system = busy_cell(np.random.default_rng(users), users)
        het = plan_heterogeneous(system, start=plan_homogeneous(system))
        for method in ("SLSQP", "trust-constr") if args.trust_constr else ("SLSQP",):
            r = relaxation_peer(system, method)
            print(f"| {users} | {method} | {r['status']} ({r['message']}) | {1e3 * r['deadline']:.3g} | {1e3 * r['late']:.3g} "
                  f"| {r['seconds']:.2f} | {r['relaxed_goodput']:,.1f} | {r['goodput']:,.1f} "
                  f"| {het.goodput_tokens_per_s:,.1f} |", flush=True)

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
