"""Checks that a measured timings fragment is fit to plan with (pure).

A machine that gets busy halfway through a run produces timings that look like numbers but mean
nothing: a draft whose rounds get *faster* as they get longer (a slope clamped to ~0, R^2 below
zero), or a verification time that jumps eightfold between neighbouring batch sizes. `plan` cannot
tell such a file from a good one, so `profile-hardware` checks its own measurements before writing
them: each function here returns the problems it finds, in words, empty when the run is sound.

Only measured parts are checked; roofline estimates are consistent by construction.
"""

from __future__ import annotations

from multispin_cli.hardware.profiling import BUSY_CPU_SHARE, DraftResult, HardwareProfile, VerifyResult

MIN_DRAFT_R2 = 0.9  # a draft round is c + tau L: below this the rounds do not follow a line
ROUND_NOISE = 0.10  # a longer draft round may come out this much faster than a shorter one (timer noise)
ROOFLINE_FLOOR = 0.5  # measured time below this share of the local roofline: faster than the machine can go
JUMP_SLACK = 2.0  # T_v may grow at most this factor faster than N between neighbouring table points


def draft_problems(draft: DraftResult) -> list[str]:
    """What is wrong with a measured draft fit: non-monotone rounds, a clamped slope, a poor R^2, or a
    time per token below the roofline."""
    if not draft.measured:
        return []
    problems = []
    rounds = sorted(draft.rounds)
    for (l0, t0), (l1, t1) in zip(rounds, rounds[1:]):
        if l1 > l0 and t1 < t0 * (1 - ROUND_NOISE):
            problems.append(f"draft rounds get faster as they get longer ({l0} tokens: {t0 * 1e3:.4g} ms, "
                            f"{l1} tokens: {t1 * 1e3:.4g} ms)")
            break
    if any(text.startswith("slope") for text in draft.fit.clamped):
        problems.append(f"the draft's time per token came out at or below zero and was clamped to "
                        f"{draft.fit.slope * 1e3:.3g} ms")
    if draft.fit.r2 < MIN_DRAFT_R2:
        problems.append(f"draft rounds do not follow c + tau L (R^2 {draft.fit.r2:.3g} < {MIN_DRAFT_R2})")
    roof = draft.roofline_s_per_token
    if roof and draft.fit.slope < ROOFLINE_FLOOR * roof:
        problems.append(f"the draft's {draft.fit.slope * 1e3:.3g} ms per token is below {ROOFLINE_FLOOR:g} x "
                        f"this machine's roofline ({roof * 1e3:.3g} ms)")
    return problems


def verify_problems(verify: VerifyResult) -> list[str]:
    """What is wrong with measured verification times: a pass faster than the roofline allows, or
    a time that jumps far faster than the tokens between neighbouring points of the table."""
    if not verify.measured:
        return []
    problems = []
    fast = [p for p in verify.points if p.roofline_seconds and p.seconds < ROOFLINE_FLOOR * p.roofline_seconds]
    if fast:
        p = fast[0]
        problems.append(f"the target's pass of {p.batch} x {p.new_tokens} tokens took {p.seconds * 1e3:.4g} ms, "
                        f"below {ROOFLINE_FLOOR:g} x this machine's roofline ({p.roofline_seconds * 1e3:.4g} ms)")
    xs, ys = verify.table.x, verify.table.y
    for n0, t0, n1, t1 in zip(xs, ys, xs[1:], ys[1:]):
        if t0 > 0 and t1 / t0 > JUMP_SLACK * n1 / n0:
            problems.append(f"verification time jumps from {t0 * 1e3:.4g} ms at {n0:g} tokens to "
                            f"{t1 * 1e3:.4g} ms at {n1:g} tokens, far faster than the tokens grow")
            break
    return problems


def load_problems(load_share: float | None, logical_cores: int) -> list[str]:
    """A problem when other processes kept the CPUs busy during the measurement."""
    if load_share is None or load_share < BUSY_CPU_SHARE:
        return []
    return [f"other processes kept {load_share:.0%} of the {logical_cores} CPUs busy during the measurement"]


def profile_problems(profile: HardwareProfile) -> list[str]:
    """Every problem of a run's measured parts (empty: fit to write)."""
    measured = profile.draft.measured or profile.verify.measured
    load = load_problems(profile.load_during_run, profile.machine.logical_cores) if measured else []
    return draft_problems(profile.draft) + verify_problems(profile.verify) + load
