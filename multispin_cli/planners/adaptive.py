"""Planning for a fading uplink: the adaptive rule that maximises the expected goodput.

The long-run goodput of a per-round policy is ``E[sum_k G_k] / E[T]`` (renewal reward). It is
estimated by a sample-average approximation: ``samples`` seeded draws of every user's CSI and true
gain (independent rounds: the expectation does not depend on the correlation between rounds),
the same draws for every candidate. ``G_k`` is the expected committed tokens of the length drafted
(the acceptance is averaged exactly), ``T`` the exact round time of the round's split.

Candidates: each static plan under its own split and re-split every round (adaptive-split), no
speculation at all, and the staircase rule of :mod:`multispin_cli.planners.policies` for a
deadline and a bandwidth price searched coordinate-wise around the best adaptive-split plan's
values (the price starts at the Lagrange multiplier of its split, ``gamma / sum |dW_k/dD|``), with
gamma updated to the achieved goodput (Dinkelbach); also each static plan's lengths with skip
thresholds (a few common gain levels, and with step rates the gain below which its own grant
carries nothing), and under stale CSI a limit on the server's wait (``wait_factor`` times the
round's planned deadline; later uploads are dropped). The best candidate is the plan; the oracle
(which knows the true gains every round) is evaluated on the first draws as the upper reference.
By default the draws are sized automatically (see :func:`plan_adaptive`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispin_cli.errors import InputError
from multispin_cli.model.fading import Fading, draw_gains
from multispin_cli.model.goodput import Evaluation, tokens_per_round, verify_tokens
from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System
from multispin_cli.planners.policies import (
    Controller,
    Staircase,
    decide,
    reference_snr,
    settle,
    staircases,
    verify_slope,
)
from multispin_cli.planners.split import bandwidth_for_deadline

Z95 = 1.959963984540054
DEFAULT_SAMPLES = 2000  # the most draws the automatic sizing uses
SEARCH_SAMPLES = 400  # draws the candidates are compared on when the draws are sized automatically
TARGET_HALF_WIDTH = 0.004  # automatic sizing: the winner's 95 % interval within 0.4 % of its goodput
WAIT_FACTORS = (1.1, 1.25, 1.5, 2.0, 3.0)  # wait limits tried under stale CSI (x the planned deadline)
FINALISTS = 4  # the best candidates of the search re-scored on all the draws
ORACLE_ELEMENTS = 1_500_000  # oracle rounds x users x lengths evaluated in planning (time bound)


@dataclass(frozen=True, eq=False)
class PolicyScore:
    """A policy's sample-average performance."""

    goodput_tokens_per_s: float
    ci95: tuple[float, float]
    round_s: np.ndarray  # (samples,)
    tokens: np.ndarray  # (samples, K) expected tokens of the length drafted
    lengths: np.ndarray  # (samples, K)
    bandwidth_hz: np.ndarray  # (samples, K)

    def expected(self, system: System) -> Evaluation:
        """The policy's means as an :class:`Evaluation` (what a simulation is compared with)."""
        mean_t = float(self.round_s.mean())
        tokens = self.tokens.mean(axis=0)
        n = float(verify_tokens(system, self.lengths).mean())
        verify_s = float(system.verify(verify_tokens(system, self.lengths)).mean())
        deadline = mean_t - verify_s - system.server_fixed_s
        return Evaluation(np.rint(self.lengths.mean(axis=0)).astype(int), self.bandwidth_hz.mean(axis=0),
                          np.full(system.users, deadline), tokens, deadline, verify_s, n, mean_t,
                          self.goodput_tokens_per_s)


