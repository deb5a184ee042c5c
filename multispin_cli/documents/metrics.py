"""Reading what serving engines report about speculative decoding into counts.

Three sources, one result (:class:`DraftCounts`):

* vLLM's Prometheus exposition text (``/metrics``): the counters ``vllm:spec_decode_num_drafts``,
  ``..._num_draft_tokens``, ``..._num_accepted_tokens`` and ``..._num_accepted_tokens_per_pos``
  (one series per ``position`` label, 0-based: how many drafts had that position accepted). A
  counter may appear with or without its ``_total`` suffix; series of several engines are added;
  ``labels`` keeps only the series carrying the given label values (e.g. one ``model_name``);
* a histogram of accepted lengths per round, as CSV (a header naming an ``accepted`` or
  ``committed`` column and a ``count`` column) or JSON (a list of counts indexed by accepted
  length, or an object, see :func:`parse_histogram`);
* plain counters: drafts, accepted tokens and the draft length.

"Accepted" counts draft tokens the target accepted (0..L per draft); "committed" counts the tokens
a round adds, accepted plus the target's correction or bonus token (1..L+1). Everything that cannot
be (a negative count, more accepted than drafted, a position accepted more often than the one before
it) is an :class:`InputError` naming the line, metric or key.
"""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np

from multispin_cli.analysis.calibration import DraftCounts
from multispin_cli.documents.files import parse_json
from multispin_cli.errors import InputError

PREFIX = "vllm:spec_decode_"
DRAFTS = PREFIX + "num_drafts"
DRAFT_TOKENS = PREFIX + "num_draft_tokens"
ACCEPTED = PREFIX + "num_accepted_tokens"
PER_POSITION = PREFIX + "num_accepted_tokens_per_pos"
METRICS = (DRAFTS, DRAFT_TOKENS, ACCEPTED, PER_POSITION)
MAX_DRAFT_LENGTH = 1024

ACCEPTED_COLUMNS = ("accepted", "accepted_tokens", "accepted_length", "num_accepted_tokens")
COMMITTED_COLUMNS = ("committed", "committed_tokens", "tokens", "acceptance_length", "tokens_per_round")
COUNT_COLUMNS = ("count", "counts", "rounds", "drafts", "n", "frequency")


def _whole(value: float, *, where: str, path) -> int:
    if not math.isfinite(value):
        raise InputError(f"must be a finite count, got {value!r}", path=path, key=where)
    if value < 0:
        raise InputError(f"counts that cannot be: a negative count ({value:g})", path=path, key=where)
    if abs(value - round(value)) > 1e-6 * max(1.0, abs(value)):
        raise InputError(f"must be a whole number of events, got {value!r}", path=path, key=where)
    return int(round(value))


def _check_positions(drafts: int, by_position, *, path, key: str) -> tuple[int, ...]:
    counts = tuple(int(c) for c in by_position)
    previous, previous_name = drafts, "the number of drafts"
    for i, count in enumerate(counts):
        if count > previous:
            raise InputError(
                f"counts that cannot be: position {i + 1} was accepted {count} times, more than "
                f"{previous_name} ({previous}); a position is only reached when the one before it is accepted",
                path=path, key=key)
        previous, previous_name = count, f"position {i + 1}"
    return counts


def from_counters(drafts, accepted_tokens, draft_length, *, source: str = "counters") -> DraftCounts:
    """Counts from totals: N drafts of L tokens each, A tokens accepted in all."""
    checks = (("drafts", drafts), ("accepted-tokens", accepted_tokens), ("draft-length", draft_length))
    for name, value in checks:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"must be an integer, got {value!r}", key=name)
        if value < 0:
            raise InputError(f"counts that cannot be: negative ({value})", key=name)
    if drafts == 0:
        raise InputError("no drafts: nothing to estimate from", key="drafts")
    if not 1 <= draft_length <= MAX_DRAFT_LENGTH:
        raise InputError(f"must be between 1 and {MAX_DRAFT_LENGTH}, got {draft_length}", key="draft-length")
    if accepted_tokens > drafts * draft_length:
        raise InputError(f"counts that cannot be: {accepted_tokens} accepted tokens but only {drafts} drafts of "
                         f"{draft_length} tokens ({drafts * draft_length} draft tokens)", key="accepted-tokens")
    return DraftCounts(source, int(drafts), int(draft_length), int(accepted_tokens), int(drafts * draft_length))


