"""Deployment profiles: the TOML schema, its validation, and the :class:`System` it describes.

This is the one place the profile format is defined. Every key has a type, a unit (in its name:
``_ms``, ``_mhz``, ``_db``, ``_dbm``) and a default; :data:`SCHEMA` lists them and the README's
profile reference is written from it. Loading converts to SI units. Any problem raises
:class:`~multispin_cli.errors.ProfileError` naming the file, the key and what is wrong.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multispin_cli.model.acceptance import position_matrix
from multispin_cli.model.channel import Channel
from multispin_cli.model.fading import FADING_KINDS, Fading
from multispin_cli.model.link import RATE_MODELS, LinkModel
from multispin_cli.errors import ProfileError
from multispin_cli.model.payload import PAYLOAD_KINDS, bits_per_token
from multispin_cli.model.system import System
from multispin_cli.model.units import MHZ, MS, db_to_linear, dbm_to_watts
from multispin_cli.model.verifier import VerifyTime

REQUIRED = object()  # as a default: the key must be given
_SPEC = object()  # as an argument: use the key's own default
MAX_DRAFT_LENGTH_LIMIT = 128
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
        "(required unless `resource_blocks` is given; not both).", "MHz", above=0),
    Key("resource_blocks", "int", None, "Instead of `bandwidth_mhz`: the uplink is N whole resource blocks "
        "of 12 subcarriers each; every drafting user gets whole blocks.", "blocks", low=1),
    Key("subcarrier_spacing_khz", "int", 15, "Subcarrier spacing with `resource_blocks`: 15, 30, 60 or 120 "
        "(a block is 12 subcarriers: 180 kHz at 15 kHz).", "kHz"),
    Key("min_resource_blocks", "int", 1, "Least blocks a drafting user gets with `resource_blocks` (a "
        "device may override it).", "blocks", low=1),
    Key("rate_model", "choice", "shannon", "Link adaptation: `shannon` (log2(1 + SNR)), `shannon-gap` "
        "(log2(1 + SNR / gap), capped), `nr-cqi` (the spectral efficiency of the highest 5G NR CQI level "
        "the SNR reaches, TS 38.214 Table 5.2.2.1-2).", choices=RATE_MODELS),
    Key("snr_gap_db", "float", 0.0, "SNR gap of practical coding for `shannon-gap`, and the gap above the "
        "Shannon limit at which `nr-cqi` levels are reached.", "dB", low=0),
    Key("max_spectral_efficiency_bps_per_hz", "float", None, "Highest spectral efficiency for "
        "`shannon-gap` (no cap when absent).", "bit/s/Hz", above=0),
    Key("max_draft_length", "int", 16, "Largest draft length L_max the planners consider.", "tokens",
        low=0, high=MAX_DRAFT_LENGTH_LIMIT),
    Key("downlink_ms", "float", 0.0, "Downlink time per round t_dn (accepted prefix + one token).", "ms", low=0),
    Key("batching", "choice", "ragged", "How the server batches drafts: `ragged` verifies sum(L_k + 1) "
        "positions, `padded` pads every draft to the longest: K (max L_k + 1).", choices=("ragged", "padded")),
    Key("noise_psd_dbm_per_hz", "float", -174.0, "Receiver noise power spectral density N0.", "dBm/Hz"),
    Key("noise_figure_db", "float", 0.0, "Receiver noise figure, added to N0.", "dB", low=0),
    Key("carrier_ghz", "float", 3.5, "Carrier frequency, for path loss from `distance_m`.", "GHz", above=0),
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
    Key("vocab_size", "int", None, "Vocabulary size V (required unless kind = `bits`).", "tokens", low=2),
    Key("top_k", "int", None, "k for kind = `top-k`.", "tokens", low=1),
    Key("prob_bits", "int", 16, "Bits per probability q for `top-k` and `full-distribution`.", "bit", low=1, high=64),
    Key("bits_per_token", "float", None, "Bits per draft token s for kind = `bits`.", "bit", above=0),
    Key("header_bits", "float", 0.0, "Header bits h per upload (a user with L = 0 uploads nothing).", "bit", low=0),
)

SERVER_KEYS = (
    Key("target", "str", "target", "Label of the target model."),
    Key("target_model", "str", None, "Target model path or id, carried into the plan for exporters."),
    Key("timings", "path", None, "A fragment written by `multispin profile-hardware --format toml`; its "
        "`[server]` keys are used where this table does not set them. Relative to the profile."),
    Key("verify_model", "choice", None, "Which verification-time form to use when both are given.",
        choices=("affine", "table")),
    Key("verify_base_ms", "float", None, "Affine T_v(N) = base + per_token * N: intercept v0.", "ms", above=0),
    Key("verify_ms_per_token", "float", None, "Affine slope v1.", "ms/token", low=0),
    Key("verify_table", "table", None, "Measured points [[N, ms], ...]: N increasing, ms non-decreasing; "
        "linear in between, last slope beyond.", "[tokens, ms]"),
    Key("verify_r2", "float", None, "R^2 of the affine fit (informational, written by profile-hardware).",
        low=-math.inf, high=1),
)

DEVICE_KEYS = (
    Key("name", "str", REQUIRED, "Device name; with `count` > 1 the users are name-1 .. name-N."),
    Key("count", "int", 1, "How many identical users this entry stands for.", "users", low=1),
    Key("acceptance", "float", None, "Per-token acceptance probability alpha of the draft model.", low=0, below=1),
    Key("acceptance_by_position", "probabilities", None, "Conditional acceptance of positions 1, 2, ...; "
        "the last value repeats. Instead of `acceptance`."),
    Key("calibration", "path", None, "A fragment written by `multispin calibrate`; its `[acceptance]` "
        "keys are used where this entry does not set them. Relative to the profile."),
    Key("draft_ms_per_token", "float", None, "Device time per draft token tau (required here or via "
        "`timings`).", "ms", above=0),
    Key("draft_overhead_ms", "float", 0.0, "Fixed device time per drafting round c.", "ms", low=0),
    Key("timings", "path", None, "A fragment written by `multispin profile-hardware --format toml`; its "
        "`[draft]` keys are used where this entry does not set them. Relative to the profile."),
    Key("draft_model", "str", None, "Draft model path or id, carried into the plan for exporters."),
    Key("snr_db", "float", None, "Fixed uplink SNR: rate = W log2(1 + SNR), linear in bandwidth.", "dB"),
    Key("spectral_efficiency_bps_per_hz", "float", None, "Fixed spectral efficiency instead of `snr_db`.",
        "bit/s/Hz", above=0),
    Key("tx_power_dbm", "float", None, "Transmit power P of a power-limited user: rate = W log2(1 + P g / "
        "(N0 W)).", "dBm"),
    Key("path_loss_db", "float", None, "Path loss 1/g for `tx_power_dbm`.", "dB", low=0),
    Key("distance_m", "float", None, "Distance to the base station, instead of `path_loss_db`.", "m", above=0),
    Key("fading", "choice", None, "This device's fading, instead of the [system] one.", choices=FADING_KINDS),
    Key("rician_k_db", "float", None, "This device's Rician K factor (with fading = `rician`).", "dB",
        low=-30.0, high=40.0),
    Key("shadowing_db", "float", None, "This device's shadowing standard deviation.", "dB", low=0.0, high=20.0),
    Key("min_resource_blocks", "int", None, "This device's least blocks when drafting, instead of the "
        "[system] value.", "blocks", low=1),
)

TABLES = {"system": SYSTEM_KEYS, "payload": PAYLOAD_KEYS, "server": SERVER_KEYS}
SCHEMA = {**TABLES, "devices": DEVICE_KEYS}

_TIMINGS_DRAFT_KEYS = ("draft_ms_per_token", "draft_overhead_ms")
_CALIBRATION_KEYS = ("acceptance", "acceptance_by_position")


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
    users: tuple[UserInfo, ...]
    payload_kind: str


# --------------------------------------------------------------------------- reading TOML


def read_toml(path: Path) -> dict:
    """Parse a TOML file, turning every failure into a ProfileError with the file and line."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ProfileError("no such file", path=path) from None
    except IsADirectoryError:
        raise ProfileError("is a directory, not a TOML file", path=path) from None
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror}", path=path) from None
    try:
        return tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProfileError("not UTF-8 text", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"invalid TOML: {exc}", path=path) from None


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

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, reason: str):
        raise ProfileError(reason, path=self.path, key=self.key(name))

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
            if n < 1 or not n.is_integer():
                self.fail(where, f"tokens must be a positive integer, got {_fmt(n)}")
            if t <= 0:
                self.fail(where, f"ms must be positive, got {_fmt(t)}")
            if tokens and n <= tokens[-1]:
                self.fail(where, f"tokens must increase: {_fmt(n)} after {_fmt(tokens[-1])}")
            if ms and t < ms[-1]:
                self.fail(where, f"verify time must not decrease with more tokens: {_fmt(t)} ms at "
                          f"{_fmt(n)} tokens after {_fmt(ms[-1])} ms at {_fmt(tokens[-1])}")
            tokens.append(n)
            ms.append(t)
        return np.array(tokens), np.array(ms)


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _fmt(value: float) -> str:
    return f"{value:g}"


