"""Deployment profiles: the TOML schema, its validation, and the :class:`System` it describes.

This is the one place the profile format is defined. Every key has a type, a unit (in its name:
``_ms``, ``_mhz``, ``_db``, ``_dbm``) and a default; :data:`SCHEMA` lists them and the README's
profile reference is written from it. Loading converts to SI units. Any problem raises
:class:`~multispin_cli.errors.ProfileError` naming the file, the key and what is wrong.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multispin_cli.documents.files import parse_toml, read_text
from multispin_cli.errors import ProfileError
from multispin_cli.model.acceptance import position_matrix
from multispin_cli.model.channel import Channel
from multispin_cli.model.fading import FADING_KINDS, Fading
from multispin_cli.model.link import RATE_MODELS, LinkModel
from multispin_cli.model.payload import PAYLOAD_KINDS, bits_per_token
from multispin_cli.model.system import System
from multispin_cli.model.units import MHZ, MS, db_to_linear, dbm_to_watts
from multispin_cli.model.verifier import VerifyTime

REQUIRED = object()  # as a default: the key must be given
_SPEC = object()  # as an argument: use the key's own default
MAX_DRAFT_LENGTH_LIMIT = 128
MAX_USERS = 1_000_000  # users per profile (all counts and devices_file rows together)
MAX_VERIFY_TOKENS = 10**9  # largest N a verify_table may list
MAX_VERIFY_MS = 1e7  # largest time a verify_table may list
MIN_TIME_MS = 1e-6  # shortest draft or verification time (1 ns): a 0 s round has no goodput
SUBCARRIER_SPACINGS_KHZ = (15, 30, 60, 120)
SUBCARRIERS_PER_BLOCK = 12


@dataclass(frozen=True)
class Key:
    """One profile key: its type, unit, default and meaning (the README reference is built from these)."""

    name: str
    kind: str  # "float", "int", "str", "choice", "probabilities", "table", "path"
    default: Any = REQUIRED
    doc: str = ""
    unit: str = ""
    choices: tuple[str, ...] = ()
    low: float | None = None  # inclusive lower bound
    above: float | None = None  # exclusive lower bound
    below: float | None = None  # exclusive upper bound
    high: float | None = None  # inclusive upper bound


SYSTEM_KEYS = (
    Key("name", "str", None, "Label of the cell, shown in the output."),
    Key("description", "str", None, "Free text (ignored by the planner)."),
    Key("bandwidth_mhz", "float", None, "Total uplink bandwidth W shared by FDMA, split continuously "
        "(required unless `resource_blocks` is given; not both).", "MHz", low=1e-3, high=1e5),
    Key("resource_blocks", "int", None, "Instead of `bandwidth_mhz`: the uplink is N whole resource blocks "
        "of 12 subcarriers each; every drafting user gets whole blocks.", "blocks", low=1,
        high=100_000),
    Key("subcarrier_spacing_khz", "int", 15, "Subcarrier spacing with `resource_blocks`: 15, 30, 60 or 120 "
        "(a block is 12 subcarriers: 180 kHz at 15 kHz).", "kHz"),
    Key("min_resource_blocks", "int", 1, "Least blocks a drafting user gets with `resource_blocks` (a "
        "device may override it).", "blocks", low=1, high=100_000),
    Key("rate_model", "choice", "shannon", "Link adaptation: `shannon` (log2(1 + SNR)), `shannon-gap` "
        "(log2(1 + SNR / gap), capped), `nr-cqi` (the spectral efficiency of the highest 5G NR CQI level "
        "the SNR reaches, TS 38.214 Table 5.2.2.1-2).", choices=RATE_MODELS),
    Key("snr_gap_db", "float", 0.0, "SNR gap of practical coding for `shannon-gap`, and the gap above the "
        "Shannon limit at which `nr-cqi` levels are reached.", "dB", low=0, high=50),
    Key("max_spectral_efficiency_bps_per_hz", "float", None, "Highest spectral efficiency for "
        "`shannon-gap` (no cap when absent).", "bit/s/Hz", above=0, high=100),
    Key("max_draft_length", "int", 16, "Largest draft length L_max the planners consider.", "tokens",
        low=0, high=MAX_DRAFT_LENGTH_LIMIT),
    Key("downlink_ms", "float", 0.0, "Downlink time per round t_dn (accepted prefix + one token).", "ms", low=0,
        high=1e6),
    Key("batching", "choice", "ragged", "How the server batches drafts: `ragged` verifies sum(L_k + 1) "
        "positions, `padded` pads every draft to the longest: K (max L_k + 1).", choices=("ragged", "padded")),
    Key("noise_psd_dbm_per_hz", "float", -174.0, "Receiver noise power spectral density N0.", "dBm/Hz", low=-230,
        high=-100),
    Key("noise_figure_db", "float", 0.0, "Receiver noise figure, added to N0.", "dB", low=0, high=50),
    Key("carrier_ghz", "float", 3.5, "Carrier frequency, for path loss from `distance_m`.", "GHz", low=1e-3,
        high=1e3),
    Key("path_loss_exponent", "float", 3.0, "Log-distance path-loss exponent n for `distance_m`: "
        "PL(d) = FSPL(1 m) + 10 n log10(d / 1 m).", low=1.0, high=8.0),
    Key("fading", "choice", "none", "Uplink fading: `none` (a channel that never changes), `rayleigh` or "
        "`rician`: every round each user's SNR is scaled by a random power gain of mean 1.",
        choices=FADING_KINDS),
    Key("rician_k_db", "float", None, "Rician K factor (line-of-sight over scattered power), only with "
        "fading = `rician`.", "dB", low=-30.0, high=40.0),
    Key("shadowing_db", "float", 0.0, "Log-normal shadowing on top of the fading: standard deviation of the "
        "SNR in dB (median 0 dB).", "dB", low=0.0, high=20.0),
    Key("coherence_ms", "float", 0.0, "Coherence time T_c: consecutive rounds' gains are correlated by "
        "exp(-T / T_c), T the round time (0 = independent every round).", "ms", low=0.0),
    Key("csi_delay_ms", "float", 0.0, "Age of the channel state a per-round decision uses: the upload sees a "
        "gain correlated by exp(-delay / T_c) with it.", "ms", low=0.0),
)

PAYLOAD_KEYS = (
    Key("kind", "choice", "token-ids", "What a draft token costs on the uplink: `token-ids` (greedy "
        "verification, ceil(log2 V) bits), `top-k` (k ids with probabilities), `full-distribution` "
        "(V probabilities, exact speculative sampling), `bits` (given by `bits_per_token`).",
        choices=PAYLOAD_KINDS),
    Key("vocab_size", "int", None, "Vocabulary size V (required unless kind = `bits`).", "tokens", low=2,
        high=10**8),
    Key("top_k", "int", None, "k for kind = `top-k`.", "tokens", low=1),
    Key("prob_bits", "int", 16, "Bits per probability q for `top-k` and `full-distribution`.", "bit", low=1, high=64),
    Key("bits_per_token", "float", None, "Bits per draft token s for kind = `bits`.", "bit", low=1e-3, high=1e9),
    Key("header_bits", "float", 0.0, "Header bits h per upload (a user with L = 0 uploads nothing).", "bit", low=0,
        high=1e9),
)

SERVER_KEYS = (
    Key("target", "str", "target", "Label of the target model."),
    Key("target_model", "str", None, "Target model path or id, carried into the plan for exporters."),
    Key("timings", "path", None, "A fragment written by `multispin profile-hardware --format toml`; its "
        "`[server]` keys are used where this table does not set them. Relative to the profile."),
    Key("verify_model", "choice", None, "Which verification-time form to use when both are given.",
        choices=("affine", "table")),
    Key("verify_base_ms", "float", None, "Affine T_v(N) = base + per_token * N: intercept v0.", "ms", low=MIN_TIME_MS,
        high=1e7),
    Key("verify_ms_per_token", "float", None, "Affine slope v1.", "ms/token", low=0, high=1e6),
    Key("verify_table", "table", None, "Measured points [[N, ms], ...]: N increasing, ms positive (it may "
        "fall as well as rise); linear in between, the last slope beyond (flat if it falls).", "[tokens, ms]"),
    Key("round_overhead_ms", "float", 0.0, "The serving engine's own time per round t_o (scheduling, sampling, "
        "cache upkeep), paid whether or not anyone drafts.", "ms", low=0, high=3.6e6),
    Key("verify_r2", "float", None, "R^2 of the affine fit (informational, written by profile-hardware).",
        low=-math.inf, high=1),
)

DEVICE_KEYS = (
    Key("name", "str", REQUIRED, "Device name; with `count` > 1 the users are name-1 .. name-N."),
    Key("count", "int", 1, "How many identical users this entry stands for.", "users", low=1,
        high=MAX_USERS),
    Key("acceptance", "float", None, "Per-token acceptance probability alpha of the draft model.", low=0, below=1),
    Key("acceptance_by_position", "probabilities", None, "Conditional acceptance of positions 1, 2, ...; "
        "the last value repeats. Instead of `acceptance`."),
    Key("calibration", "path", None, "A fragment written by `multispin calibrate`; its `[acceptance]` "
        "keys are used where this entry does not set them. Relative to the profile."),
    Key("draft_ms_per_token", "float", None, "Device time per draft token tau (required here or via "
        "`timings`).", "ms", low=MIN_TIME_MS, high=1e6),
    Key("draft_overhead_ms", "float", 0.0, "Fixed device time per drafting round c.", "ms", low=0, high=1e6),
    Key("timings", "path", None, "A fragment written by `multispin profile-hardware --format toml`; its "
        "`[draft]` keys are used where this entry does not set them. Relative to the profile."),
    Key("draft_model", "str", None, "Draft model path or id, carried into the plan for exporters."),
    Key("uplink", "choice", "shared", "`shared`: drafts go over the shared FDMA uplink; `none`: they reach "
        "the server another way (a draft model next to the target, or a wired device), need no bandwidth "
        "and no channel key.", choices=("shared", "none")),
    Key("snr_db", "float", None, "Fixed uplink SNR: rate = W log2(1 + SNR), linear in bandwidth.", "dB", low=-100,
        high=100),
    Key("spectral_efficiency_bps_per_hz", "float", None, "Fixed spectral efficiency instead of `snr_db`.",
        "bit/s/Hz", low=1e-10, high=100),
    Key("tx_power_dbm", "float", None, "Transmit power P of a power-limited user: rate = W log2(1 + P g / "
        "(N0 W)).", "dBm", low=-100, high=100),
    Key("path_loss_db", "float", None, "Path loss 1/g for `tx_power_dbm`.", "dB", low=0, high=400),
    Key("distance_m", "float", None, "Distance to the base station, instead of `path_loss_db`.", "m", low=1,
        high=1e7),
    Key("fading", "choice", None, "This device's fading, instead of the [system] one.", choices=FADING_KINDS),
    Key("rician_k_db", "float", None, "This device's Rician K factor (with fading = `rician`).", "dB",
        low=-30.0, high=40.0),
    Key("shadowing_db", "float", None, "This device's shadowing standard deviation.", "dB", low=0.0, high=20.0),
    Key("min_resource_blocks", "int", None, "This device's least blocks when drafting, instead of the "
        "[system] value.", "blocks", low=1, high=100_000),
)

TOP_KEYS = (
    Key("devices_file", "path", None, "A CSV or Parquet file of users, one row each, with columns named "
        "as the `[[devices]]` keys (empty cells take the defaults); its users follow any `[[devices]]` "
        "entries. Relative to the profile."),
)

TABLES = {"system": SYSTEM_KEYS, "payload": PAYLOAD_KEYS, "server": SERVER_KEYS}
SCHEMA = {**TABLES, "devices": DEVICE_KEYS}
TOP_KEYS_BY_NAME = {key.name: key for key in TOP_KEYS}

_TIMINGS_DRAFT_KEYS = ("draft_ms_per_token", "draft_overhead_ms")
_CALIBRATION_KEYS = ("acceptance", "acceptance_by_position")
# A device key naming a fragment: the fragment's table and the device keys it may supply.
_DEVICE_FRAGMENTS = {"timings": ("draft", _TIMINGS_DRAFT_KEYS), "calibration": ("acceptance", _CALIBRATION_KEYS)}


@dataclass(frozen=True)
class UserInfo:
    """What the tables show about a user besides the plan: where it came from, in words."""

    device: str
    acceptance: str
    channel: str
    draft_model: str | None


@dataclass(frozen=True, eq=False)
class Profile:
    """A loaded deployment profile: the planning input plus labels for the output."""

    path: str
    name: str
    system: System
    target: str
    target_model: str | None
    users: Sequence[UserInfo]  # one per user (a tuple, or made on demand for a devices file)
    payload_kind: str
    warnings: tuple[str, ...] = ()  # what the commands print on stderr (timings written despite failed checks)


# --------------------------------------------------------------------------- reading TOML


def read_toml(path: Path) -> dict:
    """Parse a TOML file, turning every failure into a ProfileError with the file and line.

    Only regular files within the size and nesting limits of :mod:`multispin_cli.documents.files`.
    """
    return parse_toml(read_text(path, ProfileError), path, ProfileError)


# --------------------------------------------------------------------------- checking values


class _Checker:
    """Checks one table against its keys; errors carry the file and a dotted key path."""

    def __init__(self, path: Path, where: str, table: Any, keys: tuple[Key, ...]):
        self.path, self.where, self.keys = path, where, {key.name: key for key in keys}
        if not isinstance(table, dict):
            raise ProfileError(f"must be a table, got {_kind(table)}", path=path, key=where)
        self.table = table
        for name in table:
            if name not in self.keys:
                hint = difflib.get_close_matches(name, list(self.keys), n=1)
                more = f" (did you mean '{hint[0]}'?)" if hint else f"; known keys: {', '.join(self.keys)}"
                raise ProfileError(f"unknown key{more}", path=path, key=self.key(name))
        for name, value in table.items():  # every given key, even one this cell does not use
            self._check(self.keys[name], value)

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, reason: str):
        raise ProfileError(reason, path=self.path, key=self.key(name))

    def converted(self, name: str, value: float, what: str) -> float:
        """``value`` (a quantity derived from key ``name`` and others, in SI units) if it is a finite
        positive number; a ProfileError on ``name`` otherwise.

        Each key's range keeps its own conversion finite; this catches combinations of keys whose
        product over- or underflows all the same.
        """
        if not (math.isfinite(value) and value > 0):
            self.fail(name, f"gives {what} = {value:g}, outside the numbers multispin can compute with "
                      "(check this key and the ones it is combined with)")
        return value

    def has(self, name: str) -> bool:
        return name in self.table

    def get(self, name: str, default: Any = _SPEC, *, why: str = ""):
        """The checked value of a key; ``default=REQUIRED`` makes an optional key required here."""
        spec = self.keys[name]
        if name not in self.table:
            fallback = spec.default if default is _SPEC else default
            if fallback is REQUIRED:
                self.fail(name, f"missing (required{why})")
            return fallback
        return self._check(spec, self.table[name])

    def _check(self, spec: Key, value: Any):
        name = spec.name
        if spec.kind in ("str", "path", "choice"):
            if not isinstance(value, str):
                self.fail(name, f"must be a string, got {_kind(value)}")
            if spec.kind == "choice" and value not in spec.choices:
                hint = difflib.get_close_matches(value, spec.choices, n=1)
                more = f" (did you mean '{hint[0]}'?)" if hint else ""
                self.fail(name, f"must be one of {', '.join(spec.choices)}; got '{value}'{more}")
            if not value.strip():
                self.fail(name, "must not be empty")
            bad = _control_character(value, allow="\n\t" if name == "description" else "")
            if bad is not None:
                self.fail(name, f"must not contain control characters (found {bad!r}): names end up in tables, "
                          "plan files and the comment lines of engine configs")
            return value
        if spec.kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(name, f"must be an integer, got {_kind(value)}")
            if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
                self.fail(name, f"must be an integer, got {value!r}")
            return self._bounds(spec, int(value))
        if spec.kind == "float":
            return self._bounds(spec, self._number(name, value))
        if spec.kind == "probabilities":
            if not isinstance(value, list) or not value:
                self.fail(name, "must be a non-empty array of probabilities")
            probs = [self._number(f"{name}[{i + 1}]", p) for i, p in enumerate(value)]
            for i, p in enumerate(probs):
                if not 0.0 <= p <= 1.0:
                    self.fail(f"{name}[{i + 1}]", f"must be in [0, 1], got {p!r}")
            return probs
        if spec.kind == "table":
            return self._verify_table(name, value)
        raise AssertionError(spec.kind)

    def _number(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(name, f"must be a number, got {_kind(value)}")
        value = float(value)
        if not math.isfinite(value):
            self.fail(name, f"must be a finite number, got {value!r}")
        return value

    def _bounds(self, spec: Key, value: float):
        name = spec.name
        if spec.low is not None and value < spec.low:
            self.fail(name, f"must be at least {_fmt(spec.low)}, got {_fmt(value)}")
        if spec.above is not None and value <= spec.above:
            self.fail(name, f"must be greater than {_fmt(spec.above)}, got {_fmt(value)}")
        if spec.below is not None and value >= spec.below:
            lo = spec.low if spec.low is not None else spec.above
            self.fail(name, f"must be in [{_fmt(lo)}, {_fmt(spec.below)}), got {_fmt(value)}")
        if spec.high is not None and value > spec.high:
            self.fail(name, f"must be at most {_fmt(spec.high)}, got {_fmt(value)}")
        return value

    def _verify_table(self, name: str, value: Any) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(value, list) or not value:
            self.fail(name, "must be a non-empty array of [tokens, ms] pairs")
        tokens, ms = [], []
        for i, row in enumerate(value):
            where = f"{name}[{i + 1}]"
            if not isinstance(row, list) or len(row) != 2:
                self.fail(where, f"must be a [tokens, ms] pair, got {row!r}")
            n, t = self._number(where, row[0]), self._number(where, row[1])
            if n < 1 or not n.is_integer() or n > MAX_VERIFY_TOKENS:
                self.fail(where, f"tokens must be an integer in [1, {_fmt(MAX_VERIFY_TOKENS)}], got {_fmt(n)}")
            if not MIN_TIME_MS <= t <= MAX_VERIFY_MS:
                self.fail(where, f"ms must be positive, in [{_fmt(MIN_TIME_MS)}, {_fmt(MAX_VERIFY_MS)}], got {_fmt(t)}")
            if tokens and n <= tokens[-1]:
                self.fail(where, f"tokens must increase: {_fmt(n)} after {_fmt(tokens[-1])}")
            tokens.append(n)
            ms.append(t)
        return np.array(tokens), np.array(ms)


def _control_character(text: str, allow: str = "") -> str | None:
    """The first control or line-breaking character of ``text`` not in ``allow``, or None."""
    for ch in text:
        if ch not in allow and unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return ch
    return None


def accepted_range(key: Key) -> str | None:
    """The range a key accepts in interval notation, ``[0.001, 1e+05]`` or ``(0, 1]`` (None: any)."""
    if key.low is None and key.above is None and key.below is None and key.high is None:
        return None
    lo = "(-inf" if key.low is None and key.above is None else (
        f"[{_fmt(key.low)}" if key.low is not None else f"({_fmt(key.above)}")
    hi = "inf)" if key.high is None and key.below is None else (
        f"{_fmt(key.high)}]" if key.high is not None else f"{_fmt(key.below)})")
    return f"{lo}, {hi}"


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _fmt(value: float) -> str:
    return f"{value:g}"


# --------------------------------------------------------------------------- building the system


# What an included fragment may hold: its tables and, for the tables a profile reads, their keys.
# None: a table of free-form notes (the measurement or calibration evidence), only checked to be a
# table. Each fragment is checked as strictly as a profile: a typo is an error, never ignored.
FRAGMENT_TABLES: dict[str, dict[str, tuple[str, ...] | None]] = {
    "timings": {
        "server": tuple(k.name for k in SERVER_KEYS if k.name != "timings"),
        "draft": ("model", "draft_model", *_TIMINGS_DRAFT_KEYS),
        "measurement": None,
    },
    "calibration": {
        "acceptance": ("acceptance", "acceptance_ci95_low", "acceptance_ci95_high", "acceptance_by_position",
                       "acceptance_by_position_ci95_low", "acceptance_by_position_ci95_high"),
        "calibration": None,
    },
}


def _fragment(owner: _Checker, key: str, table: str, base: Path, notes: list[str] | None = None) -> tuple[dict, Path]:
    """The ``[table]`` of an included fragment, resolved relative to the including profile.

    Every table and key of the fragment must be one multispin writes (see FRAGMENT_TABLES).
    """
    rel = owner.get(key)
    path = (base / rel) if not Path(rel).is_absolute() else Path(rel)
    data = read_toml(path)
    allowed = FRAGMENT_TABLES[key]
    for name, value in data.items():
        if name not in allowed:
            hint = difflib.get_close_matches(name, list(allowed), n=1)
            more = f" (did you mean [{hint[0]}]?)" if hint else f"; a {key} fragment has {', '.join(allowed)}"
            raise ProfileError(f"unknown table{more}", path=path, key=name)
        if not isinstance(value, dict):
            raise ProfileError(f"must be a table, got {_kind(value)}", path=path, key=name)
        keys = allowed[name]
        for inner in value if keys is not None else ():
            if inner not in keys:
                hint = difflib.get_close_matches(inner, list(keys), n=1)
                more = f" (did you mean '{hint[0]}'?)" if hint else f"; known keys: {', '.join(keys)}"
                raise ProfileError(f"unknown key{more}", path=path, key=f"{name}.{inner}")
    if table not in data:
        raise ProfileError(f"has no [{table}] table (is it a fragment written by multispin?)", path=path)
    # Timings written with --force despite failed checks: the profile says so every time it is used.
    evidence = data.get("measurement", {}).get("notes", [])
    for note in evidence if isinstance(evidence, list) else ():
        if isinstance(note, str) and note.startswith("check failed:") and notes is not None:
            notes.append(f"{path}: written with --force although its {note}")
    fragment = data[table]
    for label in ("model", "draft_model"):
        if label in fragment:
            _Checker(path, table, {label: fragment[label]}, (Key(label, "str"),)).get(label)
    for bound in (k for k in fragment if "_ci95_" in k):
        values = fragment[bound] if isinstance(fragment[bound], list) else [fragment[bound]]
        for i, p in enumerate(values):
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise ProfileError(f"must be probabilities in [0, 1], got {p!r}", path=path,
                                   key=f"{table}.{bound}" + (f"[{i + 1}]" if isinstance(fragment[bound], list) else ""))
    return fragment, path


def _merged(checker: _Checker, key: str, table: str, base: Path, allowed: tuple[str, ...], keys,
            notes: list[str]) -> _Checker:
    """The entry's own keys over an included fragment's ones (the profile wins).

    The fragment's values are checked under the fragment's own file name first, so an error in a
    generated file points at that file.
    """
    if not checker.has(key):
        return checker
    fragment, frag_path = _fragment(checker, key, table, base, notes)
    picked = {k: v for k, v in fragment.items() if k in allowed}
    frag_checker = _Checker(frag_path, table, picked, keys)
    for name in picked:
        frag_checker.get(name)
    merged = {**picked, **{k: v for k, v in checker.table.items() if k != key}}
    return _Checker(checker.path, checker.where, merged, keys)


def _server(data: dict, path: Path, notes: list[str] | None = None) -> tuple[VerifyTime, str, str | None, float]:
    if "server" not in data:
        raise ProfileError("missing the [server] table", path=path)
    checker = _Checker(path, "server", data["server"], SERVER_KEYS)
    allowed = tuple(k.name for k in SERVER_KEYS if k.name not in ("timings",))
    server = _merged(checker, "timings", "server", path.parent, allowed, SERVER_KEYS, notes)
    affine = server.has("verify_base_ms") or server.has("verify_ms_per_token")
    table = server.has("verify_table")
    form = server.get("verify_model", None)
    if form is None:
        if affine and table:
            server.fail("verify_model", "both an affine fit and a verify_table are given: set verify_model "
                        "= \"affine\" or \"table\"")
        if not affine and not table:
            server.fail("verify_base_ms", "missing: give verify_base_ms and verify_ms_per_token, or "
                        "verify_table, or timings = \"file.toml\" from multispin profile-hardware")
        form = "affine" if affine else "table"
    if form == "affine":
        why = " for the affine verification time"
        verify = VerifyTime.from_affine(
            base_s=server.get("verify_base_ms", REQUIRED, why=why) * MS,
            per_token_s=server.get("verify_ms_per_token", REQUIRED, why=why) * MS,
        )
    else:
        tokens, ms = server.get("verify_table", REQUIRED, why=' with verify_model = "table"')
        verify = VerifyTime.from_table(tokens, ms * MS)
    return verify, server.get("target"), server.get("target_model"), server.get("round_overhead_ms") * MS


def _payload(data: dict, path: Path) -> tuple[float, float, str]:
    payload = _Checker(path, "payload", data.get("payload", {}), PAYLOAD_KEYS)
    kind = payload.get("kind")
    if kind == "bits":
        bits = bits_per_token(kind, bits=payload.get("bits_per_token", REQUIRED, why=' for kind = "bits"'))
    else:
        if payload.has("bits_per_token"):
            payload.fail("bits_per_token", f"only used with kind = \"bits\" (kind is \"{kind}\")")
        vocab = payload.get("vocab_size", REQUIRED, why=f' for kind = "{kind}"')
        top_k = payload.get("top_k", REQUIRED, why=' for kind = "top-k"') if kind == "top-k" else None
        if top_k is not None and top_k > vocab:
            payload.fail("top_k", f"must not exceed vocab_size ({vocab}), got {top_k}")
        bits = bits_per_token(kind, vocab_size=vocab, top_k=top_k, prob_bits=payload.get("prob_bits"))
    return bits, payload.get("header_bits"), kind


def _free_space_path_loss_db(distance_m: float, carrier_ghz: float) -> float:
    """Free-space loss at 1 m, 20 log10(4 pi f / c), the reference of the log-distance model."""
    return 20.0 * math.log10(4.0 * math.pi * carrier_ghz * 1e9 / 299_792_458.0)


# --------------------------------------------------------------------------- devices, a column at a time
#
# Both sources of users, ``[[devices]]`` entries and a ``devices_file``, become the same columns
# (one array per device key: floats with NaN where an entry does not set a number, objects with
# None otherwise) and go through the same checks, each over a whole column at once. Errors name
# the entry (``devices[3].acceptance``) or the file's row and column.


class _DeviceColumns:
    """Device entries as columns, with how to name a cell in an error."""

    def __init__(self, rows: int, where, base: Path):
        self.rows = rows
        self.where = where  # (row, key) -> (file, key text)
        self.base = base  # folder that relative paths (timings, calibration) are read from
        self.values: dict[str, np.ndarray] = {}
        self._set: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # has() of object columns: (column, rows)

    def fail(self, row: int, key: str, reason: str):
        file, text = self.where(int(row), key)
        raise ProfileError(reason, path=file, key=text)

    def checker(self, row: int, key: str) -> "_CellChecker":
        """A checker for one cell, to reuse the scalar checks and their messages."""
        file, text = self.where(int(row), key)
        return _CellChecker(file, text, key)

    def has(self, key: str) -> np.ndarray:
        """Which rows set ``key`` (a fresh array). An object column's answer is kept (comparing 100,000
        objects with None costs a millisecond or two, and the checks ask for some keys many times)
        until :meth:`changed` says a cell of it was set."""
        value = self.values[key]
        if value.dtype.kind == "f":
            return ~np.isnan(value)
        known = self._set.get(key)
        if known is None or known[0] is not value:
            known = self._set[key] = (value, np.not_equal(value, None).astype(bool))
        return known[1].copy()

    def changed(self, key: str) -> None:
        """Cells of column ``key`` were set in place."""
        self._set.pop(key, None)


class _CellChecker(_Checker):
    """A checker whose errors name one cell: ``devices[3].acceptance`` or ``row 5 (line 6), column acceptance``."""

    def __init__(self, path: Path, text: str, column: str):
        super().__init__(path, "", {}, DEVICE_KEYS)
        self.text, self.column = text, column

    def key(self, name: str) -> str:
        return self.text + name[len(self.column):]  # keeps a suffix such as [2] (an array element)


_NUMERIC = ("float", "int")
_CSV_KINDS = (*_NUMERIC, "str", "path", "choice", "probabilities")  # key kinds a devices file can hold


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # what _control_character refuses in names


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _check_column(cols: _DeviceColumns, spec: Key) -> None:
    """Bounds, integrality and choices of one column, all rows at once (messages as for one entry)."""
    value = cols.values[spec.name]
    if spec.kind in _NUMERIC:
        present = ~np.isnan(value)
        bad = present & ~np.isfinite(np.where(present, value, 0.0))
        if spec.kind == "int":
            bad |= present & (np.floor(np.where(present, value, 0.0)) != np.where(present, value, 0.0))
        with np.errstate(invalid="ignore"):
            if spec.low is not None:
                bad |= value < spec.low
            if spec.above is not None:
                bad |= value <= spec.above
            if spec.below is not None:
                bad |= value >= spec.below
            if spec.high is not None:
                bad |= value > spec.high
        row = _first(bad)
        if row is not None:
            cell = cols.checker(row, spec.name)
            v = float(value[row])
            if not math.isfinite(v):
                cell.fail(spec.name, f"must be a finite number, got {v!r}")
            if spec.kind == "int" and not v.is_integer():
                cell.fail(spec.name, f"must be an integer, got {v!r}")
            cell._bounds(spec, v)
    elif spec.kind in ("str", "path", "choice"):
        rows = np.flatnonzero(cols.has(spec.name))
        texts = value[rows].tolist()
        if _CONTROL.search(" ".join(texts)):  # control characters and line breaks: the first, for its message
            for row, text in zip(rows, texts):
                if _CONTROL.search(text):
                    cols.checker(row, spec.name)._check(spec, text)
        if not all(map(str.strip, texts)) or spec.kind == "choice" and not set(texts) <= set(spec.choices):
            for row, text in zip(rows, texts):  # the first bad cell, for its message
                if spec.kind == "choice" and text not in spec.choices or not text.strip():
                    cols.checker(row, spec.name)._check(spec, text)


def _entry_columns(path: Path, devices: list) -> _DeviceColumns:
    """``[[devices]]`` entries as columns; types are checked here (TOML values are typed)."""
    cols = _DeviceColumns(len(devices), lambda row, key: (path, f"devices[{row + 1}].{key}"), path.parent)
    known = {key.name for key in DEVICE_KEYS}
    for i, entry in enumerate(devices):
        if not isinstance(entry, dict) or not entry.keys() <= known:
            _Checker(path, f"devices[{i + 1}]", entry, DEVICE_KEYS)  # raises with the message
    for spec in DEVICE_KEYS:
        raw = [entry.get(spec.name) for entry in devices]
        types = set(map(type, raw))
        if spec.kind in _NUMERIC and types <= {int, float, type(None)}:
            column = np.array(raw, dtype=float)  # None becomes NaN
            if float in types:  # a NaN written in the profile is not "missing"
                row = _first(np.isnan(column) & np.array([v is not None for v in raw], bool))
                if row is not None:
                    cols.fail(row, spec.name, f"must be a finite number, got {raw[row]!r}")
        elif spec.kind in ("str", "path", "choice") and types <= {str, type(None)}:
            column = np.array(raw, dtype=object)
        else:  # wrong types somewhere, or a kind checked per value (probabilities, tables)
            column = np.empty(len(raw), dtype=object)
            for row, v in enumerate(raw):
                if v is not None:
                    column[row] = cols.checker(row, spec.name)._check(spec, v)
            if spec.kind in _NUMERIC:
                column = np.array([np.nan if v is None else v for v in column], dtype=float)
        cols.values[spec.name] = column
    return cols


def _file_columns(path: Path) -> _DeviceColumns:
    """A devices file's rows as columns: numbers parsed and checked a column at a time."""
    from multispin_cli.documents.population import read_columns

    allowed = tuple(k.name for k in DEVICE_KEYS if k.kind in _CSV_KINDS)
    table = read_columns(path, allowed)
    cols = _DeviceColumns(table.rows, lambda row, key: (path, table.where(row, key)), path.parent)
    for spec in DEVICE_KEYS:
        raw = table.values.get(spec.name)
        if raw is None:
            cols.values[spec.name] = np.full(table.rows, np.nan) if spec.kind in _NUMERIC else \
                np.full(table.rows, None, dtype=object)
            continue
        if isinstance(raw, np.ndarray):  # Parquet numbers
            if spec.kind not in _NUMERIC:
                cols.fail(0, spec.name, "must hold strings, got numbers")
            cols.values[spec.name] = raw
            continue
        if spec.kind in _NUMERIC:
            empty = raw.count("")
            try:  # map(float) parses far faster than numpy's string conversion; empty cells are not parsed
                parsed = np.fromiter(map(float, filter(None, raw) if empty else raw), dtype=float,
                                     count=table.rows - empty)
            except ValueError:
                parsed = None
            if parsed is not None and not empty:
                column = parsed
            elif parsed is not None:
                column = np.full(table.rows, np.nan)
                column[np.fromiter(map(bool, raw), dtype=bool, count=table.rows)] = parsed
            # A NaN is an empty cell only: a NaN parsed is a cell that says nan.
            if parsed is None or np.isnan(parsed).any():
                for row, text in enumerate(raw):  # find the cell that does not parse (or says nan)
                    try:
                        ok = not text.strip() or not math.isnan(float(text))
                    except ValueError:
                        ok = False
                    if not ok:
                        kind = "an integer" if spec.kind == "int" else "a number"
                        cols.fail(row, spec.name, f"must be {kind}, got '{text}'")
                column = np.array([float(text) if text.strip() else np.nan for text in raw])
        elif spec.kind == "probabilities":
            column = np.full(table.rows, None, dtype=object)
            for row, text in enumerate(raw):
                if not text.strip():
                    continue
                try:
                    probs = [float(p) for p in text.replace(";", " ").split()]
                except ValueError:
                    cols.fail(row, spec.name, f"must be probabilities separated by ';', got '{text}'")
                column[row] = cols.checker(row, spec.name)._check(spec, probs)
        else:
            texts = list(map(str.strip, raw))
            # Fresh copies of the strings kept: the file's other cells, freed after this, would
            # otherwise stay resident around them (tens of MB at 100,000 users).
            joined = "\x00".join(texts)
            if joined.count("\x00") == len(texts) - 1:
                texts = joined.split("\x00")
            column = np.array(texts if "" not in texts else [text or None for text in texts], dtype=object)
        cols.values[spec.name] = column
    return cols


