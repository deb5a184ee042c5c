"""Monte Carlo simulation of Multi-SPIN rounds under a fixed plan (docs/model.md 1 and 2.5).

The analytic goodput is a ratio of expectations, ``sum_k G_k(L_k) / T``. This module plays the
rounds out instead, with the randomness the formula averages away:

* **acceptance**: each drafting user's accepted prefix is drawn from its per-position conditional
  probabilities (the first rejection stops it; all ``L_k`` accepted commits ``L_k + 1`` tokens).
  It is drawn by inversion: with ``U ~ Uniform[0, 1)`` and the survival ``S_i = prod_{j<=i} p_j``
  (non-increasing), the accepted prefix is ``A = #{i <= L_k : U < S_i}``, so ``P(A >= i) = S_i``
  exactly as with sequential Bernoulli trials. Committed tokens are ``A + 1``;
* **draft time** (``--draft-jitter F``): ``(c_k + tau_k L_k) * J`` with ``J`` lognormal of mean 1
  and standard deviation ``F`` (``sigma^2 = ln(1 + F^2)``): positive, right-skewed like measured
  latencies, and defined for any ``F >= 0``;
* **uplink** (``--fading rayleigh``): Rayleigh block fading scales the user's SNR by ``h ~ Exp(1)``,
  drawn per round and user and held for the round: ``r = W log2(1 + SNR(W) h)`` (``SNR(W)`` is the
  fixed SNR, or ``Q / W`` for a power-limited user). The rate adapts to the faded SNR (no outage);
* the round ends when the last upload arrives (``D = max`` over drafting users, 0 if none), then
  ``T_v(N)`` for the batch sent, the engine's per-round cost and the downlink. A user with ``L_k = 0`` neither drafts nor uploads
  (the rule of :mod:`multispin_cli.model.goodput`).

**Estimator.** Rounds are i.i.d. under a fixed plan, so by the renewal-reward theorem the long-run
rate is ``E[X] / E[T]`` (X: tokens per round). It is estimated by the ratio of sums, and its 95 %
interval by the delta method: ``se = sd(X - R T) / (mean(T) sqrt(n))`` (rounds are independent, so
no batching is needed; the lower end is clipped at 0). The same holds per user with ``X_k``. Sums are accumulated shifted by the analytic values (so no precision is lost however
many rounds), and every round time is kept for its exact quantiles.

**Caveat on fading.** With no outage a deep fade makes an upload arbitrarily slow:
``E[1 / log(1 + SNR h)]`` diverges (logarithmically) for ``h ~ Exp(1)``, so under Rayleigh fading
the mean round time is infinite in theory and the simulated goodput is a finite-horizon figure that
creeps down like ``log(rounds)``; the interval then describes the horizon simulated. The quantiles
(median, p95, p99) are well defined and are the better guide under fading.

**Random numbers.** Every chunk of rounds has its own streams (``SeedSequence(seed, spawn_key=
(chunk, stream))``) for acceptance, jitter and fading, and the chunk size depends only on the
number of users. So a seed gives the same numbers every time, a longer run extends a shorter one,
and every plan (and the same plan with and without fading) sees the same acceptance draws: common
random numbers, which make the comparison of plans sharper than their separate intervals suggest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from multispin_cli.errors import InputError
from multispin_cli.model.fading import FADING_KINDS, Fading, draw_gains
from multispin_cli.model.goodput import (
    Evaluation,
    compute_seconds,
    evaluate,
    upload_bits,
    verify_tokens,
)
from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System
from multispin_cli.planners.policies import Controller, decide, settle

FADING_MODELS = FADING_KINDS
CHUNK_ELEMENTS = 1 << 20  # rounds x users drawn at once (about 8 MiB per float array)
MAX_ROUNDS = 10_000_000  # every round time is kept (8 bytes each)
COMPARE_MAX_LENGTH = 24  # up to this draft length, acceptance by comparisons; beyond it, by search
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
QUANTILES = (50, 95, 99)

_ACCEPT, _JITTER, _FADING = 0, 1, 2  # stream numbers

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SimulationOptions:
    """How to simulate: rounds per plan, seed, channel fading and draft-time jitter."""

    rounds: int = 20_000
    seed: int = 0
    fading: str = "none"  # the fading kind of every user; "profile" keeps the profile's [system] fading
    draft_jitter: float = 0.0  # standard deviation of the (mean 1) lognormal draft-time factor
    correlation_round_s: float | None = None  # round time for the fading correlation (None: each plan's)
    rician_k_db: float | None = None  # with fading "rician": every user's K factor (None: the profile's)

    def __post_init__(self):
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, (int, np.integer)):
            raise InputError(f"must be an integer, got {self.rounds!r}", key="rounds")
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise InputError(f"must be between 1 and {MAX_ROUNDS:,}, got {self.rounds:,}", key="rounds")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InputError(f"must be a non-negative integer, got {self.seed!r}", key="seed")
        if self.fading not in FADING_MODELS + ("profile",):
            raise InputError(f"must be one of {', '.join(FADING_MODELS)}, got {self.fading!r}", key="fading")

        if self.rician_k_db is not None:
            if self.fading != "rician":
                raise InputError("is only for rician fading", key="rician_k_db")
            if not np.isfinite(self.rician_k_db):
                raise InputError(f"must be finite, got {self.rician_k_db!r}", key="rician_k_db")
        jitter = float(self.draft_jitter)
        if not (np.isfinite(jitter) and jitter >= 0):
            raise InputError(f"must be a finite fraction >= 0, got {self.draft_jitter!r}", key="draft_jitter")

    def fading_of(self, system: System) -> Fading:
        """The fading simulated: the profile's ("profile"), none at all ("none", shadowing included), or
        the profile's with every user switched to the kind ``fading``."""
        base = system.fading if system.fading is not None else Fading.none(system.users)
        if self.fading == "none":
            return Fading.none(system.users)
        if self.fading == "profile":
            return base
        faded = base.with_kind(self.fading)
        if self.fading == "rician":
            if self.rician_k_db is not None:
                faded = replace(faded, rician_k=np.full(system.users, 10.0 ** (self.rician_k_db / 10.0)))
            elif not (faded.rician_k > 0).any():
                raise InputError("needs a K factor: give --rician-k-db, or rician_k_db in the profile",
                                 key="rician_k_db")
        return faded


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """One plan's simulated goodput beside its prediction; per-user arrays in users' order, SI units.

    ``feasible`` is False for a plan whose prediction is infinite (a drafting user without
    bandwidth); such a plan is not simulated and its statistics are zero.
    """

    name: str
    kind: str  # "plan" (planned) or "baseline"
    predicted: Evaluation
    options: SimulationOptions
    feasible: bool
    goodput_tokens_per_s: float
    ci95_tokens_per_s: tuple[float, float]
    user_tokens_per_s: np.ndarray  # (K,)
    user_ci95_low: np.ndarray  # (K,)
    user_ci95_high: np.ndarray  # (K,)
    user_tokens_per_round: np.ndarray  # (K,) mean committed tokens per round
    round_s_mean: float
    round_s_quantiles: dict[int, float]  # percentile -> seconds
    policy: str = "static"
    fading: str = "none"  # the fading simulated, in words

    @property
    def predicted_tokens_per_s(self) -> float:
        return self.predicted.goodput_tokens_per_s

    @property
    def relative_error(self) -> float:
        """``simulated / predicted - 1`` (0 where the prediction is 0)."""
        pred = self.predicted_tokens_per_s
        return self.goodput_tokens_per_s / pred - 1.0 if pred > 0 else 0.0

    @property
    def prediction_inside_ci(self) -> bool:
        low, high = self.ci95_tokens_per_s
        return bool(low <= self.predicted_tokens_per_s <= high)