def from_histogram(counts, *, source: str = "histogram", path=None) -> DraftCounts:
    """Counts from a histogram ``counts[x]`` = rounds with x accepted draft tokens, x = 0..L."""
    n = np.asarray(counts)
    if n.ndim != 1 or n.size < 2:
        raise InputError("a histogram needs the counts of accepted lengths 0..L with L >= 1", path=path)
    if n.min() < 0:
        raise InputError(f"counts that cannot be: a negative count at accepted length {int(np.argmin(n))}", path=path)
    n = n.astype(np.int64)
    drafts = int(n.sum())
    if drafts == 0:
        raise InputError("empty histogram: every count is 0", path=path)
    length = n.size - 1
    at_least = np.cumsum(n[::-1])[::-1]  # at_least[i] = drafts with >= i accepted
    by_position = tuple(int(c) for c in at_least[1:])
    accepted = int((np.arange(n.size) * n).sum())
    return DraftCounts(source, drafts, length, accepted, drafts * length, by_position)


# --------------------------------------------------------------------------- Prometheus text

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\\n]|\\.)*)"\s*')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _sample(line: str, number: int, path) -> tuple[str, dict[str, str], float]:
    """One exposition line ``name{label="value",...} value [timestamp]``."""
    where = f"line {number}"
    match = _NAME.match(line)
    if match is None:
        raise InputError(f"malformed metrics text: expected a metric name, got {line[:40]!r}", path=path, key=where)
    name, pos = match.group(), match.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        pos += 1
        while True:
            rest = line[pos:].lstrip()
            pos = len(line) - len(rest)
            if rest.startswith("}"):
                pos += 1
                break
            label = _LABEL.match(line, pos)
            if label is None:
                raise InputError(f"malformed metrics text: bad label in {line[:60]!r}", path=path, key=where)
            value = re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m.group()], label.group(2))
            if label.group(1) in labels:
                raise InputError(f"malformed metrics text: label {label.group(1)!r} given twice", path=path, key=where)
            labels[label.group(1)] = value
            pos = label.end()
            if pos < len(line) and line[pos] == ",":
                pos += 1
            elif not (pos < len(line) and line[pos] == "}"):
                raise InputError(f"malformed metrics text: expected ',' or '}}' in {line[:60]!r}", path=path, key=where)
    fields = line[pos:].split("#", 1)[0].split()  # drop an OpenMetrics exemplar
    if not line[pos:pos + 1].isspace() or not 1 <= len(fields) <= 2:
        raise InputError(f"malformed metrics text: expected 'name value' in {line[:60]!r}", path=path, key=where)
    try:
        value = float(fields[0])
        if len(fields) == 2:
            float(fields[1])
    except ValueError:
        raise InputError(f"malformed metrics text: {fields[0]!r} is not a number", path=path, key=where) from None
    return name, labels, value


def _family(name: str) -> str | None:
    for metric in METRICS:
        if name in (metric, metric + "_total"):
            return metric
    return None


