"""The plan document: what `multispin plan --format toml|json` prints, as plain dicts.

This module is the output schema: one function builds the document from a report, one turns it
into TOML or JSON text. Units are in every key's name; numbers are rounded to 10 significant
digits so that the same input always gives byte-identical text.
"""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring_ascii

import numpy as np

from multispin_cli import __version__
from multispin_cli.documents.formats import PLAN_FORMAT_VERSION
from multispin_cli.documents.profile import Profile
from multispin_cli.model.plan import Plan
from multispin_cli.model.units import MHZ, MS
from multispin_cli.planners.needs import Needs, plan_needs
from multispin_cli.planners.report import PlanReport


def num(value: float) -> float:
    """A float rounded to 10 significant digits (stable text, far below any model error)."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.10g}")


def shares_mhz(bandwidth_hz: np.ndarray, total_hz: float) -> list[float]:
    """Each user's share in MHz, rounded like every number, such that a split of the whole band still
    sums to the band: the rounding residue goes to the largest share (20 MHz, not 20.000000002)."""
    shares = nums(np.asarray(bandwidth_hz, dtype=float) / MHZ)
    total = num(total_hz / MHZ)
    if shares and math.isclose(float(np.sum(bandwidth_hz)), total_hz, rel_tol=1e-9):
        big = int(np.argmax(bandwidth_hz))
        rest = math.fsum(shares[:big] + shares[big + 1:])
        shares[big] = total - rest  # not rounded again: that would bring the residue back
    return shares


def _plan_section(profile: Profile, plan: Plan, baselines: dict[str, Plan], tables: bool = True) -> dict:
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
    rows = _users(profile, plan, needs)
    section["users"] = rows.tables() if tables else rows
    return section


_POW10 = 10.0 ** np.arange(23)  # the powers of ten a double holds exactly


def nums(values) -> list[float]:
    """:func:`num` of every element of an array, as a list: the same numbers, computed a whole array
    at a time.

    ``float(f"{x:.10g}")`` is the double nearest to x rounded to 10 significant digits, that is
    ``n / 10^k`` (or ``n * 10^-k``) with ``n = round(x * 10^k)`` the ten digits: for ``|k| <= 22`` the
    power is exact and one IEEE division or product is correctly rounded, so it gives that double.
    ``x * 10^k`` itself is rounded (by at most 2^-19 below 10^10), so where it lies within 1e-5 of a
    half the rounding of n is in doubt: those elements, and any outside that range of k, take the
    text path of :func:`num`.
    """
    x = np.asarray(values, dtype=float).ravel()
    usual = np.flatnonzero(np.isfinite(x) & (x != 0))  # 0, inf and NaN stay as they are (as in num)
    size = np.abs(x[usual])
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        k = np.clip(9 - np.floor(np.log10(size)).astype(np.int64), -22, 22)
        scaled, power, up = _scale(size, k)
        off = np.flatnonzero((scaled < 1e9) | (scaled >= 1e10))
        if off.size:  # log10 may be one off next to a power of ten: bring x 10^k into [1e9, 1e10)
            k[off] = np.clip(k[off] + (scaled[off] < 1e9) - (scaled[off] >= 1e10), -22, 22)
            scaled[off], power[off], up[off] = _scale(size[off], k[off])
        digits = np.rint(scaled)
        rounded = np.divide(digits, power, where=up, out=digits * power)
        sure = (scaled >= 1e9) & (scaled < 1e10) & (np.abs(scaled - digits) < 0.5 - 1e-5)
    out = x.copy()
    out[usual] = np.copysign(rounded, x[usual])
    result = out.tolist()
    for i in usual[~sure].tolist():
        result[i] = num(x[i])
    return result


def _scale(size: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``size * 10^k`` (a product for k >= 0, a quotient by ``10^-k`` otherwise: both correctly
    rounded, the power being exact), the power, and where k >= 0."""
    up = k >= 0
    power = _POW10[np.abs(k)]
    return np.divide(size, power, where=~up, out=size * power), power, up