def _fill_fragments(cols: _DeviceColumns, notes: list[str] | None = None) -> None:
    """Fill cells a row leaves empty from the fragments its path keys name (the row's own value wins)."""
    for key, (table, allowed) in _DEVICE_FRAGMENTS.items():
        given = cols.has(key)
        if not given.any():
            continue
        paths = cols.values[key]
        for rel in dict.fromkeys(paths[given]):
            rows = given & (paths == rel)
            owner = cols.checker(_first(rows), key)
            owner.table = {key: rel}  # so that _fragment reads this row's path
            fragment, frag_path = _fragment(owner, key, table, cols.base, notes)
            picked = {k: v for k, v in fragment.items() if k in allowed}
            frag_checker = _Checker(frag_path, table, picked, DEVICE_KEYS)
            for name, raw in picked.items():
                value = frag_checker.get(name)
                column = cols.values[name]
                fill = rows & ~cols.has(name)
                if column.dtype.kind == "f":
                    column[fill] = value
                else:
                    for row in np.flatnonzero(fill):
                        column[row] = value
                    cols.changed(name)


@dataclass(frozen=True, eq=False)
class _Users:
    names: tuple[str, ...]
    accept_prob: np.ndarray
    draft_s_per_token: np.ndarray
    draft_overhead_s: np.ndarray
    channel: Channel
    infos: Sequence[UserInfo]
    min_resource_blocks: np.ndarray  # (K,) int: the device's own, else the [system] value
    no_uplink: np.ndarray  # (K,) bool: uplink = "none"
    fades: np.ndarray | None = None  # (K,) bool: the user's small-scale gain fades
    rician_k: np.ndarray | None = None  # (K,) linear K factor (0: Rayleigh)
    shadowing_db: np.ndarray | None = None  # (K,)