def _streams(seed: int, chunk: int) -> list[np.random.Generator]:
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(chunk, s))))
            for s in (_ACCEPT, _JITTER, _FADING)]


def _chunk_rounds(users: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(users, 1))


def _survival(system: System, lengths: np.ndarray) -> np.ndarray:
    """``S[k, i] = prod_{j<=i+1} p_kj`` for positions below ``L_k``, 0 beyond: (K, max L)."""
    width = int(lengths.max(initial=0))
    survive = np.cumprod(system.accept_prob[:, :width], axis=1)
    return np.where(np.arange(width)[None, :] < lengths[:, None], survive, 0.0)


def accepted_prefix(uniforms: np.ndarray, survival: np.ndarray) -> np.ndarray:
    """Accepted prefix lengths ``#{i : U < S_i}`` for uniforms (R, K) and survivals (K, M): (R, K).

    Short drafts are counted by comparisons, one pass per position; long ones by a binary search
    in the users' survivals laid end to end (user k's block shifted into ``[2k, 2k + 1]``).
    """
    rounds, users = uniforms.shape
    width = survival.shape[1]
    if width <= COMPARE_MAX_LENGTH:
        accepted = np.zeros((rounds, users), dtype=np.int16)
        for i in range(width):  # positions, not users: each pass is vectorised over rounds x users
            accepted += uniforms < survival[:, i]
        return accepted
    offset = 2.0 * np.arange(users)
    live = survival > 0
    blocks = (offset[:, None] + (1.0 - survival))[live]  # sorted: blocks are increasing, each non-decreasing
    starts = np.concatenate([[0], np.cumsum(live.sum(axis=1))[:-1]])
    # U < S_i  <=>  1 - S_i < 1 - U, with 1 - U in (0, 1]: count block entries below the query.
    found = np.searchsorted(blocks, ((1.0 - uniforms) + offset).ravel(), side="left").reshape(rounds, users)
    return (found - starts).astype(np.int16)


