"""`multispin capacity`: how many users of a kind a cell serves at a per-user rate, or how much band
a goodput target needs. Each probe is a full plan of the profile with one key changed."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from multispin_cli.analysis.capacity import Search, largest_meeting, rate_met_in, smallest_meeting
from multispin_cli.documents.overrides import file_device_names, load_with_overrides, resolve_key
from multispin_cli.documents.profile import Profile, profile_from_data, read_toml
from multispin_cli.errors import InputError
from multispin_cli.model.plan import Plan
from multispin_cli.planners.adaptive import DEFAULT_SAMPLES
from multispin_cli.planners.report import PlanReport, plan_report


@dataclass(frozen=True, eq=False)
class Probe:
    """One planned variant: its profile, report, the judged plan and the measured value."""

    profile: Profile
    report: PlanReport
    plan: Plan
    value: float


@dataclass(frozen=True, eq=False)
class Capacity:
    """A search's answer (a count, or a band in steps), the probes at it and its neighbour."""

    question: str  # "users" or "bandwidth"
    key: str
    answer: float
    neighbour: float
    search: Search[Probe]
    percentile: float | None = None  # users question under fading: the share of rounds judged
    samples: int | None = None  # fading draws behind the percentile

    @property
    def at_answer(self) -> Probe:
        return self.search.at_answer


def judged_plan(report: PlanReport) -> Plan:
    """The plan a target is checked on: the best planned one (heterogeneous in ``both`` mode)."""
    return max(report.plans, key=lambda p: p.goodput_tokens_per_s)


def _probe(data: dict, path: Path, key: str, value, mode: str, measure, samples: int = DEFAULT_SAMPLES,
           adaptive: bool = False) -> Probe:
    """Plan the profile with ``key`` set to ``value``; the adaptive rule of a fading cell only where
    it is judged (``adaptive``): a static target needs only the static plans."""
    profile = load_with_overrides(data, path, [(key, value)])
    report = plan_report(profile.system, mode=mode, samples=samples, adaptive=adaptive)
    plan = report.adaptive if adaptive and report.adaptive is not None else judged_plan(report)
    return Probe(profile, report, plan, measure(plan))


def _complete(search: Search[Probe], mode: str) -> Search[Probe]:
    """The search with its answer's report completed by the adaptive rule where the cell fades (the
    document shows the plan as `multispin plan` does); the judged plan and value are unchanged."""
    probe = search.at_answer
    if probe.report.adaptive is not None or not probe.profile.system.fades:
        return search
    report = plan_report(probe.profile.system, mode=mode)
    return replace(search, at_answer=replace(probe, report=report))


def user_capacity(profile: Path, device: str, min_tokens_per_s: float, *, mean: bool = False,
                  mode: str = "both", max_count: int = 4096, percentile: float | None = None,
                  samples: int = DEFAULT_SAMPLES) -> Capacity:
    """The largest count of ``device`` with every user (``mean``: the users on average) at or above
    ``min_tokens_per_s`` in the judged plan, and the count + 1 that falls short.

    With ``percentile`` (a fading profile only) the plan judged is the adaptive one and a user's rate
    is the one it meets in at least that share of the ``samples`` fading draws of that plan
    (:func:`~multispin_cli.analysis.capacity.rate_met_in`)."""
    data = read_toml(profile)
    base = profile_from_data(data, profile)
    if percentile is not None:
        if not 0 < percentile < 100:
            raise InputError(f"--percentile must lie between 0 and 100, got {percentile:g}", key="--percentile")
        if not base.system.fades:
            raise InputError("--percentile needs a fading channel ([system] or device fading, or shadowing_db): "
                             "this profile's rates do not vary", path=profile, key="--percentile")
    key = f"devices.{device}.count"
    rows = file_device_names(data, profile)
    try:
        resolve_key(data, key, rows)
    except InputError:
        names = [e.get("name") for e in data.get("devices", []) if isinstance(e, dict)] + list(rows)
        import difflib

        hint = difflib.get_close_matches(device, [n for n in names if isinstance(n, str)], n=1)
        shown = ", ".join(map(str, names[:8])) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        more = f" (did you mean '{hint[0]}'?)" if hint else f"; devices: {shown}"
        where = "[[devices]] entry or devices_file row" if rows else "[[devices]] entry"
        raise InputError(f"no {where} named '{device}'{more}", path=profile, key="--device") from None
    stat = np.mean if mean else np.min

    def measure(plan) -> float:
        if percentile is not None:
            return float(stat(rate_met_in(plan.score.tokens, plan.score.round_s, percentile)))
        return float(stat(plan.evaluation.user_tokens_per_s))

    def probe(n: int) -> Probe:
        return _probe(data, profile, key, n, mode, measure, samples, adaptive=percentile is not None)

    result = largest_meeting(probe, lambda p: p.value >= min_tokens_per_s, limit=max_count)
    what = "mean" if mean else "worst"
    share = "" if percentile is None else f" in {percentile:g} % of rounds"
    if result is None:
        at_one = probe(1)
        raise InputError(f"no count of {device} meets {min_tokens_per_s:g} tokens/s per user{share}: with 1 the "
                         f"{what} user gets {at_one.value:.4g} tokens/s", path=profile, key="--min-user-tokens-per-s")
    if result.at_neighbour is None:
        raise InputError(f"{max_count} {device} users still meet {min_tokens_per_s:g} tokens/s per user: raise "
                         "--max-count", path=profile, key="--max-count")
    return Capacity("users", key, result.answer, result.neighbour, _complete(result, mode), percentile,
                    samples if percentile is not None else None)


def bandwidth_for_goodput(profile: Path, goodput_tokens_per_s: float, *, step_mhz: float = 0.1,
                          mode: str = "both", max_mhz: float = 100_000.0, max_blocks: int = 100_000) -> Capacity:
    """The least band whose judged plan reaches the goodput target, one step less falling short: in
    whole ``step_mhz`` steps of ``bandwidth_mhz``, or in whole blocks where the profile gives
    ``resource_blocks``."""
    data = read_toml(profile)
    profile_from_data(data, profile)
    blocks = isinstance(data.get("system"), dict) and "resource_blocks" in data["system"]
    if blocks:
        key, limit = "system.resource_blocks", max_blocks

        def band(n: int) -> float:
            return n
    else:
        key, limit = "system.bandwidth_mhz", max(1, math.ceil(max_mhz / step_mhz))

        def band(n: int) -> float:
            return float(f"{n * step_mhz:.12g}")

    def goodput(p: Plan) -> float:
        return float(p.goodput_tokens_per_s)

    result = smallest_meeting(lambda n: _probe(data, profile, key, band(n), mode, goodput),
                              lambda p: p.value >= goodput_tokens_per_s, limit=limit)
    if result is None:
        top = _probe(data, profile, key, band(limit), mode, goodput)
        unit = "resource blocks" if blocks else "MHz"
        raise InputError(f"no band up to {band(limit):g} {unit} reaches {goodput_tokens_per_s:g} tokens/s: the plan "
                         f"gives {top.value:.6g} tokens/s there", path=profile, key="--min-bandwidth-for-goodput")
    question = "resource_blocks" if blocks else "bandwidth"
    return Capacity(question, key, band(result.answer), band(result.neighbour), _complete(result, mode))