def _devices(data: dict, path: Path, system: _Checker, max_len: int, blocks: int | None = None,
             notes: list[str] | None = None, file_rows: Mapping[str, Mapping[str, Any]] | None = None) -> _Users:
    """Every user of the profile, from ``[[devices]]`` and ``devices_file``, in that order."""
    sources = []
    devices = data.get("devices")
    if devices is not None:
        if not isinstance(devices, list) or not devices:
            raise ProfileError("must be a non-empty array of tables ([[devices]])", path=path, key="devices")
        sources.append(_entry_columns(path, devices))
    if "devices_file" in data:
        top = _Checker(path, "", {"devices_file": data["devices_file"]}, TOP_KEYS)
        rel = Path(top.get("devices_file"))
        file = rel if rel.is_absolute() else path.parent / rel
        sources.append(_edited_rows(_file_columns(file), file, file_rows or {}))
    elif file_rows:
        raise ProfileError(f"no devices_file: cannot set keys of its rows ({', '.join(file_rows)})", path=path)
    if not sources:
        raise ProfileError("no [[devices]]: a profile needs at least one device (or a devices_file)", path=path)
    parts = []
    for cols in sources:
        parts.append(_device_users(cols, system, max_len, blocks, notes, MAX_USERS - sum(len(p.names) for p in parts)))
    names = parts[0].names if len(parts) == 1 else tuple(n for part in parts for n in part.names)
    if len(set(names)) != len(names):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ProfileError(f"two users are named '{name}': device names must be unique (a device "
                                   "with count = N makes users name-1 .. name-N)", path=path, key="devices")
            seen.add(name)
    if len(parts) == 1:
        return parts[0]
    return _Users(names, np.concatenate([p.accept_prob for p in parts]),
                  np.concatenate([p.draft_s_per_token for p in parts]),
                  np.concatenate([p.draft_overhead_s for p in parts]),
                  Channel.concat([p.channel for p in parts]), UserInfos.concat([p.infos for p in parts]),
                  np.concatenate([p.min_resource_blocks for p in parts]),
                  np.concatenate([p.no_uplink for p in parts]),
                  np.concatenate([p.fades for p in parts]), np.concatenate([p.rician_k for p in parts]),
                  np.concatenate([p.shadowing_db for p in parts]))