def score_policy(system: System, control: Controller, csi: np.ndarray, true: np.ndarray) -> PolicyScore:
    """Run a policy on the drawn gains: ratio estimate ``sum G / sum T`` and its 95 % interval."""
    lengths, bandwidth = decide(system, control, csi, true)
    lengths, deadline = settle(system, lengths, bandwidth, csi, true, wait_factor=control.wait_factor)
    t = deadline + system.verify(verify_tokens(system, lengths)) + system.server_fixed_s
    g = tokens_per_round(system, lengths)
    total = g.sum(axis=-1)
    if not np.all(np.isfinite(t)):
        return PolicyScore(0.0, (0.0, 0.0), t, g, lengths, bandwidth)
    rate = float(total.sum() / t.sum())
    n = t.size
    resid = total - rate * t
    half = Z95 * float(np.std(resid, ddof=1) if n > 1 else 0.0) / np.sqrt(n) / float(t.mean())
    return PolicyScore(rate, (max(rate - half, 0.0), rate + half), t, g, lengths, bandwidth)


@dataclass(frozen=True, eq=False)
class AdaptivePlan:
    """The adaptive plan: its rule, its expected performance and its references under the same draws."""

    control: Controller  # policy "adaptive"
    oracle_control: Controller  # policy "oracle"
    score: PolicyScore
    expected: Evaluation
    oracle_tokens_per_s: float
    oracle_samples: int
    static_tokens_per_s: float  # best static plan
    static_name: str
    adaptive_split_tokens_per_s: float
    reference_snr: np.ndarray  # (K,) linear SNR that a CSI gain of 1 stands for
    samples: int
    seed: int

    name = "adaptive"
    policy = "adaptive"

    @property
    def rule(self) -> Staircase:
        return self.control.rule

    @property
    def goodput_tokens_per_s(self) -> float:
        return self.score.goodput_tokens_per_s

    @property
    def draft_lengths(self) -> np.ndarray:
        """Each user's longest draft (on a good channel)."""
        return self.rule.max_lengths

    def threshold_snr_db(self) -> np.ndarray:
        """Per user and length: the least SNR (dB) at which the user drafts at least L tokens (K, L_max)."""
        with np.errstate(divide="ignore"):
            return 10.0 * np.log10(self.reference_snr[:, None] * self.rule.threshold)

    def skip_below_snr_db(self) -> np.ndarray:
        """Per user: below this SNR (dB) it drafts nothing (``-inf``: never skips; ``inf``: never drafts)."""
        t = self.threshold_snr_db()
        return t[:, 0] if t.shape[1] else np.full(t.shape[0], np.inf)


SKIP_LEVELS = (0.03, 0.1, 0.3)  # common skip gains (relative to the mean) tried for every plan


