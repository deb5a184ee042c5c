"""The plan document: what `multispin plan --format toml|json` prints, as plain dicts.

This module is the output schema: one function builds the document from a report, one turns it
into TOML or JSON text. Units are in every key's name; numbers are rounded to 10 significant
digits so that the same input always gives byte-identical text.
"""

from __future__ import annotations

import json
import math

import numpy as np
import tomli_w

from multispin_cli import __version__
from multispin_cli.model.plan import Plan
from multispin_cli.planners.needs import Needs, plan_needs
from multispin_cli.planners.report import PlanReport
from multispin_cli.documents.planfile import FORMAT_VERSION
from multispin_cli.documents.profile import Profile
from multispin_cli.model.units import MHZ, MS



def num(value: float) -> float:
    """A float rounded to 10 significant digits (stable text, far below any model error)."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.10g}")


def _plan_section(profile: Profile, plan: Plan, baselines: dict[str, Plan]) -> dict:
    ev = plan.evaluation
    section: dict = {}
    if plan.draft_length is not None:
        section["draft_length"] = int(plan.draft_length)
    section["goodput_tokens_per_s"] = num(ev.goodput_tokens_per_s)
    section["round_ms"] = num(ev.round_s / MS)
    section["draft_upload_ms"] = num(ev.draft_upload_s / MS)
    section["verify_ms"] = num(ev.verify_s / MS)
    section["verify_tokens"] = int(ev.verify_tokens)
    section["mean_draft_length"] = num(ev.draft_lengths.mean())
    needs = plan_needs(profile.system, plan)
    section["needed_bandwidth_mhz"] = num(needs.needed_hz / MHZ)
    section["spare_bandwidth_mhz"] = num(needs.spare_hz / MHZ)
    if needs.user_blocks is not None:
        section["needed_resource_blocks"] = int(needs.user_blocks.sum())
    if plan.upper_bound_tokens_per_s is not None:
        section["upper_bound_tokens_per_s"] = num(plan.upper_bound_tokens_per_s)
        section["gap_to_upper_bound_percent"] = num(
            100.0 * (plan.upper_bound_tokens_per_s / ev.goodput_tokens_per_s - 1.0)
        )
    section["gain_percent"] = {
        name: num(100.0 * plan.gain_over(other)) for name, other in baselines.items() if other.goodput_tokens_per_s > 0
    }
    section["users"] = _users(profile, plan, needs)
    return section


def _users(profile: Profile, plan: Plan, needs: Needs) -> list[dict]:
    ev = plan.evaluation
    block = profile.system.resource_block_hz
    rate = ev.user_tokens_per_s
    rows = []
    for k, name in enumerate(profile.system.names):
        row = {
            "name": name,
            "draft_length": int(ev.draft_lengths[k]),
            "bandwidth_mhz": num(ev.bandwidth_hz[k] / MHZ),
            "tokens_per_round": num(ev.tokens_per_round[k]),
            "tokens_per_s": num(rate[k]),
            "draft_upload_ms": num(ev.phase_s[k] / MS),
            "needed_bandwidth_mhz": num(needs.user_hz[k] / MHZ),
        }
        if block is not None:
            row["resource_blocks"] = int(round(ev.bandwidth_hz[k] / block))
            row["needed_resource_blocks"] = int(needs.user_blocks[k])
        if profile.users[k].draft_model:
            row["draft_model"] = profile.users[k].draft_model
        rows.append(row)
    return rows


def _baseline_section(plan: Plan) -> dict:
    ev = plan.evaluation
    section: dict = {"goodput_tokens_per_s": num(ev.goodput_tokens_per_s)}
    if plan.draft_length is not None:
        section["draft_length"] = int(plan.draft_length)
    if ev.feasible:
        section["round_ms"] = num(ev.round_s / MS)
    else:
        section["feasible"] = False
        stuck = int((~np.isfinite(ev.phase_s)).sum())
        section["note"] = f"{stuck} user(s) cannot upload this draft on an equal share of the band"
    return section


def cell_header(profile: Profile, **extra) -> dict:
    """The cell a document speaks of: profile, users, band, L_max, batching, target (and ``extra``
    right after the name, such as the plan's mode)."""
    system = profile.system
    head = {"profile": profile.path, "name": profile.name, **extra, "users": system.users,
            "bandwidth_mhz": num(system.bandwidth_hz / MHZ), "max_draft_length": system.max_draft_length,
            "batching": system.batching, "target": profile.target}
    if profile.target_model:
        head["target_model"] = profile.target_model
    if system.resource_block_hz is not None:
        head["resource_blocks"] = system.resource_blocks
        head["subcarrier_spacing_khz"] = num(system.resource_block_hz / 12e3)
    if not system.channel.link.is_shannon:
        head["rate_model"] = system.channel.link.kind
    return head


def plan_document(profile: Profile, report: PlanReport) -> dict:
    """The plan as a document: ``[plan]``, ``[homogeneous]``, ``[heterogeneous]``, ``[baselines.*]``."""
    head = cell_header(profile, mode=report.mode)
    head["multispin_version"] = __version__
    head["format_version"] = FORMAT_VERSION
    doc: dict = {"plan": head}
    if report.homogeneous is not None:
        doc["homogeneous"] = _plan_section(profile, report.homogeneous, report.baselines)
    if report.heterogeneous is not None:
        others = dict(report.baselines)
        if report.homogeneous is not None:
            others = {"homogeneous": report.homogeneous, **others}
        doc["heterogeneous"] = _plan_section(profile, report.heterogeneous, others)
    doc["baselines"] = {name: _baseline_section(plan) for name, plan in report.baselines.items()}
    if report.adaptive is not None:
        from multispin_cli.render.adaptive import adaptive_section

        doc["adaptive"] = adaptive_section(profile, report.adaptive)
    return doc


def to_toml(doc: dict) -> str:
    """TOML text of a document."""
    return tomli_w.dumps(doc)


def to_json(doc: dict) -> str:
    """JSON text of a document (two-space indent, trailing newline)."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"
