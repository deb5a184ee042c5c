"""What `multispin simulate` shows: the simulation document (TOML/JSON) and the tables for people."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.text import Text

from multispin_cli import __version__
from multispin_cli.analysis.simulation import QUANTILES, SimulationOptions, SimulationResult
from multispin_cli.model.units import MHZ, MS
from multispin_cli.render.document import num
from multispin_cli.render.tables import band, new_table, plural

FORMAT_VERSION = 1
CI_METHOD = "delta method on the renewal-reward ratio (i.i.d. rounds)"
JITTER_MODEL = "lognormal, mean 1, standard deviation = draft_jitter"


@dataclass(frozen=True, eq=False)
class SimulationRun:
    """Everything one `multispin simulate` run reports."""

    profile_path: str
    profile_name: str
    names: tuple[str, ...]
    source: str  # "planned (mode ...)" or the plan file's path
    options: SimulationOptions
    results: tuple[SimulationResult, ...]

    @property
    def plans(self) -> list[SimulationResult]:
        return [r for r in self.results if r.kind == "plan"]

    @property
    def baselines(self) -> list[SimulationResult]:
        return [r for r in self.results if r.kind == "baseline"]

    @property
    def fading(self) -> str:
        """The fading simulated, in words (the profile's unless --fading overrode it)."""
        return next((r.fading for r in self.results if r.fading != "none"), self.options.fading
                    if self.options.fading != "profile" else "none")


# --------------------------------------------------------------------------- notes


def _order(results: list[SimulationResult], key) -> list[str]:
    # Stable on ties (equal plans keep report order), highest first.
    ranked = sorted(range(len(results)), key=lambda i: -key(results[i]))
    return [results[i].name for i in ranked]


def notes(run: SimulationRun) -> list[str]:
    """Sentences on what the simulation says about the predictions and the ranking of plans."""
    lines = []
    feasible = [r for r in run.results if r.feasible]
    stuck = [r.name for r in run.results if not r.feasible]
    if stuck:
        lines.append(f"Not simulated: {', '.join(stuck)} (a drafting user has no bandwidth, so no round ends).")
    if not feasible:
        return lines
    opts = run.options
    effects = []
    if run.fading != "none":
        effects.append(f"{run.fading} fading")
    if opts.draft_jitter > 0:
        effects.append(f"draft-time jitter {opts.draft_jitter:g}")
    missed = [r.name for r in feasible if not r.prediction_inside_ci]
    if not effects:
        if missed:
            lines.append(f"The prediction lies outside the simulated 95% interval for {', '.join(missed)} "
                         f"({opts.rounds:,} rounds; about 1 plan in 20 is expected outside by chance).")
        else:
            lines.append("Every prediction lies inside its simulated 95% interval: the analytic model holds.")
    else:
        worst = min(feasible, key=lambda r: r.relative_error)
        if worst.relative_error < -0.0005:
            lines.append(f"With {' and '.join(effects)} the simulated goodput is {100 * -worst.relative_error:.1f}% "
                         f"below the prediction for {worst.name} (the largest loss); the analytic model assumes "
                         "the nominal channel and draft times.")
        else:
            lines.append(f"With {' and '.join(effects)} no plan loses more than 0.05% against its prediction.")
    predicted = _order(feasible, lambda r: r.predicted_tokens_per_s)
    simulated = _order(feasible, lambda r: r.goodput_tokens_per_s)
    if predicted == simulated:
        lines.append(f"Ranking (simulated) as predicted: {' > '.join(simulated)}.")
    else:
        lines.append(f"Ranking changes: predicted {' > '.join(predicted)}; simulated {' > '.join(simulated)}.")
    if run.fading != "none":
        lines.append("Under fading the mean round time has no finite limit (deep fades make uploads arbitrarily "
                     "slow), so the simulated goodput drifts down slowly with more rounds; the round-time "
                     "percentiles are the stable measure.")
    return lines


# --------------------------------------------------------------------------- document


def _result_section(run: SimulationRun, result: SimulationResult) -> dict:
    opts = result.options
    ev = result.predicted
    section: dict = {
        "name": result.name,
        "kind": result.kind,
        "feasible": result.feasible,
        "predicted_tokens_per_s": num(result.predicted_tokens_per_s),
        "simulated_tokens_per_s": num(result.goodput_tokens_per_s),
        "ci95_low_tokens_per_s": num(result.ci95_tokens_per_s[0]),
        "ci95_high_tokens_per_s": num(result.ci95_tokens_per_s[1]),
    }
    if result.feasible:
        section["error_percent"] = num(100.0 * result.relative_error)
        section["predicted_round_ms"] = num(ev.round_s / MS)
        section["round_ms_mean"] = num(result.round_s_mean / MS)
        for q in QUANTILES:
            section[f"round_ms_p{q}"] = num(result.round_s_quantiles[q] / MS)
    section["rounds"] = opts.rounds if result.feasible else 0
    section["seed"] = opts.seed
    section["fading"] = run.fading
    if run.fading != "none":
        section["policy"] = result.policy
    section["draft_jitter"] = num(opts.draft_jitter)
    section["mean_draft_length"] = num(ev.draft_lengths.mean())
    users = []
    for k, name in enumerate(run.names):
        users.append({
            "name": name,
            "draft_length": int(ev.draft_lengths[k]),
            "bandwidth_mhz": num(ev.bandwidth_hz[k] / MHZ),
            "predicted_tokens_per_round": num(ev.tokens_per_round[k]),
            "simulated_tokens_per_round": num(result.user_tokens_per_round[k]),
            "predicted_tokens_per_s": num(ev.user_tokens_per_s[k]),
            "simulated_tokens_per_s": num(result.user_tokens_per_s[k]),
            "ci95_low_tokens_per_s": num(result.user_ci95_low[k]),
            "ci95_high_tokens_per_s": num(result.user_ci95_high[k]),
        })
    section["users"] = users
    return section


def simulation_document(run: SimulationRun) -> dict:
    """``[simulation]`` (the run) and ``[[plans]]`` (one entry per plan and baseline, plans first)."""
    opts = run.options
    head = {
        "profile": run.profile_path,
        "name": run.profile_name,
        "source": run.source,
        "users": len(run.names),
        "rounds": opts.rounds,
        "seed": opts.seed,
        "fading": run.fading,
        "draft_jitter": num(opts.draft_jitter),
    }
    if opts.draft_jitter > 0:
        head["draft_jitter_model"] = JITTER_MODEL
    head["ci_method"] = CI_METHOD
    head["notes"] = notes(run)
    head["multispin_version"] = __version__
    head["format_version"] = FORMAT_VERSION
    return {"simulation": head, "plans": [_result_section(run, r) for r in run.results]}


# --------------------------------------------------------------------------- tables


def _short(value: float) -> str:
    """One decimal below 1000, none above: keeps the summary within 80 columns."""
    return f"{value:.1f}" if abs(value) < 999.95 else f"{value:.0f}"


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 99.95 else f"{value:.0f}"


def summary_table(run: SimulationRun):
    """Every plan and baseline: predicted vs simulated goodput, its interval, round-time spread."""
    table = new_table("Simulated goodput")
    for title, justify in (("\nplan", "left"), ("predicted\ntok/s", "right"), ("simulated\ntok/s", "right"),
                           ("95% CI\ntok/s", "right"), ("\nerror", "right"), ("round\nms p50", "right"),
                           ("\np95", "right"), ("\np99", "right")):
        table.add_column(title, justify=justify, no_wrap=True)
    for r in run.results:
        name = Text(r.name, style="bold" if r.kind == "plan" else "")
        if not r.feasible:
            table.add_row(name, _short(r.predicted_tokens_per_s), "-", "-", "", "-", "-", "-")
            continue
        low, high = r.ci95_tokens_per_s
        err = r.relative_error
        style = "dim" if r.prediction_inside_ci else ("red" if err < 0 else "green")
        table.add_row(
            name, _short(r.predicted_tokens_per_s), _short(r.goodput_tokens_per_s),
            f"{_short(low)}-{_short(high)}", Text(f"{100 * err:+.1f}%" if abs(err) < 0.0995 else f"{100 * err:+.0f}%", style=style),
            *(_ms(r.round_s_quantiles[q] / MS) for q in QUANTILES),
        )
    opts = run.options
    jitter = f", draft jitter {opts.draft_jitter:g} (lognormal)" if opts.draft_jitter > 0 else ""
    table.caption = f"{opts.rounds:,} rounds per plan, seed {opts.seed}, fading {run.fading}{jitter}"
    table.caption_justify = "left"
    return table


def users_table(run: SimulationRun, result: SimulationResult, *, max_rows: int = 40):
    """Per user of one plan: draft length, bandwidth, predicted and simulated tokens/s."""
    table = new_table(f"Users ({result.name})")
    for title in ("\nuser", "\nL", "\nband", "predicted\ntok/s", "simulated\ntok/s", "95% CI\ntok/s"):
        table.add_column(title, justify="left" if title == "\nuser" else "right", no_wrap=True)
    ev = result.predicted
    users = len(run.names)
    shown = users if max_rows <= 0 else min(users, max_rows)
    for k in range(shown):
        table.add_row(
            run.names[k], str(int(ev.draft_lengths[k])), band(ev.bandwidth_hz[k]),
            f"{ev.user_tokens_per_s[k]:.2f}", f"{result.user_tokens_per_s[k]:.2f}",
            f"{result.user_ci95_low[k]:.2f}-{result.user_ci95_high[k]:.2f}",
        )
    if shown < users:
        table.caption = f"{plural(users - shown, 'more user')} not shown: --rows 0 shows all"
        table.caption_justify = "left"
    return table


def simulation_view(run: SimulationRun, *, max_rows: int = 40) -> Group:
    """Everything `multispin simulate` shows a person."""
    parts = [
        Text.assemble((run.profile_name, "bold"), f": {plural(len(run.names), 'user')}, simulating {run.source}"),
        summary_table(run),
    ]
    best = next((r for r in run.plans[::-1] if r.feasible), None)  # heterogeneous before homogeneous
    if best is not None:
        parts.append(users_table(run, best, max_rows=max_rows))
    parts.append(Text("Notes", style="bold"))
    parts += [Text(f"- {line}") for line in notes(run)]
    return Group(*parts)
