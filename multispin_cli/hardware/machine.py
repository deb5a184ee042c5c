"""What the local machine is: CPU, cores, memory, last-level cache, BLAS, GPUs.

Read from ``/proc``, ``/sys`` and numpy's build configuration where they exist (Linux), with
portable fallbacks elsewhere; nothing here imports torch (that costs seconds): GPUs are listed from
the NVIDIA driver's ``/proc`` entries, and the torch backend adds what CUDA reports.
"""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_LLC_BYTES = 32 * 2**20  # when the cache size cannot be read


@dataclass(frozen=True)
class MachineInfo:
    """A description of the machine the measurement runs on."""

    cpu: str
    logical_cores: int
    memory_total_bytes: int | None
    memory_available_bytes: int | None
    llc_bytes: int
    blas: str
    numpy_version: str
    python_version: str
    system: str
    gpus: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line, as the fragment's header and the table's title show it."""
        mem = f", {self.memory_total_bytes / 2**30:.1f} GiB RAM" if self.memory_total_bytes else ""
        gpu = f", GPU: {'; '.join(self.gpus)}" if self.gpus else ", no GPU"
        return f"{self.cpu} ({self.logical_cores} cores){mem}, BLAS {self.blas}{gpu}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _cpu_name() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith(("model name", "hardware")):  # x86, then ARM boards
            name = line.split(":", 1)[1].strip()
            if name:
                return " ".join(name.split())
    return platform.processor() or platform.machine() or "unknown CPU"


def _meminfo() -> tuple[int | None, int | None]:
    values = {}
    for line in _read("/proc/meminfo").splitlines():
        match = re.match(r"(\w+):\s+(\d+)\s*kB", line)
        if match:
            values[match.group(1)] = int(match.group(2)) * 1024
    total = values.get("MemTotal")
    available = values.get("MemAvailable", values.get("MemFree"))
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            available = available or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            pass
    return total, available


def memory_available_bytes() -> int | None:
    """Memory the kernel says a new allocation can get now (MemAvailable), if known."""
    return _meminfo()[1]


def _llc_bytes() -> int:
    best = 0
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        size = _read(str(index / "size")).strip().upper()
        match = re.fullmatch(r"(\d+)([KMG]?)", size)
        if match:
            factor = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[match.group(2)]
            best = max(best, int(match.group(1)) * factor)
    return best or DEFAULT_LLC_BYTES


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        text = blas.get("openblas configuration") or ""
        version = blas.get("version") or ""
        name = blas.get("name") or "unknown"
        if text.startswith("OpenBLAS"):
            return f"OpenBLAS {version} ({name})"
        return f"{name} {version}".strip()
    except Exception:  # numpy < 1.25 or an unusual build: the name is informational only
        return "unknown"


def _gpus() -> tuple[str, ...]:
    names = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        for line in _read(str(info)).splitlines():
            if line.startswith("Model:"):
                names.append(line.split(":", 1)[1].strip())
    return tuple(names)


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None off Linux."""
    fields = _read("/proc/stat").split("\n", 1)[0].split()
    if len(fields) < 5 or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def others_cpu_share(interval_s: float = 0.3) -> float | None:
    """Share of all CPUs busy with other work while this process sleeps for ``interval_s`` (0..1),
    or None where /proc/stat is not available."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(interval_s)
    after = _cpu_times()
    if after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def cpu_snapshot() -> tuple[int, int, float] | None:
    """All CPUs' (busy, total) jiffies and this process's own CPU seconds, or None off Linux."""
    times = _cpu_times()
    if times is None:
        return None
    own = os.times()
    return times[0], times[1], own.user + own.system


def others_share_since(before: tuple[int, int, float] | None) -> float | None:
    """Share of all CPUs busy with work other than this process's since ``before`` (0..1), or None."""
    after = cpu_snapshot()
    if before is None or after is None or after[1] <= before[1]:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = (after[0] - before[0]) / tick - (after[2] - before[2])
    return min(max(busy / ((after[1] - before[1]) / tick), 0.0), 1.0)


def describe_machine() -> MachineInfo:
    """The local machine, read from the operating system and numpy."""
    total, available = _meminfo()
    return MachineInfo(
        cpu=_cpu_name(),
        logical_cores=os.cpu_count() or 1,
        memory_total_bytes=total,
        memory_available_bytes=available,
        llc_bytes=_llc_bytes(),
        blas=_blas(),
        numpy_version=np.__version__,
        python_version=platform.python_version(),
        system=f"{platform.system()} {platform.machine()}",
        gpus=_gpus(),
    )
