"""Which plan `multispin simulate` runs under which per-round policy on a fading uplink."""

from __future__ import annotations

from pathlib import Path

from multispin_cli.errors import InputError


def controlled_entries(system, plans, baselines, policy: str | None, *, plan_file: Path | None, samples: int):
    """(name, kind, controller, predicted) for every plan and baseline to simulate.

    By default each plan runs under its own policy: the static plans and the baselines static, the
    adaptive plan adaptive, and the oracle beside it. ``policy`` runs the plans under that one
    policy instead (baselines stay static); a policy no plan can run is an error.
    """
    from multispin_cli.planners.adaptive import AdaptivePlan
    from multispin_cli.planners.policies import Controller, verify_slope

    statics = [p for p in plans if not isinstance(p, AdaptivePlan)]
    adaptive = next((p for p in plans if isinstance(p, AdaptivePlan)), None)
    entries = []
    rule = oracle = predicted_adaptive = None
    if adaptive is not None:
        rule, oracle, predicted_adaptive = adaptive.control, adaptive.oracle_control, adaptive.expected
    elif plan_file is not None:
        from multispin_cli.documents.planfile import adaptive_rule_from_file

        found = adaptive_rule_from_file(system, plan_file)
        if found is not None:
            base = max(statics, key=lambda p: p.goodput_tokens_per_s).evaluation
            rule = Controller("adaptive", base.draft_lengths, base.bandwidth_hz, rule=found.rule,
                              wait_factor=found.wait_factor)
            oracle = Controller("oracle", base.draft_lengths, base.bandwidth_hz, gamma=found.oracle_tokens_per_s,
                                slope=verify_slope(system, base.verify_tokens), deadline_s=base.draft_upload_s,
                                fallback=found.rule)
            predicted_adaptive = _expected_from_file(system, base, found.goodput_tokens_per_s)
    if policy in (None, "static", "adaptive-split"):
        for p in statics:
            ev = p.evaluation
            entries.append((p.name, "plan", Controller(policy or "static", ev.draft_lengths, ev.bandwidth_hz), ev))
    if policy in ("adaptive", "oracle") and rule is None:
        where = f"the plan file {plan_file}" if plan_file is not None else "this plan"
        raise InputError(f"{where} holds no adaptive plan (no skip thresholds): plan a profile whose [system] "
                         "fading is not none", key="--policy")
    if rule is not None and policy in (None, "adaptive"):
        entries.append(("adaptive", "plan", rule, predicted_adaptive))
    if oracle is not None and policy in (None, "oracle"):
        entries.append(("oracle", "plan", oracle, predicted_adaptive))
    for name, p in baselines.items():
        ev = p.evaluation
        entries.append((name, "baseline", Controller("static", ev.draft_lengths, ev.bandwidth_hz), ev))
    return entries


def _expected_from_file(system, base, goodput):
    """A stand-in prediction for a rule read from a file: the file's expected goodput."""
    from dataclasses import replace

    return replace(base, goodput_tokens_per_s=goodput)
