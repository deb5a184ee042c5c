"""Reading plan files back: the TOML/JSON that `multispin plan --format toml|json` wrote.

Other commands (simulate, export) take a plan file; this is where it is read and checked. A file
from another format version, or one missing keys, is a :class:`PlanFileError` naming the key.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multispin_cli.documents.files import parse_json, parse_toml, read_text
from multispin_cli.documents.formats import PLAN_FORMAT_VERSION
from multispin_cli.errors import PlanFileError
from multispin_cli.model.goodput import evaluate
from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System
from multispin_cli.model.units import MHZ

PLAN_SECTIONS = ("homogeneous", "heterogeneous")
FORMAT_VERSION = PLAN_FORMAT_VERSION  # of the plan document (written by multispin_cli.render.document)


@dataclass(frozen=True)
class PlannedUser:
    """One user's line of a plan."""

    name: str
    draft_length: int
    bandwidth_mhz: float
    tokens_per_s: float
    draft_model: str | None = None
    device: str | None = None  # the [[devices]] group (plan files before 0.2 do not say)

    def in_device(self, group: str) -> bool:
        """Whether this user belongs to the [[devices]] entry ``group`` (name, or name-1 .. name-N)."""
        if self.device is not None:
            return self.device == group
        head, _, tail = self.name.rpartition("-")
        return self.name == group or (head == group and tail.isdigit())


@dataclass(frozen=True)
class PlanSection:
    """One plan (homogeneous or heterogeneous) as written in the file."""

    name: str
    goodput_tokens_per_s: float
    round_ms: float
    users: tuple[PlannedUser, ...]

    @property
    def draft_lengths(self) -> np.ndarray:
        return np.array([u.draft_length for u in self.users], dtype=int)

    @property
    def bandwidth_hz(self) -> np.ndarray:
        return np.array([u.bandwidth_mhz for u in self.users]) * MHZ


@dataclass(frozen=True)
class PlanFile:
    """A plan file: its header and the plans it holds, by name."""

    path: str
    profile: str
    mode: str
    target: str
    target_model: str | None
    bandwidth_mhz: float
    plans: dict[str, PlanSection]
    document: dict

    def section(self, name: str | None = None) -> PlanSection:
        """The named plan, or the best one the file holds (heterogeneous before homogeneous)."""
        if name is None:
            for candidate in ("heterogeneous", "homogeneous"):
                if candidate in self.plans:
                    return self.plans[candidate]
        if name not in self.plans:
            raise PlanFileError(f"has no [{name}] plan (it holds: {', '.join(self.plans)})", path=self.path)
        return self.plans[name]


def _parse(path: Path) -> dict:
    text = read_text(path, PlanFileError)
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        data = parse_json(text, path, PlanFileError)
    else:
        data = parse_toml(text, path, PlanFileError)
    if not isinstance(data, dict):
        raise PlanFileError("is not a plan document", path=path)
    return data


# The keys a plan document holds (written by multispin_cli.render.document). A plan file is checked
# as strictly as a profile: a key multispin does not write is a typo or an edit gone wrong. A new
# output key must be added here too (tests/test_planfile.py round-trips every document).
TOP_TABLES = ("plan", *PLAN_SECTIONS, "baselines", "adaptive")  # [adaptive]: read by the fading code
HEAD_KEYS = ("profile", "name", "mode", "users", "bandwidth_mhz", "max_draft_length", "batching", "target",
             "target_model", "resource_blocks", "subcarrier_spacing_khz", "rate_model", "multispin_version",
             "format_version")
SECTION_KEYS = ("draft_length", "goodput_tokens_per_s", "round_ms", "draft_upload_ms", "verify_ms", "verify_tokens",
                "mean_draft_length", "needed_bandwidth_mhz", "spare_bandwidth_mhz", "needed_resource_blocks",
                "upper_bound_tokens_per_s", "gap_to_upper_bound_percent", "gain_percent", "users")
