"""The optional torch backend (extra ``torch``): the same decoder in PyTorch, on CUDA when present.

Two modes, per model:

- a Hugging Face model folder (``--target path/to/folder`` holding ``config.json`` and
  ``*.safetensors`` or ``pytorch_model*.bin``): the real weights are loaded (nothing is
  downloaded; safetensors files are read by a small built-in reader, so only torch is needed) and
  every pass runs the whole model;
- a catalog name or a bare ``config.json``: synthetic weights at the exact shapes, timed like the
  numpy backend (one target layer multiplied by the layer count, the whole draft).

The forward pass is Llama's (RMSNorm, fused QKV, RoPE, grouped-KV attention through
``scaled_dot_product_attention``, gated SiLU MLP, LM head), eager, under ``inference_mode``; CUDA
work is synchronised before each timer stops. The dtype is selectable (default bfloat16 on CUDA,
float32 on CPU). torch is imported only when this backend is used.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from multispin_cli.errors import InputError, MissingExtraError
from multispin_cli.hardware.models import DTYPE_BYTES, ModelShape
from multispin_cli.hardware.roofline import LocalPeaks

NAME = "torch"
GPU_CACHE_BYTES = 64 * 2**20  # an upper bound of current GPUs' L2, for the distinct-copies rule
DRAFT_DISTINCT_BYTES = 2**30  # a synthetic draft whose layers fit in this runs every layer distinct
ROPE_THETA = 10000.0
EPS = 1e-6

_SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
                       "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def require_torch():
    """The torch module, or a :class:`MissingExtraError` naming the extra to install."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError("the torch backend (--backend torch)", "torch", "torch") from None
    return torch


def device_name() -> str:
    """``cuda`` when a CUDA device is usable, else ``cpu``."""
    torch = require_torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None) -> str:
    """The dtype to time in: the one asked for, else bfloat16 on CUDA and float32 on CPU."""
    if dtype is not None:
        return dtype
    return "bfloat16" if device_name() == "cuda" else "float32"


def _torch_dtype(dtype: str):
    torch = require_torch()
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]


def _sync(device: str) -> None:
    if device == "cuda":
        require_torch().cuda.synchronize()


# --------------------------------------------------------------------------- reading checkpoints


