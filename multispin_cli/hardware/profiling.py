"""One `profile-hardware` run: from plain arguments to frozen results.

Each side (the draft on its device, the target on the server) is either *measured* here with a
backend or *estimated* from the roofline of a catalog device:

- draft: rounds of ``L`` chained greedy decode steps at batch 1, for a few ``L``; the slope of round
  time against ``L`` is ``draft_ms_per_token`` and the intercept is ``draft_overhead_ms`` (docs/model.md
  2.5's ``c + tau L``);
- target: one batched verification pass for each grid point (``batch`` sequences of ``L + 1`` new
  tokens over a KV cache of ``context`` tokens, ``N = batch (L + 1)``), fitted as
  ``T_v(N) = v0 + v1 N`` with R^2, and kept as a table (the largest time per N, rises and falls as
  measured).

Every point is timed in interleaved sweeps, repeated until stable; its time is the expected one
(:func:`multispin_cli.hardware.fit.typical_seconds`: outliers out, then the mean), as an engine's
rate is a total over many passes; ``multispin validate`` measures its model terms the same way.

Measurement code reports progress through a callback and never prints.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from multispin_cli.errors import InputError
from multispin_cli.hardware import costs
from multispin_cli.hardware.fit import (
    AFFINE_R2_THRESHOLD,
    AffineFit,
    MeasuredTable,
    fit_affine,
    measured_table,
    typical_seconds,
)
from multispin_cli.hardware.machine import (
    MachineInfo,
    cpu_snapshot,
    describe_machine,
    others_cpu_share,
    others_share_since,
)
from multispin_cli.hardware.models import DTYPE_BYTES, ModelShape, ModelSpec, fmt_bytes
from multispin_cli.hardware.roofline import HardwareSpec, LocalPeaks, roofline_seconds

Progress = Callable[[str, int, int], None]  # (what is being measured, units done, units in all)

MAX_CONTEXT = 1_000_000
MIN_VERIFY_BASE_S = 1e-9  # verify_base_ms must be > 0: a fitted intercept below this is raised to it
MIN_DRAFT_SLOPE_S = 1e-9  # draft_ms_per_token must be > 0
MEMORY_HEADROOM = 0.9  # use at most this share of the memory the kernel reports available
BUSY_CPU_SHARE = 0.25  # warn when other processes use this share of the CPUs as measuring starts
STABLE_SPREAD = 0.10  # repeat a sweep while some point's (max - min) / median of its repeats is above this
MAX_EXTRA_SWEEPS = 6  # ... at most this many more sweeps


class TooLargeError(InputError):
    """A measurement that would need more memory than the machine has (refused before allocating)."""


@dataclass(frozen=True)
class Settings:
    """What to measure: the grid, the repetitions and the backend."""

    context: int = 512
    max_draft_length: int = 8
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8)
    repeats: int = 3
    warmup: int = 1
    quick: bool = False
    backend: str = "numpy"
    dtype: str | None = None  # None: the backend's (or the hardware's) default
    engine_loop: bool = False  # time the engine loop's own cost per round (needs transformers)

    @classmethod
    def make(cls, *, quick: bool = False, batch_sizes: tuple[int, ...] | None = None, repeats: int | None = None,
             engine_loop: bool | None = None, **kwargs) -> "Settings":
        """Settings with --quick's smaller defaults where the caller gave no explicit value."""
        return cls(quick=quick, batch_sizes=batch_sizes or ((1, 4) if quick else (1, 2, 4, 8)),
                   repeats=repeats or (2 if quick else 3),
                   engine_loop=(not quick) if engine_loop is None else engine_loop, **kwargs)

    def draft_lengths(self) -> tuple[int, ...]:
        """Draft lengths L of the verification grid (each pass verifies L + 1 tokens per sequence)."""
        top = self.max_draft_length
        if self.quick:
            return tuple(sorted({0, max(1, top // 2), top}))
        return tuple(sorted({0, top} | {2**k for k in range(8) if 2**k < top}))

    def round_lengths(self) -> tuple[int, ...]:
        """Round lengths L of the draft measurement (chained decode steps)."""
        top = max(2, self.max_draft_length)
        if self.quick:
            return (1, top)
        return tuple(sorted({top} | {2**k for k in range(8) if 2**k < top}))

    def grid(self) -> tuple[tuple[int, int], ...]:
        """``(batch, new tokens per sequence)`` of every verification pass, by token count."""
        points = {(b, length + 1) for b in self.batch_sizes for length in self.draft_lengths()}
        return tuple(sorted(points, key=lambda p: (p[0] * p[1], p[0])))

    def check(self) -> None:
        """Reject values no measurement can use (the CLI checks types; this checks sense)."""
        if not 0 <= self.context <= MAX_CONTEXT:
            raise InputError(f"must be in 0..{MAX_CONTEXT}, got {self.context}", key="--context")
        if not 1 <= self.max_draft_length <= 128:
            raise InputError(f"must be in 1..128, got {self.max_draft_length}", key="--max-draft-length")
        if not self.batch_sizes or any(b < 1 or b > 4096 for b in self.batch_sizes):
            raise InputError(f"must be integers in 1..4096, got {','.join(map(str, self.batch_sizes))}",
                             key="--batch-sizes")
        if not 1 <= self.repeats <= 1000:
            raise InputError(f"must be in 1..1000, got {self.repeats}", key="--repeats")
        if self.backend not in ("numpy", "torch"):
            raise InputError(f"must be numpy or torch, got {self.backend!r}", key="--backend")
        if self.dtype is not None and self.dtype not in DTYPE_BYTES:
            raise InputError(f"must be one of {', '.join(DTYPE_BYTES)}, got {self.dtype!r}", key="--dtype")


@dataclass(frozen=True)
class DraftResult:
    """The draft's time per round ``c + tau L``: measured rounds or roofline ones, and the fit."""

    model: ModelShape
    measured: bool
    detail: str  # how, in words (backend, dtype, layers, copies; or the hardware)
    dtype: str
    device: str  # "this machine (numpy)" or the hardware name
    rounds: tuple[tuple[int, float], ...]  # (L, seconds)
    fit: AffineFit  # intercept: overhead c (s), slope: tau (s per token)
    roofline_s_per_token: float | None  # the roofline of one decode step on the same device
    copies: int | None = None
    spread: float = 0.0  # the largest (max - min) / median of a round length's repeats
    sweeps: int = 0  # how many interleaved sweeps over the round lengths were timed

    @property
    def seconds_per_token(self) -> float:
        return self.fit.slope

    @property
    def overhead_seconds(self) -> float:
        return self.fit.intercept


@dataclass(frozen=True)
class VerifyPoint:
    """One verification pass: ``batch`` sequences of ``new_tokens`` each."""

    batch: int
    new_tokens: int
    seconds: float
    roofline_seconds: float | None
    layer_seconds: float | None = None  # one layer (measured with layer scaling)
    head_seconds: float | None = None
    spread: float = 0.0  # (max - min) / median of the repeats (0 for an estimate)

    @property
    def tokens(self) -> int:
        return self.batch * self.new_tokens


@dataclass(frozen=True)
class VerifyResult:
    """The target's ``T_v(N)``: the passes, the affine fit, the monotone table and the chosen form."""

    model: ModelShape
    measured: bool
    detail: str
    dtype: str
    device: str
    layer_scale: int  # the measured layer's time is multiplied by this (1: the full model was run)
    points: tuple[VerifyPoint, ...]
    fit: AffineFit
    table: MeasuredTable
    form: str  # "affine" or "table"
    weight_bytes: float  # what one decode step streams, in the timed dtype
    bandwidth_bytes_per_s: float | None  # measured (local) or the hardware's
    copies: int | None = None
    sweeps: int = 0  # how many interleaved sweeps over the grid were timed

    @property
    def spread(self) -> float:
        """The largest (max - min) / median of a point's repeats."""
        return max((p.spread for p in self.points), default=0.0)

    @property
    def decode_point(self) -> VerifyPoint:
        """The smallest pass: one token of one sequence when the grid has it."""
        return min(self.points, key=lambda p: (p.tokens, p.batch))

    @property
    def decode_seconds(self) -> float:
        """Time of the smallest pass (a decode step when the grid has batch 1)."""
        return self.decode_point.seconds

    @property
    def bandwidth_bound_seconds(self) -> float | None:
        """Weight bytes over memory bandwidth: the floor of a decode step."""
        if not self.bandwidth_bytes_per_s:
            return None
        return self.weight_bytes / self.bandwidth_bytes_per_s

    @property
    def decode_vs_bandwidth(self) -> float | None:
        """Measured (or estimated) decode time over the bandwidth floor (1 = at the roofline)."""
        bound = self.bandwidth_bound_seconds
        return None if not bound else self.decode_seconds / bound


@dataclass(frozen=True)
class HardwareProfile:
    """Everything one run found."""

    settings: Settings
    machine: MachineInfo
    peaks: LocalPeaks | None
    draft: DraftResult
    verify: VerifyResult
    memory_plan: tuple[tuple[str, int], ...]
    notes: tuple[str, ...]
    warnings: tuple[str, ...] = ()  # notes the user should see even in toml/json runs (the CLI prints them)
    wall_seconds: float = 0.0
    backend_detail: str = ""
    peak_rss_bytes: int | None = None  # the process's peak resident memory so far (Unix)
    load_during_run: float | None = None  # share of the CPUs other processes used while measuring
    round_overhead: tuple[float, float] | None = None  # the engine loop's own s per round and its spread

    @property
    def planned_peak_bytes(self) -> int:
        """The largest group of the memory plan (peak tests, draft, target are built one after another)."""
        groups: dict[str, int] = {}
        for label, n_bytes in self.memory_plan:
            key = label.split(" ", 1)[0] if label.startswith(("draft", "target")) else "peaks"
            groups[key] = groups.get(key, 0) + n_bytes
        return max(groups.values(), default=0)


# --------------------------------------------------------------------------- helpers


class _Ticker:
    """Counts timed calls for the progress callback."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, max(total, 1), 0

    def tick(self, label: str, units: int = 1) -> None:
        self.done = min(self.total, self.done + units)
        if self.progress is not None:
            self.progress(label, self.done, self.total)

    def show(self, label: str) -> None:
        if self.progress is not None:
            self.progress(label, self.done, self.total)


def time_parts(parts, *, warmup: int, repeats: int, tick: Callable[[], None] | None = None,
               clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Expected seconds (``typical_seconds``) of each ``(name, call, multiplier)`` part, calling the parts in turn
    ``warmup + repeats`` times (the warm-up runs are not kept)."""
    samples: list[list[float]] = [[] for _ in parts]
    for run in range(warmup + repeats):
        for i, (_, call, _) in enumerate(parts):
            start = clock()
            call()
            elapsed = clock() - start
            if run >= warmup:
                samples[i].append(elapsed)
        if tick is not None:
            tick()
    return [typical_seconds(s) for s in samples]


def _fit_draft(rounds: list[tuple[int, float]]) -> AffineFit:
    lengths = np.array([r[0] for r in rounds], dtype=float)
    seconds = np.array([r[1] for r in rounds], dtype=float)
    return fit_affine(lengths, seconds, min_intercept=0.0, min_slope=MIN_DRAFT_SLOPE_S)


def _verify_result(model: ModelShape, points: list[VerifyPoint], **kwargs) -> VerifyResult:
    tokens = np.array([p.tokens for p in points], dtype=float)
    seconds = np.maximum(np.array([p.seconds for p in points], dtype=float), MIN_VERIFY_BASE_S)  # ms > 0
    fit = fit_affine(tokens, seconds, min_intercept=MIN_VERIFY_BASE_S, min_slope=0.0)
    table = measured_table(tokens, seconds)
    form = "affine" if fit.r2 >= AFFINE_R2_THRESHOLD and not fit.clamped else "table"
    return VerifyResult(model=model, points=tuple(points), fit=fit, table=table, form=form, **kwargs)


def _step_roofline(shape: ModelShape, context: int, bytes_per_value: int, flops: float, bandwidth: float) -> float:
    cost = costs.forward_cost(shape, batch=1, new_tokens=1, context=context, bytes_per_value=bytes_per_value)
    return roofline_seconds(cost, flops_per_s=flops, bytes_per_s=bandwidth)


def _pass_roofline(shape: ModelShape, batch: int, new_tokens: int, context: int, bytes_per_value: int,
                   flops: float, bandwidth: float) -> float:
    cost = costs.forward_cost(shape, batch=batch, new_tokens=new_tokens, context=context,
                              bytes_per_value=bytes_per_value)
    return roofline_seconds(cost, flops_per_s=flops, bytes_per_s=bandwidth)


# --------------------------------------------------------------------------- estimates


def estimate_draft(shape: ModelShape, hw: HardwareSpec, settings: Settings) -> DraftResult:
    """Rounds of ``L`` decode steps on ``hw`` from the roofline (the KV cache grows by one per step)."""
    dtype = settings.dtype or hw.default_dtype()
    flops, bandwidth, p = hw.flops(dtype), hw.bandwidth_bytes_per_s, DTYPE_BYTES[dtype]
    rounds = []
    for length in settings.round_lengths():
        seconds = sum(_step_roofline(shape, settings.context + i, p, flops, bandwidth) for i in range(length))
        rounds.append((length, seconds))
    per_step = _step_roofline(shape, settings.context, p, flops, bandwidth)
    return DraftResult(shape, False, f"roofline on {hw.name} ({hw.description}), {dtype}", dtype, hw.name,
                       tuple(rounds), _fit_draft(rounds), per_step)


def estimate_verify(shape: ModelShape, hw: HardwareSpec, settings: Settings) -> VerifyResult:
    """Every grid pass on ``hw`` from the roofline."""
    dtype = settings.dtype or hw.default_dtype()
    flops, bandwidth, p = hw.flops(dtype), hw.bandwidth_bytes_per_s, DTYPE_BYTES[dtype]
    points = []
    for batch, new in settings.grid():
        seconds = _pass_roofline(shape, batch, new, settings.context, p, flops, bandwidth)
        points.append(VerifyPoint(batch, new, seconds, seconds))
    return _verify_result(shape, points, measured=False, detail=f"roofline on {hw.name} ({hw.description}), {dtype}",
                          dtype=dtype, device=hw.name, layer_scale=1, weight_bytes=float(shape.weight_bytes(p)),
                          bandwidth_bytes_per_s=bandwidth)


def _hardware_notes(shape: ModelShape, hw: HardwareSpec, settings: Settings, role: str) -> list[str]:
    dtype = settings.dtype or hw.default_dtype()
    p = DTYPE_BYTES[dtype]
    batch = max(settings.batch_sizes) if role == "target" else 1
    need = shape.total_params * p + batch * (settings.context + settings.max_draft_length + 1) * \
        shape.kv_bytes_per_token(p)
    # a hybrid's recurrent state per sequence, and a checkpoint of it per verified position
    need += batch * (settings.max_draft_length + 2 if role == "target" else 1) * shape.state_bytes_per_sequence(p)
    notes = []
    if need > hw.memory_bytes:
        notes.append(f"the {role} {shape.name} in {dtype} with its KV cache needs {fmt_bytes(need)}, more than "
                     f"{hw.name}'s {fmt_bytes(hw.memory_bytes)}: the estimate assumes it fits")
    return notes


# --------------------------------------------------------------------------- measurement


def _backend(settings: Settings):
    """The measuring backend module (torch is imported only when asked for)."""
    if settings.backend == "torch":
        from multispin_cli.hardware import torch_backend

        torch_backend.require_torch()
        return torch_backend
    from multispin_cli.hardware import numpy_backend

    if settings.dtype not in (None, "float32"):
        raise InputError(f"the numpy backend times float32 only (numpy has no fast {settings.dtype} matmul: "
                         "it would time numpy's fallback loops, not the hardware); use --backend torch for "
                         "16-bit timings, or --estimate for a roofline", key="--dtype")
    return numpy_backend


def memory_plan(draft: ModelSpec | None, target: ModelSpec | None, settings: Settings, machine: MachineInfo,
                backend=None) -> list[tuple[str, int]]:
    """Bytes each measured part will allocate, itemised (nothing is allocated here)."""
    backend = backend or _backend(settings)
    grid = settings.grid()
    items: list[tuple[str, int]] = list(backend.peaks_memory(machine.llc_bytes))
    if draft is not None:
        items += backend.draft_memory(draft.shape, settings.context, max(settings.round_lengths()),
                                      machine.llc_bytes, **_backend_kwargs(backend, draft, settings))
    if target is not None:
        items += backend.target_memory(target.shape, settings.context, max(b for b, _ in grid),
                                       max(n for _, n in grid), max(b * n for b, n in grid), machine.llc_bytes,
                                       **_backend_kwargs(backend, target, settings))
    return items


def _backend_kwargs(backend, spec: ModelSpec, settings: Settings) -> dict:
    if getattr(backend, "NAME", "numpy") == "torch":
        return {"dtype": settings.dtype, "weights_dir": spec.weights_dir}
    return {}


def check_memory(items: list[tuple[str, int]], available: int | None, total: int | None = None) -> None:
    """Refuse, before allocating, a measurement that needs more memory than is available.

    The peak-test arrays are freed before the draft is built, and the draft before the target, so
    the peak is the largest of the three groups.
    """
    if available is None:
        return
    draft = sum(b for label, b in items if label.startswith("draft"))
    target = sum(b for label, b in items if label.startswith("target"))
    other = sum(b for label, b in items if not label.startswith(("draft", "target")))
    peak = max(draft, target, other)
    if peak > MEMORY_HEADROOM * available:
        side = "target" if target >= draft else "draft"
        biggest = max((i for i in items if i[0].startswith(side)), key=lambda i: i[1], default=("", 0))
        raise TooLargeError(
            f"refusing to measure: the {side} would need {fmt_bytes(peak)} of memory (largest part: "
            f"{biggest[0]}, {fmt_bytes(biggest[1])}) but this machine has {fmt_bytes(available)} available "
            f"({fmt_bytes(total or available)} in all); use a smaller --context or "
            "--batch-sizes, a smaller model, or --estimate HARDWARE")


def measure_draft(spec: ModelSpec, settings: Settings, machine: MachineInfo, backend, peaks: LocalPeaks | None,
                  ticker: _Ticker) -> DraftResult:
    """Rounds of chained decode steps of the draft, timed with the backend."""
    shape = spec.shape
    lengths = settings.round_lengths()
    ticker.show(f"draft {shape.name}: allocating")
    engine = backend.make_draft(shape, context=settings.context, max_steps=max(lengths), llc_bytes=machine.llc_bytes,
                                **_backend_kwargs(backend, spec, settings))
    points = [[("round", lambda n=length, e=engine: e.round(n), 1)] for length in lengths]
    labels = [f"draft {shape.name}: rounds of {n} token{'s' if n > 1 else ''}" for n in lengths]
    samples, sweeps = interleaved_samples(points, labels, settings, ticker)
    totals = [s[:, 0] for s in samples]
    rounds = [(length, typical_seconds(t)) for length, t in zip(lengths, totals)]
    spread = max(_spread(t) for t in totals)
    dtype, detail, copies = engine.dtype, engine.describe(), getattr(engine, "copies", None)
    del engine
    roof = None
    if peaks is not None:
        roof = _step_roofline(shape, settings.context, DTYPE_BYTES[dtype], peaks.flops_per_s,
                              peaks.bandwidth_bytes_per_s)
    return DraftResult(shape, True, detail, dtype, "this machine", tuple(rounds), _fit_draft(rounds), roof, copies,
                       spread, sweeps)


def measure_verify(spec: ModelSpec, settings: Settings, machine: MachineInfo, backend, peaks: LocalPeaks | None,
                   ticker: _Ticker) -> VerifyResult:
    """Every grid pass of the target, timed with the backend."""
    shape = spec.shape
    grid = settings.grid()
    ticker.show(f"target {shape.name}: allocating")
    engine = backend.make_target(shape, context=settings.context, max_batch=max(b for b, _ in grid),
                                 max_new=max(n for _, n in grid), llc_bytes=machine.llc_bytes,
                                 **_backend_kwargs(backend, spec, settings))
    dtype, p = engine.dtype, DTYPE_BYTES[engine.dtype]
    parts_by_point = [engine.parts(batch, new) for batch, new in grid]
    labels = [f"target {shape.name}: batch {b} x {n} token{'s' if n > 1 else ''}" for b, n in grid]
    samples, sweeps = interleaved_samples(parts_by_point, labels, settings, ticker)
    points = []
    for (batch, new), parts, sample in zip(grid, parts_by_point, samples):
        mult = np.array([m for _, _, m in parts], dtype=float)
        totals = sample @ mult  # seconds of each repeat of the whole pass
        medians = np.array([typical_seconds(column) for column in sample.T])  # each part's expected time
        seconds = float(medians @ mult)  # as the document's layer_ms/head_ms show
        roof = None
        if peaks is not None:
            roof = _pass_roofline(shape, batch, new, settings.context, p, peaks.flops_per_s,
                                  peaks.bandwidth_bytes_per_s)
        layer = float(medians[0]) if len(parts) == 2 else None
        head = float(medians[1]) if len(parts) == 2 else None
        points.append(VerifyPoint(batch, new, seconds, roof, layer, head, _spread(totals)))
    scale, detail, copies = engine.layer_scale, engine.describe(), getattr(engine, "copies", None)
    del engine
    return _verify_result(shape, points, measured=True, detail=detail, dtype=dtype, device="this machine",
                          layer_scale=scale, weight_bytes=float(shape.weight_bytes(p)),
                          bandwidth_bytes_per_s=peaks.bandwidth_bytes_per_s if peaks else None, copies=copies,
                          sweeps=sweeps)


def _spread(values) -> float:
    values = np.asarray(values, dtype=float)
    med = float(np.median(values))
    return float((values.max() - values.min()) / med) if values.size > 1 and med > 0 else 0.0


def interleaved_samples(points, labels, settings: Settings, ticker: _Ticker) -> tuple[list[np.ndarray], int]:
    """Seconds of every part of every point, repeat by repeat: (repeats, parts) per point.

    The points are timed in sweeps (every point once per sweep, after ``warmup`` sweeps that are
    not kept), so a slow spell of a shared machine spreads over all points instead of bending the
    curve at a few. Sweeps are added (up to MAX_EXTRA_SWEEPS) while some point's repeats spread
    by more than STABLE_SPREAD; the spread that remains is reported.
    """
    samples: list[list[list[float]]] = [[] for _ in points]
    sweeps = 0
    target = settings.warmup + settings.repeats
    while True:
        for i, (parts, label) in enumerate(zip(points, labels)):
            ticker.show(label)
            row = []
            for _, call, _ in parts:
                start = time.perf_counter()
                call()
                row.append(time.perf_counter() - start)
            if sweeps >= settings.warmup:
                samples[i].append(row)
            ticker.tick(label, 1 if sweeps < target else 0)
        sweeps += 1
        if sweeps < target:
            continue
        arrays = [np.array(s) for s in samples]
        totals = [a @ np.array([m for _, _, m in parts], dtype=float) for a, parts in zip(arrays, points)]
        if max(_spread(t) for t in totals) <= STABLE_SPREAD or sweeps >= target + MAX_EXTRA_SWEEPS:
            return arrays, sweeps - settings.warmup


# --------------------------------------------------------------------------- the run


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def busy_note(machine: MachineInfo) -> str | None:
    """A warning when other processes keep the CPUs busy as the measurement starts: timings would
    come out inflated (BLAS threads that share cores with other work wait on each other)."""
    share = others_cpu_share()
    if share is None or share < BUSY_CPU_SHARE:
        return None
    return (f"other processes kept {share:.0%} of the {machine.logical_cores} CPUs busy as the measurement "
            "started: timings may be inflated; measure on an idle machine")


def run_profile(draft: ModelSpec, target: ModelSpec, settings: Settings, *, estimate: HardwareSpec | None = None,
                draft_estimate: HardwareSpec | None = None, measure_draft_here: bool | None = None,
                progress: Progress | None = None, machine: MachineInfo | None = None) -> HardwareProfile:
    """Measure or estimate the draft and the target.

    ``estimate`` puts the target (and, unless ``draft_estimate`` or ``measure_draft_here`` says
    otherwise, the draft) on a catalog device; without it both are measured on this machine.
    """
    started = time.perf_counter()
    settings.check()
    machine = machine or describe_machine()
    draft_hw = draft_estimate if draft_estimate is not None else (None if measure_draft_here else estimate)
    target_hw = estimate
    measuring = draft_hw is None or target_hw is None
    notes: list[str] = []
    warnings: list[str] = []
    for spec, role in ((draft, "draft"), (target, "target")):
        top = spec.shape.max_positions
        if top and settings.context + settings.max_draft_length + 1 > top:
            warnings.append(f"--context {settings.context} plus the draft goes beyond the {role} "
                            f"{spec.shape.name}'s max_position_embeddings ({top}); timed anyway")
    if draft.shape.vocab != target.shape.vocab:
        warnings.append(f"the draft's vocabulary ({draft.shape.vocab}) differs from the target's "
                        f"({target.shape.vocab}): speculative decoding needs a shared tokenizer")
    plan: list[tuple[str, int]] = []
    backend = None
    if measuring:
        busy = busy_note(machine)
        if busy:
            warnings.append(busy)
        backend = _backend(settings)
        plan = memory_plan(draft if draft_hw is None else None, target if target_hw is None else None, settings,
                           machine, backend)
        check_memory(plan, backend.memory_available(machine), machine.memory_total_bytes)
        if settings.backend == "numpy":
            for spec, hw in ((draft, draft_hw), (target, target_hw)):
                if hw is None and spec.weights_dir is not None:
                    notes.append(f"the numpy backend times synthetic weights at {spec.shape.name}'s shapes; the "
                                 f"checkpoint in {spec.weights_dir} is used by --backend torch only")
    for hw, spec, role in ((draft_hw, draft, "draft"), (target_hw, target, "target")):
        if hw is not None:
            if settings.dtype is not None:
                hw.flops(settings.dtype)  # an unknown dtype for this device fails before any work
            warnings += _hardware_notes(spec.shape, hw, settings, role)

    per_call = settings.warmup + settings.repeats
    total = (2 if measuring else 0) + (len(settings.round_lengths()) * per_call if draft_hw is None else 0) + (
        len(settings.grid()) * per_call if target_hw is None else 0)
    ticker = _Ticker(progress, total)

    peaks = None
    backend_detail = ""
    snapshot = cpu_snapshot() if measuring else None
    if measuring:
        ticker.show("measuring memory bandwidth and matmul rate")
        peaks = backend.measure_local_peaks(machine, settings)
        ticker.tick("measured memory bandwidth and matmul rate", 2)
        backend_detail = backend.describe_backend(settings)

    if draft_hw is None:
        draft_result = measure_draft(draft, settings, machine, backend, peaks, ticker)
    else:
        draft_result = estimate_draft(draft.shape, draft_hw, settings)
    if target_hw is None:
        verify_result = measure_verify(target, settings, machine, backend, peaks, ticker)
    else:
        verify_result = estimate_verify(target.shape, target_hw, settings)

    round_overhead = None
    if target_hw is None and settings.engine_loop:
        round_overhead = _engine_round_overhead(target, settings, ticker, notes)

    if verify_result.measured and verify_result.layer_scale > 1 and verify_result.model.hybrid:
        m = verify_result.model
        notes.append(f"target: one gated attention layer and one Gated DeltaNet layer were timed at each point and "
                     f"multiplied by {m.attention_layers} and {m.linear_layers} layers, plus the final norm and LM head")
    elif verify_result.measured and verify_result.layer_scale > 1:
        notes.append(f"target: one decoder layer was timed at each point and multiplied by {verify_result.layer_scale} "
                     "layers (every layer has the same shapes), plus the final norm and LM head")
    if verify_result.fit.clamped:
        notes.append("verify fit clamped: " + "; ".join(verify_result.fit.clamped))
    if draft_result.fit.clamped and draft_result.measured:  # a roofline's intercept is 0 up to rounding
        notes.append("draft fit clamped: " + "; ".join(draft_result.fit.clamped))
    if len(settings.batch_sizes) > 1:
        notes.append("a pass with more sequences takes longer at the same N (each sequence reads its own KV cache); "
                     "the table keeps the largest time per N; for a cell of K users, --batch-sizes K times exactly "
                     "the passes the planner asks for")
    for result, role in ((draft_result, "draft"), (verify_result, "target")):
        if result.measured and result.spread > STABLE_SPREAD:
            warnings.append(f"{role} timings still spread by {100 * result.spread:.0f} % over their repeats after "
                            f"{result.sweeps} sweeps: the machine was busy; re-measure on an idle machine")
    if verify_result.table.falls:
        notes.append(f"verify_table: {verify_result.table.falls} point(s) below a smaller N's time, kept as measured "
                     "(the planners take any shape; a fall larger than the spread is the kernels', not noise)")
    if not (draft_result.measured and verify_result.measured):
        notes.append("roofline estimates are lower bounds: kernel launches, imperfect overlap and software "
                     "overheads only add time")
    return HardwareProfile(settings=settings, machine=machine, peaks=peaks, draft=draft_result,
                           verify=verify_result, memory_plan=tuple(plan), notes=tuple(warnings + notes),
                           warnings=tuple(warnings), wall_seconds=time.perf_counter() - started,
                           backend_detail=backend_detail, peak_rss_bytes=_peak_rss() if measuring else None,
                           load_during_run=others_share_since(snapshot) if measuring else None,
                           round_overhead=round_overhead)


def _engine_round_overhead(target: ModelSpec, settings: Settings, ticker: _Ticker,
                           notes: list[str]) -> tuple[float, float] | None:
    """The serving engine's own time per round, from transformers' decoding loop when it is installed
    (see :func:`multispin_cli.hardware.engine.measure_round_overhead`); None, with a note, when not."""
    from multispin_cli.errors import MissingExtraError
    from multispin_cli.hardware import engine

    ticker.show("engine loop: its own time per round")
    try:
        measured = engine.measure_round_overhead(target.shape, new_tokens=24 if settings.quick else 48,
                                                 repeats=settings.repeats)
    except MissingExtraError:
        notes.append("round_overhead_ms not measured: it needs transformers (the extra validate); the profile's "
                     "[server] round_overhead_ms stays 0 unless set by hand")
        return None
    notes.append("round_overhead_ms: transformers' greedy decoding loop on a narrow copy of the target (its "
                 "vocabulary, one layer), its forward passes left out; process CPU time, one thread")
    return measured


def with_wall_time(profile: HardwareProfile, seconds: float) -> HardwareProfile:
    """The same profile with another wall time (the CLI includes its own start-up)."""
    return replace(profile, wall_seconds=seconds)


def verify_ms_table(result: VerifyResult) -> list[tuple[int, float]]:
    """The monotone table in the fragment's units: ``[(tokens, ms)]``."""
    return [(int(n), t * 1e3) for n, t in zip(result.table.x, result.table.y)]
