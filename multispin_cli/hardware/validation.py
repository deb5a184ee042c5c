"""`multispin validate`: multispin's prediction against a real engine, L by L.

The engine (:mod:`multispin_cli.hardware.engine`) runs its prompt at every L asked. Between those
runs multispin profiles the pair as ``profile-hardware`` would, on a calibration prompt: T_v(N) at
every N (over KV caches spread like the runs' contexts) and the engine loop's per-round costs, in
sweeps interleaved with the runs. The acceptance by position comes from the target's greedy text of
the run's prompt, as ``calibrate`` would be run on served traffic. Those numbers make a one-user cell
(the draft next to the target, so no uplink); multispin's model predicts tokens/s for every draft
length and the homogeneous planner picks its L; the two are set side by side.

The machine's speed drifts by 10-20 % over seconds to minutes (a shared virtual machine: its
neighbours, not this process; the runs' work is the same every time, as their own passes show), more
than the 5 % the comparison is after. Every run sits between two verify sweeps, whose passes say how
fast the machine ran then (their *slowdown*, see :meth:`EngineProfiler.slowdown_at`). The model's
terms are at the sweeps' average speed, and each run's rate is brought to that speed (times its
slowdown: every part of a round is a time) before the median is taken. None of the runs' own
timings enter the prediction or the slowdowns. A length whose median is not yet known within the
stability asked is run again, interleaved, up to a most.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import tomli_w

from multispin_cli.errors import InputError
from multispin_cli.hardware.engine import EngineProfile, EngineProfiler, EngineRun, build_pair, prompt_ids, run_engine
from multispin_cli.model.acceptance import expected_tokens, position_matrix
from multispin_cli.model.channel import Channel
from multispin_cli.model.goodput import evaluate
from multispin_cli.model.system import System
from multispin_cli.model.verifier import VerifyTime
from multispin_cli.planners.homogeneous import plan_homogeneous


@dataclass(frozen=True)
class ValidationSettings:
    """What to run: the pair, the lengths, the text sizes and the repetitions."""

    target: str
    draft: str | None = None
    draft_layers: int | None = None
    init_std: float | None = None
    lengths: tuple[int, ...] = tuple(range(9))
    new_tokens: int = 256
    prompt_tokens: int = 32
    repeats: int = 3
    seed: int = 0
    max_repeats: int | None = None  # None: twice ``repeats``
    stability: float = 0.02  # repeat a length while its median tokens/s is known less well than this

    @property
    def most_repeats(self) -> int:
        return 2 * self.repeats if self.max_repeats is None else self.max_repeats

    def check(self) -> None:
        if not self.lengths or min(self.lengths) < 0 or max(self.lengths) > 64:
            raise InputError("must be draft lengths in 0..64, like 0-8", key="--max-draft-length")
        if not 8 <= self.new_tokens <= 100_000:
            raise InputError(f"must be in 8..100000, got {self.new_tokens}", key="--new-tokens")
        if not 1 <= self.prompt_tokens <= 100_000:
            raise InputError(f"must be in 1..100000, got {self.prompt_tokens}", key="--prompt-tokens")
        if not 1 <= self.repeats <= 100:
            raise InputError(f"must be in 1..100, got {self.repeats}", key="--repeats")
        if not self.repeats <= self.most_repeats <= 200:
            raise InputError(f"must be in {self.repeats}..200 (at least --repeats), got {self.max_repeats}",
                             key="--max-repeats")
        if not 0 < self.stability < 1:
            raise InputError(f"must be in (0, 100) per cent, got {100 * self.stability:g}", key="--stability")
        if self.init_std is not None and not 0 < self.init_std < 10:
            raise InputError(f"must be in (0, 10), got {self.init_std:g}", key="--init-std")
        if self.draft is not None and self.draft_layers is not None:
            raise InputError("give --draft or --draft-layers (a layer-skip draft), not both", key="--draft-layers")


@dataclass(frozen=True)
class LengthResult:
    """One draft length: the engine's runs (median over repeats) and the model's prediction.

    The prediction is at the verify sweeps' average speed; each run is brought to that speed with the
    slowdown of the sweeps around it (``slowdowns``: a run at 1.1 ran while the machine was 10 % slow),
    and the comparison (``error``, the phase times) is with the median of those. ``tokens_per_s`` is the
    plain median of the runs; ``unadjusted_error`` compares the prediction with it.
    """

    draft_length: int
    runs: tuple[EngineRun, ...]
    slowdowns: tuple[float, ...]
    predicted_tokens_per_s: float
    predicted_tokens_per_round: float
    predicted_draft_s: float
    predicted_verify_s: float
    predicted_overhead_s: float
    held_out_tokens_per_round: float = float("nan")  # predicted from the calibration prompt's text instead

    def _median(self, f) -> float:
        return float(np.median([f(r) for r in self.runs]))

    @property
    def tokens_per_s(self) -> float:
        """The median of the runs' tokens/s, as measured."""
        return self._median(lambda r: r.tokens_per_s)

    @property
    def normalised_tokens_per_s(self) -> float:
        """The median of the runs' tokens/s at the sweeps' average speed (what the prediction is for)."""
        return float(np.median(normalised_rates(self.runs, self.slowdowns)))

    @property
    def spread(self) -> float:
        rates = [r.tokens_per_s for r in self.runs]
        return (max(rates) - min(rates)) / self.tokens_per_s if len(rates) > 1 and self.tokens_per_s else 0.0

    @property
    def uncertainty(self) -> float:
        """Half the width of the median's confidence interval over the median (see median_interval), of
        the runs' rates at the sweeps' average speed (what the comparison's noise is)."""
        return median_interval(normalised_rates(self.runs, self.slowdowns))

    @property
    def slowdown(self) -> float:
        """The median slowdown of the machine over this length's runs (1.05: 5 % slower than average)."""
        return float(np.median(self.slowdowns))

    @property
    def error(self) -> float:
        """Predicted over measured tokens/s (the runs at the sweeps' average speed), minus 1."""
        return self.predicted_tokens_per_s / self.normalised_tokens_per_s - 1.0

    @property
    def unadjusted_error(self) -> float:
        """Predicted over the plain median of the runs' tokens/s, minus 1 (no slowdowns)."""
        return self.predicted_tokens_per_s / self.tokens_per_s - 1.0

    @property
    def rounds(self) -> float:
        return self._median(lambda r: r.rounds)

    @property
    def tokens(self) -> float:
        return self._median(lambda r: r.tokens)

    @property
    def tokens_per_round(self) -> float:
        return self._median(lambda r: r.tokens / r.rounds)

    @property
    def accepted(self) -> float:
        return self._median(lambda r: r.accepted)

    def phase(self, name: str) -> float:
        """Median seconds per round of ``draft``, ``verify`` or ``overhead``, at the sweeps' average speed."""
        return float(np.median([r.per_round(getattr(r, f"{name}_s")) / s for r, s in zip(self.runs, self.slowdowns)]))