# --------------------------------------------------------------------------- building the system


def _fragment(owner: _Checker, key: str, table: str, base: Path) -> tuple[dict, Path]:
    """The ``[table]`` of an included fragment, resolved relative to the including profile."""
    rel = owner.get(key)
    path = (base / rel) if not Path(rel).is_absolute() else Path(rel)
    data = read_toml(path)
    if table not in data or not isinstance(data[table], dict):
        raise ProfileError(f"has no [{table}] table (is it a fragment written by multispin?)", path=path)
    return data[table], path


def _merged(checker: _Checker, key: str, table: str, base: Path, allowed: tuple[str, ...], keys) -> _Checker:
    """The entry's own keys over an included fragment's ones (the profile wins).

    The fragment's values are checked under the fragment's own file name first, so an error in a
    generated file points at that file.
    """
    if not checker.has(key):
        return checker
    fragment, frag_path = _fragment(checker, key, table, base)
    picked = {k: v for k, v in fragment.items() if k in allowed}
    frag_checker = _Checker(frag_path, table, picked, keys)
    for name in picked:
        frag_checker.get(name)
    merged = {**picked, **{k: v for k, v in checker.table.items() if k != key}}
    return _Checker(checker.path, checker.where, merged, keys)


def _server(data: dict, path: Path) -> tuple[VerifyTime, str, str | None]:
    if "server" not in data:
        raise ProfileError("missing the [server] table", path=path)
    checker = _Checker(path, "server", data["server"], SERVER_KEYS)
    allowed = tuple(k.name for k in SERVER_KEYS if k.name not in ("timings",))
    server = _merged(checker, "timings", "server", path.parent, allowed, SERVER_KEYS)
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
    return verify, server.get("target"), server.get("target_model")


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