USER_KEYS = ("name", "draft_length", "bandwidth_mhz", "tokens_per_round", "tokens_per_s", "draft_upload_ms",
             "needed_bandwidth_mhz", "resource_blocks", "needed_resource_blocks", "draft_model", "device")
BASELINE_KEYS = ("goodput_tokens_per_s", "draft_length", "round_ms", "feasible", "note")
TEXT_KEYS = ("profile", "name", "mode", "batching", "target", "target_model", "rate_model", "multispin_version",
             "draft_model", "device", "note")


def _known(table: dict, keys: tuple[str, ...], path: Path, where: str) -> None:
    """Every key of ``table`` is one of ``keys``; strings are text without control characters and
    numbers are finite."""
    if not isinstance(table, dict):
        raise PlanFileError("must be a table", path=path, key=where)
    for key, value in table.items():
        at = f"{where}.{key}" if where else key
        if key not in keys:
            hint = difflib.get_close_matches(key, list(keys), n=1)
            more = f" (did you mean '{hint[0]}'?)" if hint else " (is this a plan written by `multispin plan`?)"
            raise PlanFileError(f"unknown key{more}", path=path, key=at)
        if key in TEXT_KEYS:
            _text(value, path, at)
        elif isinstance(value, float) and not math.isfinite(value):
            raise PlanFileError(f"must be a finite number, got {value!r}", path=path, key=at)


def _text(value, path: Path, where: str) -> str:
    if not isinstance(value, str):
        raise PlanFileError(f"must be a string, got {type(value).__name__}", path=path, key=where)
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            raise PlanFileError(f"must not contain control characters (found {ch!r})", path=path, key=where)
    return value


def _get(table: dict, key: str, kind, path: Path, where: str):
    if key not in table:
        raise PlanFileError("missing (is this a plan written by `multispin plan`?)", path=path, key=f"{where}.{key}")
    value = table[key]
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        raise PlanFileError(f"has the wrong type ({type(value).__name__})", path=path, key=f"{where}.{key}")
    if isinstance(value, float) and not math.isfinite(value):
        raise PlanFileError(f"must be a finite number, got {value!r}", path=path, key=f"{where}.{key}")
    return value


def _check_document(data: dict, path: Path) -> None:
    """Tables, keys, texts and numbers of a whole plan document (see TOP_TABLES and the key lists)."""
    _known({k: None for k in data}, TOP_TABLES, path, "")
    _known(data["plan"], HEAD_KEYS, path, "plan")
    for name in PLAN_SECTIONS:
        if name in data:
            _known(data[name], SECTION_KEYS, path, name)
            gains = data[name].get("gain_percent", {})
            if not isinstance(gains, dict):
                raise PlanFileError("must be a table", path=path, key=f"{name}.gain_percent")
            for other, value in gains.items():
                _get(gains, other, (int, float), path, f"{name}.gain_percent")
    baselines = data.get("baselines", {})
    if not isinstance(baselines, dict):
        raise PlanFileError("must be a table", path=path, key="baselines")
    for name, table in baselines.items():
        _known(table, BASELINE_KEYS, path, f"baselines.{name}")