def _users(profile: Profile, plan: Plan, needs: Needs) -> list[dict]:
    ev = plan.evaluation
    block = profile.system.resource_block_hz
    columns = {
        "name": profile.system.names,
        "draft_length": np.asarray(ev.draft_lengths, dtype=np.int64).tolist(),
        "bandwidth_mhz": shares_mhz(ev.bandwidth_hz, profile.system.bandwidth_hz),
        "tokens_per_round": nums(ev.tokens_per_round),
        "tokens_per_s": nums(ev.user_tokens_per_s),
        "draft_upload_ms": nums(ev.phase_s / MS),
        "needed_bandwidth_mhz": nums(needs.user_hz / MHZ),
    }
    if block is not None:  # rint rounds half to even, as round() does
        columns["resource_blocks"] = np.rint(np.asarray(ev.bandwidth_hz, dtype=float) / block).astype(np.int64).tolist()
        columns["needed_resource_blocks"] = np.asarray(needs.user_blocks).astype(np.int64).tolist()
    models = [info.draft_model for info in profile.users] if _any_draft_model(profile) else []
    names = getattr(profile.users, "device_names", None)  # a devices file: no labels made
    return _Rows(columns, models, names() if names else [info.device for info in profile.users])


class _Rows:
    """A plan's rows, one table per user, held as the columns they are made of.

    :meth:`tables` makes the tables of the document; :meth:`json_text` writes the same rows as JSON
    text straight from the columns (what :func:`plan_json` does: at city scale, building a table per
    user only to encode it again costs more than planning).
    """

    def __init__(self, columns: dict[str, list], models: list, devices: list):
        self.columns, self.models, self.devices = columns, models, devices

    def tables(self) -> list[dict]:
        """One table per user: the columns' keys, then ``draft_model`` where the user has one, then
        ``device``."""
        keys = tuple(self.columns)
        rows = [dict(zip(keys, values)) for values in zip(*self.columns.values())]
        for row, model in zip(rows, self.models):
            if model:
                row["draft_model"] = model
        for row, device in zip(rows, self.devices):
            row["device"] = device
        return rows

    def json_chunks(self, level: int) -> list[str] | None:
        """The tables as :func:`to_json` writes them at this level, in pieces of a few thousand rows:
        each row is one ``%`` of a row template (the keys and indentation, with a conversion per value:
        ``%d`` for an int, ``%s`` for a string made JSON text by the encoder's escaping, and for a
        float ``%.10g`` where that writes it as ``repr`` does (see :func:`_short_floats`; it is about
        twice as fast as ``repr``), else ``%r``). A float column takes the conversion most of a piece's
        values need; the few rows that need the other (a plan's users at L = 0: whole numbers) are
        written again with a template of their own. None where a value is not a finite number or a
        string (the tables then go the general way)."""
        rows, columns = len(self.devices), list(self.columns.items())
        if not rows or not columns or any(len(column) != rows for _, column in columns) or (
                self.models and len(self.models) != rows) or not (
                set(map(type, self.devices)) == {str} and set(map(type, filter(None, self.models))) <= {str}):
            return None
        kinds = []  # per column: where each float is short (see _short_floats), or the type of its values
        for _, column in columns:
            types = set(map(type, column))
            if types == {float}:
                values = np.array(column, dtype=float)
                if not np.isfinite(values).all():
                    return None
                kinds.append(_short_floats(values))
            elif types == {int} or types == {str}:
                kinds.append(types.pop())
            else:
                return None
        inner, deep = "\n" + "  " * (level + 1), "\n" + "  " * (level + 2)
        leads = [(("," + inner + "{" if j == 0 else ",") + deep + encode_basestring_ascii(key) + ": ").replace("%", "%%")
                 for j, (key, _) in enumerate(columns)]
        model_lead = "," + deep + '"draft_model": '
        tail = ("," + deep + '"device": %s' + inner + "}")
        chunks = []
        for start in range(0, rows, _CHUNK_ROWS):
            part = slice(start, start + _CHUNK_ROWS)
            template, feeds, texts = [], [], {}
            other = {}  # position in the template of a float column: the rows that need the other conversion
            for lead, kind, (_, column) in zip(leads, kinds, columns):
                values = column[part]
                if isinstance(kind, np.ndarray):
                    short = kind[part]
                    usual = 2 * int(np.count_nonzero(short)) >= short.size
                    spec = "%.10g" if usual else "%r"
                    if not (short == usual).all():
                        other[len(template)] = short != usual
                elif kind is int:
                    spec = "%d"  # an int's repr
                else:
                    spec, raw, values = "%s", values, list(map(encode_basestring_ascii, values))
                    texts[id(column)] = (raw, values)
                template.append(lead + spec)
                feeds.append(values)
            if self.models:
                template.append("%s")
                feeds.append([model_lead + encode_basestring_ascii(model) if model else "" for model in self.models[part]])
            template.append(tail)
            devices = self.devices[part]
            same = next((text for raw, text in texts.values() if list(raw) == list(devices)), None)  # names are often the devices
            feeds.append(same if same is not None else list(map(encode_basestring_ascii, devices)))
            lines = list(map("".join(template).__mod__, zip(*feeds)))
            if other:
                _rewrite(lines, template, feeds, other)
            chunks.append("".join(lines))
        chunks[0] = "[" + chunks[0][1:]  # the first row's lead has no comma
        chunks.append("\n" + "  " * level + "]")
        return chunks


