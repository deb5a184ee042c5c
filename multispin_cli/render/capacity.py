"""`multispin capacity` output: the answer, the values at it and its neighbour, and the plan there."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from multispin_cli.analysis.capacity import ASSUMPTION
from multispin_cli.model.units import MHZ
from multispin_cli.render.document import num, plan_document
from multispin_cli.render.tables import plan_view


def _summary(result, target: float, *, mean: bool, device: str | None) -> dict:
    s = result.search
    plan = result.at_answer.plan.name
    if result.question == "users":
        head = {"question": "users", "device": device, "statistic": "mean" if mean else "worst",
                "min_user_tokens_per_s": num(target), "judged_plan": plan, "count": int(result.answer),
                "user_tokens_per_s_at_count": num(s.at_answer.value), "next_count": int(result.neighbour),
                "user_tokens_per_s_at_next_count": num(s.at_neighbour.value)}
        if result.percentile is not None:
            head["percentile"] = num(result.percentile)
            head["fading_samples"] = result.samples
    elif result.question == "resource_blocks":
        head = {"question": "resource_blocks", "min_goodput_tokens_per_s": num(target), "judged_plan": plan,
                "resource_blocks": int(result.answer),
                "bandwidth_mhz": num(result.at_answer.profile.system.bandwidth_hz / MHZ),
                "goodput_tokens_per_s_at_resource_blocks": num(s.at_answer.value)}
        if s.at_neighbour is not None:
            head["previous_resource_blocks"] = int(result.neighbour)
            head["goodput_tokens_per_s_at_previous_resource_blocks"] = num(s.at_neighbour.value)
    else:
        head = {"question": "bandwidth", "min_goodput_tokens_per_s": num(target), "judged_plan": plan,
                "bandwidth_mhz": num(result.answer), "goodput_tokens_per_s_at_bandwidth": num(s.at_answer.value)}
        if s.at_neighbour is not None:
            head["previous_bandwidth_mhz"] = num(result.neighbour)
            head["goodput_tokens_per_s_at_previous_bandwidth"] = num(s.at_neighbour.value)
    head["plans_computed"] = s.probes
    head["assumption"] = ASSUMPTION
    return head


def capacity_document(result, target: float, *, mean: bool, device: str | None, step_mhz: float) -> dict:
    """``[capacity]`` (the answer and the checks) followed by the plan document at the answer."""
    head = _summary(result, target, mean=mean, device=device)
    if result.question == "bandwidth":
        head["step_mhz"] = num(step_mhz)
    probe = result.at_answer
    return {"capacity": head, **plan_document(probe.profile, probe.report)}


def capacity_view(result, target: float, *, mean: bool, device: str | None, max_rows: int, width: int):
    """A two-line answer above the plan's usual table view."""
    s = result.search
    plan = result.at_answer.plan.name
    if result.question == "users":
        what = "mean" if mean else "worst"
        share = "" if result.percentile is None else f" in {result.percentile:g} % of fading rounds"
        lines = [
            Text.assemble(("Capacity: ", "bold"), (f"{int(result.answer)} {device}", "bold green"),
                          f" users with the {what} user at or above {target:g} tokens/s{share} ({plan} plan)."),
            Text(f"Checked: {int(result.answer)} gives {s.at_answer.value:.4g} tokens/s, "
                 f"{int(result.neighbour)} gives {s.at_neighbour.value:.4g} tokens/s."),
        ]
    else:
        unit = "resource blocks" if result.question == "resource_blocks" else "MHz"
        lines = [Text.assemble(("Bandwidth: ", "bold"), (f"{result.answer:g} {unit}", "bold green"),
                               f" reaches {target:g} tokens/s ({plan} plan).")]
        check = f"Checked: {result.answer:g} {unit} gives {s.at_answer.value:.6g} tokens/s"
        if s.at_neighbour is not None:
            check += f", {result.neighbour:g} {unit} gives {s.at_neighbour.value:.6g} tokens/s."
        else:
            check += " (the smallest step)."
        lines.append(Text(check))
    probe = result.at_answer
    return Group(*lines, Text(""), plan_view(probe.profile, probe.report, max_rows=max_rows, width=width))
