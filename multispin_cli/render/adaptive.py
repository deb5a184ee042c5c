"""The adaptive plan of a fading cell: its `[adaptive]` document section and its table."""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.text import Text

from multispin_cli.documents.profile import Profile
from multispin_cli.model.units import MHZ, MS
from multispin_cli.planners.adaptive import AdaptivePlan
from multispin_cli.render.document import num
from multispin_cli.render.tables import band, new_table

QUANTILES = (50, 95, 99)


def _db(value: float) -> float | str:
    """A threshold in dB for documents: a number, or "never"/"always" where it is infinite."""
    if np.isposinf(value):
        return "never"
    if np.isneginf(value):
        return "always"
    return num(value)


def wait_text(factor: float) -> float | str:
    """The server's wait limit for documents: a factor, or "unlimited"."""
    return num(factor) if np.isfinite(factor) else "unlimited"


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
    section["wait_factor"] = wait_text(plan.control.wait_factor)
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
    for column in ("user", "L", "skip below dB", "mean band", "tok/s"):
        rules.add_column(column, justify="left" if column == "user" else "right")
    skip = plan.skip_below_snr_db()
    mean_bw = plan.score.bandwidth_hz.mean(axis=0)
    rate = plan.score.tokens.mean(axis=0) / plan.score.round_s.mean()
    names = profile.system.names
    shown = range(len(names)) if max_rows == 0 else range(min(len(names), max_rows))
    for k in shown:
        value = _db(skip[k])
        rules.add_row(names[k], str(int(plan.draft_lengths[k])), value if isinstance(value, str) else f"{value:.1f}",
                      band(mean_bw[k]), f"{rate[k]:,.2f}")
    parts = [summary, rules]
    if len(shown) < len(names):
        parts.append(Text(f"({len(names) - len(shown)} more users: --rows 0 shows all)"))
    if np.isfinite(plan.control.wait_factor):
        parts.append(Text(f"Stale channel state: the server waits at most {plan.control.wait_factor:g} x the round's "
                          "planned deadline; a later upload is dropped (one token for its user)."))
    parts.append(Text(f"{plan.samples:,} fading draws, seed {plan.seed}; oracle on {plan.oracle_samples:,} of them."))
    return Group(*parts)


RULE_TEXT = ("Each round, from its latest channel state: user k drafts the largest L with "
             "length_above_snr_db[L-1] <= its SNR (dB); below skip_below_snr_db it drafts nothing (the server "
             "still gives it one token). Then the band is split so that every drafting user finishes its "
             "draft and upload at the same time. With a wait_factor, the server verifies at the latest "
             "wait_factor x that planned finish time; an upload still under way then is dropped.")
SNR_BASIS = ("SNR of a fixed-SNR user; for a power-limited user, its received power over the noise in the "
             "whole uplink band (P g / (N0 W)).")


def rule_document(plan_document: dict, *, path: str) -> dict:
    """The adaptive rule of a plan file, in the form a scheduler applies (per-user SNR thresholds)."""
    from multispin_cli.errors import PlanFileError

    section = plan_document.get("adaptive")
    if not isinstance(section, dict) or not isinstance(section.get("users"), list):
        raise PlanFileError("holds no [adaptive] plan (plan a profile whose [system] fading is not none)", path=path)
    users = []
    for row in section["users"]:
        if not isinstance(row, dict) or "length_above_snr_db" not in row:
            raise PlanFileError("an [[adaptive.users]] entry lacks length_above_snr_db", path=path,
                                key="adaptive.users")
        users.append({k: row[k] for k in ("name", "draft_length", "skip_below_snr_db", "length_above_snr_db")
                      if k in row})
    return {"policy": "adaptive", "rule": RULE_TEXT, "snr_basis": SNR_BASIS,
            "goodput_tokens_per_s": section.get("goodput_tokens_per_s"),
            "wait_factor": section.get("wait_factor", "unlimited"), "users": users}
