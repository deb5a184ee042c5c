"""The per-batch-size schedule for people (a rich table) and for programs (a TOML/JSON document)."""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.text import Text

from multispin_cli import __version__
from multispin_cli.documents.profile import Profile
from multispin_cli.model.units import MHZ, MS
from multispin_cli.planners.schedule import Schedule
from multispin_cli.render.document import cell_header, num
from multispin_cli.render.export import DRAFT_PLACEHOLDER, batch_ranges, trtllm_schedule, vllm_schedule
from multispin_cli.render.tables import new_table, pct, target_label

FORMAT_VERSION = 1

USERS_DRAWN = ("B // K copies of every profile user plus B mod K users spread evenly over the profile's list")
EXPORTED = ("scheduled_draft_length: the best non-increasing schedule (the most goodput relative to each batch "
            "size's optimum); draft_length: each batch size's own optimum")
BAND_SHARED = "the cell's whole uplink band is shared by the B users of the batch (equal-finish split)"


def common_draft_model(profile: Profile) -> str | None:
    """The draft model every device names, or None when they name none or differ."""
    models = {u.draft_model for u in profile.users}
    return models.pop() if len(models) == 1 else None


def schedule_document(profile: Profile, schedule: Schedule) -> dict:
    """``[schedule]`` (the cell and how batches are formed), ``[[batches]]``, ``[engines.*]``."""
    head = cell_header(profile)
    head["profile_users"] = head.pop("users")
    draft = common_draft_model(profile)
    if draft:
        head["draft_model"] = draft
    head["users_drawn"] = USERS_DRAWN
    head["exported_schedule"] = EXPORTED
    head["bandwidth_sharing"] = BAND_SHARED
    if schedule.stops_at is not None:
        head["speculation_off_from_batch_size"] = schedule.stops_at
    head["multispin_version"] = __version__
    head["format_version"] = FORMAT_VERSION
    batches = []
    for i, b in enumerate(schedule.batch_sizes):
        batches.append({
            "batch_size": int(b),
            "draft_length": int(schedule.draft_lengths[i]),
            "scheduled_draft_length": int(schedule.scheduled_lengths[i]),
            "scheduled_goodput_tokens_per_s": num(schedule.scheduled_goodput_tokens_per_s[i]),
            "goodput_tokens_per_s": num(schedule.goodput_tokens_per_s[i]),
            "autoregressive_tokens_per_s": num(schedule.autoregressive_tokens_per_s[i]),
            "gain_percent": num(100.0 * schedule.gain[i]),
            "round_ms": num(schedule.round_s[i] / MS),
        })
    doc: dict = {"schedule": head, "batches": batches}
    sizes, lengths = schedule.batch_sizes.tolist(), schedule.scheduled_lengths.tolist()
    model = draft or DRAFT_PLACEHOLDER
    engines: dict = {}
    vllm = vllm_schedule(sizes, lengths, model)
    if vllm is not None:
        engines["vllm"] = {k: v for k, v in vllm.items() if k not in ("method", "model")}
    spec = trtllm_schedule(sizes, lengths, model)["speculative_config"]
    if spec is not None:
        engines["trtllm"] = {
            "max_draft_len": spec["max_draft_len"],
            "draft_len_schedule": {str(k): v for k, v in spec["draft_len_schedule"].items()},
        }
    if engines:
        doc["engines"] = engines
    return doc


def schedule_view(profile: Profile, schedule: Schedule) -> Group:
    """The schedule as a table, with a line on how the batches were formed."""
    system = profile.system
    head = Text.assemble(
        (profile.name, "bold"),
        f": draft length by batch size; {system.bandwidth_hz / MHZ:g} MHz uplink shared by the batch, "
        f"users drawn evenly from the profile's {system.users}, "
        + (f"{target_label(profile)}, " if target_label(profile) else "")
        + f"L_max {system.max_draft_length}",
    )
    table = new_table("Schedule")
    table.add_column("batch\nsize", justify="right")
    table.add_column("draft\nlength", justify="right")
    table.add_column("goodput\ntok/s", justify="right")
    table.add_column("per user\ntok/s", justify="right")
    table.add_column("target alone\ntok/s", justify="right")
    table.add_column("\ngain", justify="right")
    table.add_column("round\nms", justify="right")
    monotone = schedule.monotone
    if not monotone:
        table.add_column("sched\nlength", justify="right")
        table.add_column("sched\nloss", justify="right")
    loss = schedule.scheduled_goodput_tokens_per_s / schedule.goodput_tokens_per_s - 1.0
    for i, b in enumerate(schedule.batch_sizes):
        cells = [
            str(int(b)),
            str(int(schedule.draft_lengths[i])),
            f"{schedule.goodput_tokens_per_s[i]:,.1f}",
            f"{schedule.goodput_tokens_per_s[i] / b:,.2f}",
            f"{schedule.autoregressive_tokens_per_s[i]:,.1f}",
            pct(schedule.gain[i]),
            f"{schedule.round_s[i] / MS:.2f}",
        ]
        if not monotone:
            cells += [str(int(schedule.scheduled_lengths[i])), pct(loss[i])]
        table.add_row(*cells)
    stops = schedule.stops_at
    ranges = batch_ranges(schedule.batch_sizes.tolist(), schedule.scheduled_lengths.tolist())
    words = ", ".join(f"{lo}-{hi}: {n}" if lo != hi else f"{lo}: {n}" for lo, hi, n in ranges)
    caption = f"Ranges (batch sizes: draft length): {words}."
    if not monotone:
        worst = int(np.argmin(loss))
        caption = (f"The best length per batch size goes up and down; engines get the best non-increasing "
                   f"schedule (sched length), which loses at most {-100 * loss[worst]:.1f}% (batch size "
                   f"{int(schedule.batch_sizes[worst])}). " + caption)
    if stops is not None:
        sizes = schedule.batch_sizes.tolist()
        at = sizes.index(stops)
        if at == 0:
            caption += " Speculation pays at no planned batch size."
        else:
            caption += (f" Speculation stops paying by batch size {stops} (the engine tables turn it off above "
                        f"{sizes[at - 1]}).")
    table.caption = caption
    table.caption_justify = "left"
    return Group(head, table)