def read_safetensors(path: Path) -> dict[str, Any]:
    """Every tensor of a ``.safetensors`` file (8-byte little-endian header length, a JSON header
    of ``name -> {dtype, shape, data_offsets}``, then the raw data), as CPU tensors."""
    torch = require_torch()
    tensors = {}
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 2 <= size <= 100 * 2**20:
                raise ValueError(f"implausible header length {size}")
            header = json.loads(handle.read(size))
            base = 8 + size
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
                if dtype is None:
                    raise ValueError(f"tensor {name}: unsupported dtype {info['dtype']}")
                start, end = info["data_offsets"]
                handle.seek(base + start)
                data = bytearray(handle.read(end - start))
                if len(data) != end - start:
                    raise ValueError(f"tensor {name}: file ends early")
                tensor = torch.frombuffer(data, dtype=getattr(torch, dtype)) if data else torch.empty(
                    0, dtype=getattr(torch, dtype))
                tensors[name] = tensor.reshape(info["shape"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a readable safetensors file: {exc}", path=path) from None
    return tensors


def read_checkpoint(folder: Path) -> dict[str, Any]:
    """Every tensor of a Hugging Face model folder (all ``*.safetensors``, else ``pytorch_model*.bin``)."""
    torch = require_torch()
    files = sorted(folder.glob("*.safetensors"))
    tensors: dict[str, Any] = {}
    if files:
        for file in files:
            tensors.update(read_safetensors(file))
        return tensors
    for file in sorted(folder.glob("pytorch_model*.bin")):
        try:
            tensors.update(torch.load(file, map_location="cpu", weights_only=True))
        except Exception as exc:  # a corrupt pickle raises many kinds of errors
            raise InputError(f"not a readable PyTorch checkpoint: {type(exc).__name__}: {exc}", path=file) from None
    if not tensors:
        raise InputError("no *.safetensors or pytorch_model*.bin weights in this folder", path=folder)
    return tensors


# --------------------------------------------------------------------------- the model


@dataclass
class TorchLayer:
    """One decoder layer in ``Linear`` layout (``out x in``), QKV and gate+up fused."""

    wqkv: Any
    wo: Any
    w_gate_up: Any
    w_down: Any
    attn_norm: Any
    mlp_norm: Any
    q_norm: Any = None
    k_norm: Any = None


def _filled(shape: tuple[int, ...], scale: float, dtype, device: str, block):
    torch = require_torch()
    out = torch.empty(shape, dtype=dtype, device=device)
    flat = out.view(-1)
    whole = flat.numel() // block.numel()
    if whole:
        flat[: whole * block.numel()].view(whole, block.numel()).copy_((block * scale).expand(whole, -1))
    rest = flat.numel() - whole * block.numel()
    if rest:
        flat[whole * block.numel():].copy_(block[:rest] * scale)
    return out


class _Synthetic:
    """Pseudo-random weights at memory speed (values do not change the time of a dense pass)."""

    def __init__(self, dtype, device: str, seed: int = 0):
        torch = require_torch()
        gen = torch.Generator().manual_seed(seed)
        self.block = torch.randn(4099, generator=gen).to(device=device, dtype=dtype)
        self.dtype, self.device = dtype, device

    def array(self, shape: tuple[int, ...], scale: float = 1.0):
        """A new filled tensor on the device."""
        return _filled(shape, scale, self.dtype, self.device, self.block)

    def layer(self, s: ModelShape) -> TorchLayer:
        """One synthetic layer at the shapes of ``s``."""
        torch = require_torch()
        h, i = s.hidden, s.intermediate
        ones = lambda n: torch.ones(n, dtype=self.dtype, device=self.device)  # noqa: E731
        return TorchLayer(
            wqkv=self.array((s.q_width + 2 * s.kv_width, h), 1 / math.sqrt(h)),
            wo=self.array((h, s.q_width), 1 / math.sqrt(s.q_width)),
            w_gate_up=self.array((2 * i, h), 1 / math.sqrt(h)),
            w_down=self.array((h, i), 1 / math.sqrt(i)),
            attn_norm=ones(h), mlp_norm=ones(h),
            q_norm=ones(s.head_dim) if s.qk_norm else None,
            k_norm=ones(s.head_dim) if s.qk_norm else None,
        )


@dataclass
class LoadedModel:
    """Real weights of a whole model, on the device, in the timing dtype."""

    layers: list[TorchLayer]
    embedding: Any  # (vocab, hidden)
    norm: Any
    head: Any  # (vocab, hidden); the embedding itself when tied


def load_weights(folder: Path, shape: ModelShape, dtype: str, device: str) -> LoadedModel:
    """The checkpoint in ``folder`` mapped onto :class:`TorchLayer` (Hugging Face Llama/Qwen names)."""
    torch = require_torch()
    tensors = read_checkpoint(folder)
    target = _torch_dtype(dtype)

    def get(name: str, expected: tuple[int, ...]):
        for key in (name, f"model.{name}" if not name.startswith("model.") else name[len("model."):]):
            if key in tensors:
                tensor = tensors[key]
                if tuple(tensor.shape) != expected:
                    raise InputError(f"tensor {key} has shape {tuple(tensor.shape)}, config.json implies {expected}",
                                     path=folder)
                return tensor.to(device=device, dtype=target)
        raise InputError(f"checkpoint has no tensor {name} (is it a Llama-style model?)", path=folder)

    s = shape
    layers = []
    for i in range(s.layers):
        p = f"model.layers.{i}."
        q = get(p + "self_attn.q_proj.weight", (s.q_width, s.hidden))
        k = get(p + "self_attn.k_proj.weight", (s.kv_width, s.hidden))
        v = get(p + "self_attn.v_proj.weight", (s.kv_width, s.hidden))
        gate = get(p + "mlp.gate_proj.weight", (s.intermediate, s.hidden))
        up = get(p + "mlp.up_proj.weight", (s.intermediate, s.hidden))
        layers.append(TorchLayer(
            wqkv=torch.cat([q, k, v]), wo=get(p + "self_attn.o_proj.weight", (s.hidden, s.q_width)),
            w_gate_up=torch.cat([gate, up]), w_down=get(p + "mlp.down_proj.weight", (s.hidden, s.intermediate)),
            attn_norm=get(p + "input_layernorm.weight", (s.hidden,)),
            mlp_norm=get(p + "post_attention_layernorm.weight", (s.hidden,)),
            q_norm=get(p + "self_attn.q_norm.weight", (s.head_dim,)) if s.qk_norm else None,
            k_norm=get(p + "self_attn.k_norm.weight", (s.head_dim,)) if s.qk_norm else None,
        ))
        del q, k, v, gate, up
    embedding = get("model.embed_tokens.weight", (s.vocab, s.hidden))
    head = embedding if s.tied_embeddings or "lm_head.weight" not in tensors else get(
        "lm_head.weight", (s.vocab, s.hidden))
    return LoadedModel(layers, embedding, get("model.norm.weight", (s.hidden,)), head)


def rms_norm(x, weight, eps: float = EPS):
    """RMSNorm computed in float32 (as Hugging Face's Llama does), returned in ``x``'s dtype."""
    torch = require_torch()
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * weight


class Rope:
    """Rotary tables on the device (the half-split form of Hugging Face's Llama)."""

    def __init__(self, head_dim: int, positions: int, dtype, device: str, theta: float = ROPE_THETA):
        torch = require_torch()
        inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.outer(torch.arange(positions, dtype=torch.float64), inv)
        self.cos = angles.cos().to(device=device, dtype=dtype)
        self.sin = angles.sin().to(device=device, dtype=dtype)

    def apply(self, x, pos: int):
        """Rotate ``x`` (batch, heads, n, head_dim) for positions ``pos .. pos+n-1``."""
        torch = require_torch()
        n, half = x.shape[2], x.shape[3] // 2
        cos, sin = self.cos[pos:pos + n], self.sin[pos:pos + n]
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def layer_forward(s: ModelShape, w: TorchLayer, x, k_cache, v_cache, pos: int, rope: Rope):
    """One decoder layer over ``x`` (batch, n, hidden) at positions ``pos .. pos+n-1`` (see the
    numpy backend's :func:`~multispin_cli.hardware.numpy_backend.layer_forward`)."""
    torch = require_torch()
    functional = torch.nn.functional
    b, n, _ = x.shape
    hs = rms_norm(x, w.attn_norm)
    q, k, v = functional.linear(hs, w.wqkv).split([s.q_width, s.kv_width, s.kv_width], dim=-1)
    q = q.view(b, n, s.heads, s.head_dim)
    k = k.view(b, n, s.kv_heads, s.head_dim)
    if w.q_norm is not None:
        q, k = rms_norm(q, w.q_norm), rms_norm(k, w.k_norm)
    q = rope.apply(q.transpose(1, 2), pos)
    k = rope.apply(k.transpose(1, 2), pos)
    k_cache[:b, :, pos:pos + n] = k
    v_cache[:b, :, pos:pos + n] = v.view(b, n, s.kv_heads, s.head_dim).transpose(1, 2)
    length = pos + n
    mask = None
    if n > 1:
        rows = torch.arange(n, device=x.device)[:, None] + pos
        mask = torch.arange(length, device=x.device)[None, :] <= rows
    attn = functional.scaled_dot_product_attention(q, k_cache[:b, :, :length], v_cache[:b, :, :length],
                                                   attn_mask=mask, enable_gqa=s.heads != s.kv_heads)
    x = x + functional.linear(attn.transpose(1, 2).reshape(b, n, s.q_width), w.wo)
    gate, up = functional.linear(rms_norm(x, w.mlp_norm), w.w_gate_up).chunk(2, dim=-1)
    return x + functional.linear(functional.silu(gate) * up, w.w_down)


def head_forward(x, norm, head):
    """Final RMSNorm, LM head over every position, greedy tokens."""
    return require_torch().nn.functional.linear(rms_norm(x, norm), head).argmax(-1)


def _copies(layers: int, layer_nbytes: int, other_nbytes: int, cache_bytes: int) -> int:
    missing = 2 * cache_bytes - other_nbytes
    if missing <= 0 or layer_nbytes <= 0:
        return 1
    return max(1, min(layers, math.ceil(missing / layer_nbytes)))


def _cache_bytes(llc_bytes: int, device: str) -> int:
    return GPU_CACHE_BYTES if device == "cuda" else llc_bytes


def _synthetic_copies(s: ModelShape, p: int, llc_bytes: int, device: str, whole: bool) -> int:
    """Distinct synthetic layers: every layer of a small draft (``whole``), else enough to defeat the cache."""
    if whole and s.layers * s.layer_params * p <= DRAFT_DISTINCT_BYTES:
        return s.layers
    return _copies(s.layers, s.layer_params * p, s.head_params * p, _cache_bytes(llc_bytes, device))


# --------------------------------------------------------------------------- runners


def _hybrid():
    """The hybrid (Gated DeltaNet) runners, which build on this module."""
    from multispin_cli.hardware import torch_hybrid

    return torch_hybrid


def _runner_basics(runner, shape: ModelShape, dtype: str | None, seed: int) -> None:
    """What every runner (dense or hybrid) sets first: shape, device, dtype and its synthetic weights."""
    runner.shape = shape
    runner.device = device_name()
    runner.dtype = resolve_dtype(dtype)
    runner.tdtype = _torch_dtype(runner.dtype)
    runner.synthetic = _Synthetic(runner.tdtype, runner.device, seed)


def _synthetic_head(runner, shape: ModelShape) -> None:
    """Synthetic output head (tied to the embedding) and final norm of a runner."""
    runner.head = runner.synthetic.array((shape.vocab, shape.hidden), 1 / math.sqrt(shape.hidden))
    runner.embedding = runner.head
    runner.norm = require_torch().ones(shape.hidden, dtype=runner.tdtype, device=runner.device)


class _Runner:
    def __init__(self, shape: ModelShape, *, dtype: str | None, weights_dir: Path | None, llc_bytes: int, seed: int,
                 whole: bool = False):
        _runner_basics(self, shape, dtype, seed)
        s = shape
        p = DTYPE_BYTES[self.dtype]
        if weights_dir is not None:
            model = load_weights(weights_dir, s, self.dtype, self.device)
            self.layers, self.embedding, self.norm, self.head = model.layers, model.embedding, model.norm, model.head
            self.copies = s.layers
            self.loaded = True
        else:
            self.copies = _synthetic_copies(s, p, llc_bytes, self.device, whole)
            self.layers = [self.synthetic.layer(s) for _ in range(self.copies)]
            _synthetic_head(self, s)
            self.loaded = False
        self.weights_dir = weights_dir

    def _where(self) -> str:
        return f"torch {require_torch().__version__} on {self.device}, {self.dtype}"


class TorchDraft(_Runner):
    """The whole draft at batch 1: ``round(steps)`` chained greedy decode steps from ``context``."""

    def __init__(self, shape: ModelShape, *, context: int, max_steps: int, llc_bytes: int, dtype: str | None = None,
                 weights_dir: Path | None = None):
        super().__init__(shape, dtype=dtype, weights_dir=weights_dir, llc_bytes=llc_bytes, seed=0, whole=True)
        positions = context + max_steps
        cache_shape = (1, shape.kv_heads, positions, shape.head_dim)
        self.k_cache = [self.synthetic.array(cache_shape) for _ in range(shape.layers)]
        self.v_cache = [self.synthetic.array(cache_shape) for _ in range(shape.layers)]
        self.rope = Rope(shape.head_dim, positions, self.tdtype, self.device)
        self.context, self.max_steps = context, max_steps
        self.token = require_torch().tensor([[1]], device=self.device)

    def describe(self) -> str:
        """How a round is run, in words."""
        s = self.shape
        weights = f"weights loaded from {self.weights_dir}" if self.loaded else "synthetic weights"
        reuse = "" if self.copies == s.layers else f" ({self.copies} distinct weight copies cycled through them)"
        return (f"{self._where()}, {weights}: each decode step runs all {s.layers} layers{reuse}, the final norm, "
                "the LM head and a greedy argmax at batch 1; a round is L chained steps")

    def round(self, steps: int) -> None:
        """``steps`` decode steps from position ``context`` (synchronised)."""
        if not 1 <= steps <= self.max_steps:
            raise ValueError(f"steps must be in 1..{self.max_steps}, got {steps}")
        torch = require_torch()
        with torch.inference_mode():
            token = self.token
            for i in range(steps):
                x = self.embedding[token]
                for layer in range(self.shape.layers):
                    x = layer_forward(self.shape, self.layers[layer % self.copies], x, self.k_cache[layer],
                                      self.v_cache[layer], self.context + i, self.rope)
                token = head_forward(x, self.norm, self.head)
            self.token = token
        _sync(self.device)


class TorchTarget(_Runner):
    """Verification passes: the whole model with loaded weights, else one layer (x layers) + head."""

    def __init__(self, shape: ModelShape, *, context: int, max_batch: int, max_new: int, llc_bytes: int,
                 dtype: str | None = None, weights_dir: Path | None = None):
        super().__init__(shape, dtype=dtype, weights_dir=weights_dir, llc_bytes=llc_bytes, seed=1)
        positions = context + max_new
        cache_shape = (max_batch, shape.kv_heads, positions, shape.head_dim)
        caches = shape.layers if self.loaded else 1
        self.k_cache = [self.synthetic.array(cache_shape) for _ in range(caches)]
        self.v_cache = [self.synthetic.array(cache_shape) for _ in range(caches)]
        self.rope = Rope(shape.head_dim, positions, self.tdtype, self.device)
        self.context, self.max_batch, self.max_new = context, max_batch, max_new
        self._turn = 0

    @property
    def layer_scale(self) -> int:
        """1 when the whole model runs, else the layer count the timed layer stands for."""
        return 1 if self.loaded else self.shape.layers

    def describe(self) -> str:
        """How a pass is timed, in words."""
        s = self.shape
        if self.loaded:
            return (f"{self._where()}, weights loaded from {self.weights_dir}: every pass runs all {s.layers} layers, "
                    "the final norm and the LM head over every position")
        copies = "" if self.copies == 1 else f" (cycling over {self.copies} distinct copies)"
        return (f"{self._where()}, synthetic weights: one decoder layer timed at the exact shapes{copies} and "
                f"multiplied by {s.layers} layers, plus the final norm and LM head over every position")

    def parts(self, batch: int, new_tokens: int) -> list[tuple[str, Callable[[], object], int]]:
        """``[(name, call, multiplier)]``: the whole forward pass, or the layer (x layers) and the head."""
        if not (1 <= batch <= self.max_batch and 1 <= new_tokens <= self.max_new):
            raise ValueError(f"batch {batch} / new tokens {new_tokens} exceed the allocated "
                             f"{self.max_batch} / {self.max_new}")
        torch = require_torch()
        x = self.synthetic.array((batch, new_tokens, self.shape.hidden))
        out: dict[str, Any] = {}
        s = self.shape

        def full() -> None:
            with torch.inference_mode():
                y = x
                for layer in range(s.layers):
                    y = layer_forward(s, self.layers[layer], y, self.k_cache[layer], self.v_cache[layer],
                                      self.context, self.rope)
                head_forward(y, self.norm, self.head)
            _sync(self.device)

        def layer() -> None:
            with torch.inference_mode():
                w = self.layers[self._turn % self.copies]
                self._turn += 1
                out["y"] = layer_forward(s, w, x, self.k_cache[0], self.v_cache[0], self.context, self.rope)
            _sync(self.device)

        def head() -> None:
            with torch.inference_mode():
                head_forward(out.get("y", x), self.norm, self.head)
            _sync(self.device)

        if self.loaded:
            return [("forward", full, 1)]
        return [("layer", layer, s.layers), ("head", head, 1)]


# --------------------------------------------------------------------------- the backend interface


def _p(dtype: str | None) -> int:
    return DTYPE_BYTES[resolve_dtype(dtype)]


def draft_memory(shape: ModelShape, context: int, max_steps: int, llc_bytes: int, *, dtype: str | None = None,
                 weights_dir: Path | None = None) -> list[tuple[str, int]]:
    """What :class:`TorchDraft` will allocate (on the device), before allocating anything."""
    if shape.hybrid:
        return _hybrid().draft_memory(shape, context, max_steps, llc_bytes, dtype=dtype, weights_dir=weights_dir)
    p = _p(dtype)
    s = shape
    copies = s.layers if weights_dir else _synthetic_copies(s, p, llc_bytes, device_name(), True)
    head = s.head_params * p * (1 if (s.tied_embeddings or not weights_dir) else 2)
    positions = context + max_steps
    return [
        (f"draft weights: {copies} of {s.layers} layers", copies * s.layer_params * p),
        ("draft LM head and embedding", head),
        ("draft KV cache", s.layers * 2 * s.kv_width * positions * p),
    ]


def target_memory(shape: ModelShape, context: int, max_batch: int, max_new: int, max_tokens: int, llc_bytes: int, *,
                  dtype: str | None = None, weights_dir: Path | None = None) -> list[tuple[str, int]]:
    """What :class:`TorchTarget` will allocate (on the device), before allocating anything."""
    if shape.hybrid:
        return _hybrid().target_memory(shape, context, max_batch, max_new, max_tokens, llc_bytes, dtype=dtype,
                                       weights_dir=weights_dir)
    p = _p(dtype)
    s = shape
    copies = s.layers if weights_dir else _synthetic_copies(s, p, llc_bytes, device_name(), False)
    caches = s.layers if weights_dir else 1
    positions = context + max_new
    head = s.head_params * p * (1 if (s.tied_embeddings or not weights_dir) else 2)
    return [
        (f"target weights: {copies} of {s.layers} layers", copies * s.layer_params * p),
        ("target LM head and embedding", head),
        (f"target KV cache ({caches} layer{'s' if caches > 1 else ''})",
         caches * 2 * max_batch * s.kv_width * positions * p),
        ("target activations", max_tokens * (4 * s.intermediate + 8 * s.hidden + s.vocab) * 4),
    ]


def peaks_memory(llc_bytes: int) -> list[tuple[str, int]]:
    """The arrays :func:`measure_local_peaks` allocates."""
    return [("bandwidth test array", 512 * 2**20), ("matmul test", 3 * 4096 * 4096 * 4)]


def memory_available(machine) -> int | None:
    """Free memory where the runners allocate: the GPU's when on CUDA, else the machine's."""
    torch = require_torch()
    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return int(free)
    return machine.memory_available_bytes


def _best(call: Callable[[], object], device: str, warmup: int, repeats: int) -> float:
    """The fastest of ``repeats`` synchronised calls (a peak rate is the best the device achieves)."""
    for _ in range(warmup):
        call()
    _sync(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        _sync(device)
        samples.append(time.perf_counter() - start)
    return min(samples)


def measure_local_peaks(machine, settings) -> LocalPeaks:
    """Memory bandwidth (a streaming sum) and matmul rate in the timing dtype, on the device."""
    torch = require_torch()
    device = device_name()
    dtype = resolve_dtype(settings.dtype)
    tdtype = _torch_dtype(dtype)
    a = torch.ones(512 * 2**20 // 4, dtype=torch.float32, device=device)
    bandwidth = a.numel() * 4 / _best(a.sum, device, 1, 5 if settings.quick else 9)
    del a
    size = 4096 if device == "cuda" else (1536 if settings.quick else 2048)
    x = torch.ones(size, size, dtype=tdtype, device=device)
    y = torch.ones(size, size, dtype=tdtype, device=device)
    flops = 2.0 * size**3 / _best(lambda: x @ y, device, 1, 3)
    return LocalPeaks(bandwidth, flops, f"float32 streaming sum of 512 MiB on {device}, best of 9",
                      f"{dtype} {size}x{size} matmul on {device}, best of 3", dtype)


def describe_backend(settings) -> str:
    """The backend in a few words: torch version, device, dtype."""
    torch = require_torch()
    device = device_name()
    where = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    return f"torch {torch.__version__} on {device} ({where}), {resolve_dtype(settings.dtype)}"


def make_draft(shape: ModelShape, *, context: int, max_steps: int, llc_bytes: int, dtype: str | None = None,
               weights_dir: Path | None = None) -> TorchDraft:
    """The draft runner (see :class:`TorchDraft`)."""
    if shape.hybrid:
        return _hybrid().HybridDraft(shape, context=context, max_steps=max_steps, llc_bytes=llc_bytes, dtype=dtype,
                                     weights_dir=weights_dir)
    return TorchDraft(shape, context=context, max_steps=max_steps, llc_bytes=llc_bytes, dtype=dtype,
                      weights_dir=weights_dir)


def make_target(shape: ModelShape, *, context: int, max_batch: int, max_new: int, llc_bytes: int,
                dtype: str | None = None, weights_dir: Path | None = None) -> TorchTarget:
    """The target runner (see :class:`TorchTarget`)."""
    if shape.hybrid:
        return _hybrid().HybridTarget(shape, context=context, max_batch=max_batch, max_new=max_new,
                                      llc_bytes=llc_bytes, dtype=dtype, weights_dir=weights_dir)
    return TorchTarget(shape, context=context, max_batch=max_batch, max_new=max_new, llc_bytes=llc_bytes,
                       dtype=dtype, weights_dir=weights_dir)
