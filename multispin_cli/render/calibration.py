"""What `multispin calibrate` shows: the TOML/JSON fragment a profile includes, and a table for people.

The fragment's ``[acceptance]`` table holds exactly one of ``acceptance`` or
``acceptance_by_position`` (what the profile loader takes from ``calibration = "file.toml"``) and
their intervals; ``[calibration]`` holds the counts, both fits, the goodness-of-fit test and the
recommendation, for people and for the record.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from multispin_cli import __version__
from multispin_cli.analysis.calibration import GEOMETRIC, PER_POSITION, Calibration
from multispin_cli.errors import InputError
from multispin_cli.render.document import num
from multispin_cli.render.tables import new_table

FORMAT_VERSION = 1
FORMS = ("auto", "geometric", "per-position")
HEADER = ("# Acceptance calibrated by `multispin calibrate`. Use it from a profile's device entry:\n"
          "#   calibration = \"{name}\"\n")


def chosen_form(cal: Calibration, form: str = "auto") -> str:
    """The key the fragment's ``[acceptance]`` table holds: the recommendation, or the one asked for."""
    if form not in FORMS:
        raise InputError(f"must be one of {', '.join(FORMS)}, got {form!r}", key="form")
    if form == "per-position":
        if cal.by_position is None:
            raise InputError("per-position acceptance needs per-position counts (vLLM's "
                             "num_accepted_tokens_per_pos, or a histogram); totals give only the geometric rate",
                             key="form")
        return PER_POSITION
    if form == "geometric":
        if cal.geometric.value >= 1.0:
            raise InputError("every drafted token was accepted, so the geometric rate is 1, and a profile's "
                             "acceptance must be below 1: use --form auto (writes acceptance_by_position)", key="form")
        return GEOMETRIC
    key = cal.recommended
    if key == GEOMETRIC and cal.geometric.value >= 1.0:
        # A profile's `acceptance` must be below 1; a draft never rejected is written per position.
        return PER_POSITION
    return key


def notes(cal: Calibration, form: str = "auto") -> list[str]:
    """Sentences on the fit: what the test says and what the recommended form changes."""
    counts = cal.counts
    lines = list(counts.warnings)
    key = chosen_form(cal, form)
    length = counts.draft_length
    if cal.fit is None:
        if cal.by_position is None:
            lines.append("Totals only: the geometric rate matches the mean accepted tokens per draft; per-position "
                         "counts (vLLM's num_accepted_tokens_per_pos, or a histogram) would allow a fit test.")
        else:
            lines.append("One position only: the geometric and per-position forms coincide.")
    else:
        fit = cal.fit
        verdict = "reject" if fit.rejected else "do not reject"
        p_value = f"p = {fit.p_value:.3g}" if fit.p_value > 0 else "p < 1e-300"
        lines.append(f"The data {verdict} the geometric model (likelihood-ratio G2 = {fit.statistic:.4g}, "
                     f"df {fit.df}, {p_value}).")
        lines.append(f"Tokens per round at L = {length}: observed {cal.observed_tokens_per_round:.4g}; "
                     f"geometric fit {cal.geometric_tokens_per_round:.4g}; per-position fit "
                     f"{cal.position_tokens_per_round:.4g}.")
    if key == PER_POSITION and cal.by_position is None:
        lines.append("Every drafted token was accepted: written as acceptance_by_position = [1.0] (a profile's "
                     "acceptance must be below 1).")
    elif key == PER_POSITION:
        lines.append(f"Recommended: acceptance_by_position (written). Beyond position {len(cal.by_position)} the "
                     "last value repeats.")
    elif cal.recommended == PER_POSITION:
        lines.append("Recommended: acceptance_by_position, but the geometric rate was asked for (--form geometric).")
    else:
        lines.append("Recommended: acceptance (geometric, written).")
    return lines


def _values(cal: Calibration) -> tuple[list[float], list[float], list[float]]:
    if cal.by_position is None:  # totals with every token accepted
        return [1.0], [cal.geometric.ci95_low], [1.0]
    return ([num(e.value) for e in cal.by_position], [num(e.ci95_low) for e in cal.by_position],
            [num(e.ci95_high) for e in cal.by_position])