def _lognormal_factor(rng: np.random.Generator, shape, jitter: float) -> np.ndarray:
    sigma2 = np.log1p(jitter * jitter)
    return np.exp(rng.standard_normal(shape) * np.sqrt(sigma2) - 0.5 * sigma2)


class _Moments:
    """Shifted sums for ratio estimators ``sum X / sum T`` (total and per user)."""

    def __init__(self, x0_total: float, x0_user: np.ndarray, t0: float):
        self.x0_total, self.x0_user, self.t0 = x0_total, x0_user, t0
        self.n = 0
        users = x0_user.size
        self.t = self.tt = 0.0
        self.x = self.xx = self.xt = 0.0
        self.ux = np.zeros(users)
        self.uxx = np.zeros(users)
        self.uxt = np.zeros(users)

    def add(self, tokens: np.ndarray, round_s: np.ndarray) -> None:
        dt = round_s - self.t0
        total = tokens.sum(axis=1, dtype=np.float64) - self.x0_total
        du = tokens - self.x0_user
        self.n += round_s.size
        self.t += dt.sum()
        self.tt += dt @ dt
        self.x += total.sum()
        self.xx += total @ total
        self.xt += total @ dt
        self.ux += du.sum(axis=0)
        self.uxx += np.einsum("rk,rk->k", du, du)
        self.uxt += dt @ du

    @staticmethod
    def _ratio(n, x0, t0, sx, sxx, sxt, st, stt):
        mx, mt = sx / n, st / n
        mean_x, mean_t = x0 + mx, t0 + mt
        rate = mean_x / mean_t
        scale = n / (n - 1) if n > 1 else 0.0
        var_x = (sxx / n - mx * mx) * scale
        var_t = (stt / n - mt * mt) * scale
        cov = (sxt / n - mx * mt) * scale
        resid = np.maximum(var_x - 2.0 * rate * cov + rate * rate * var_t, 0.0)
        half = Z95 * np.sqrt(resid / n) / mean_t
        return rate, np.maximum(rate - half, 0.0), rate + half, mean_x

    def total(self):
        return self._ratio(self.n, self.x0_total, self.t0, self.x, self.xx, self.xt, self.t, self.tt)

    def users(self):
        return self._ratio(self.n, self.x0_user, self.t0, self.ux, self.uxx, self.uxt, self.t, self.tt)