@dataclass(frozen=True)
class Validation:
    """Everything one `validate` run found."""

    settings: ValidationSettings
    target_label: str
    draft_label: str
    device: str
    profile: EngineProfile
    lengths: tuple[LengthResult, ...]
    plan_length: int
    wall_seconds: float = 0.0

    @property
    def best(self) -> LengthResult:
        """The length that ran fastest, its runs brought to the sweeps' average speed."""
        return max(self.lengths, key=lambda r: r.normalised_tokens_per_s)

    @property
    def planned(self) -> LengthResult | None:
        return next((r for r in self.lengths if r.draft_length == self.plan_length), None)

    @property
    def worst_error(self) -> float:
        return max(abs(r.error) for r in self.lengths)

    @property
    def worst_unadjusted_error(self) -> float:
        return max(abs(r.unadjusted_error) for r in self.lengths)

    @property
    def plan_loss(self) -> float | None:
        """How much slower the plan's L ran than the measured best (0.01 = 1 %; both at the sweeps'
        average speed); None if not run."""
        planned = self.planned
        return None if planned is None else 1.0 - planned.normalised_tokens_per_s / self.best.normalised_tokens_per_s


def normalised_rates(runs, slowdowns) -> list[float]:
    """The runs' tokens/s at the sweeps' average speed: a run at slowdown 1.1 would have run 1.1 times faster."""
    return [r.tokens_per_s * s for r, s in zip(runs, slowdowns)]


MEDIAN_CONFIDENCE = 0.75  # the level of the interval ``median_interval`` measures