def _edited_rows(cols: _DeviceColumns, file: Path, edits: Mapping[str, Mapping[str, Any]]) -> _DeviceColumns:
    """The file's columns with keys of the rows named NAME set (a number) or cleared (None), before
    any check: ``edits`` maps NAME to {key: value}; the rows are then checked like any other."""
    if not edits:
        return cols
    names = cols.values["name"]
    for name, keys in edits.items():
        rows = np.flatnonzero(names == name)
        if not rows.size:
            raise ProfileError(f"has no row named '{name}'", path=file, key="column name")
        for key, value in keys.items():
            column = cols.values[key]
            if column.dtype.kind in "fiub":
                column = column.astype(float)  # a copy; Parquet may hold integers
                column[rows] = math.nan if value is None else float(value)
            else:
                column = column.copy()
                column[rows] = value
            cols.values[key] = column
    return cols


def _device_users(cols: _DeviceColumns, system: _Checker, max_len: int, blocks: int | None,
                  notes: list[str] | None = None, room: int = 0) -> _Users:
    """Check the columns (all rows at once) and expand them into users (``count`` each); at most
    ``room`` users (what MAX_USERS leaves)."""
    _fill_fragments(cols, notes)
    specs = {spec.name: spec for spec in DEVICE_KEYS}
    for spec in DEVICE_KEYS:
        _check_column(cols, spec)
    v, has = cols.values, cols.has

    def require(key: str, why: str = "") -> None:
        row = _first(~has(key))
        if row is not None:
            cols.fail(row, key, f"missing (required{why})")

    def number(key: str) -> np.ndarray:  # the column, with the key's default where a row leaves it empty
        return np.where(has(key), v[key], float(specs[key].default))

    require("name")
    has_acc, has_pos = has("acceptance"), has("acceptance_by_position")
    row = _first(has_acc == has_pos)
    if row is not None:
        cols.fail(row, "acceptance", "set exactly one of acceptance or acceptance_by_position"
                  if has_acc[row] else "missing: set acceptance (or acceptance_by_position)")
    require("draft_ms_per_token", ", here or through timings")
    count = number("count").astype(np.int64)
    row = _first(np.cumsum(count) > room)
    if row is not None:
        cols.fail(row, "count", f"makes more than {MAX_USERS} users in the profile (the most multispin plans)")

    # The channel: exactly one form per row, none for a device off the uplink.
    off = has("uplink") & (v["uplink"] == "none")
    for key in ("snr_db", "spectral_efficiency_bps_per_hz", "tx_power_dbm", "path_loss_db", "distance_m"):
        row = _first(off & has(key))
        if row is not None:
            cols.fail(row, key, 'not used with uplink = "none" (the drafts do not use the shared uplink)')
    forms = ("snr_db", "spectral_efficiency_bps_per_hz", "tx_power_dbm")
    given = np.stack([has(f) for f in forms])
    row = _first((given.sum(axis=0) != 1) & ~off)
    if row is not None:
        present = [f for f, g in zip(forms, given[:, row]) if g]
        reason = "gives no channel" if not present else f"gives more than one channel ({', '.join(present)})"
        cols.fail(row, "snr_db" if not present else present[1], f"{reason}: set exactly one of snr_db, "
                  "spectral_efficiency_bps_per_hz, or tx_power_dbm with path_loss_db or distance_m")
    snr, eff, power = given
    for other in ("path_loss_db", "distance_m"):
        row = _first(has(other) & ~power)
        if row is not None:
            cols.fail(row, other, "only used with tx_power_dbm (a power-limited channel)")
    row = _first(power & (has("path_loss_db") == has("distance_m")))
    if row is not None:
        cols.fail(row, "path_loss_db", "a tx_power_dbm channel needs exactly one of path_loss_db or distance_m")
    by_loss = has("path_loss_db")
    with np.errstate(invalid="ignore", divide="ignore"):
        loss_db = np.where(by_loss, v["path_loss_db"], _free_space_path_loss_db(1.0, system.get("carrier_ghz"))
                           + 10.0 * system.get("path_loss_exponent") * np.log10(v["distance_m"]))
        q = snr_bandwidth_hz(v["tx_power_dbm"], loss_db, noise_w_per_hz(system))
        # expm1/log1p: a very low SNR keeps its small efficiency instead of rounding to 0
        linear = np.where(snr, db_to_linear(v["snr_db"]), np.expm1(v["spectral_efficiency_bps_per_hz"] * math.log(2)))
        channel = Channel(power.copy(), np.where(power, np.nan, np.where(off, 1.0, np.log1p(linear) / math.log(2))),
                          np.where(power, q, np.nan))  # off the uplink: a placeholder, never used
    row = _first(power & ~by_loss & (loss_db < 0))
    if row is not None:
        cols.fail(row, "distance_m", f"gives a path loss of {loss_db[row]:.3g} dB at {system.get('carrier_ghz'):g} GHz: "
                  "below 0 dB (more power received than sent); the log-distance model does not reach this "
                  "close, give path_loss_db instead")
    row = _first(power & ~(np.isfinite(q) & (q > 0)))
    if row is not None:
        cols.fail(row, "tx_power_dbm", f"gives its received SNR per hertz P g / N0 = {q[row]:g}, outside the "
                  "numbers multispin can compute with (check this key and the ones it is combined with)")

    # Acceptance: a rate per row, or a list of per-position rates.
    accept = np.empty((cols.rows, max_len))
    accept[:] = v["acceptance"][:, None] if has_acc.any() else 0.0
    pos_rows = np.flatnonzero(has_pos)
    if pos_rows.size:
        accept[pos_rows] = position_matrix(acceptance=list(v["acceptance_by_position"][pos_rows]),
                                           max_draft_length=max_len)

    # Resource blocks: a device's own least number of blocks, checked against the cell's.
    own_blocks = has("min_resource_blocks")
    if own_blocks.any():
        row = _first(own_blocks)
        if blocks is None:
            cols.fail(row, "min_resource_blocks", "only used with [system] resource_blocks")
        row = _first(own_blocks & (v["min_resource_blocks"] > blocks))
        if row is not None:
            cols.fail(row, "min_resource_blocks", f"exceeds the cell's {blocks} resource blocks: this device "
                      "could never draft")
    min_blocks = np.where(own_blocks, v["min_resource_blocks"], system.get("min_resource_blocks")).astype(int)

    fades, rician_k, shadowing = _column_fading(cols, system)

    names = v["name"]
    one_each = bool((count == 1).all())
    if one_each:
        user_names, expand = tuple(names), np.arange(cols.rows)
    else:
        user_names = tuple(n for r, n in enumerate(names)
                           for n in ([n] if count[r] == 1 else [f"{n}-{j + 1}" for j in range(count[r])]))
        expand = np.repeat(np.arange(cols.rows), count)
    return _Users(
        names=user_names,
        accept_prob=accept if one_each else accept[expand],  # K x L_max: no copy where nothing repeats
        draft_s_per_token=(v["draft_ms_per_token"] * MS)[expand],
        draft_overhead_s=(number("draft_overhead_ms") * MS)[expand],
        channel=channel.take(expand),
        infos=UserInfos(v, expand, has_acc, snr, eff, by_loss, off),
        min_resource_blocks=min_blocks[expand],
        no_uplink=off[expand],
        fades=fades[expand],
        rician_k=rician_k[expand],
        shadowing_db=shadowing[expand],
    )