def _device_channel(dev: _Checker, system: _Checker) -> tuple[Channel, str]:
    forms = [k for k in ("snr_db", "spectral_efficiency_bps_per_hz", "tx_power_dbm") if dev.has(k)]
    if len(forms) != 1:
        reason = "gives no channel" if not forms else f"gives more than one channel ({', '.join(forms)})"
        dev.fail("snr_db" if not forms else forms[1], f"{reason}: set exactly one of snr_db, "
                 "spectral_efficiency_bps_per_hz, or tx_power_dbm with path_loss_db or distance_m")
    for other in ("path_loss_db", "distance_m"):
        if dev.has(other) and forms[0] != "tx_power_dbm":
            dev.fail(other, "only used with tx_power_dbm (a power-limited channel)")
    if forms[0] == "snr_db":
        snr_db = dev.get("snr_db")
        return Channel.fixed_snr(db_to_linear(snr_db)), f"SNR {snr_db:g} dB"
    if forms[0] == "spectral_efficiency_bps_per_hz":
        eff = dev.get("spectral_efficiency_bps_per_hz")
        return Channel.fixed_snr(2.0**eff - 1.0), f"{eff:g} bit/s/Hz"
    power_dbm = dev.get("tx_power_dbm")
    if dev.has("path_loss_db") == dev.has("distance_m"):
        dev.fail("path_loss_db", "a tx_power_dbm channel needs exactly one of path_loss_db or distance_m")
    if dev.has("path_loss_db"):
        loss_db = dev.get("path_loss_db")
        label = f"{power_dbm:g} dBm/{loss_db:g} dB"
    else:
        distance = dev.get("distance_m")
        loss_db = _free_space_path_loss_db(1.0, system.get("carrier_ghz")) + 10.0 * system.get(
            "path_loss_exponent"
        ) * math.log10(distance)
        label = f"{power_dbm:g} dBm@{distance:g} m"
    noise_w_per_hz = dbm_to_watts(system.get("noise_psd_dbm_per_hz") + system.get("noise_figure_db"))
    q = dbm_to_watts(power_dbm) * db_to_linear(-loss_db) / noise_w_per_hz
    return Channel.power_limited_users(q), label


