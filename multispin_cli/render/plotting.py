"""Plots of a plan and of a schedule (the optional ``plot`` extra: matplotlib).

matplotlib is imported inside the functions, never at module level, so the core and the CLI start
without it; a missing extra is a one-line :class:`~multispin_cli.errors.MissingExtraError`. Figures
are drawn with the object-oriented API on the Agg canvas (no pyplot, no global backend switch) and
written atomically as PNG or SVG, chosen by the file's suffix.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from multispin_cli.documents.output import write_atomic
from multispin_cli.errors import InputError, MissingExtraError
from multispin_cli.model.units import MHZ

SUFFIXES = {".png": "png", ".svg": "svg"}
_BASELINE_STYLE = {
    "autoregressive": ("tab:gray", ":"),
    "fixed_equal": ("tab:red", "--"),
    "mean_user": ("tab:purple", "-."),
}
_PLAN_COLOURS = {"homogeneous": "tab:blue", "heterogeneous": "tab:orange"}
_LABELLED_USERS = 40  # more users than this: no per-user tick labels


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError("--plot", "plot", "matplotlib") from None
    return Figure, FigureCanvasAgg


def check_plot_target(path: str | Path) -> str:
    """Fail early (before planning) on a bad plot file name or a missing extra; the format's name."""
    path = Path(path)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError("the plot file must end in .png or .svg", path=path, key="--plot")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write: folder {str(folder)!r} does not exist", path=path, key="--plot")
    _matplotlib()
    return fmt


def _save(fig, path: str | Path) -> Path:
    import matplotlib

    path = Path(path)
    fmt = check_plot_target(path)
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": "multispin"}
    with matplotlib.rc_context({"svg.hashsalt": "multispin", "svg.fonttype": "none"}):
        fig.savefig(buffer, format=fmt, dpi=120, metadata=metadata)
    write_atomic(path, buffer.getvalue())
    return path


