"""The adaptive plan of a fading cell: its `[adaptive]` document section and its table."""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.text import Text

from multispin_cli.documents.profile import Profile
from multispin_cli.model.units import MHZ, MS
from multispin_cli.planners.adaptive import AdaptivePlan
from multispin_cli.render.document import num
from multispin_cli.render.tables import new_table

QUANTILES = (50, 95, 99)


def _db(value: float) -> float | str:
    """A threshold in dB for documents: a number, or "never"/"always" where it is infinite."""
    if np.isposinf(value):
        return "never"
    if np.isneginf(value):
        return "always"
    return num(value)


def adaptive_section(profile: Profile, plan: AdaptivePlan) -> dict:
    """``[adaptive]`` with ``[[adaptive.users]]``: the rule and its expected performance under fading."""
    score = plan.score
    low, high = score.ci95
    section: dict = {
        "policy": "adaptive",
        "goodput_tokens_per_s": num(plan.goodput_tokens_per_s),
        "ci95_low_tokens_per_s": num(low),
        "ci95_high_tokens_per_s": num(high),
    }
    for q, value in zip(QUANTILES, np.percentile(score.round_s, QUANTILES)):
        section[f"round_ms_p{q}"] = num(value / MS)
    section["oracle_tokens_per_s"] = num(plan.oracle_tokens_per_s)
    section["static_tokens_per_s"] = num(plan.static_tokens_per_s)
    section["static_plan"] = plan.static_name
    section["adaptive_split_tokens_per_s"] = num(plan.adaptive_split_tokens_per_s)
    section["samples"] = plan.samples
    section["oracle_samples"] = plan.oracle_samples
    section["seed"] = plan.seed
    thresholds = plan.threshold_snr_db()
    skip = plan.skip_below_snr_db()
    mean_bw = score.bandwidth_hz.mean(axis=0)
    rate = score.tokens.mean(axis=0) / score.round_s.mean()
    users = []
    for k, name in enumerate(profile.system.names):
        top = int(plan.draft_lengths[k])
        users.append({
            "name": name,
            "draft_length": top,
            "skip_below_snr_db": _db(skip[k]),
            "length_above_snr_db": [_db(t) for t in thresholds[k, :top]],
            "mean_bandwidth_mhz": num(mean_bw[k] / MHZ),
            "tokens_per_s": num(rate[k]),
        })
    section["users"] = users
    return section


def adaptive_view(profile: Profile, plan: AdaptivePlan, *, max_rows: int = 40) -> Group:
    """The adaptive plan for people: the goodput beside its references, then the rule per user."""
    low, high = plan.score.ci95
    summary = new_table("Under fading (expected, per-round control)")
    for column in ("policy", "tok/s"):
        summary.add_column(column, justify="right" if column != "policy" else "left")
    summary.add_row("adaptive", f"{plan.goodput_tokens_per_s:,.1f} ({low:,.1f}-{high:,.1f})")
    summary.add_row("adaptive-split", f"{plan.adaptive_split_tokens_per_s:,.1f}")
    summary.add_row(f"static ({plan.static_name})", f"{plan.static_tokens_per_s:,.1f}")
    summary.add_row("oracle", f"{plan.oracle_tokens_per_s:,.1f}")
    rules = new_table("Adaptive rule: draft up to L tokens; skip (L = 0) below the SNR")
    for column in ("user", "L", "skip below dB", "mean MHz", "tok/s"):
        rules.add_column(column, justify="left" if column == "user" else "right")
    skip = plan.skip_below_snr_db()
    mean_bw = plan.score.bandwidth_hz.mean(axis=0)
    rate = plan.score.tokens.mean(axis=0) / plan.score.round_s.mean()
    names = profile.system.names
    shown = range(len(names)) if max_rows == 0 else range(min(len(names), max_rows))
    for k in shown:
        value = _db(skip[k])
        rules.add_row(names[k], str(int(plan.draft_lengths[k])), value if isinstance(value, str) else f"{value:.1f}",
                      f"{mean_bw[k] / MHZ:.3f}", f"{rate[k]:,.2f}")
    parts = [summary, rules]
    if len(shown) < len(names):
        parts.append(Text(f"({len(names) - len(shown)} more users: --rows 0 shows all)"))
    parts.append(Text(f"{plan.samples:,} fading draws, seed {plan.seed}; oracle on {plan.oracle_samples:,} of them."))
    return Group(*parts)