def _fading_defaults(system: _Checker) -> tuple[str, float | None, float]:
    kind = system.get("fading")
    k_db = system.get("rician_k_db")
    if k_db is not None and kind != "rician":
        system.fail("rician_k_db", f'only used with fading = "rician" (fading is "{kind}")')
    return kind, k_db, system.get("shadowing_db")


def _device_fading(dev: _Checker, kind: str, k_db: float | None, shadow: float) -> tuple[bool, float, float]:
    """(fades, linear K factor, shadowing dB) of one device entry, over the [system] defaults."""
    own = dev.get("fading")
    if dev.has("rician_k_db") and (own or kind) != "rician":
        dev.fail("rician_k_db", f'only used with fading = "rician" (fading is "{own or kind}")')
    kind = own or kind
    k_db = dev.get("rician_k_db") if dev.has("rician_k_db") else k_db
    shadow = dev.get("shadowing_db") if dev.has("shadowing_db") else shadow
    if kind == "rician" and k_db is None:
        dev.fail("rician_k_db", 'missing (required with fading = "rician", here or in [system])')
    k_lin = 10.0 ** (k_db / 10.0) if kind == "rician" else 0.0
    return kind != "none", k_lin, shadow


def _fading(system: _Checker, rows: list[tuple[int, bool, float, float]]) -> Fading | None:
    """The cell's fading, or None where no user's channel varies (the static model, unchanged)."""
    if not any(fades or shadow > 0 for _, fades, _, shadow in rows):
        return None
    counts = [r[0] for r in rows]
    return Fading(np.repeat([r[1] for r in rows], counts), np.repeat([r[2] for r in rows], counts),
                  np.repeat([r[3] for r in rows], counts), system.get("coherence_ms") * MS,
                  system.get("csi_delay_ms") * MS)


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
    """Read, validate and convert a deployment profile (SI units inside)."""
    path = Path(path)
    return profile_from_data(read_toml(path), path)