def parse_prometheus(text: str, *, path=None, labels: dict[str, str] | None = None,
                     draft_length: int | None = None) -> DraftCounts:
    """Speculative-decoding counts from vLLM's Prometheus exposition text.

    ``labels`` keeps only series with those label values. ``draft_length`` is needed only when the
    text has no per-position counter and the drafts are not all of one length.
    """
    wanted = labels or {}
    series: dict[str, dict[tuple, float]] = {m: {} for m in METRICS}
    models: set[str] = set()
    seen_any = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, found, value = _sample(line, number, path)
        seen_any = True
        family = _family(name)
        if family is None or any(found.get(k) != v for k, v in wanted.items()):
            continue
        key = tuple(sorted(found.items()))
        if key in series[family]:
            raise InputError(f"malformed metrics text: {name} with the same labels appears twice", path=path,
                             key=f"line {number}")
        series[family][key] = _whole(value, where=f"line {number} ({name})", path=path)
        if "model_name" in found:
            models.add(found["model_name"])
    if not seen_any:
        raise InputError("no metrics in the text (empty, or only comments)", path=path)
    if not series[DRAFTS]:
        hint = f" matching {', '.join(f'{k}={v}' for k, v in wanted.items())}" if wanted else ""
        raise InputError(f"no {DRAFTS} counter{hint} (is speculative decoding enabled on this vLLM server?)",
                         path=path)
    if len(models) > 1:
        raise InputError(f"the metrics mix several models (model_name = {', '.join(sorted(models))}): pick one "
                         "with --label model_name=NAME", path=path)

    drafts = int(sum(series[DRAFTS].values()))
    if drafts == 0:
        raise InputError(f"no drafts counted yet ({DRAFTS} is 0): let the server generate first", path=path)
    draft_tokens = int(sum(series[DRAFT_TOKENS].values())) if series[DRAFT_TOKENS] else None
    accepted = int(sum(series[ACCEPTED].values())) if series[ACCEPTED] else None

    by_position = None
    if series[PER_POSITION]:
        per: dict[int, int] = {}
        for key, value in series[PER_POSITION].items():
            position = dict(key).get("position")
            if position is None or not position.isdigit():
                raise InputError(f"{PER_POSITION} needs an integer 'position' label, got {position!r}", path=path)
            per[int(position)] = per.get(int(position), 0) + value
        if sorted(per) != list(range(len(per))):
            missing = min(set(range(max(per) + 1)) - set(per))
            raise InputError(f"{PER_POSITION} has no series for position {missing} (positions must be 0, 1, ...)",
                             path=path)
        by_position = _check_positions(drafts, [per[i] for i in range(len(per))], path=path, key=PER_POSITION)

    warnings = []
    if by_position is not None:
        length = len(by_position)
        if draft_length is not None and draft_length != length:
            raise InputError(f"--draft-length {draft_length} disagrees with the {length} positions of "
                             f"{PER_POSITION}", path=path)
        per_sum = sum(by_position)
        if accepted is None:
            accepted = per_sum
        elif accepted != per_sum:
            warnings.append(f"{ACCEPTED} ({accepted}) differs from the sum over positions ({per_sum}) (a scrape "
                            "taken while counting?); the per-position counts are used")
            accepted = per_sum
    else:
        if accepted is None:
            raise InputError(f"no {ACCEPTED} counter", path=path)
        if draft_length is not None:
            length = draft_length
        elif draft_tokens is not None and draft_tokens % drafts == 0:
            length = draft_tokens // drafts
        else:
            detail = f"{draft_tokens} draft tokens in {drafts} drafts" if draft_tokens is not None else \
                f"no {DRAFT_TOKENS} counter"
            raise InputError(f"cannot tell the draft length ({detail}) and there is no {PER_POSITION} "
                             "counter: give --draft-length", path=path)
    if not 1 <= length <= MAX_DRAFT_LENGTH:
        raise InputError(f"draft length {length} is outside 1..{MAX_DRAFT_LENGTH}", path=path)
    full = drafts * length
    if draft_tokens is None:
        draft_tokens = full
    if accepted > draft_tokens:
        raise InputError(f"counts that cannot be: {accepted} accepted tokens but only {draft_tokens} draft tokens",
                         path=path, key=ACCEPTED)
    if draft_tokens > full:
        raise InputError(f"counts that cannot be: {draft_tokens} draft tokens in {drafts} drafts of at most "
                         f"{length} tokens", path=path, key=DRAFT_TOKENS)
    if draft_tokens < full:
        warnings.append(f"drafts averaged {draft_tokens / drafts:.3g} tokens, fewer than {length}: the estimates "
                        "assume every draft offered all positions, so later positions read low")
    return DraftCounts(f"vLLM metrics{'' if path is None else f' ({path})'}", drafts, length, accepted,
                       draft_tokens, by_position, tuple(warnings))


# --------------------------------------------------------------------------- histograms


def _histogram_from_pairs(pairs: list[tuple[int, int, str]], *, committed: bool, draft_length: int | None,
                          path) -> np.ndarray:
    counts: dict[int, int] = {}
    for length, count, where in pairs:
        if committed:
            if length < 1:
                raise InputError(f"a round commits at least 1 token, got {length}", path=path, key=where)
            length -= 1
        if length < 0:
            raise InputError(f"counts that cannot be: negative accepted length {length}", path=path, key=where)
        if length > MAX_DRAFT_LENGTH:
            raise InputError(f"accepted length {length} is beyond {MAX_DRAFT_LENGTH}", path=path, key=where)
        if length in counts:
            raise InputError(f"accepted length {length} appears twice", path=path, key=where)
        counts[length] = count
    if not counts:
        raise InputError("empty histogram: no rows", path=path)
    if not any(counts.values()):
        raise InputError("empty histogram: every count is 0", path=path)
    listed = max(counts)
    length = listed if draft_length is None else draft_length
    if draft_length is not None:
        used = max((k for k, c in counts.items() if c > 0), default=0)
        if used > draft_length:
            raise InputError(f"counts that cannot be: {counts[used]} rounds accepted {used} tokens, more than the "
                             f"draft length {draft_length}", path=path)
    if length < 1:
        raise InputError("the histogram lists accepted length 0 only: give --draft-length", path=path)
    hist = np.zeros(length + 1, dtype=np.int64)
    for k, c in counts.items():
        if k <= length:
            hist[k] = c
    return hist