def noise_w_per_hz(system: _Checker | dict) -> float:
    """Receiver noise N0 (W/Hz, noise figure included) of a ``[system]`` table (checked, or as parsed)."""
    if isinstance(system, dict):
        system = _Checker(Path("<profile>"), "system", system, SYSTEM_KEYS)
    return dbm_to_watts(system.get("noise_psd_dbm_per_hz") + system.get("noise_figure_db"))


def snr_bandwidth_hz(tx_power_dbm, path_loss_db, noise: float) -> np.ndarray:
    """``Q = P g / N0`` (Hz) of power-limited users: the loader's one formula, also used where a sweep
    redraws path losses without reloading the profile (so both give the same numbers, bit for bit)."""
    return dbm_to_watts(tx_power_dbm) * db_to_linear(-np.asarray(path_loss_db, dtype=float)) / noise


def _column_fading(cols, system: _Checker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per device row: (fades, linear K factor, shadowing dB), the device's own over the [system] ones."""
    kind0, k0, shadow0 = _fading_defaults(system)
    v, has = cols.values, cols.has
    given = has("fading")
    kinds = np.full(cols.rows, kind0, dtype=object)
    if given.any():
        kinds[given] = [str(k) for k in v["fading"][given]]
    # Each kind compared once (an object array compares string by string: 100,000 users, milliseconds).
    rician, none = kinds == "rician", kinds == "none"
    own_k = has("rician_k_db")
    row = _first(own_k & ~rician)
    if row is not None:
        cols.fail(row, "rician_k_db", f'only used with fading = "rician" (fading is "{kinds[row]}")')
    k_db = np.where(own_k, v["rician_k_db"], np.nan if k0 is None else k0).astype(float)
    row = _first(rician & np.isnan(k_db))
    if row is not None:
        cols.fail(row, "rician_k_db", 'missing (required with fading = "rician", here or in [system])')
    shadow = np.where(has("shadowing_db"), v["shadowing_db"], shadow0).astype(float)
    with np.errstate(invalid="ignore"):
        k_lin = np.where(rician, 10.0 ** (k_db / 10.0), 0.0)
    return ~none, k_lin, shadow


def _cell_fading(system: _Checker, users: _Users) -> Fading | None:
    """The cell's fading, or None where no user's channel varies (the static model, unchanged)."""
    if not (users.fades.any() or (users.shadowing_db > 0).any()):
        return None
    return Fading(users.fades.astype(bool), users.rician_k, users.shadowing_db, system.get("coherence_ms") * MS,
                  system.get("csi_delay_ms") * MS)


class UserInfos(Sequence):
    """Each user's :class:`UserInfo`, made when asked for (labels of 100,000 users cost more than
    the plan that needs none of them)."""

    def __init__(self, columns: dict, expand: np.ndarray, *flags: np.ndarray):
        self._columns, self._expand, self._flags = columns, expand, flags
        self._made: dict[int, UserInfo] = {}

    def __len__(self) -> int:
        return len(self._expand)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[k] for k in range(*index.indices(len(self))))
        row = int(self._expand[index])
        info = self._made.get(row)
        if info is None:
            v = self._columns
            scalar, snr, eff, by_loss, off = (flag[row] for flag in self._flags)
            info = UserInfo(v["name"][row], _acceptance_label(v, row, scalar),
                            "no uplink" if off else _channel_label(v, row, snr, eff, by_loss),
                            v["draft_model"][row])
            self._made[row] = info
        return info

    def device_names(self) -> list[str]:
        """Each user's device entry name, without making the labels."""
        return np.asarray(self._columns["name"], dtype=object)[self._expand].tolist()

    @staticmethod
    def concat(parts: list[Sequence]) -> tuple:
        return tuple(info for part in parts for info in part)