def _rewrite(lines: list[str], template: list[str], feeds: list[list], other: dict[int, np.ndarray]) -> None:
    """Write again the rows that need the other float conversion (``%r`` for ``%.10g`` or back) in
    some columns (``other``: position in the template -> those rows), each with its own template."""
    positions = list(other)
    flags = np.stack([other[position] for position in positions], axis=1)  # (rows, such columns)
    made: dict[tuple, str] = {}
    for row in np.flatnonzero(flags.any(axis=1)).tolist():
        key = tuple(flags[row].tolist())
        row_template = made.get(key)
        if row_template is None:
            pieces = list(template)
            for position, swap in zip(positions, key):
                if swap:
                    piece = pieces[position]
                    pieces[position] = piece[:-5] + "%r" if piece.endswith("%.10g") else piece[:-2] + "%.10g"
            row_template = made[key] = "".join(pieces)
        lines[row] = row_template % tuple(feed[row] for feed in feeds)


def _short_floats(x: np.ndarray) -> np.ndarray:
    """Where ``"%.10g" % x`` is ``repr(x)``: x is not a whole number, lies in [1e-4, 1e10) in size,
    and is the double nearest to a decimal D of 10 significant digits (as :func:`num` leaves it).

    Then ``repr`` writes D (the shortest text that reads back as x: two decimals of at most 15 digits
    never share a double), trailing zeros dropped, and so does ``%.10g`` (x rounded to 10 digits is D);
    in that range of sizes both write it without an exponent, and the fraction keeps the point. D is
    found as in :func:`nums`: ``x 10^k`` rounded, with ``k = 9 - floor(log10 |x|)`` in 0..13 (an exact
    power, so one product and one quotient, each correctly rounded); an element whose ``x 10^k`` falls
    outside [1e9, 1e10) (log10 one off) is simply not claimed.
    """
    size = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inside = (size >= 1e-4) & (size < 1e10) & (np.floor(size) != size)
        k = np.clip(9 - np.floor(np.log10(np.where(inside, size, 1.0))).astype(np.int64), 0, 22)
        power = _POW10[k]
        scaled = size * power
        digits = np.rint(scaled)
        return inside & (scaled >= 1e9) & (scaled < 1e10) & (digits / power == size)


_CHUNK_ROWS = 4096  # rows of JSON text made at once (bounds the small strings alive at a time)