def median_interval(values) -> float:
    """Half the width of a distribution-free confidence interval of the median, over the median.

    The interval runs from the k-th smallest to the k-th largest value, with the largest k whose
    coverage ``1 - 2 P(Binomial(n, 1/2) < k)`` is at least MEDIAN_CONFIDENCE (k = 1, the whole
    range, when none is); infinite for one value. It needs no assumption about the shape of the
    runs' spread, which on a shared machine is anything but normal.
    """
    from math import comb

    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n < 2:
        return float("inf")
    k = 1
    while k + 1 <= n // 2 and 1 - 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n >= MEDIAN_CONFIDENCE:
        k += 1
    med = float(np.median(x))
    return float((x[n - k] - x[k - 1]) / 2 / med) if med > 0 else float("inf")


def engine_system(profile: EngineProfile, max_draft_length: int) -> System:
    """The one-user cell multispin's model sees: the draft next to the target (no uplink)."""
    return System(
        names=("engine",),
        accept_prob=position_matrix(acceptance=[list(profile.acceptance_by_position)],
                                    max_draft_length=max_draft_length),
        draft_s_per_token=np.array([profile.draft_s_per_token]),
        draft_overhead_s=np.array([profile.draft_overhead_s]),
        channel=Channel.fixed_snr(1.0),
        bits_per_token=1.0,
        header_bits=0.0,
        bandwidth_hz=1.0,
        max_draft_length=max_draft_length,
        verify=VerifyTime.from_table(profile.verify_tokens, profile.verify_s),
        round_overhead_s=profile.round_overhead_s,
        no_uplink=np.array([True]),
    )


