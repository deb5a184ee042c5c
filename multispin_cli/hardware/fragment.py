"""The timings fragment: what `profile-hardware --format toml|json` writes (pure).

A deployment profile includes it with ``[server] timings = "file.toml"`` (the loader reads
``target``, ``target_model``, ``verify_model``, ``verify_base_ms``, ``verify_ms_per_token``,
``verify_r2`` and ``verify_table`` from ``[server]``) and, per device, ``timings = "file.toml"``
(``draft_ms_per_token`` and ``draft_overhead_ms`` from ``[draft]``). ``[measurement]`` is free-form
metadata the loader ignores: how, where and with what the numbers were obtained.

Everything written satisfies the loader's rules: ``verify_base_ms > 0``, ``verify_ms_per_token >= 0``,
``draft_ms_per_token > 0``, ``draft_overhead_ms >= 0`` (the fits are constrained to these bounds),
and a table with strictly increasing token counts and non-decreasing, positive times (a running
maximum). Numbers are rounded to 6 significant digits, which keeps that order.
"""

from __future__ import annotations

import json
import math
import re

from multispin_cli import __version__
from multispin_cli.hardware.fit import AFFINE_R2_THRESHOLD
from multispin_cli.hardware.profiling import DraftResult, HardwareProfile, VerifyResult
from multispin_cli.model.units import MS

FORMAT_VERSION = 1