def load_plan_file(path: str | Path) -> PlanFile:
    """Read and check a plan file written by `multispin plan --format toml|json`."""
    path = Path(path)
    data = _parse(path)
    head = data.get("plan")
    if not isinstance(head, dict):
        raise PlanFileError("missing the [plan] table (is this a plan written by `multispin plan`?)", path=path)
    version = head.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"plan format version {version!r} is not {FORMAT_VERSION}, the one this multispin reads; "
            "plan the profile again with this version",
            path=path,
            key="plan.format_version",
        )
    _check_document(data, path)
    plans = {}
    for name in PLAN_SECTIONS:
        if name not in data:
            continue
        section = data[name]
        users = []
        seen: set[str] = set()
        rows = _get(section, "users", list, path, name)
        for i, row in enumerate(rows):
            where = f"{name}.users[{i + 1}]"
            _known(row, USER_KEYS, path, where)
            user_name = _get(row, "name", str, path, where)
            if not user_name.strip():
                raise PlanFileError("must not be empty", path=path, key=f"{where}.name")
            if user_name in seen:
                raise PlanFileError(f"user '{user_name}' is listed twice", path=path, key=f"{where}.name")
            seen.add(user_name)
            users.append(
                PlannedUser(
                    name=_get(row, "name", str, path, where),
                    draft_length=_get(row, "draft_length", int, path, where),
                    bandwidth_mhz=float(_get(row, "bandwidth_mhz", (int, float), path, where)),
                    tokens_per_s=float(_get(row, "tokens_per_s", (int, float), path, where)),
                    draft_model=row.get("draft_model"),
                    device=row.get("device") if isinstance(row.get("device"), str) else None,
                )
            )
            if users[-1].draft_length < 0 or users[-1].bandwidth_mhz < 0:
                raise PlanFileError("negative draft length or bandwidth", path=path, key=where)
        plans[name] = PlanSection(
            name=name,
            goodput_tokens_per_s=float(_get(section, "goodput_tokens_per_s", (int, float), path, name)),
            round_ms=float(_get(section, "round_ms", (int, float), path, name)),
            users=tuple(users),
        )
    if not plans:
        raise PlanFileError("holds no plan ([homogeneous] or [heterogeneous])", path=path)
    return PlanFile(
        path=str(path),
        profile=str(head.get("profile", "")),
        mode=str(head.get("mode", "")),
        target=str(head.get("target", "target")),
        target_model=head.get("target_model"),
        bandwidth_mhz=float(_get(head, "bandwidth_mhz", (int, float), path, "plan")),
        plans=plans,
        document=data,
    )


def match_users(plan: PlanSection, names: tuple[str, ...], *, path: str) -> np.ndarray:
    """Indices mapping the profile's users onto the plan's; an error names the first mismatch."""
    index = {u.name: i for i, u in enumerate(plan.users)}
    missing = [n for n in names if n not in index]
    extra = sorted(set(index) - set(names))
    if missing or extra:
        what = f"user '{missing[0]}' of the profile is not in the plan" if missing else (
            f"user '{extra[0]}' of the plan is not in the profile")
        raise PlanFileError(f"does not match the profile: {what}", path=path, key=plan.name)
    return np.array([index[n] for n in names], dtype=int)


BANDWIDTH_TOLERANCE = 1e-6  # plan files round to 10 significant digits


@dataclass(frozen=True, eq=False)
class FilePlan:
    """A plan read from a plan file, mapped onto a profile's users, with what the file predicted."""

    plan: Plan
    file_goodput_tokens_per_s: float

    @property
    def drift(self) -> float:
        """How far the prediction for this profile is from the file's (relative; 0 when they agree)."""
        file_value = self.file_goodput_tokens_per_s
        now = self.plan.goodput_tokens_per_s
        return abs(now / file_value - 1.0) if file_value > 0 else abs(now)


def plans_from_file(system: System, path) -> list[FilePlan]:
    """The plan(s) of a file written by `multispin plan`, as plans over ``system``'s users.

    Raises :class:`PlanFileError` if the file's users are not the profile's, if a user drafts more
    than the profile's ``max_draft_length``, or if the plan uses more bandwidth than the profile has.
    """
    plan_file = load_plan_file(path)
    plans = []
    for name in PLAN_SECTIONS:
        if name not in plan_file.plans:
            continue
        section = plan_file.plans[name]
        index = match_users(section, system.names, path=plan_file.path)
        lengths = section.draft_lengths[index]
        bandwidth = section.bandwidth_hz[index]
        too_long = np.flatnonzero(lengths > system.max_draft_length)
        if too_long.size:
            k = int(too_long[0])
            raise PlanFileError(f"does not match the profile: user '{system.names[k]}' drafts {lengths[k]} tokens, "
                                f"more than its max_draft_length ({system.max_draft_length})",
                                path=plan_file.path, key=name)
        stranded = np.flatnonzero((lengths > 0) & (bandwidth <= 0))
        if stranded.size:
            k = int(stranded[0])
            raise PlanFileError(f"user '{system.names[k]}' drafts {lengths[k]} tokens with no bandwidth to upload "
                                "them", path=plan_file.path, key=name)
        used = float(bandwidth.sum())
        if used > system.bandwidth_hz * (1.0 + BANDWIDTH_TOLERANCE):
            raise PlanFileError(f"does not match the profile: the plan uses {used / MHZ:g} MHz, more than the "
                                f"profile's {system.bandwidth_hz / MHZ:g} MHz", path=plan_file.path, key=name)
        draft_length = int(lengths[0]) if lengths.size and np.all(lengths == lengths[0]) else None
        plan = Plan(name, evaluate(system, lengths, bandwidth), draft_length=draft_length)
        plans.append(FilePlan(plan, section.goodput_tokens_per_s))
    return plans