def run_validation(settings: ValidationSettings, *, progress=None, device: str | None = None) -> Validation:
    """Profile the pair, predict every L, run every L for real, and compare."""
    import time

    started = time.perf_counter()
    settings.check()
    say = progress or (lambda text: None)
    say("building the models")
    pair = build_pair(target=settings.target, draft=settings.draft, draft_layers=settings.draft_layers,
                      init_std=settings.init_std, seed=settings.seed, device=device)
    top = max(max(settings.lengths), 1)
    prompt = prompt_ids(pair, settings.prompt_tokens, settings.seed)
    say("calibration: the target's greedy text")
    profiler = EngineProfiler(pair, max_draft_length=top, prompt_len=settings.prompt_tokens,
                              new_tokens=settings.new_tokens, seed=settings.seed + 1000)
    lengths = sorted(set(settings.lengths))
    runs: dict[int, list[EngineRun]] = {length: [] for length in lengths}
    at: dict[int, list[int]] = {length: [] for length in lengths}  # each run's position among the sweeps
    # Interleaved: every run is followed by a sweep of T_v, and every third run by a run of the
    # engine loop on the calibration prompt (at L = 0, 1 and the largest L in turn, as long as the
    # runs, so that their contexts match) and another sweep, so every run has a sweep on both sides
    # to tell how fast the machine ran (none of the runs' own timings enter the model).
    say("engine loop: per-round costs")
    profiler.sweep_rounds()
    cycle = profiler.round_lengths()
    done = 0

    def run(length: int) -> None:
        nonlocal done
        at[length].append(profiler.position)
        runs[length].append(run_engine(pair, prompt, length, settings.new_tokens))
        profiler.sweep_verify()
        if done % 3 == 2:
            profiler.sweep_round(cycle[(done // 3) % len(cycle)])
            profiler.sweep_verify()
        done += 1

    def slowdowns(length: int, sweeps=None) -> list[float]:
        sweeps = profiler.slowdowns() if sweeps is None else sweeps
        return [profiler.slowdown_at(position, sweeps) for position in at[length]]

    for rep in range(settings.repeats):
        for length in lengths:
            say(f"run {rep + 1}/{settings.repeats}: L = {length}")
            run(length)
    # Then more runs, interleaved as well, of the lengths whose median is not yet known within
    # ``stability``, until it is or they reach ``max_repeats``.
    while True:
        sweeps = profiler.slowdowns()
        unsure = [length for length in lengths if len(runs[length]) < settings.most_repeats
                  and median_interval(normalised_rates(runs[length], slowdowns(length, sweeps)))
                  > settings.stability]
        if not unsure:
            break
        for length in unsure:
            say(f"run {len(runs[length]) + 1}/{settings.most_repeats} (not yet stable): L = {length}")
            run(length)
    say("acceptance by position")
    profile = profiler.profile(workload=[prompt])
    system = engine_system(profile, top)
    plan = plan_homogeneous(system)
    held_out = expected_tokens(position_matrix(acceptance=[list(profile.held_out_acceptance)],
                                               max_draft_length=top))[0]
    results = []
    sweeps = profiler.slowdowns()
    for length in lengths:
        ev = evaluate(system, np.array([length]), np.zeros(1))
        # The model's drafting round holds the loop's extra work; the engine's columns show it under
        # "other", so it is moved there for the comparison (the sum, and the prediction, are unchanged).
        loop = profile.loop_overhead_s + profile.loop_s_per_token * length if length > 0 else 0.0
        draft = float(ev.phase_s[0]) - loop
        results.append(LengthResult(length, tuple(runs[length]), tuple(slowdowns(length, sweeps)),
                                    ev.goodput_tokens_per_s, float(ev.tokens_per_round[0]), draft, ev.verify_s,
                                    system.server_fixed_s + loop, float(held_out[length])))
    return Validation(settings, pair.target_label, pair.draft_label, pair.device, profile, tuple(results),
                      int(plan.draft_length), time.perf_counter() - started)


# --------------------------------------------------------------------------- output


def _sig(value: float) -> float:
    """A measured number to 4 significant digits (more would be noise)."""
    return float(f"{float(value):.4g}")


def _ms(seconds: float) -> float:
    return _sig(seconds * 1e3)


def document(v: Validation) -> dict:
    """The TOML/JSON document: settings, the measured model terms, one row per L, the summary."""
    p = v.profile
    doc = {
        "validate": {
            "target": v.target_label,
            "draft": v.draft_label,
            "device": v.device,
            "clock": p.clock,
            "prompt_tokens": v.settings.prompt_tokens,
            "new_tokens": v.settings.new_tokens,
            "repeats": v.settings.repeats,
            "max_repeats": v.settings.most_repeats,
            "stability_percent": _sig(100 * v.settings.stability),
            "seed": v.settings.seed,
        },
        "summary": {
            "worst_error_percent": _sig(100 * v.worst_error),
            "worst_unadjusted_error_percent": _sig(100 * v.worst_unadjusted_error),
            "plan_draft_length": v.plan_length,
            "best_draft_length": v.best.draft_length,
            "best_tokens_per_s": _sig(v.best.normalised_tokens_per_s),
        },
        "model": {
            "draft_ms_per_token": _ms(p.draft_s_per_token),
            "draft_overhead_ms": _ms(p.draft_overhead_s),
            "round_overhead_ms": _ms(p.round_overhead_s),
            "loop_overhead_ms": _ms(p.loop_overhead_s),
            "loop_ms_per_token": _ms(p.loop_s_per_token),
            "acceptance_by_position": [_sig(x) for x in p.acceptance_by_position],
            "held_out_acceptance_by_position": [_sig(x) for x in p.held_out_acceptance],
            "verify_table": [[n, _ms(t)] for n, t in zip(p.verify_tokens, p.verify_s)],
            "verify_spread_percent": _sig(100 * p.verify_spread),
            "verify_uncertainty_percent": _sig(100 * p.verify_uncertainty),
            "verify_samples": p.verify_samples,
            "context_tokens": p.context,
        },
        "lengths": [],
    }
    if v.plan_loss is not None:
        doc["summary"]["plan_loss_percent"] = _sig(100 * v.plan_loss)
    for r in v.lengths:
        doc["lengths"].append({
            "draft_length": r.draft_length,
            "measured_tokens_per_s": _sig(r.tokens_per_s),
            "predicted_tokens_per_s": _sig(r.predicted_tokens_per_s),
            "error_percent": _sig(100 * r.error),
            "normalised_tokens_per_s": _sig(r.normalised_tokens_per_s),
            "slowdown": _sig(r.slowdown),
            "unadjusted_error_percent": _sig(100 * r.unadjusted_error),
            "spread_percent": _sig(100 * r.spread),
            "runs": len(r.runs),
            "rounds": _sig(r.rounds),
            "tokens": _sig(r.tokens),
            "accepted_tokens": _sig(r.accepted),
            "tokens_per_round": _sig(r.tokens_per_round),
            "predicted_tokens_per_round": _sig(r.predicted_tokens_per_round),
            "held_out_tokens_per_round": _sig(r.held_out_tokens_per_round),
            "draft_ms_per_round": _ms(r.phase("draft")),
            "verify_ms_per_round": _ms(r.phase("verify")),
            "overhead_ms_per_round": _ms(r.phase("overhead")),
            "predicted_draft_ms_per_round": _ms(r.predicted_draft_s),
            "predicted_verify_ms_per_round": _ms(r.predicted_verify_s),
            "predicted_overhead_ms_per_round": _ms(r.predicted_overhead_s),
        })
        if len(r.runs) > 1:  # the median's interval (see median_interval); none for one run
            doc["lengths"][-1]["uncertainty_percent"] = _sig(100 * r.uncertainty)
    return doc


def to_toml(v: Validation) -> str:
    return tomli_w.dumps(document(v))


def to_json(v: Validation) -> str:
    return json.dumps(document(v), indent=2) + "\n"


def view(v: Validation):
    """A rich table for people: measured vs predicted per L, then the plan against the best."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"multispin validate: {v.target_label} with {v.draft_label} ({v.profile.clock})")
    for name in ("L", "measured tok/s", "slowdown", "at avg. speed", "runs (±)", "predicted tok/s", "error",
                 "rounds", "tokens/round (pred.)",
                 "draft ms/round (pred.)", "verify ms/round (pred.)", "other ms/round (pred.)"):
        table.add_column(name, justify="right")
    for r in v.lengths:
        mark = " *" if r.draft_length == v.plan_length else ""
        sure = f" ({100 * r.uncertainty:.1f} %)" if len(r.runs) > 1 else ""
        table.add_row(f"{r.draft_length}{mark}", f"{r.tokens_per_s:.2f}", f"{r.slowdown:.3f}",
                      f"{r.normalised_tokens_per_s:.2f}", f"{len(r.runs)}{sure}",
                      f"{r.predicted_tokens_per_s:.2f}",
                      f"{100 * r.error:+.1f} %", f"{r.rounds:g}",
                      f"{r.tokens_per_round:.2f} ({r.predicted_tokens_per_round:.2f})",
                      f"{1e3 * r.phase('draft'):.1f} ({1e3 * r.predicted_draft_s:.1f})",
                      f"{1e3 * r.phase('verify'):.1f} ({1e3 * r.predicted_verify_s:.1f})",
                      f"{1e3 * r.phase('overhead'):.1f} ({1e3 * r.predicted_overhead_s:.1f})")
    lines = [f"worst error {100 * v.worst_error:.1f} % ({100 * v.worst_unadjusted_error:.1f} % against the plain "
             f"medians); plan's L = {v.plan_length} (*), measured best L = {v.best.draft_length} "
             f"({v.best.normalised_tokens_per_s:.2f} tok/s at the average speed)"]
    if v.plan_loss is not None:
        lines.append(f"the plan's L ran {100 * v.plan_loss:.1f} % slower than the measured best")
    p = v.profile
    lines.append(f"model terms, measured between the runs: draft {1e3 * p.draft_s_per_token:.2f} ms/token + "
                 f"{1e3 * p.draft_overhead_s:.2f} ms/round, engine {1e3 * p.round_overhead_s:.2f} ms/round, "
                 f"T_v(1) {1e3 * p.verify_s[0]:.1f} ms .. T_v({p.verify_tokens[-1]}) {1e3 * p.verify_s[-1]:.1f} ms "
                 f"(±{100 * p.verify_uncertainty:.1f} % from {p.verify_samples} passes each, 10-90 % spread "
                 f"{100 * p.verify_spread:.0f} %), acceptance {p.acceptance_by_position[0]:.2f} at position 1")
    lines.append("slowdown: how slow the machine ran during a length's runs (median), from the verify sweeps "
                 "around each; at avg. speed: the median of the runs' tok/s times their slowdowns (± half its "
                 f"{MEDIAN_CONFIDENCE:.0%} interval), which the error and the ms columns compare with; predicted: "
                 "expected times (outliers out, then the mean), as a run's rate is its total time")
    lines.append(f"'other' is the engine loop's own work: {1e3 * p.round_overhead_s:.2f} ms per round, and in a "
                 f"drafting round {1e3 * p.loop_overhead_s:.2f} + {1e3 * p.loop_s_per_token:.3f} ms x L more, which "
                 "the model's drafting round (draft_overhead_ms, draft_ms_per_token) holds and 'draft' leaves out")
    return Group(table, *(Text(line) for line in lines))