def calibration_document(cal: Calibration, form: str = "auto") -> dict:
    """``[acceptance]`` (what a profile includes) and ``[calibration]`` (the evidence)."""
    key = chosen_form(cal, form)
    counts = cal.counts
    geo = cal.geometric
    if key == GEOMETRIC:
        acceptance = {"acceptance": num(geo.value), "acceptance_ci95_low": num(geo.ci95_low),
                      "acceptance_ci95_high": num(geo.ci95_high)}
    else:
        values, low, high = _values(cal)
        acceptance = {"acceptance_by_position": values, "acceptance_by_position_ci95_low": low,
                      "acceptance_by_position_ci95_high": high}
    meta: dict = {
        "source": counts.source,
        "recommended": cal.recommended,
        "written": key,
        "drafts": counts.drafts,
        "draft_length": counts.draft_length,
        "draft_tokens": counts.draft_tokens,
        "accepted_tokens": counts.accepted_tokens,
    }
    if counts.accepted_by_position is not None:
        meta["accepted_by_position"] = list(counts.accepted_by_position)
    meta["observed_tokens_per_round"] = num(cal.observed_tokens_per_round)
    meta["geometric_method"] = cal.geometric_method
    meta["geometric_acceptance"] = num(geo.value)
    meta["geometric_ci95_low"] = num(geo.ci95_low)
    meta["geometric_ci95_high"] = num(geo.ci95_high)
    meta["geometric_tokens_per_round"] = num(cal.geometric_tokens_per_round)
    if cal.by_position is not None:
        values, low, high = _values(cal)
        meta["by_position"] = values
        meta["by_position_ci95_low"] = low
        meta["by_position_ci95_high"] = high
        meta["by_position_tokens_per_round"] = num(cal.position_tokens_per_round)
    if cal.fit is not None:
        meta["fit_test"] = "likelihood-ratio (G), geometric vs per-position, chi-square"
        meta["fit_statistic"] = num(cal.fit.statistic)
        meta["fit_df"] = cal.fit.df
        meta["fit_p_value"] = num(cal.fit.p_value)
        meta["geometric_rejected"] = cal.fit.rejected
    meta["notes"] = notes(cal, form)
    meta["multispin_version"] = __version__
    meta["format_version"] = FORMAT_VERSION
    return {"acceptance": acceptance, "calibration": meta}


def calibration_view(cal: Calibration, form: str = "auto") -> Group:
    """The estimates, per position where the data allow, and the verdict, for a person."""
    counts = cal.counts
    head = Text.assemble(("Acceptance", "bold"), f" from {counts.source}: {counts.drafts:,} drafts of "
                         f"{counts.draft_length} tokens, {counts.accepted_tokens:,} accepted "
                         f"({cal.observed_tokens_per_round:.3f} tokens per round)")
    table = new_table("Estimates")
    for title, justify in (("\nform", "left"), ("\nposition", "right"), ("\nacceptance", "right"),
                           ("95% CI", "right"), ("drafts\nreaching", "right")):
        table.add_column(title, justify=justify, no_wrap=True)
    geo = cal.geometric
    table.add_row("geometric", "all", f"{geo.value:.4f}", f"{geo.ci95_low:.4f}-{geo.ci95_high:.4f}", "")
    if cal.by_position is not None:
        reached = [counts.drafts, *counts.accepted_by_position]
        for i, e in enumerate(cal.by_position):
            table.add_row("per-position" if i == 0 else "", str(i + 1), f"{e.value:.4f}",
                          f"{e.ci95_low:.4f}-{e.ci95_high:.4f}", f"{reached[i]:,}")
    table.caption = f"geometric: {cal.geometric_method}\nper position: given the earlier ones accepted (Wilson)"
    table.caption_justify = "left"
    parts = [head, table, Text("Notes", style="bold")]
    parts += [Text(f"- {line}") for line in notes(cal, form)]
    return Group(*parts)