def _acceptance_label(v: dict, row: int, scalar: bool) -> str:
    if scalar:
        return f"{v['acceptance'][row]:.3g}"
    alpha = v["acceptance_by_position"][row]
    # first..last position, like a range of draft lengths ("0.92..0.62"); one value alone
    return f"{alpha[0]:.2f}" if len(alpha) == 1 else f"{alpha[0]:.2f}..{alpha[-1]:.2f}"


def _channel_label(v: dict, row: int, snr: bool, eff: bool, by_loss: bool) -> str:
    if snr:
        return f"SNR {v['snr_db'][row]:g} dB"
    if eff:
        return f"{v['spectral_efficiency_bps_per_hz'][row]:g} bit/s/Hz"
    power = v["tx_power_dbm"][row]
    if by_loss:
        return f"{power:g} dBm/{v['path_loss_db'][row]:g} dB"
    return f"{power:g} dBm@{v['distance_m'][row]:g} m"


def _fading_defaults(system: _Checker) -> tuple[str, float | None, float]:
    kind = system.get("fading")
    k_db = system.get("rician_k_db")
    if k_db is not None and kind != "rician":
        system.fail("rician_k_db", f'only used with fading = "rician" (fading is "{kind}")')
    return kind, k_db, system.get("shadowing_db")


