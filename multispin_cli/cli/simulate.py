"""`multispin simulate PROFILE.toml`: play the rounds of a plan out and compare with the prediction."""

from __future__ import annotations

import enum
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from multispin_cli.cli.app import app, reported_errors, show, warn
from multispin_cli.cli.options import Format, FormatOpt, Mode, OutputOpt, ProfileArg, RowsOpt, SeedOpt

MAX_ROUNDS = 10_000_000  # as multispin_cli.analysis.simulation.MAX_ROUNDS (not imported: CLI start-up stays light)
PROGRESS_ELEMENTS = 20_000_000  # rounds x users x plans above which a terminal gets a progress bar
DRIFT_WARNING = 1e-3  # warn when a plan file's prediction differs this much from the profile's


class Fading(str, enum.Enum):
    """Uplink fading model."""

    none = "none"
    rayleigh = "rayleigh"
    rician = "rician"


class Policy(str, enum.Enum):
    """Per-round control policy on a fading uplink."""

    static = "static"
    adaptive_split = "adaptive-split"
    adaptive = "adaptive"
    oracle = "oracle"


@app.command(short_help="Monte Carlo check of a plan against its prediction.")
def simulate(
    profile: ProfileArg,
    plan_file: Annotated[
        Optional[Path],
        typer.Option("--plan", "-p", metavar="PLAN", help="Simulate the plans of this plan file (from multispin "
                     "plan --format toml|json) instead of planning the profile.", show_default=False),
    ] = None,
    mode: Annotated[
        Optional[Mode],
        typer.Option("--mode", "-m", help="Plans to compute and simulate: homogeneous, heterogeneous, or both "
                     "(the default). Not with --plan.", show_default=False),
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", "-n", metavar="N", help="Rounds simulated per plan.", min=1,
                                        max=MAX_ROUNDS)] = 20_000,
    seed: SeedOpt = 0,
    fading: Annotated[Optional[Fading], typer.Option("--fading", help="Override the profile's fading for every "
                                                     "user: none, rayleigh (SNR scaled by an Exp(1) draw each "
                                                     "round) or rician (K factor from --rician-k-db or the "
                                                     "profile).", show_default=False)] = None,
    rician_k_db: Annotated[Optional[float], typer.Option("--rician-k-db", metavar="DB", help="With --fading "
                                                         "rician: every user's K factor in dB.",
                                                         show_default=False)] = None,
    policy: Annotated[Optional[Policy], typer.Option("--policy", help="Per-round control on a fading uplink; "
                                                     "default: each plan under its own policy.",
                                                     show_default=False)] = None,
    draft_jitter: Annotated[
        float,
        typer.Option("--draft-jitter", metavar="F", help="Draft-time jitter: the device time is multiplied by a "
                     "lognormal draw with mean 1 and this standard deviation (0.1 = 10%; at most 10).", min=0.0,
                     max=10.0),
    ] = 0.0,
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines", help="Simulate the baselines too.")] = True,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    rows: RowsOpt = 40,
    samples: Annotated[int | None, typer.Option("--samples", metavar="N", help="Fading draws when planning the "
                                                "adaptive plan (default: sized automatically).", min=1)] = None,
) -> None:
    """Simulate the rounds of the planned plans and the baselines: simulated vs predicted goodput."""
    with reported_errors():
        from multispin_cli.analysis.simulation import SimulationOptions, simulate_plans
        from multispin_cli.documents.output import emit
        from multispin_cli.documents.planfile import plans_from_file
        from multispin_cli.documents.profile import load_profile
        from multispin_cli.errors import InputError
        from multispin_cli.render.document import to_json, to_toml
        from multispin_cli.render.simulation import SimulationRun, simulation_document

        if plan_file is not None and mode is not None:
            raise InputError("give either --plan (simulate a plan file) or --mode (plan the profile), not both")
        if not math.isfinite(draft_jitter):
            raise InputError(f"must be a finite fraction >= 0, got {draft_jitter}", key="--draft-jitter")
        if rician_k_db is not None and (fading is not Fading.rician or not math.isfinite(rician_k_db)):
            raise InputError("needs --fading rician and a finite value", key="--rician-k-db")
        options = SimulationOptions(rounds=rounds, seed=seed, fading="profile" if fading is None else fading.value,
                                    draft_jitter=draft_jitter, rician_k_db=rician_k_db)
        loaded = load_profile(profile)
        for line in loaded.warnings:
            warn(line)
        system = loaded.system
        faded = options.fading_of(system)
        if faded.active:
            from dataclasses import replace

            system = replace(system, fading=faded)
        elif policy is not None and policy.value in ("adaptive", "oracle"):
            raise InputError(f"needs a fading channel (set [system] fading in the profile, or --fading rayleigh), "
                             f"got policy {policy.value!r} on a static one", key="--policy")
        if plan_file is not None:
            from multispin_cli.planners.baselines import all_baselines
            from multispin_cli.planners.homogeneous import plan_homogeneous

            read = plans_from_file(system, plan_file)
            for item in read:
                if item.drift > DRIFT_WARNING:
                    warn(f"{plan_file}: the {item.plan.name} plan predicted {item.file_goodput_tokens_per_s:,.1f} "
                         f"tok/s when it was made; with this profile it predicts "
                         f"{item.plan.goodput_tokens_per_s:,.1f} tok/s (the profile changed?)")
            plans = [item.plan for item in read]
            others = all_baselines(system) if baselines else {}
            if baselines and all(p.name != "homogeneous" for p in plans):
                others = {**others, "homogeneous": plan_homogeneous(system)}
            source = str(plan_file)
        else:
            from multispin_cli.planners.report import plan_report

            chosen = (mode or Mode.both).value
            report = plan_report(system, mode=chosen, samples=samples, seed=seed)
            plans = report.plans + ([report.adaptive] if report.adaptive is not None else [])
            others = report.baselines if baselines else {}
            source = "the homogeneous and heterogeneous plans" if chosen == "both" else f"the {chosen} plan"

        if faded.active:
            from multispin_cli.cli.simulate_policies import controlled_entries

            entries = controlled_entries(system, plans, others, None if policy is None else policy.value,
                                         plan_file=plan_file, samples=samples)
            from multispin_cli.analysis.simulation import simulate_controlled
            from multispin_cli.planners.homogeneous import plan_homogeneous

            options = replace(options, correlation_round_s=plan_homogeneous(system).evaluation.round_s)
            total = sum(_capped(options, e[2].policy, policy).rounds for e in entries)
            with _progress(total, enabled=total * system.users >= PROGRESS_ELEMENTS) as advance:
                results = [simulate_controlled(system, control, predicted, _capped(options, control.policy, policy),
                                               name=name, kind=kind, progress=advance)
                           for name, kind, control, predicted in entries]
        else:
            total = rounds * (len(plans) + len(others))
            with _progress(total, enabled=total * system.users >= PROGRESS_ELEMENTS) as advance:
                results = simulate_plans(system, plans, options, kind="plan", progress=advance)
                results += simulate_plans(system, others, options, kind="baseline", progress=advance)
        run = SimulationRun(loaded.path, loaded.name, system.names, source, options, tuple(results))

        if fmt is Format.table:
            from multispin_cli.render.simulation import simulation_view

            view = simulation_view(run, max_rows=rows)
            show(view, output)
        else:
            doc = simulation_document(run)
            emit(to_toml(doc) if fmt is Format.toml else to_json(doc), output)
        if output is not None:
            typer.echo(f"multispin: wrote {fmt.value} simulation to {output}", err=True)


ORACLE_ROUNDS = 5_000  # the oracle's per-round search is costly: fewer rounds unless asked for by --policy


def _capped(options, policy: str, asked):
    """The oracle beside other plans runs at most ORACLE_ROUNDS rounds (its entry says how many)."""
    from dataclasses import replace

    if policy == "oracle" and asked is None and options.rounds > ORACLE_ROUNDS:
        return replace(options, rounds=ORACLE_ROUNDS)
    return options


class _progress:
    """A rich progress bar on stderr for long runs on a terminal; a no-op otherwise."""

    def __init__(self, total: int, *, enabled: bool):
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from multispin_cli.render.text import stderr_console

        self.bar = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=stderr_console(), transient=True)
        self.bar.start()
        task = self.bar.add_task("rounds", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