def _any_draft_model(profile: Profile) -> bool:
    users = profile.users
    columns = getattr(users, "_columns", None)  # a devices file's users: look at the column, not each user
    if columns is not None:
        models = list(columns["draft_model"])
        return models.count(None) != len(models)
    return any(info.draft_model for info in users)


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
    return _plan_document(profile, report, tables=True)


def plan_json(profile: Profile, report: PlanReport) -> str:
    """``to_json(plan_document(profile, report))``, with the users' rows written straight from their
    columns (:class:`_Rows`)."""
    return _json(_plan_document(profile, report, tables=False), 0, "\n")


def _plan_document(profile: Profile, report: PlanReport, *, tables: bool) -> dict:
    head = cell_header(profile, mode=report.mode)
    head["multispin_version"] = __version__
    head["format_version"] = PLAN_FORMAT_VERSION
    doc: dict = {"plan": head}
    if report.homogeneous is not None:
        doc["homogeneous"] = _plan_section(profile, report.homogeneous, report.baselines, tables)
    if report.heterogeneous is not None:
        others = dict(report.baselines)
        if report.homogeneous is not None:
            others = {"homogeneous": report.homogeneous, **others}
        doc["heterogeneous"] = _plan_section(profile, report.heterogeneous, others, tables)
    doc["baselines"] = {name: _baseline_section(plan) for name, plan in report.baselines.items()}
    if report.adaptive is not None:
        from multispin_cli.render.adaptive import adaptive_section

        doc["adaptive"] = adaptive_section(profile, report.adaptive)
    return doc


def to_toml(doc: dict) -> str:
    """TOML text of a document."""
    import tomli_w  # loaded only for TOML

    return tomli_w.dumps(doc)


def to_json(doc: dict) -> str:
    """JSON text of a document (two-space indent, trailing newline).

    The same text as ``json.dumps(doc, indent=2)``, written faster: the standard library falls back
    to its pure-Python encoder whenever it indents, so a list of flat tables (the users' rows) is
    encoded by the C encoder in one call, with marker separators (control characters, which the
    encoder always escapes inside strings) that are then replaced by the indentation.
    """
    return _json(doc, 0, "\n")


_SCALARS = {str, int, float, bool, type(None)}


def _flat_tables(rows) -> bool:
    """Whether every element is a non-empty table of scalars only."""
    if not all(type(row) is dict and row for row in rows):
        return False
    return {type(v) for row in rows for v in row.values()} <= _SCALARS


def _json(value, level: int, end: str = "") -> str:
    """JSON text of ``value`` at this level, then ``end`` (joined with it: no copy of the whole text)."""
    out: list[str] = []
    _write(value, level, out)
    out.append(end)
    return "".join(out)


def _write(value, level: int, out: list[str]) -> None:
    """Append the JSON text of ``value`` at this indentation level to ``out`` (joined once at the end:
    a plan of 100,000 users is tens of megabytes, which concatenation would copy at every level)."""
    inner, outer = "\n" + "  " * (level + 1), "\n" + "  " * level
    if isinstance(value, _Rows):
        chunks = value.json_chunks(level)
        if chunks is not None:
            out += chunks
            return
        value = value.tables()
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        lead = "{" + inner
        for k, v in value.items():
            out.append(lead + json.dumps(str(k)) + ": ")
            _write(v, level + 1, out)
            lead = "," + inner
        out.append(outer + "}")
        return
    if isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        if _flat_tables(value):
            deep = "\n" + "  " * (level + 2)
            raw = json.dumps(value, separators=(",\x00", ": "), allow_nan=False)
            body = raw[2:-2].replace("},\x00{", "\x01").replace("\x00", deep)
            body = body.replace("\x01", inner + "}," + inner + "{" + deep)
            out.append("[" + inner + "{" + deep + body + inner + "}" + outer + "]")
            return
        lead = "[" + inner
        for v in value:
            out.append(lead)
            _write(v, level + 1, out)
            lead = "," + inner
        out.append(outer + "]")
        return
    out.append(json.dumps(value, allow_nan=False))