def sig(value: float, digits: int = 6) -> float:
    """``value`` rounded to ``digits`` significant digits (stable text; monotone, so order is kept)."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def ms(seconds: float) -> float:
    """Milliseconds, rounded."""
    return sig(seconds / MS)


def _draft_measurement(d: DraftResult) -> dict:
    section = {
        "model": d.model.name,
        "params": d.model.total_params,
        "device": d.device,
        "dtype": d.dtype,
        "method": d.detail,
        "round_ms": [[length, ms(seconds)] for length, seconds in d.rounds],
        "fit": "round_ms = draft_overhead_ms + draft_ms_per_token * L (least squares, overhead >= 0)",
        "fit_r2": sig(d.fit.r2),
    }
    if d.fit.clamped:
        section["fit_clamped"] = list(d.fit.clamped)
    if d.roofline_s_per_token:
        section["roofline_ms_per_token"] = ms(d.roofline_s_per_token)
        if d.measured:
            section["measured_vs_roofline"] = sig(d.seconds_per_token / d.roofline_s_per_token, 4)
    if d.copies is not None:
        section["distinct_layer_copies"] = d.copies
    if d.measured:
        section["sweeps"] = d.sweeps
        section["spread_percent"] = sig(100 * d.spread, 3)
    return section


def _verify_measurement(v: VerifyResult) -> dict:
    columns = ["batch", "tokens_per_sequence", "tokens", "ms"]
    with_parts = any(p.layer_seconds is not None for p in v.points)
    with_roof = any(p.roofline_seconds is not None for p in v.points) and v.measured
    if with_parts:
        columns += ["layer_ms", "head_ms"]
    if with_roof:
        columns += ["roofline_ms"]
    rows = []
    for p in v.points:
        row = [p.batch, p.new_tokens, p.tokens, ms(p.seconds)]
        if with_parts:
            row += [ms(p.layer_seconds or 0.0), ms(p.head_seconds or 0.0)]
        if with_roof:
            row += [ms(p.roofline_seconds or 0.0)]
        rows.append(row)
    section = {
        "model": v.model.name,
        "params": v.model.total_params,
        "device": v.device,
        "dtype": v.dtype,
        "method": v.detail,
        "layers": v.model.layers,
    }
    if v.measured and v.layer_scale > 1:
        section["layer_scaling"] = (f"T_v(N) = {v.layer_scale} x layer_ms(N) + head_ms(N): one layer timed, "
                                    f"multiplied by the {v.layer_scale} layers")
    section.update({
        "grid_columns": columns,
        "grid": rows,
        "fit": "verify_ms = verify_base_ms + verify_ms_per_token * tokens (least squares, base > 0, slope >= 0)",
        "affine_r2_threshold": AFFINE_R2_THRESHOLD,
        "verify_model_rule": f"affine when R^2 >= {AFFINE_R2_THRESHOLD} (and nothing was clamped), else table",
        "table_rule": "per token count the largest time over the batch sizes, kept as measured (it may fall)",
        "table_points_falling": v.table.falls,
        "decode_pass": [v.decode_point.batch, v.decode_point.new_tokens],
        "decode_ms": ms(v.decode_seconds),
        "weights_gib": sig(v.weight_bytes / 2**30, 4),
    })
    if v.fit.clamped:
        section["fit_clamped"] = list(v.fit.clamped)
    if v.bandwidth_bound_seconds:
        section["bandwidth_bound_ms"] = ms(v.bandwidth_bound_seconds)
        section["decode_vs_bandwidth_bound"] = sig(v.decode_vs_bandwidth, 4)
    first = min(v.points, key=lambda p: (p.tokens, p.batch))
    if v.measured and first.roofline_seconds:
        section["decode_vs_roofline"] = sig(first.seconds / first.roofline_seconds, 4)
    if v.copies is not None:
        section["distinct_layer_copies"] = v.copies
    if v.measured:
        section["sweeps"] = v.sweeps
        section["spread_percent"] = sig(100 * v.spread, 3)
        section["spread_rule"] = ("every grid point timed once per sweep; sweeps added while some point's "
                                  "(max - min) / median over its repeats exceeds 10 % (at most 6 more)")
    return section


CLOCK = ("wall time: the passes run multi-threaded BLAS, whose process CPU time adds up every thread's (and "
         "counts none of the time a busy machine keeps them waiting), so only wall time is what an engine's "
         "tokens/s sees; the engine loop's round_overhead_ms is single-threaded and timed in process CPU time")


def fragment_document(profile: HardwareProfile) -> dict:
    """The fragment as plain dicts: ``[server]``, ``[draft]`` and ``[measurement]``."""
    v, d, s = profile.verify, profile.draft, profile.settings
    server: dict = {"target": v.model.name}
    if v.model.hf_id:
        server["target_model"] = v.model.hf_id
    server.update({
        "verify_model": v.form,
        "verify_base_ms": ms(v.fit.intercept),
        "verify_ms_per_token": ms(v.fit.slope),
        "verify_r2": round(v.fit.r2, 6),
        "verify_table": [[int(n), ms(t)] for n, t in zip(v.table.x, v.table.y)],
    })
    if profile.round_overhead is not None:
        server["round_overhead_ms"] = ms(profile.round_overhead[0])
    draft: dict = {"model": d.model.name}
    if d.model.hf_id:
        draft["draft_model"] = d.model.hf_id
    draft.update({"draft_ms_per_token": ms(d.seconds_per_token), "draft_overhead_ms": ms(d.overhead_seconds)})

    measured = v.measured or d.measured
    measurement: dict = {"format_version": FORMAT_VERSION, "tool": f"multispin profile-hardware {__version__}"}
    if measured:  # an estimate does not depend on this machine: leave it out, so the text is reproducible
        measurement["machine"] = profile.machine.summary()
    if profile.backend_detail:
        measurement["backend"] = profile.backend_detail
    measurement.update({
        "context_tokens": s.context,
        "max_draft_length": s.max_draft_length,
        "batch_sizes": list(s.batch_sizes),
        "draft_lengths": list(s.draft_lengths()),
        "repeats": s.repeats,
        "warmup": s.warmup,
        "statistic": "median of the repeats",
        "quick": s.quick,
    })
    if measured:
        measurement["clock"] = CLOCK
        measurement["wall_s"] = sig(profile.wall_seconds, 3)
        measurement["memory_planned_gib"] = sig(profile.planned_peak_bytes / 2**30, 3)
        if profile.peak_rss_bytes:
            measurement["peak_rss_gib"] = sig(profile.peak_rss_bytes / 2**30, 3)
    if profile.peaks is not None:
        pk = profile.peaks
        measurement.update({
            "local_memory_bandwidth_gb_per_s": sig(pk.bandwidth_bytes_per_s / 1e9, 4),
            "local_bandwidth_method": pk.bandwidth_method,
            "local_matmul_gflop_per_s": sig(pk.flops_per_s / 1e9, 4),
            "local_matmul_method": pk.flops_method,
        })
    if profile.notes:
        measurement["notes"] = list(profile.notes)
    measurement["draft"] = _draft_measurement(d)
    measurement["target"] = _verify_measurement(v)
    if profile.round_overhead is not None:
        measurement["target"]["round_overhead_spread_percent"] = sig(100 * profile.round_overhead[1], 3)
    return {"server": server, "draft": draft, "measurement": measurement}


def header_lines(profile: HardwareProfile) -> list[str]:
    """Comment lines that open the TOML fragment."""
    v, d = profile.verify, profile.draft
    where = profile.machine.summary() if (v.measured or d.measured) else "roofline estimates"
    lines = [
        f"written by multispin profile-hardware {__version__} on {where}",
        f"draft {d.model.name} on {d.device} ({d.dtype}); target {v.model.name} on {v.device} ({v.dtype}); "
        f"context {profile.settings.context} tokens",
        "use: in a deployment profile, [server] timings = \"this-file.toml\" and, per device, "
        "timings = \"this-file.toml\"",
    ]
    if v.form == "table":
        lines.append(f"verify_model = \"table\": the affine fit's R^2 {v.fit.r2:.4f} is below {AFFINE_R2_THRESHOLD} "
                     "(or was clamped); the affine keys stay for reference")
    if v.measured and v.layer_scale > 1:
        lines.append(f"target timed as one layer x {v.layer_scale} layers + LM head (see [measurement.target])")
    return lines


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INLINE_WIDTH = 100


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    # JSON string escapes are TOML basic-string escapes; TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not writable as a timing: {value!r}")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def toml_dumps(doc: dict) -> str:
    """TOML text of a document of tables, scalars and arrays (no arrays of tables).

    Short arrays stay on one line; arrays of arrays and long arrays get one element per line, so a
    ``verify_table`` reads as ``[tokens, ms]`` rows.
    """
    lines: list[str] = []

    def table(prefix: str, data: dict) -> None:
        if prefix:
            lines.append(f"[{prefix}]")
        for name, value in data.items():
            if isinstance(value, dict):
                continue
            text = _value(value)
            if isinstance(value, (list, tuple)) and value and (
                    isinstance(value[0], (list, tuple)) or len(text) > _INLINE_WIDTH):
                lines.append(f"{_key(name)} = [")
                lines.extend(f"    {_value(v)}," for v in value)
                lines.append("]")
            else:
                lines.append(f"{_key(name)} = {text}")
        lines.append("")
        for name, value in data.items():
            if isinstance(value, dict):
                table(f"{prefix}.{_key(name)}" if prefix else _key(name), value)

    table("", doc)
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines).rstrip("\n") + "\n"


def to_toml(profile: HardwareProfile) -> str:
    """The fragment as TOML, opened by comment lines."""
    head = "".join(f"# {line}\n" for line in header_lines(profile))
    return head + toml_dumps(fragment_document(profile))


def to_json(profile: HardwareProfile) -> str:
    """The fragment as JSON."""
    return json.dumps(fragment_document(profile), indent=2) + "\n"