def _user_axis(ax, names: tuple[str, ...]) -> None:
    k = len(names)
    if k <= _LABELLED_USERS:
        ax.set_xticks(np.arange(k))
        ax.set_xticklabels(names, rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center", fontsize=8)
    else:
        ax.set_xlabel(f"user index (0..{k - 1}, profile order)")
    ax.set_xlim(-0.6, k - 0.4)


def plan_figure(profile, report):
    """Goodput against the common draft length (baselines marked) and per-user L and bandwidth bars."""
    Figure, FigureCanvasAgg = _matplotlib()
    system = profile.system
    plans = report.plans
    sweep = report.homogeneous or report.baselines.get("homogeneous")
    fig = Figure(figsize=(11, 8.5), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2)
    ax = fig.add_subplot(grid[0, :])
    curve = sweep.goodput_by_length
    lengths = np.arange(curve.size)
    ax.plot(lengths, curve, "o-", color=_PLAN_COLOURS["homogeneous"], label="homogeneous: common draft length L")
    best = int(sweep.draft_length)
    ax.plot([best], [curve[best]], marker="*", markersize=16, color=_PLAN_COLOURS["homogeneous"],
            markeredgecolor="black", linestyle="none", label=f"homogeneous optimum L = {best}")
    for name, plan in report.baselines.items():
        if name == "homogeneous":
            continue
        colour, style = _BASELINE_STYLE.get(name, ("tab:green", "--"))
        length = f", L = {plan.draft_length}" if plan.draft_length is not None else ""
        ax.axhline(plan.goodput_tokens_per_s, color=colour, linestyle=style, linewidth=1.2,
                   label=f"{name}{length}: {plan.goodput_tokens_per_s:,.1f} tok/s")
    if report.heterogeneous is not None:
        het = report.heterogeneous
        ax.axhline(het.goodput_tokens_per_s, color=_PLAN_COLOURS["heterogeneous"], linewidth=1.6,
                   label=f"heterogeneous plan: {het.goodput_tokens_per_s:,.1f} tok/s")
    ax.set_xlabel("common draft length L (tokens)")
    ax.set_ylabel("sum goodput (tokens/s)")
    ax.set_xticks(lengths)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    from multispin_cli.render.tables import plural, target_label

    label = target_label(profile)
    ax.set_title(f"{profile.name}: {plural(system.users, 'user')}, {system.bandwidth_hz / MHZ:g} MHz uplink"
                 + (f", {label}" if label else ""))

    x = np.arange(system.users)
    width = 0.8 / len(plans)
    ax_len = fig.add_subplot(grid[1, 0])
    ax_bw = fig.add_subplot(grid[1, 1])
    for j, plan in enumerate(plans):
        ev = plan.evaluation
        offset = (j - (len(plans) - 1) / 2) * width
        colour = _PLAN_COLOURS.get(plan.name, None)
        ax_len.bar(x + offset, ev.draft_lengths, width, color=colour, label=plan.name)
        ax_bw.bar(x + offset, ev.bandwidth_hz / MHZ, width, color=colour, label=plan.name)
    longest = max(int(p.evaluation.draft_lengths.max()) for p in plans)
    ax_len.set_ylim(0, longest * 1.25 + 1)  # room for the legend above the bars
    ax_len.set_ylabel("draft length L (tokens)")
    ax_len.set_title("draft length per user")
    ax_len.yaxis.get_major_locator().set_params(integer=True)
    ax_bw.set_ylabel("uplink bandwidth (MHz)")
    ax_bw.set_title(f"bandwidth per user (sums to {system.bandwidth_hz / MHZ:g} MHz)")
    for a in (ax_len, ax_bw):
        _user_axis(a, system.names)
        a.grid(True, axis="y", alpha=0.3)
        a.legend(fontsize=8)
    return fig


def plot_plan(profile, report, path: str | Path) -> Path:
    """Write the plan figure (:func:`plan_figure`) to ``path`` (.png or .svg), atomically."""
    return _save(plan_figure(profile, report), path)


def schedule_figure(profile, schedule):
    """Draft length against batch size (steps), and the goodput it earns against the target alone."""
    Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=(9, 7), layout="constrained")
    FigureCanvasAgg(fig)
    ax, ax_g = fig.subplots(2, 1, sharex=True)
    b = schedule.batch_sizes
    ax.step(b, schedule.scheduled_lengths, where="pre", color="tab:blue")  # (b_{i-1}, b_i] runs L(b_i), as exported
    ax.plot(b, schedule.draft_lengths, "o", color="tab:blue", label="optimal common draft length")
    if schedule.stops_at is not None:
        ax.axvline(schedule.stops_at, color="tab:red", linestyle="--", linewidth=1,
                   label=f"L = 0 from planned B = {schedule.stops_at} on")
    ax.set_ylabel("draft length L (tokens)")
    ax.set_ylim(bottom=-0.3, top=max(1, int(schedule.draft_lengths.max())) + 0.7)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{profile.name}: draft length by batch size "
                 f"({profile.system.bandwidth_hz / MHZ:g} MHz shared by the batch)")
    ax.legend(fontsize=8)
    ax_g.plot(b, schedule.goodput_tokens_per_s, "o-", color="tab:blue", label="scheduled draft length")
    ax_g.plot(b, schedule.autoregressive_tokens_per_s, "s:", color="tab:gray", label="no speculation (L = 0)")
    ax_g.set_ylabel("sum goodput (tokens/s)")
    ax_g.set_xlabel("batch size B (users verified together)")
    low = float(schedule.autoregressive_tokens_per_s.min())
    if low > 0 and float(schedule.goodput_tokens_per_s.max()) / low > 20:
        ax_g.set_yscale("log")  # goodput grows with B: show both ends
    else:
        ax_g.set_ylim(bottom=0)
    ax_g.legend(fontsize=8)
    if b.size > 1 and b[-1] / b[0] >= 8:
        ax_g.set_xscale("log", base=2)
    if b.size <= 16:
        ax_g.set_xticks(b)
        ax_g.set_xticklabels([str(int(v)) for v in b], fontsize=8)
    for a in (ax, ax_g):
        a.grid(True, alpha=0.3)
    return fig


def plot_schedule(profile, schedule, path: str | Path) -> Path:
    """Write the schedule figure (:func:`schedule_figure`) to ``path`` (.png or .svg), atomically."""
    return _save(schedule_figure(profile, schedule), path)