def _check_plan(system: System, lengths, bandwidth_hz) -> tuple[np.ndarray, np.ndarray]:
    length = np.asarray(lengths)
    bandwidth = np.asarray(bandwidth_hz, dtype=float)
    if length.shape != (system.users,) or bandwidth.shape != (system.users,):
        raise InputError(f"a plan needs one draft length and one bandwidth per user ({system.users})")
    if not np.all(np.equal(np.mod(length, 1), 0)) or length.min(initial=0) < 0:
        raise InputError("draft lengths must be non-negative integers")
    length = length.astype(int)
    if length.max(initial=0) > system.max_draft_length:
        k = int(np.argmax(length))
        raise InputError(f"user '{system.names[k]}' drafts {length[k]} tokens, more than the profile's "
                         f"max_draft_length ({system.max_draft_length})")
    if not np.all(np.isfinite(bandwidth)) or bandwidth.min(initial=0) < 0:
        raise InputError("bandwidths must be finite and non-negative")
    return length, bandwidth


def simulate_rounds(
    system: System,
    lengths,
    bandwidth_hz,
    options: SimulationOptions = SimulationOptions(),
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rounds themselves, chunk by chunk: committed tokens (rounds, K) and round times (rounds,).

    The plan must be feasible (every drafting user has bandwidth). Chunk c draws from its own
    streams, so the first chunks of a longer run are those of a shorter one.
    """
    lengths, bandwidth = _check_plan(system, lengths, bandwidth_hz)
    predicted = evaluate(system, lengths, bandwidth)
    if not predicted.feasible:
        raise InputError("the plan cannot run: a drafting user has no bandwidth to upload on")
    users = system.users
    cols = np.flatnonzero(lengths > 0)
    survival = _survival(system, lengths)[cols]
    compute = compute_seconds(system, lengths)[cols]
    bits = upload_bits(system, lengths)[cols]
    rate = system.channel.rate_bps(bandwidth)[cols]
    sends = bits > 0  # drafting users off the shared uplink send nothing over it
    with np.errstate(divide="ignore", invalid="ignore"):
        nominal_upload = np.where(sends, bits / rate, 0.0)
    nominal_deadline = float((compute + nominal_upload).max(initial=0.0))
    server_s = float(predicted.verify_s + system.server_fixed_s)
    jitter = float(options.draft_jitter)
    fading = options.fading_of(system)
    if fading.active:
        round_s = options.correlation_round_s if options.correlation_round_s is not None else predicted.round_s
        for tokens, round_s_now, _, _ in policy_rounds(system, Controller("static", lengths, bandwidth), options,
                                                       fading, round_s):
            yield tokens, round_s_now
        return
    random_phase = cols.size > 0 and jitter > 0

    step = _chunk_rounds(users)
    for chunk, start in enumerate(range(0, options.rounds, step)):
        n = min(step, options.rounds - start)
        accept_rng, jitter_rng, fading_rng = _streams(options.seed, chunk)
        # Draw for every user, drafting or not, so that each user's stream is the same in every plan.
        uniforms = accept_rng.random((n, users))
        tokens = np.ones((n, users), dtype=np.int16)
        if cols.size:
            tokens[:, cols] += accepted_prefix(uniforms[:, cols], survival)
        if random_phase:
            draft = compute
            if jitter > 0:
                draft = compute * _lognormal_factor(jitter_rng, (n, users), jitter)[:, cols]
            upload = nominal_upload
            deadline = (draft + upload).max(axis=1)
        else:
            deadline = np.full(n, nominal_deadline)
        yield tokens, deadline + server_s


def policy_rounds(
    system: System,
    control: Controller,
    options: SimulationOptions,
    fading: Fading,
    round_s: float,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Rounds on a fading uplink under a per-round policy, chunk by chunk.

    Yields committed tokens (rounds, K), round times (rounds,), draft lengths and bandwidth
    (rounds, K). The gains follow :func:`multispin_cli.model.fading.draw_gains` (correlation from
    ``round_s``), continued from chunk to chunk; the policy decides on the CSI and the uploads see
    the true gains. Acceptance, jitter and fading draw from the same streams as in
    :func:`simulate_rounds`, whatever the policy (common random numbers).
    """
    users = system.users
    full = np.full(users, system.max_draft_length)
    survival = _survival(system, full)
    rho = fading.round_correlation(round_s)
    jitter = float(options.draft_jitter)
    state = None
    step = _chunk_rounds(users)
    for chunk, start in enumerate(range(0, options.rounds, step)):
        n = min(step, options.rounds - start)
        accept_rng, jitter_rng, fading_rng = _streams(options.seed, chunk)
        uniforms = accept_rng.random((n, users))
        csi, true, state = draw_gains(fading, n, fading_rng, rho=rho, state=state)
        lengths, bandwidth = decide(system, control, csi, true)
        draft = compute_seconds(system, lengths)
        if jitter > 0:
            draft = draft * _lognormal_factor(jitter_rng, (n, users), jitter)
        lengths, deadline = settle(system, lengths, bandwidth, csi, true, wait_factor=control.wait_factor,
                                   draft_s=draft)
        tokens = np.ones((n, users), dtype=np.int16)
        if survival.shape[1]:
            tokens += np.minimum(accepted_prefix(uniforms, survival), lengths).astype(np.int16)
        round_s_now = deadline + system.verify(verify_tokens(system, lengths)) + system.server_fixed_s
        yield tokens, round_s_now, lengths, bandwidth


def simulate_controlled(
    system: System,
    control: Controller,
    predicted: Evaluation,
    options: SimulationOptions = SimulationOptions(),
    *,
    name: str = "plan",
    kind: str = "plan",
    progress: Progress | None = None,
) -> SimulationResult:
    """Simulate a plan under its per-round policy on the fading uplink ``options`` describes.

    ``predicted`` is what the plan promises (for a static plan its evaluation on the mean channel,
    for an adaptive plan its expected values under fading).
    """
    fading = options.fading_of(system)
    round_s = options.correlation_round_s if options.correlation_round_s is not None else predicted.round_s
    t0 = predicted.round_s if np.isfinite(predicted.round_s) else 0.0
    moments = _Moments(float(predicted.tokens_per_round.sum()), predicted.tokens_per_round, t0)
    round_times = np.empty(options.rounds)
    length_sum = np.zeros(system.users)
    band_sum = np.zeros(system.users)
    start = 0
    for tokens, round_s_now, lengths, bandwidth in policy_rounds(system, control, options, fading, round_s):
        n = round_s_now.size
        round_times[start:start + n] = round_s_now
        start += n
        moments.add(tokens, round_s_now)
        length_sum += lengths.sum(axis=0)
        band_sum += bandwidth.sum(axis=0)
        if progress is not None:
            progress(n)
    rate_total, low, high, _ = moments.total()
    user_rate, user_low, user_high, user_tokens = moments.users()
    finite = np.isfinite(round_times).all()
    quantiles = np.percentile(round_times, QUANTILES) if finite else np.full(len(QUANTILES), np.inf)
    return SimulationResult(
        name=name, kind=kind, predicted=predicted, options=options, feasible=bool(finite),
        goodput_tokens_per_s=float(rate_total) if finite else 0.0,
        ci95_tokens_per_s=(float(low), float(high)) if finite else (0.0, 0.0),
        user_tokens_per_s=user_rate, user_ci95_low=user_low, user_ci95_high=user_high,
        user_tokens_per_round=user_tokens, round_s_mean=float(round_times.mean()),
        round_s_quantiles={q: float(v) for q, v in zip(QUANTILES, quantiles)},
        policy=control.policy, fading=fading_label(fading),
    )


def fading_label(fading: Fading) -> str:
    """The fading in words: ``none``, ``rayleigh``, ``rician`` or ``mixed`` (devices differ)."""
    if not fading.faded.any():
        return "none" if not (fading.shadowing_db > 0).any() else "shadowing"
    if not fading.faded.all():
        return "mixed"
    ricean = fading.rician_k > 0
    return "rician" if ricean.all() else ("rayleigh" if not ricean.any() else "mixed")


def simulate_plan(
    system: System,
    lengths,
    bandwidth_hz,
    options: SimulationOptions = SimulationOptions(),
    *,
    name: str = "plan",
    kind: str = "plan",
    progress: Progress | None = None,
    policy: str = "static",
) -> SimulationResult:
    """Simulate ``options.rounds`` rounds of one plan (draft length and bandwidth per user).

    Without fading the plan runs as it is; on a fading uplink ``policy`` is ``static`` (the plan's
    split every round) or ``adaptive-split`` (its lengths, the band re-split on the CSI).
    """
    lengths, bandwidth = _check_plan(system, lengths, bandwidth_hz)
    predicted = evaluate(system, lengths, bandwidth)
    if options.fading_of(system).active:
        if not predicted.feasible and policy == "static":
            return _infeasible(system, name, kind, predicted, options, progress)
        return simulate_controlled(system, Controller(policy, lengths, bandwidth), predicted, options,
                                   name=name, kind=kind, progress=progress)
    if policy not in ("static", "adaptive-split"):
        raise InputError(f"policy {policy!r} needs an adaptive plan")
    if not predicted.feasible:
        return _infeasible(system, name, kind, predicted, options, progress)

    moments = _Moments(float(predicted.tokens_per_round.sum()), predicted.tokens_per_round, predicted.round_s)
    round_times = np.empty(options.rounds)
    start = 0
    for tokens, round_s in simulate_rounds(system, lengths, bandwidth, options):
        n = round_s.size
        round_times[start:start + n] = round_s
        start += n
        moments.add(tokens, round_s)
        if progress is not None:
            progress(n)

    rate_total, low, high, _ = moments.total()
    user_rate, user_low, user_high, user_tokens = moments.users()
    quantiles = np.percentile(round_times, QUANTILES)
    return SimulationResult(
        name=name,
        kind=kind,
        predicted=predicted,
        options=options,
        feasible=True,
        goodput_tokens_per_s=float(rate_total),
        ci95_tokens_per_s=(float(low), float(high)),
        user_tokens_per_s=user_rate,
        user_ci95_low=user_low,
        user_ci95_high=user_high,
        user_tokens_per_round=user_tokens,
        round_s_mean=float(round_times.mean()),
        round_s_quantiles={q: float(v) for q, v in zip(QUANTILES, quantiles)},
    )


def _infeasible(system, name, kind, predicted, options, progress) -> SimulationResult:
    if progress is not None:
        progress(options.rounds)
    zeros = np.zeros(system.users)
    return SimulationResult(name, kind, predicted, options, False, 0.0, (0.0, 0.0), zeros, zeros, zeros, zeros,
                            float("inf"), {q: float("inf") for q in QUANTILES})


def simulate_plans(
    system: System,
    plans: Sequence[Plan] | Mapping[str, Plan],
    options: SimulationOptions = SimulationOptions(),
    *,
    kind: str = "plan",
    progress: Progress | None = None,
) -> list[SimulationResult]:
    """Simulate several plans of one cell with the same seed (common random numbers)."""
    items = plans.values() if isinstance(plans, Mapping) else plans
    return [
        simulate_plan(system, p.evaluation.draft_lengths, p.evaluation.bandwidth_hz, options, name=p.name,
                      kind=kind, progress=progress)
        for p in items
    ]
