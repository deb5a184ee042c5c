"""Profile overrides: address any numeric profile key by a dotted name, parse `--set` values, and
apply values (or a random scenario's draws) to a parsed profile before it is validated.

Addresses: ``TABLE.KEY`` for the plain tables (``system.bandwidth_mhz``, ``server.verify_base_ms``,
``payload.header_bits``) and ``devices.NAME.KEY`` for a ``[[devices]]`` entry named NAME
(``devices.phone.count``) or, where no entry has that name, for the ``devices_file`` row named NAME
(set in the file's columns as read, before the checks: see :func:`file_row_edits`). The addressable
keys are the numeric (int and float) keys of :data:`~multispin_cli.documents.profile.SCHEMA`, so
keys added to the schema can be swept at once.

Setting a key replaces the keys it excludes in the same entry: ``acceptance`` drops
``acceptance_by_position``; a channel key (``snr_db``, ``spectral_efficiency_bps_per_hz``,
``tx_power_dbm``) drops the other channel forms; ``path_loss_db`` and ``distance_m`` drop each
other; in ``[system]``, ``resource_blocks`` drops ``bandwidth_mhz`` and ``bandwidth_mhz`` drops
``resource_blocks`` with its ``subcarrier_spacing_khz`` and ``min_resource_blocks``. The result
then goes through the profile's own validation, unchanged.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from multispin_cli.analysis.scenarios import Drop
from multispin_cli.analysis.sweep import Axis
from multispin_cli.documents.profile import (
    DEVICE_KEYS,
    SCHEMA,
    Key,
    Profile,
    noise_w_per_hz,
    profile_from_data,
    snr_bandwidth_hz,
)
from multispin_cli.errors import InputError
from multispin_cli.model.system import System

NUMERIC_KINDS = ("int", "float")
_CHANNEL = ("snr_db", "spectral_efficiency_bps_per_hz", "tx_power_dbm", "path_loss_db", "distance_m")
REPLACES = {
    "acceptance": ("acceptance_by_position",),
    "snr_db": tuple(k for k in _CHANNEL if k != "snr_db"),
    "spectral_efficiency_bps_per_hz": tuple(k for k in _CHANNEL if k != "spectral_efficiency_bps_per_hz"),
    "tx_power_dbm": ("snr_db", "spectral_efficiency_bps_per_hz"),
    "path_loss_db": ("snr_db", "spectral_efficiency_bps_per_hz", "distance_m"),
    "distance_m": ("snr_db", "spectral_efficiency_bps_per_hz", "path_loss_db"),
}
# The same for [system]: a continuous band and whole resource blocks exclude each other.
SYSTEM_REPLACES = {
    "resource_blocks": ("bandwidth_mhz",),
    "bandwidth_mhz": ("resource_blocks", "subcarrier_spacing_khz", "min_resource_blocks"),
}
MAX_VALUES = 100_000  # values one --set may expand to


def _entries(data: dict, table: str) -> list[dict]:
    value = data.get(table)
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def sweep_keys(data: dict, file_names: Iterable[str] = ()) -> dict[str, Key]:
    """Every address a sweep can set in this profile, with its schema key; ``file_names`` are the
    names of the ``devices_file`` rows (:func:`file_device_names`), addressed like entries."""
    out: dict[str, Key] = {}
    for table, keys in SCHEMA.items():
        numeric = [k for k in keys if k.kind in NUMERIC_KINDS]
        if table == "devices" or isinstance(data.get(table), list):  # an array of tables, addressed by name
            names = [e["name"] for e in _entries(data, table) if isinstance(e.get("name"), str)]
            if table == "devices":
                names += [n for n in file_names if n not in names]
            for name in names:
                for key in numeric:
                    out[f"{table}.{name}.{key.name}"] = key
        else:
            for key in numeric:
                out[f"{table}.{key.name}"] = key
    return out


def file_device_names(data: dict, path: str | Path) -> tuple[str, ...]:
    """The row names of the profile's ``devices_file`` (relative to ``path``'s folder; none without
    one). Read once when a sweep or search is set up; the profile has been loaded (so checked) first."""
    from multispin_cli.documents.population import read_columns

    rel = data.get("devices_file")
    if not isinstance(rel, str):
        return ()
    file = Path(rel) if Path(rel).is_absolute() else Path(path).parent / rel
    names = read_columns(file, ("name",) + tuple(k.name for k in DEVICE_KEYS if k.name != "name")).values["name"]
    return tuple(dict.fromkeys(str(n).strip() for n in names if str(n).strip()))


def resolve_key(data: dict, address: str, file_names: Iterable[str] = ()) -> Key:
    """The schema key at ``address``; an unknown address is an InputError suggesting the nearest."""
    known = sweep_keys(data, file_names)
    if address in known:
        return known[address]
    hint = difflib.get_close_matches(address, list(known), n=1, cutoff=0.5)
    more = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise InputError(f"unknown profile key '{address}'{more}; keys are TABLE.KEY or devices.NAME.KEY with a "
                     "numeric key of the profile reference", key="--set")


_RANGE = re.compile(r"^\s*(?P<lo>[^.\s][^\s]*?)\s*\.\.\s*(?P<hi>[^:\s]+)\s*(?::\s*(?P<how>\S+))?\s*$")


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{what}: '{text}' is not a number", key="--set") from None
    if not math.isfinite(value):
        raise InputError(f"{what}: '{text}' is not a finite number", key="--set")
    return value


def parse_values(spec: str, what: str = "--set") -> tuple[float, ...]:
    """Values of a ``--set`` right-hand side.

    ``V1,V2,...`` as given; ``A..B`` the integers A, A+1, ..., B; ``A..B:log`` A, 2A, 4A, ... up to
    B (A > 0); ``A..B:N`` N evenly spaced values from A to B, both included.
    """
    match = _RANGE.match(spec)
    if match is None:
        parts = [p.strip() for p in spec.split(",")]
        if not spec.strip() or any(not p for p in parts):
            raise InputError(f"{what}: give values as V1,V2,... or a range A..B, A..B:log, A..B:N", key="--set")
        return tuple(_number(p, what) for p in parts)
    lo, hi, how = _number(match["lo"], what), _number(match["hi"], what), match["how"]
    if hi < lo:
        raise InputError(f"{what}: range {match['lo']}..{match['hi']} runs backwards", key="--set")
    if how is None:
        if not (lo.is_integer() and hi.is_integer()):
            raise InputError(f"{what}: A..B steps by 1 between integers; use A..B:N for N values", key="--set")
        values = np.arange(lo, hi + 1)
    elif how == "log":
        if lo <= 0:
            raise InputError(f"{what}: a :log range starts above 0", key="--set")
        n = int(math.floor(math.log2(hi / lo) + 1e-9)) + 1
        values = lo * 2.0 ** np.arange(n)
    elif how.isdigit() and int(how) >= 1:
        values = np.linspace(lo, hi, int(how)) if int(how) > 1 else np.array([lo])
    else:
        raise InputError(f"{what}: after ':' give 'log' or a count of values, got '{how}'", key="--set")
    if values.size > MAX_VALUES:
        raise InputError(f"{what}: {values.size} values is more than {MAX_VALUES}", key="--set")
    return tuple(float(f"{v:.12g}") for v in values)


def parse_set(text: str, data: dict, file_names: Iterable[str] = ()) -> Axis:
    """One ``--set KEY=VALUES`` against a parsed profile: the key checked, the values parsed."""
    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InputError(f"'{text}' is not KEY=VALUES (for example system.bandwidth_mhz=10,20)", key="--set")
    schema_key = resolve_key(data, key, file_names)
    values = parse_values(spec, key)
    if schema_key.kind == "int":
        bad = [v for v in values if not float(v).is_integer()]
        if bad:
            raise InputError(f"{key} takes integers, got {bad[0]:g}", key="--set")
        values = tuple(int(v) for v in values)
    if len(set(values)) != len(values):
        raise InputError(f"{key} lists a value twice", key="--set")
    return Axis(key, values)


def check_distinct(axes: Iterable[Axis]) -> None:
    """Each key may be swept once."""
    seen = set()
    for axis in axes:
        if axis.key in seen:
            raise InputError(f"{axis.key} is set twice", key="--set")
        seen.add(axis.key)


def file_row_edits(data: dict, pairs: Iterable[tuple[str, float]]) -> dict[str, dict[str, float | None]]:
    """The (address, value) pairs that address ``devices_file`` rows (``devices.NAME.KEY`` where no
    ``[[devices]]`` entry is named NAME), as ``{NAME: {key: value}}`` for ``profile_from_data``'s
    ``file_rows``; the keys a value replaces are cleared (None), as :func:`apply_overrides` drops them."""
    entries = {e.get("name") for e in _entries(data, "devices")}
    edits: dict[str, dict[str, float | None]] = {}
    for address, value in pairs:
        table, _, rest = address.partition(".")
        name, _, key = rest.rpartition(".")
        if table != "devices" or name in entries:
            continue
        row = edits.setdefault(name, {})
        for other in REPLACES.get(key, ()):
            row[other] = None
        row[key] = value
    return edits


def load_with_overrides(data: dict, path: str | Path, pairs: Iterable[tuple[str, float]]) -> Profile:
    """The profile with each (address, value) set, in entries and ``devices_file`` rows, validated."""
    pairs = list(pairs)
    return profile_from_data(apply_overrides(data, pairs), path, file_rows=file_row_edits(data, pairs))


def apply_overrides(data: dict, pairs: Iterable[tuple[str, float]]) -> dict:
    """A deep copy of ``data`` with each (address, value) set (addresses as from :func:`sweep_keys`;
    those of ``devices_file`` rows are left to :func:`file_row_edits`)."""
    out = copy.deepcopy(data)
    for address, value in pairs:
        table, _, rest = address.partition(".")
        if table == "devices" or isinstance(out.get(table), list):
            name, _, key = rest.rpartition(".")
            targets = [e for e in _entries(out, table) if e.get("name") == name]
        else:
            key = rest
            targets = [out.setdefault(table, {})]
        replaces = {"devices": REPLACES, "system": SYSTEM_REPLACES}.get(table, {})
        for entry in targets:
            for other in replaces.get(key, ()):
                entry.pop(other, None)
            entry[key] = value
    return out


def base_acceptance(data: dict) -> np.ndarray:
    """Each user's single acceptance in the profile's order (NaN for per-position ones)."""
    values = []
    for entry in _entries(data, "devices"):
        count = entry.get("count", 1)
        alpha = entry.get("acceptance", math.nan)
        values += [float(alpha) if isinstance(alpha, (int, float)) else math.nan] * int(count)
    return np.array(values, dtype=float)


def apply_drop(data: dict, drop: Drop, tx_power_dbm: float) -> dict:
    """One entry per user (named as the loader names them: NAME or NAME-1..NAME-N) with the drop's
    path loss and acceptance; its transmit power is the entry's ``tx_power_dbm`` or ``tx_power_dbm``."""
    out = copy.deepcopy(data)
    users: list[dict] = []
    k = 0
    for entry in _entries(data, "devices"):
        count = int(entry.get("count", 1))
        for j in range(count):
            user = {key: value for key, value in entry.items() if key not in _CHANNEL}
            user["count"] = 1
            user["name"] = entry["name"] if count == 1 else f"{entry['name']}-{j + 1}"
            user["tx_power_dbm"] = _drop_power(entry, tx_power_dbm)
            user["path_loss_db"] = float(drop.path_loss_db[k])
            if not math.isnan(drop.acceptance[k]):
                user["acceptance"] = float(drop.acceptance[k])
                user.pop("acceptance_by_position", None)
            users.append(user)
            k += 1
    if users:  # a profile whose users all come from a devices_file has no entries to redraw
        out["devices"] = users
    return out