def _count(value, where: str, path) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"must be a count, got {value!r}", path=path, key=where)
    return _whole(float(value), where=where, path=path)


def _length(value, where: str, path) -> int:
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"-?\d+", value):
            raise InputError(f"must be a whole number of tokens, got {value!r}", path=path, key=where)
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise InputError(f"must be a whole number of tokens, got {value!r}", path=path, key=where)
    return int(value)


def _parse_csv(text: str, path) -> tuple[list[tuple[int, int, str]], bool]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)
            and not row[0].lstrip().startswith("#")]
    if not rows:
        raise InputError("empty histogram: no rows", path=path)
    header = [cell.strip().lower() for cell in rows[0]]
    length_col = next((i for i, h in enumerate(header) if h in ACCEPTED_COLUMNS + COMMITTED_COLUMNS), None)
    count_col = next((i for i, h in enumerate(header) if h in COUNT_COLUMNS), None)
    if length_col is None or count_col is None:
        raise InputError(f"the CSV header must name a length column ({', '.join(ACCEPTED_COLUMNS[:2])}, or "
                         f"{', '.join(COMMITTED_COLUMNS[:2])} when the count includes the target's token) and a "
                         f"count column (count); got {','.join(rows[0])!r}", path=path, key="line 1")
    committed = header[length_col] in COMMITTED_COLUMNS
    pairs = []
    for number, row in enumerate(rows[1:], start=2):
        where = f"line {number}"
        if len(row) <= max(length_col, count_col):
            raise InputError(f"expected {len(header)} columns, got {len(row)}", path=path, key=where)
        length = _length(row[length_col], where, path)
        try:
            value = float(row[count_col])
        except ValueError:
            raise InputError(f"count {row[count_col].strip()!r} is not a number", path=path, key=where) from None
        pairs.append((length, _whole(value, where=where, path=path), where))
    return pairs, committed


def _parse_json(text: str, path) -> tuple[list[tuple[int, int, str]], bool, int | None]:
    data = parse_json(text, path)
    committed = False
    draft_length = None
    if isinstance(data, dict) and any(k in data for k in ("accepted", "committed")):
        if "accepted" in data and "committed" in data:
            raise InputError("give either 'accepted' or 'committed' counts, not both", path=path)
        if "draft_length" in data:
            draft_length = _length(data["draft_length"], "draft_length", path)
        committed = "committed" in data
        key = "committed" if committed else "accepted"
        unknown = set(data) - {key, "draft_length"}
        if unknown:
            raise InputError(f"unknown key {sorted(unknown)[0]!r} (known: accepted or committed, draft_length)",
                             path=path)
        data = data[key]
    else:
        key = None
    where = (lambda i: f"{key}[{i}]") if key else (lambda i: f"[{i}]")
    if isinstance(data, list):
        pairs = [(i + int(committed), _count(c, where(i), path), where(i)) for i, c in enumerate(data)]
    elif isinstance(data, dict):
        pairs = [(_length(k, f"{key + '.' if key else ''}{k}", path), _count(v, f"{key + '.' if key else ''}{k}", path),
                  f"{key + '.' if key else ''}{k}") for k, v in data.items()]
    else:
        raise InputError("a JSON histogram is a list of counts, or an object of length: count "
                         "(optionally under 'accepted' or 'committed', with 'draft_length')", path=path)
    return pairs, committed, draft_length


def parse_histogram(text: str, *, path=None, draft_length: int | None = None) -> DraftCounts:
    """Counts from a histogram of accepted lengths per round, CSV or JSON.

    CSV: a header with a length column (``accepted``/``accepted_tokens``: draft tokens accepted,
    0..L; or ``committed``/``tokens``: tokens the round added, 1..L+1) and a ``count`` column.
    JSON: ``[n0, n1, ...]`` (index = accepted tokens), ``{"0": n0, ...}``, or either under
    ``"accepted"`` or ``"committed"`` with an optional ``"draft_length"``. The draft length is
    ``draft_length`` if given, else the JSON's, else the longest length listed.
    """
    stripped = text.lstrip()
    if not stripped:
        raise InputError("empty histogram: the input is empty", path=path)
    if stripped[0] in "[{":
        pairs, committed, json_length = _parse_json(text, path)
        if draft_length is None:
            draft_length = json_length
    else:
        pairs, committed = _parse_csv(text, path)
    hist = _histogram_from_pairs(pairs, committed=committed, draft_length=draft_length, path=path)
    return from_histogram(hist, source=f"histogram{'' if path is None else f' ({path})'}", path=path)
