"""A sweep's rows as CSV, JSON, Parquet (optional extra ``parquet``: pyarrow), a table or a plot.

Columns: ``cell``, the swept keys (their dotted addresses), ``scenario`` (with ``--scenarios``),
``users``, then ``PLAN.goodput_tokens_per_s``, ``PLAN.round_ms`` and ``PLAN.mean_draft_length``
for every plan and baseline. Numbers are rounded to 10 significant digits (byte-stable text); a
round time is empty (null) where the plan cannot run.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from multispin_cli.analysis.sweep import METRICS, PLAN_ORDER
from multispin_cli.errors import InputError, MissingExtraError
from multispin_cli.render.document import num
from multispin_cli.render.tables import new_table


def sweep_columns(keys: list[str], scenarios: bool, plans: list[str]) -> list[str]:
    """The column names, in order."""
    cols = ["cell", *keys, *(["scenario"] if scenarios else []), "users"]
    return cols + [f"{p}.{m}" for p in PLAN_ORDER if p in plans for m in METRICS]


def _value(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return num(value)


def _clean(rows: list[dict], columns: list[str]) -> list[dict]:
    return [{c: _value(row.get(c)) for c in columns} for row in rows]


def to_csv(rows: list[dict], columns: list[str]) -> str:
    """CSV with a header line; empty fields for missing values; ``\\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in _clean(rows, columns):
        writer.writerow(["" if row[c] is None else repr(row[c]) if isinstance(row[c], float) else row[c]
                         for c in columns])
    return buffer.getvalue()


def to_json(rows: list[dict], columns: list[str], header: dict) -> str:
    """``{"sweep": header, "rows": [...]}`` with two-space indent."""
    return json.dumps({"sweep": header, "rows": _clean(rows, columns)}, indent=2, allow_nan=False) + "\n"


def to_parquet(rows: list[dict], columns: list[str]) -> bytes:
    """A Parquet file's bytes (one column per name; null where a value is missing)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("--format parquet", "parquet", "pyarrow") from None
    clean = _clean(rows, columns)
    table = pa.table({c: [row[c] for row in clean] for c in columns})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


_SHORT = {"homogeneous": "homo-\ngeneous", "heterogeneous": "hetero-\ngeneous", "autoregressive": "auto-\nregressive",
          "fixed_equal": "fixed\nequal", "mean_user": "mean\nuser"}


def sweep_table(rows: list[dict], columns: list[str], keys: list[str], max_rows: int = 40):
    """People's view: the swept values, users and each plan's goodput (tok/s)."""
    goodput = [c for c in columns if c.endswith(".goodput_tokens_per_s")]
    shown = ["cell", *keys, *(["scenario"] if "scenario" in columns else []), "users", *goodput]
    title = f"Sweep: {len(rows)} cells, goodput in tokens/s"
    table = new_table(title)
    for c in shown:
        if c in keys:
            label = c.rpartition(".")[2] if c.count(".") == 1 else "\n".join(c.split(".", 2)[1:])
        else:
            label = _SHORT.get(c.removesuffix(".goodput_tokens_per_s"), c)
        table.add_column(label, justify="right")
    limit = len(rows) if max_rows == 0 else max_rows
    for row in rows[:limit]:
        cells = []
        for c in shown:
            v = row.get(c)
            cells.append("-" if v is None else f"{v:,.1f}" if c in goodput else f"{v:g}" if isinstance(v, float)
                         else str(v))
        table.add_row(*cells)
    if len(rows) > limit:
        table.caption = f"{len(rows) - limit} more rows (--rows 0 shows all)"
    return table


def plot_sweep(rows: list[dict], key: str, plans: list[str], path: str | Path) -> Path:
    """Goodput against the first swept key, one line per plan and baseline (mean over the other
    swept keys and scenarios at each value)."""
    from multispin_cli.render.plotting import _BASELINE_STYLE, _PLAN_COLOURS, _matplotlib, _save

    if not rows:
        raise InputError("no rows to plot", key="--plot")
    Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = sorted({row[key] for row in rows})
    for name in [p for p in PLAN_ORDER if p in plans]:
        column = f"{name}.goodput_tokens_per_s"
        ys = [float(np.mean([r[column] for r in rows if r[key] == x])) for x in xs]
        if name in _PLAN_COLOURS:
            ax.plot(xs, ys, "o-", color=_PLAN_COLOURS[name], linewidth=1.8, label=name)
        else:
            colour, style = _BASELINE_STYLE.get(name, ("tab:green", "--"))
            ax.plot(xs, ys, marker=".", color=colour, linestyle=style, label=name)
    others = len(rows) > len(xs)
    ax.set_xlabel(key)
    ax.set_ylabel("sum goodput (tokens/s)" + (", mean over the other cells" if others else ""))
    ax.set_ylim(bottom=0)
    if len(xs) > 2 and xs[0] > 0 and xs[-1] / xs[0] >= 16:
        ax.set_xscale("log", base=2)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Goodput against {key}")
    return _save(fig, path)