def _drop_power(entry: dict, tx_power_dbm: float):
    return entry.get("tx_power_dbm", tx_power_dbm)


@dataclass(frozen=True, eq=False)
class DropTemplate:
    """A validated cell of one grid point whose scenarios are applied as array edits.

    Scenarios of one grid point differ only in the drawn path losses and acceptances of the
    ``[[devices]]`` users (the first ``users`` users of the cell; users of a devices file follow them
    unchanged). :meth:`system` writes a drop's values into a copy of the template's arrays with the
    loader's own formula (:func:`~multispin_cli.documents.profile.snr_bandwidth_hz`), so it gives the
    same System, bit for bit, as :func:`apply_drop` followed by ``profile_from_data``, for a fraction
    of the cost (no deep copies, no re-validation of the unchanged keys).
    """

    system: System
    users: int
    tx_power_dbm: np.ndarray  # (users,) dBm
    noise_w_per_hz: float

    @classmethod
    def of(cls, data: dict, system: System, tx_power_dbm: float) -> DropTemplate:
        """The template of ``data`` (a grid point's profile, before the drop) whose dropped cell
        loaded as ``system``."""
        power = [_drop_power(e, tx_power_dbm) for e in _entries(data, "devices") for _ in range(int(e.get("count", 1)))]
        table = data.get("system") if isinstance(data.get("system"), dict) else {}
        return cls(system, len(power), np.array(power, dtype=float), float(noise_w_per_hz(table)))

    def system_for(self, drop: Drop) -> System | None:
        """The cell with ``drop`` applied; None where a drawn value falls outside what the loader
        accepts (the caller then loads the cell the long way, for the loader's own message)."""
        loss, alpha = np.asarray(drop.path_loss_db, dtype=float), np.asarray(drop.acceptance, dtype=float)
        if loss.shape != (self.users,) or alpha.shape != (self.users,):
            return None
        scalar = ~np.isnan(alpha)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            q = snr_bandwidth_hz(self.tx_power_dbm, loss, self.noise_w_per_hz)
        if not (_within(_DEVICE_KEY["path_loss_db"], loss) and _within(_DEVICE_KEY["acceptance"], alpha[scalar])
                and bool(np.all(np.isfinite(q) & (q > 0)))):
            return None
        base = self.system
        snr_bw = base.channel.snr_bandwidth_hz.copy()
        snr_bw[: self.users] = q
        accept = base.accept_prob.copy()
        rows = np.flatnonzero(scalar)
        accept[rows] = alpha[rows, None]
        return replace(base, accept_prob=accept, channel=replace(base.channel, snr_bandwidth_hz=snr_bw))


_DEVICE_KEY = {key.name: key for key in DEVICE_KEYS}


def _within(key: Key, values: np.ndarray) -> bool:
    """Whether every value passes the key's bounds (as the loader checks them)."""
    ok = np.isfinite(values)
    if key.low is not None:
        ok &= values >= key.low
    if key.above is not None:
        ok &= values > key.above
    if key.below is not None:
        ok &= values < key.below
    if key.high is not None:
        ok &= values <= key.high
    return bool(ok.all())