def outage_gain(system: System, bandwidth_hz) -> np.ndarray:
    """Per user: the least gain at which its grant ``bandwidth_hz`` carries any rate (bisection on
    log g; 0 where it always does, inf where it never does)."""
    w = np.asarray(bandwidth_hz, dtype=float)
    lo = np.full(system.users, np.log(1e-9))
    hi = np.full(system.users, np.log(1e9))

    def carries(log_g):
        return system.channel.faded(np.exp(log_g)).rate_bps(w) > 0

    always, never = carries(lo), ~carries(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        ok = carries(mid)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(always, 0.0, np.where(never, np.inf, np.exp(hi)))


def _price(system: System, lengths: np.ndarray, deadline_s: float, gamma: float) -> float:
    _, slope = bandwidth_for_deadline(system, lengths, deadline_s)
    total = float(np.abs(slope[np.isfinite(slope)]).sum())
    return gamma / total if total > 0 else gamma / max(system.bandwidth_hz * max(deadline_s, 1e-9), 1e-30)


def plan_adaptive(system: System, plans: list[Plan], fading: Fading, *, samples: int | None = None,
                  seed: int = 0) -> AdaptivePlan:
    """Solve the adaptive rule for a fading cell by sample-average approximation over seeded draws.

    ``samples`` None (the default) sizes the draws itself: the candidates are compared on the first
    ``SEARCH_SAMPLES`` draws (common random numbers make those comparisons sharp), and the best few
    are scored on as many draws as the winner's 95 % interval needs to be within
    ``TARGET_HALF_WIDTH`` of its goodput (at least ``SEARCH_SAMPLES``, at most ``DEFAULT_SAMPLES``).
    An explicit ``samples`` uses exactly that many draws for everything.
    """
    auto = samples is None
    if not auto and (isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1):
        raise InputError(f"must be a positive integer, got {samples!r}", key="samples")
    if not plans:
        raise ValueError("plan_adaptive needs at least one static plan to start from")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    drawn = DEFAULT_SAMPLES if auto else int(samples)
    all_csi, all_true, _ = draw_gains(fading, drawn, rng)
    search = min(SEARCH_SAMPLES, drawn) if auto else drawn
    csi, true = all_csi[:search], all_true[:search]

    statics = {p.name: score_policy(system, Controller("static", p.evaluation.draft_lengths,
                                                       p.evaluation.bandwidth_hz), csi, true) for p in plans}
    splits = {p.name: score_policy(system, Controller("adaptive-split", p.evaluation.draft_lengths,
                                                      p.evaluation.bandwidth_hz), csi, true) for p in plans}
    base_name = max(splits, key=lambda n: splits[n].goodput_tokens_per_s)
    base = next(p for p in plans if p.name == base_name).evaluation
    top = system.max_draft_length

    def control(rule: Staircase, wait: float = np.inf) -> Controller:
        return Controller("adaptive", base.draft_lengths, base.bandwidth_hz, rule=rule, wait_factor=wait)

    candidates: list[tuple[float, Staircase, float]] = []  # (search goodput, rule, wait factor) tried

    def trial(rule: Staircase, wait: float = np.inf) -> PolicyScore:
        result = score_policy(system, control(rule, wait), csi, true)
        candidates.append((result.goodput_tokens_per_s, rule, wait))
        return result

    best_rule = Staircase.fixed(base.draft_lengths, top)
    best = splits[base_name]
    candidates.append((best.goodput_tokens_per_s, best_rule, np.inf))
    quiet = trial(Staircase(np.full((system.users, top), np.inf)))
    if quiet.goodput_tokens_per_s > best.goodput_tokens_per_s:
        best_rule, best = candidates[-1][1], quiet
    # Each plan's lengths with skip thresholds: where its static grant would carry nothing (step
    # rates: then the rule drops exactly the users the static plan loses, and re-splits the rest,
    # so it is never worse than the static plan on exact CSI), and a few common gain levels.
    for p in plans:
        ev = p.evaluation
        skips = [outage_gain(system, ev.bandwidth_hz)] if not system.channel.link.is_shannon else []
        skips += [np.full(system.users, q) for q in SKIP_LEVELS]
        for skip in skips:
            rule = Staircase.fixed(ev.draft_lengths, top, skip)
            result = trial(rule)
            if result.goodput_tokens_per_s > best.goodput_tokens_per_s:
                best_rule, best = rule, result

    slope = verify_slope(system, base.verify_tokens)
    deadline = base.draft_upload_s if base.draft_upload_s > 0 else float(system.verify(system.users))
    lengths = base.draft_lengths if base.draft_lengths.any() else np.ones(system.users, dtype=int)
    gamma = max(best.goodput_tokens_per_s, 1e-9)
    price = _price(system, lengths, deadline, gamma)
    centre = (1.0, 1.0)
    for steps in ((0.5, 0.7, 1.4, 2.0), (0.8, 0.9, 1.12, 1.25)):
        tried: set[tuple[float, float]] = set()  # at one gamma a point gives one rule: try it once
        for axis in (0, 1, 0, 1):
            options = [centre] + [(centre[0] * f, centre[1]) if axis == 0 else (centre[0], centre[1] * f)
                                  for f in (steps if axis == 0 else tuple(s * s for s in steps))]
            options = [o for o in options if (round(o[0], 12), round(o[1], 12)) not in tried]
            tried.update((round(o[0], 12), round(o[1], 12)) for o in options)
            if not options:
                continue
            rules = staircases(system, gamma=gamma, slope=slope, prices=[price * o[1] for o in options],
                               deadlines_s=[deadline * o[0] for o in options])
            for (d_f, p_f), rule in zip(options, rules):
                result = trial(rule)
                if result.goodput_tokens_per_s > best.goodput_tokens_per_s:
                    best_rule, best, centre = rule, result, (d_f, p_f)
        gamma = max(best.goodput_tokens_per_s, 1e-9)  # Dinkelbach: value tokens at the achieved goodput

    best_wait = np.inf
    if fading.csi_delay_s > 0:
        # Stale CSI: a user whose channel fell since the CSI can hold the whole round; a limit on the
        # wait (a multiple of the round's planned deadline) drops such uploads instead.
        rule = best_rule
        for wait in WAIT_FACTORS:
            result = trial(rule, wait)
            if result.goodput_tokens_per_s > best.goodput_tokens_per_s:
                best, best_wait = result, wait

    if auto:
        # The best few on more draws: as many as the winner's interval needs (auto), or all of them.
        final = drawn
        if auto:
            half = (best.ci95[1] - best.ci95[0]) / 2.0
            rate = max(best.goodput_tokens_per_s, 1e-12)
            need = search * (half / (TARGET_HALF_WIDTH * rate)) ** 2
            final = int(min(drawn, max(search, 100 * np.ceil(need / 100.0))))
        csi, true = all_csi[:final], all_true[:final]
        if final > search:
            statics = {p.name: score_policy(system, Controller("static", p.evaluation.draft_lengths,
                                                               p.evaluation.bandwidth_hz), csi, true) for p in plans}
            splits = {p.name: score_policy(system, Controller("adaptive-split", p.evaluation.draft_lengths,
                                                              p.evaluation.bandwidth_hz), csi, true) for p in plans}
            best_rule, best_wait = Staircase.fixed(base.draft_lengths, top), np.inf
            best = splits[base_name]
            ranked = sorted(range(len(candidates)), key=lambda i: -candidates[i][0])[:FINALISTS]
            for i in ranked:
                _, rule, wait = candidates[i]
                result = score_policy(system, control(rule, wait), csi, true)
                if result.goodput_tokens_per_s > best.goodput_tokens_per_s:
                    best_rule, best, best_wait = rule, result, wait
        samples = final
    static_name = max(statics, key=lambda n: statics[n].goodput_tokens_per_s)

    chosen = control(best_rule, best_wait)
    # The oracle on the first draws (its per-round search is costly), gamma iterated to its own goodput.
    per_round = system.users * (top + 1) * 14 * (1 if system.smooth else 4)  # block/step splits cost more
    n_oracle = int(min(samples, max(32, ORACLE_ELEMENTS // max(per_round, 1))))
    oracle = Controller("oracle", base.draft_lengths, base.bandwidth_hz, gamma=gamma, slope=slope,
                        deadline_s=deadline, fallback=best_rule)
    oracle_rate = gamma
    for _ in range(3):
        oracle = Controller("oracle", base.draft_lengths, base.bandwidth_hz, gamma=oracle_rate, slope=slope,
                            deadline_s=deadline, fallback=best_rule)
        new = score_policy(system, oracle, csi[:n_oracle], true[:n_oracle]).goodput_tokens_per_s
        if abs(new - oracle_rate) <= 1e-4 * max(new, 1e-12):
            oracle_rate = new
            break
        oracle_rate = new
    oracle = Controller("oracle", base.draft_lengths, base.bandwidth_hz, gamma=oracle_rate, slope=slope,
                        deadline_s=deadline, fallback=best_rule)
    return AdaptivePlan(chosen, oracle, best, best.expected(system), oracle_rate, n_oracle,
                        statics[static_name].goodput_tokens_per_s, static_name,
                        splits[base_name].goodput_tokens_per_s, reference_snr(system), int(samples), int(seed))