def _band(system: _Checker) -> tuple[float, float | None, int | None]:
    """The uplink: (W in Hz, block width in Hz or None, number of blocks or None)."""
    if system.has("resource_blocks") and system.has("bandwidth_mhz"):
        system.fail("resource_blocks", "give either bandwidth_mhz or resource_blocks, not both")
    if not system.has("resource_blocks"):
        for key in ("subcarrier_spacing_khz", "min_resource_blocks"):
            if system.has(key):
                system.fail(key, "only used with resource_blocks")
        return system.get("bandwidth_mhz", REQUIRED, why=" unless resource_blocks is given") * MHZ, None, None
    blocks = system.get("resource_blocks")
    spacing = system.get("subcarrier_spacing_khz")
    if spacing not in SUBCARRIER_SPACINGS_KHZ:
        system.fail("subcarrier_spacing_khz", f"must be one of {', '.join(map(str, SUBCARRIER_SPACINGS_KHZ))}; "
                    f"got {spacing}")
    minimum = system.get("min_resource_blocks")
    if minimum > blocks:
        system.fail("min_resource_blocks", f"exceeds the cell's {blocks} resource blocks: no user could draft")
    block_hz = SUBCARRIERS_PER_BLOCK * spacing * 1e3
    return blocks * block_hz, block_hz, blocks