@dataclass(frozen=True, eq=False)
class FileRule:
    """The adaptive rule of a plan file's ``[adaptive]`` section, over a profile's users."""

    rule: "Staircase"
    goodput_tokens_per_s: float
    oracle_tokens_per_s: float
    wait_factor: float = np.inf  # the server's wait limit, x the planned deadline (inf: none)


def adaptive_rule_from_file(system: System, path) -> FileRule | None:
    """The ``[adaptive]`` rule of a plan file (its per-length SNR thresholds), or None if it has none."""
    from multispin_cli.planners.policies import Staircase, reference_snr

    plan_file = load_plan_file(path)
    section = plan_file.document.get("adaptive")
    if section is None:
        return None
    where = "adaptive"
    p = Path(plan_file.path)
    if not isinstance(section, dict):
        raise PlanFileError("must be a table", path=p, key=where)
    rows = _get(section, "users", list, p, where)
    by_name = {}
    for i, row in enumerate(rows):
        w = f"{where}.users[{i + 1}]"
        if not isinstance(row, dict):
            raise PlanFileError("must be a table", path=p, key=w)
        levels = _get(row, "length_above_snr_db", list, p, w)
        values = []
        for v in levels:
            if v == "never":
                values.append(np.inf)
            elif v == "always":
                values.append(-np.inf)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                values.append(float(v))
            else:
                raise PlanFileError(f"thresholds must be numbers (dB), 'always' or 'never', got {v!r}", path=p,
                                    key=f"{w}.length_above_snr_db")
        if len(values) > system.max_draft_length:
            raise PlanFileError(f"more thresholds than the profile's max_draft_length ({system.max_draft_length})",
                                path=p, key=f"{w}.length_above_snr_db")
        by_name[_get(row, "name", str, p, w)] = values
    missing = [n for n in system.names if n not in by_name]
    if missing or len(by_name) != system.users:
        what = f"user '{missing[0]}' of the profile is not in it" if missing else "it has users the profile lacks"
        raise PlanFileError(f"does not match the profile: {what}", path=p, key=where)
    snr = reference_snr(system)
    table = np.full((system.users, system.max_draft_length), np.inf)
    for k, name in enumerate(system.names):
        db = np.array(by_name[name], dtype=float)
        table[k, :db.size] = 10.0 ** (db / 10.0) / snr[k]
    rule = Staircase(np.maximum.accumulate(table, axis=1))
    wait = section.get("wait_factor", "unlimited")
    if wait == "unlimited":
        wait = np.inf
    elif isinstance(wait, bool) or not isinstance(wait, (int, float)) or not np.isfinite(wait) or wait < 1:
        raise PlanFileError(f"must be a number >= 1 or 'unlimited', got {wait!r}", path=p, key=f"{where}.wait_factor")
    return FileRule(rule, float(_get(section, "goodput_tokens_per_s", (int, float), p, where)),
                    float(_get(section, "oracle_tokens_per_s", (int, float), p, where)), float(wait))
