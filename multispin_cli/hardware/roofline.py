"""The hardware catalog (``profiles/hardware/*.toml``) and roofline times.

The roofline time of an op is ``max(FLOP / peak FLOP/s, bytes / memory bandwidth)``: whichever of
compute and memory traffic takes longer. A pass's time is the sum over its ops, so a decode step
(every matmul memory-bound) costs about its weight bytes over the bandwidth, and verification of N
tokens moves toward compute-bound as N grows past the ridge point ``peak / bandwidth`` FLOP/byte.
It is a lower bound: kernel launches, imperfect overlap and cache effects only add time.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.errors import InputError
from multispin_cli.hardware.costs import PassCost

GB = 1e9  # bytes per GB (vendor bandwidths are decimal)
TERA = 1e12


@dataclass(frozen=True)
class HardwareSpec:
    """Peak dense FLOP/s per dtype and memory bandwidth of one device, with where they come from."""

    name: str
    description: str
    kind: str
    memory_bytes: float
    bandwidth_bytes_per_s: float
    peak_flops: dict[str, float] = field(hash=False)  # FLOP/s by dtype
    source: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()

    def flops(self, dtype: str) -> float:
        """Peak dense FLOP/s in ``dtype``; an :class:`InputError` lists the dtypes it has."""
        if dtype not in self.peak_flops:
            raise InputError(f"{self.name} has no {dtype} peak in its catalog entry; it has "
                             f"{', '.join(self.peak_flops)}", key="--dtype")
        return self.peak_flops[dtype]

    def default_dtype(self) -> str:
        """The 16-bit dtype when the device has one (how models are served), else float32."""
        for dtype in ("bfloat16", "float16", "float32"):
            if dtype in self.peak_flops:
                return dtype
        return next(iter(self.peak_flops))

    def summary(self) -> str:
        """One line: name, bandwidth and peaks."""
        peaks = ", ".join(f"{d} {v / TERA:g}" for d, v in self.peak_flops.items())
        return (f"{self.name}: {self.description}; {self.memory_bytes / 2**30:g} GiB at "
                f"{self.bandwidth_bytes_per_s / GB:g} GB/s; peak TFLOP/s {peaks}")


@dataclass(frozen=True)
class LocalPeaks:
    """This machine's measured memory bandwidth and matmul rate: the local roofline."""

    bandwidth_bytes_per_s: float
    flops_per_s: float
    bandwidth_method: str
    flops_method: str
    dtype: str


def hardware_dir() -> Path:
    """The folder of the shipped hardware catalog."""
    return profiles_dir() / "hardware"


def _positive(data: dict, key: str, path: Path) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"must be a positive number, got {value!r}", path=path, key=key)
    return float(value)


def read_hardware(path: Path) -> HardwareSpec:
    """One catalog entry; every problem is an :class:`InputError` naming the file and key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"unreadable hardware entry: {exc}", path=path) from None
    for key in ("name", "description", "source"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InputError("missing (every hardware entry names itself, what it is and its source)",
                             path=path, key=key)
    peaks = data.get("peak_tflops")
    if not isinstance(peaks, dict) or not peaks:
        raise InputError("missing the [peak_tflops] table (dense TFLOP/s per dtype)", path=path, key="peak_tflops")
    flops = {str(d): _positive(peaks, d, path) * TERA for d in peaks}
    aliases = tuple(a for a in data.get("aliases", []) if isinstance(a, str))
    return HardwareSpec(
        name=data["name"],
        description=data["description"],
        kind=str(data.get("kind", "")),
        memory_bytes=_positive(data, "memory_gib", path) * 2**30,
        bandwidth_bytes_per_s=_positive(data, "memory_bandwidth_gb_per_s", path) * GB,
        peak_flops=flops,
        source=data["source"],
        notes=str(data.get("notes", "")),
        aliases=aliases,
    )


def hardware_catalog() -> dict[str, HardwareSpec]:
    """Every shipped hardware entry, by name, in name order."""
    specs = [read_hardware(p) for p in sorted(hardware_dir().glob("*.toml"))]
    return {s.name: s for s in sorted(specs, key=lambda s: s.name.lower())}


def resolve_hardware(name: str, *, option: str = "--estimate") -> HardwareSpec:
    """A catalog entry by name or alias (case-insensitive); unknown names list the known ones."""
    specs = hardware_catalog()
    lookup: dict[str, HardwareSpec] = {}
    for spec in specs.values():
        for alias in (spec.name, *spec.aliases):
            lookup.setdefault(alias.lower(), spec)
    hit = lookup.get(name.strip().lower())
    if hit is not None:
        return hit
    hint = difflib.get_close_matches(name.strip().lower(), list(lookup), n=1, cutoff=0.6)
    guess = f" (did you mean '{lookup[hint[0]].name}'?)" if hint else ""
    raise InputError(f"unknown hardware '{name}'{guess}; known: {', '.join(specs)}", key=option)


def roofline_seconds(cost: PassCost, *, flops_per_s: float, bytes_per_s: float) -> float:
    """Sum over the pass's ops of ``max(FLOP / peak, bytes / bandwidth)``."""
    return sum(count * max(op.flop / flops_per_s, op.bytes / bytes_per_s) for op, count in cost.ops())


def bound_by(cost: PassCost, *, flops_per_s: float, bytes_per_s: float) -> str:
    """``"memory"`` or ``"compute"``: which side dominates the pass's roofline time."""
    memory = sum(count * op.bytes / bytes_per_s for op, count in cost.ops()
                 if op.bytes / bytes_per_s >= op.flop / flops_per_s)
    compute = roofline_seconds(cost, flops_per_s=flops_per_s, bytes_per_s=bytes_per_s) - memory
    return "memory" if memory >= compute else "compute"