def profile_from_data(data: dict, path: str | Path) -> Profile:
    """Validate and convert an already-parsed profile; ``path`` names it in errors and anchors the
    relative paths of included fragments (so a sweep's cells go through the same checks as a file)."""
    path = Path(path)
    for name in data:
        if name not in SCHEMA:
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
    verify, target, target_model = _server(data, path)

    devices = data.get("devices")
    if devices is None:
        raise ProfileError("no [[devices]]: a profile needs at least one device", path=path)
    if not isinstance(devices, list) or not devices:
        raise ProfileError("must be a non-empty array of tables ([[devices]])", path=path, key="devices")

    fade_kind, fade_k_db, fade_shadow = _fading_defaults(system)
    fade_rows: list[tuple[int, bool, float, float]] = []
    names: list[str] = []
    acceptance: list[float | list[float]] = []
    tau, overhead, channels, infos, min_blocks = [], [], [], [], []
    for i, entry in enumerate(devices):
        dev = _Checker(path, f"devices[{i + 1}]", entry, DEVICE_KEYS)
        dev = _merged(dev, "timings", "draft", path.parent, _TIMINGS_DRAFT_KEYS, DEVICE_KEYS)
        dev = _merged(dev, "calibration", "acceptance", path.parent, _CALIBRATION_KEYS, DEVICE_KEYS)
        name = dev.get("name")
        count = dev.get("count")
        if dev.has("acceptance") == dev.has("acceptance_by_position"):
            dev.fail("acceptance", "set exactly one of acceptance or acceptance_by_position"
                     if dev.has("acceptance") else "missing: set acceptance (or acceptance_by_position)")
        if dev.has("acceptance"):
            alpha = dev.get("acceptance")
            acc_label = f"{alpha:.3g}"
        else:
            alpha = dev.get("acceptance_by_position")
            acc_label = ",".join(f"{p:.2f}" for p in alpha[:2]) + ("…" if len(alpha) > 2 else "")
        draft_ms = dev.get("draft_ms_per_token", REQUIRED, why=", here or through timings")
        overhead_ms = dev.get("draft_overhead_ms")
        channel, channel_label = _device_channel(dev, system)
        if dev.has("min_resource_blocks"):
            if blocks is None:
                dev.fail("min_resource_blocks", "only used with [system] resource_blocks")
            if dev.get("min_resource_blocks") > blocks:
                dev.fail("min_resource_blocks", f"exceeds the cell's {blocks} resource blocks: this device "
                         "could never draft")
        min_blocks.append(np.full(count, dev.get("min_resource_blocks", system.get("min_resource_blocks"))))
        info = UserInfo(name, acc_label, channel_label, dev.get("draft_model"))
        user_names = [name] if count == 1 else [f"{name}-{j + 1}" for j in range(count)]
        names += user_names
        acceptance += [alpha] * count
        tau.append(np.full(count, draft_ms * MS))
        overhead.append(np.full(count, overhead_ms * MS))
        channels.append(Channel.concat([channel] * count) if count > 1 else channel)
        infos += [info] * count
        fade_rows.append((count, *_device_fading(dev, fade_kind, fade_k_db, fade_shadow)))

    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ProfileError(f"two users are named '{name}': device names must be unique (a device "
                               "with count = N makes users name-1 .. name-N)", path=path, key="devices")
        seen.add(name)

    sys_obj = System(
        names=tuple(names),
        accept_prob=position_matrix(acceptance=acceptance, max_draft_length=max_len),
        draft_s_per_token=np.concatenate(tau),
        draft_overhead_s=np.concatenate(overhead),
        channel=Channel.concat(channels).with_link(link),
        bits_per_token=bits,
        header_bits=header,
        bandwidth_hz=bandwidth_hz,
        max_draft_length=max_len,
        verify=verify,
        downlink_s=system.get("downlink_ms") * MS,
        batching=system.get("batching"),
        fading=_fading(system, fade_rows),
        resource_block_hz=block_hz,
        min_resource_blocks=None if blocks is None else np.concatenate(min_blocks).astype(int),
    )
    if sys_obj.fades and not sys_obj.smooth:
        system.fail("fading", "is not supported with resource_blocks or a rate_model other than shannon yet "
                    "(per-round splits need a continuous band with Shannon rates)")
    label = system.get("name") or path.stem
    return Profile(str(path), label, sys_obj, target, target_model, tuple(infos), payload_kind)