def _link(system: _Checker) -> LinkModel:
    """The rate model of every user's uplink."""
    kind = system.get("rate_model")
    if kind != "shannon-gap" and system.has("max_spectral_efficiency_bps_per_hz"):
        system.fail("max_spectral_efficiency_bps_per_hz", 'only used with rate_model = "shannon-gap"')
    if kind == "shannon" and system.has("snr_gap_db"):
        system.fail("snr_gap_db", 'only used with rate_model = "shannon-gap" or "nr-cqi"')
    if kind == "shannon":
        return LinkModel()
    cap = system.get("max_spectral_efficiency_bps_per_hz")
    return LinkModel(kind, float(db_to_linear(system.get("snr_gap_db"))), math.inf if cap is None else cap)


def load_profile(path: str | Path) -> Profile:
    """Read, validate and convert a deployment profile (SI units inside).

    ``path`` is a TOML file, or the name of a shipped profile when no such file exists
    (:func:`~multispin_cli.documents.catalog.resolve_profile`); the result keeps the name as given."""
    from multispin_cli.documents.catalog import resolve_profile, shipped_profiles

    given = Path(path)
    path = resolve_profile(given)
    if not path.exists() and len(given.parts) == 1 and given.suffix != ".toml":
        hint = difflib.get_close_matches(given.name, list(shipped_profiles()), n=1, cutoff=0.5)
        more = f"did you mean {hint[0]}? " if hint else ""
        raise ProfileError(f"no such file, and no shipped profile of that name ({more}`multispin profiles` "
                           "lists them)", path=given)
    profile = profile_from_data(read_toml(path), path)
    return profile if path == given else dataclasses.replace(profile, path=str(given))


def profile_from_data(data: dict, path: str | Path, *,
                      file_rows: Mapping[str, Mapping[str, Any]] | None = None) -> Profile:
    """Validate and convert an already-parsed profile; ``path`` names it in errors and anchors the
    relative paths of included fragments (so a sweep's cells go through the same checks as a file).

    ``file_rows`` sets keys of the ``devices_file`` rows named NAME, ``{NAME: {key: value}}`` (None
    clears a key), as read and before any check: how a sweep changes users given by a file.
    """
    path = Path(path)
    for name in data:
        if name in TOP_KEYS_BY_NAME:
            continue
        if name not in SCHEMA:
            if not isinstance(data[name], (dict, list)):  # a top-level key, not a table
                hint = difflib.get_close_matches(name, list(TOP_KEYS_BY_NAME), n=1)
                more = f" (did you mean '{hint[0]}'?)" if hint else f"; known keys: {', '.join(TOP_KEYS_BY_NAME)}"
                raise ProfileError(f"unknown key{more}", path=path, key=name)
            hint = difflib.get_close_matches(name, list(SCHEMA), n=1)
            more = f" (did you mean [{hint[0]}]?)" if hint else f"; known tables: {', '.join(SCHEMA)}"
            raise ProfileError(f"unknown table{more}", path=path, key=name)
    if "system" not in data:
        raise ProfileError("missing the [system] table", path=path)
    system = _Checker(path, "system", data["system"], SYSTEM_KEYS)
    max_len = system.get("max_draft_length")
    bandwidth_hz, block_hz, blocks = _band(system)
    link = _link(system)
    bits, header, payload_kind = _payload(data, path)
    notes: list[str] = []
    verify, target, target_model, round_overhead_s = _server(data, path, notes)
    users = _devices(data, path, system, max_len, blocks, notes, file_rows)

    sys_obj = System(
        names=users.names,
        accept_prob=users.accept_prob,
        draft_s_per_token=users.draft_s_per_token,
        draft_overhead_s=users.draft_overhead_s,
        channel=users.channel.with_link(link),
        bits_per_token=bits,
        header_bits=header,
        bandwidth_hz=bandwidth_hz,
        max_draft_length=max_len,
        verify=verify,
        downlink_s=system.get("downlink_ms") * MS,
        batching=system.get("batching"),
        fading=_cell_fading(system, users),
        round_overhead_s=round_overhead_s,
        no_uplink=users.no_uplink if users.no_uplink.any() else None,
        resource_block_hz=block_hz,
        min_resource_blocks=None if blocks is None else users.min_resource_blocks,
    )
    label = system.get("name") or path.stem
    return Profile(str(path), label, sys_obj, target, target_model, users.infos, payload_kind,
                   tuple(dict.fromkeys(notes)))
