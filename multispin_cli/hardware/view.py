"""Rich tables for `profile-hardware --format table` and `--list` (pure: renderables, no printing)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from multispin_cli.hardware.fit import AFFINE_R2_THRESHOLD
from multispin_cli.hardware.models import ModelShape
from multispin_cli.hardware.profiling import HardwareProfile
from multispin_cli.hardware.roofline import HardwareSpec


def _table(*, show_header: bool = True) -> Table:
    return Table(box=box.SIMPLE_HEAD, pad_edge=False, show_header=show_header)


def _title(text: str) -> Text:
    return Text(text, style="bold")


def _lines(*lines: str) -> Text:
    return Text("\n".join(lines) + "\n")


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    value = seconds * 1e3
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.3g} GB"


def _rate(bytes_per_s: float) -> str:
    value = bytes_per_s / 1e9
    return f"{value:,.0f} GB/s" if value >= 1000 else f"{value:.3g} GB/s"


def machine_table(profile: HardwareProfile) -> Group:
    """What the machine is and what it measured at (shown when anything was measured here)."""
    m = profile.machine
    table = _table(show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("CPU", f"{m.cpu}, {m.logical_cores} logical cores, last-level cache {m.llc_bytes / 2**20:.0f} MiB")
    if m.memory_total_bytes:
        avail = f" ({m.memory_available_bytes / 2**30:.1f} GiB available)" if m.memory_available_bytes else ""
        table.add_row("memory", f"{m.memory_total_bytes / 2**30:.1f} GiB{avail}")
    table.add_row("BLAS", f"{m.blas} (numpy {m.numpy_version})")
    table.add_row("GPU", "; ".join(m.gpus) if m.gpus else "none found")
    if profile.backend_detail:
        table.add_row("backend", profile.backend_detail)
    if profile.peaks is not None:
        pk = profile.peaks
        table.add_row("memory bandwidth", f"{pk.bandwidth_bytes_per_s / 1e9:.3g} GB/s measured ({pk.bandwidth_method})")
        table.add_row("matmul rate", f"{pk.flops_per_s / 1e9:.3g} GFLOP/s measured ({pk.flops_method})")
    return Group(_title("Machine"), table)


def draft_table(profile: HardwareProfile) -> Group:
    """Round times of the draft and the fitted ``c + tau L``."""
    d = profile.draft
    fit = d.fit
    lines = [f"draft_ms_per_token = {_ms(fit.slope)}, draft_overhead_ms = {_ms(fit.intercept)} "
             f"(least squares over L, R^2 = {fit.r2:.4f})"]
    if d.roofline_s_per_token:
        roof = f"roofline {_ms(d.roofline_s_per_token)} ms per token"
        if d.measured:
            roof += f"; measured / roofline = {d.seconds_per_token / d.roofline_s_per_token:.2f}"
        lines.append(roof)
    title = _title(f"Draft {d.model.name} on {d.device} ({d.dtype}): rounds of L chained decode steps")
    table = _table()
    table.add_column("L", justify="right")
    table.add_column("round ms", justify="right")
    table.add_column("fit ms", justify="right")
    table.add_column("ms per token", justify="right")
    for length, seconds in d.rounds:
        table.add_row(str(length), _ms(seconds), _ms(fit(length)), _ms(seconds / length))
    return Group(title, table, _lines(*lines))


def verify_table(profile: HardwareProfile) -> Group:
    """Every verification pass, the fit and the roofline."""
    v = profile.verify
    fit = v.fit
    form = (f"R^2 {fit.r2:.4f} >= {AFFINE_R2_THRESHOLD}: verify_model = \"affine\"" if v.form == "affine" else
            f"R^2 {fit.r2:.4f} < {AFFINE_R2_THRESHOLD}{' or clamped' if fit.clamped else ''}: "
            "verify_model = \"table\" (the measured points)")
    lines = [f"T_v(N) = {_ms(fit.intercept)} + {fit.slope * 1e3:.4g} N ms; {form}"]
    if v.bandwidth_bound_seconds:
        first = v.decode_point
        lines.append(f"smallest pass ({first.batch} x {first.new_tokens}): {_ms(v.decode_seconds)} ms; weights "
                     f"{_gb(v.weight_bytes)} / {_rate(v.bandwidth_bytes_per_s)} = {_ms(v.bandwidth_bound_seconds)} "
                     f"ms; ratio {v.decode_vs_bandwidth:.2f}")
    if v.measured and v.layer_scale > 1 and v.model.hybrid:
        lines.append(f"one attention and one Gated DeltaNet layer timed and multiplied by {v.model.attention_layers} "
                     f"and {v.model.linear_layers} layers, plus the LM head")
    elif v.measured and v.layer_scale > 1:
        lines.append(f"one layer timed and multiplied by {v.layer_scale} layers, plus the LM head")
    if profile.round_overhead is not None:
        lines.append(f"round_overhead_ms = {_ms(profile.round_overhead[0])} (transformers' decoding loop, its "
                     f"forward passes left out; spread {100 * profile.round_overhead[1]:.0f} %)")
    title = _title(f"Target {v.model.name} on {v.device} ({v.dtype}): verification of N = batch x (L + 1) tokens")
    table = _table()
    table.add_column("N", justify="right")
    table.add_column("batch x tokens", justify="right")
    table.add_column("ms", justify="right")
    parts = any(p.layer_seconds is not None for p in v.points)
    roof = v.measured and any(p.roofline_seconds is not None for p in v.points)
    if parts:
        table.add_column("layer ms", justify="right")
        table.add_column("head ms", justify="right")
    if roof:
        table.add_column("roofline ms", justify="right")
        table.add_column("/ roofline", justify="right")
    table.add_column("affine ms", justify="right")
    for p in v.points:
        row = [str(p.tokens), f"{p.batch} x {p.new_tokens}", _ms(p.seconds)]
        if parts:
            row += [_ms(p.layer_seconds), _ms(p.head_seconds)]
        if roof:
            ratio = p.seconds / p.roofline_seconds if p.roofline_seconds else None
            row += [_ms(p.roofline_seconds), f"{ratio:.2f}" if ratio else "-"]
        row.append(_ms(fit(p.tokens)))
        table.add_row(*row)
    return Group(title, table, _lines(*lines))


def profile_view(profile: HardwareProfile) -> Group:
    """The whole table view."""
    items = []
    if profile.draft.measured or profile.verify.measured:
        items.append(machine_table(profile))
    items += [draft_table(profile), verify_table(profile)]
    if profile.notes:
        notes = Text("Notes\n", style="bold")
        for note in profile.notes:
            notes.append(f"- {note}\n", style="")
        items.append(notes)
    items.append(Text(f"wall time {profile.wall_seconds:.1f} s", style="dim"))
    return Group(*items)


def catalog_view(models: dict[str, ModelShape], hardware: dict[str, HardwareSpec]) -> Group:
    """The shipped model and hardware catalogs."""
    mt = _table()
    for col in ("name", "params", "layers", "hidden", "heads / kv", "MLP", "vocab", "Hugging Face id"):
        mt.add_column(col, justify="left" if col in ("name", "Hugging Face id") else "right", no_wrap=col == "name",
                      overflow="fold")
    for s in models.values():
        layers = f"{s.layers} ({s.linear_layers} linear)" if s.hybrid else str(s.layers)
        mt.add_row(s.name, f"{s.total_params / 1e9:.3g}B", layers, str(s.hidden), f"{s.heads} / {s.kv_heads}",
                   str(s.intermediate), str(s.vocab), s.hf_id or "")
    ht = _table()
    for col in ("name", "memory", "bandwidth", "peak TFLOP/s (dense)", "description"):
        ht.add_column(col, justify="left" if col in ("name", "description", "peak TFLOP/s (dense)") else "right",
                      no_wrap=col == "name")
    for h in hardware.values():
        peaks = ", ".join(f"{d} {v / 1e12:g}" for d, v in h.peak_flops.items())
        ht.add_row(h.name, f"{h.memory_bytes / 2**30:g} GiB", f"{h.bandwidth_bytes_per_s / 1e9:g} GB/s", peaks,
                   h.description)
    return Group(_title("Models (profiles/models): --draft / --target NAME, or a path to a config.json"), mt,
                 _title("Hardware (profiles/hardware): --estimate NAME"), ht)
