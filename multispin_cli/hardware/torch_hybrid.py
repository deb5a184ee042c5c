"""Hybrid (Qwen3.5-style) models on the torch backend: gated attention and Gated DeltaNet layers.

The same layers as the numpy backend's (:func:`~multispin_cli.hardware.numpy_backend.linear_layer_forward`),
in PyTorch on CUDA when present, else the CPU, with synthetic weights: a decode step updates each
Gated DeltaNet layer's recurrent state in place; a verification pass of N tokens starts from the
state of the last accepted token and writes the state after every position into its own
checkpoint slot, as vLLM does for speculative decoding. The recurrent state is kept in float32 (the
models' ``mamba_ssm_dtype``), everything else in the timing dtype. Real-weight loading covers dense
decoders only; a hybrid model folder is timed with synthetic weights at its shapes (the values do
not change the time). :mod:`~multispin_cli.hardware.torch_backend` dispatches here for hybrids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from multispin_cli.hardware import torch_backend as tb
from multispin_cli.hardware.models import DTYPE_BYTES, ModelShape
from multispin_cli.hardware.numpy_backend import DRAFT_DISTINCT_BYTES, attention_layer_indices


@dataclass
class GatedAttentionWeights:
    """One attention layer with the output gate's rows after the queries' in ``wqkv``."""

    wqkv: Any
    wo: Any
    w_gate_up: Any
    w_down: Any
    attn_norm: Any
    mlp_norm: Any
    q_norm: Any
    k_norm: Any


@dataclass
class DeltaNetWeights:
    """One Gated DeltaNet layer (see the numpy backend's ``LinearLayerWeights``)."""

    w_in: Any
    conv: Any
    a_log: Any
    dt_bias: Any
    out_norm: Any
    w_out: Any
    w_gate_up: Any
    w_down: Any
    attn_norm: Any
    mlp_norm: Any


@dataclass
class DeltaNetState:
    """Per-sequence state of one Gated DeltaNet layer, with verification checkpoints when ``max_new > 1``."""

    state: Any  # (batch, value_heads, d_k, d_v), float32
    conv: Any  # (batch, conv_width, kernel - 1)
    checkpoints: Any = None  # (batch, max_new, value_heads, d_k, d_v)
    conv_window: Any = None  # (batch, conv_width, kernel - 1 + max_new)


def _ones(n: int, dtype, device: str):
    return tb.require_torch().ones(n, dtype=dtype, device=device)


def attention_weights(s: ModelShape, syn) -> GatedAttentionWeights:
    h, i = s.hidden, s.intermediate
    return GatedAttentionWeights(
        wqkv=syn.array((s.q_out_width + 2 * s.kv_width, h), 1 / math.sqrt(h)),
        wo=syn.array((h, s.q_width), 1 / math.sqrt(s.q_width)),
        w_gate_up=syn.array((2 * i, h), 1 / math.sqrt(h)),
        w_down=syn.array((h, i), 1 / math.sqrt(i)),
        attn_norm=_ones(h, syn.dtype, syn.device), mlp_norm=_ones(h, syn.dtype, syn.device),
        q_norm=_ones(s.head_dim, syn.dtype, syn.device) if s.qk_norm else None,
        k_norm=_ones(s.head_dim, syn.dtype, syn.device) if s.qk_norm else None,
    )


def deltanet_weights(s: ModelShape, syn) -> DeltaNetWeights:
    torch = tb.require_torch()
    h, i, hv = s.hidden, s.intermediate, s.linear_value_heads
    return DeltaNetWeights(
        w_in=syn.array((s.linear_in_width, h), 1 / math.sqrt(h)),
        conv=syn.array((s.conv_width, s.conv_kernel), 1 / math.sqrt(s.conv_kernel)),
        a_log=torch.zeros(hv, dtype=torch.float32, device=syn.device),
        dt_bias=torch.ones(hv, dtype=torch.float32, device=syn.device),
        out_norm=_ones(s.linear_value_dim, syn.dtype, syn.device),
        w_out=syn.array((h, s.linear_value_width), 1 / math.sqrt(s.linear_value_width)),
        w_gate_up=syn.array((2 * i, h), 1 / math.sqrt(h)),
        w_down=syn.array((h, i), 1 / math.sqrt(i)),
        attn_norm=_ones(h, syn.dtype, syn.device), mlp_norm=_ones(h, syn.dtype, syn.device),
    )


def deltanet_state(s: ModelShape, syn, batch: int, max_new: int) -> DeltaNetState:
    torch = tb.require_torch()
    hv, dk, dv, k = s.linear_value_heads, s.linear_key_dim, s.linear_value_dim, s.conv_kernel - 1
    f32 = dict(dtype=torch.float32, device=syn.device)
    verify = max_new > 1
    return DeltaNetState(
        state=torch.full((batch, hv, dk, dv), 0.01, **f32),
        conv=syn.array((batch, s.conv_width, k)),
        checkpoints=torch.zeros((batch, max_new, hv, dk, dv), **f32) if verify else None,
        conv_window=torch.zeros((batch, s.conv_width, k + max_new), dtype=syn.dtype, device=syn.device)
        if verify else None,
    )


def state_nbytes(s: ModelShape, p: int, batch: int, max_new: int) -> int:
    """Bytes :func:`deltanet_state` allocates."""
    per_state = s.state_elements() * 4 * (1 + max_new if max_new > 1 else 1)
    conv = s.conv_state_elements() * p + (s.conv_width * max_new * p if max_new > 1 else 0)
    return batch * (per_state + conv)


def attention_forward(s: ModelShape, w: GatedAttentionWeights, x, k_cache, v_cache, pos: int, rope):
    """A gated attention layer: the dense layer of the torch backend with the sigmoid output gate."""
    torch = tb.require_torch()
    functional = torch.nn.functional
    b, n, _ = x.shape
    hs = tb.rms_norm(x, w.attn_norm)
    gate_width = s.q_out_width - s.q_width
    q, gate, k, v = functional.linear(hs, w.wqkv).split([s.q_width, gate_width, s.kv_width, s.kv_width], dim=-1)
    q = q.view(b, n, s.heads, s.head_dim)
    k = k.view(b, n, s.kv_heads, s.head_dim)
    if w.q_norm is not None:
        q, k = tb.rms_norm(q, w.q_norm), tb.rms_norm(k, w.k_norm)
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
    attn = attn.transpose(1, 2).reshape(b, n, s.q_width)
    if gate_width:
        attn = attn * torch.sigmoid(gate)
    x = x + functional.linear(attn, w.wo)
    g, up = functional.linear(tb.rms_norm(x, w.mlp_norm), w.w_gate_up).chunk(2, dim=-1)
    return x + functional.linear(functional.silu(g) * up, w.w_down)


def deltanet_forward(s: ModelShape, w: DeltaNetWeights, x, cache: DeltaNetState):
    """One Gated DeltaNet layer over ``x`` (batch, n, hidden): a decode step (``n == 1``) updates
    the state in place; a verification pass writes ``cache.checkpoints[:, i]`` after position ``i``."""
    torch = tb.require_torch()
    functional = torch.nn.functional
    b, n, h = x.shape
    hk, hv = s.linear_key_heads, s.linear_value_heads
    dk, dv = s.linear_key_dim, s.linear_value_dim
    kw, vw, cw = s.linear_key_width, s.linear_value_width, s.conv_width
    mixed, z, beta, a = functional.linear(tb.rms_norm(x, w.attn_norm), w.w_in).split([cw, vw, hv, hv], dim=-1)
    window = torch.cat([cache.conv[:b], mixed.transpose(1, 2)], dim=2)  # (b, cw, kernel - 1 + n)
    kernel = s.conv_kernel
    conv = functional.silu(functional.conv1d(window, w.conv.unsqueeze(1), groups=cw))  # (b, cw, n)
    if n == 1:
        cache.conv[:b] = window[:, :, 1:]
    else:
        cache.conv_window[:b, :, :kernel - 1 + n] = window
    conv = conv.transpose(1, 2).float()
    q = functional.normalize(conv[..., :kw].reshape(b, n, hk, dk), dim=-1) / math.sqrt(dk)
    k = functional.normalize(conv[..., kw:2 * kw].reshape(b, n, hk, dk), dim=-1)
    v = conv[..., 2 * kw:].reshape(b, n, hv, dv)
    if hv != hk:
        q = q.repeat_interleave(hv // hk, dim=2)
        k = k.repeat_interleave(hv // hk, dim=2)
    decay = torch.exp(-torch.exp(w.a_log) * functional.softplus(a.float() + w.dt_bias))  # (b, n, hv)
    beta = torch.sigmoid(beta.float())
    state = cache.state[:b]
    outs = []
    for i in range(n):
        s_i = state * decay[:, i, :, None, None]
        ki = k[:, i].unsqueeze(-2)  # (b, hv, 1, dk)
        delta = (v[:, i] - (ki @ s_i).squeeze(-2)) * beta[:, i, :, None]
        s_i = s_i + ki.transpose(-1, -2) * delta.unsqueeze(-2)
        outs.append((q[:, i].unsqueeze(-2) @ s_i).squeeze(-2))
        if n == 1:
            cache.state[:b] = s_i
        else:
            cache.checkpoints[:b, i] = s_i
        state = s_i
    out = torch.stack(outs, dim=1).to(x.dtype)  # (b, n, hv, dv)
    gated = tb.rms_norm(out, w.out_norm).reshape(b, n, vw) * functional.silu(z)
    x = x + functional.linear(gated, w.w_out)
    g, up = functional.linear(tb.rms_norm(x, w.mlp_norm), w.w_gate_up).chunk(2, dim=-1)
    return x + functional.linear(functional.silu(g) * up, w.w_down)


# --------------------------------------------------------------------------- runners


def _kind_copies(s: ModelShape, p: int, llc_bytes: int, device: str, whole: bool) -> tuple[int, int]:
    """Distinct (attention, Gated DeltaNet) layer copies: every layer of a small draft, else enough
    of each kind to defeat the cache."""
    if whole and s.stack_params * p <= DRAFT_DISTINCT_BYTES:
        return s.attention_layers, s.linear_layers
    cache = tb._cache_bytes(llc_bytes, device)
    return (tb._copies(s.attention_layers, s.layer_params * p, s.head_params * p, cache),
            tb._copies(s.linear_layers, s.linear_params * p, s.head_params * p, cache))


class _HybridRunner:
    def __init__(self, shape: ModelShape, *, dtype: str | None, weights_dir: Path | None, llc_bytes: int, seed: int,
                 whole: bool):
        tb._runner_basics(self, shape, dtype, seed)
        self.weights_dir = weights_dir
        p = DTYPE_BYTES[self.dtype]
        self.attention_copies, self.linear_copies = _kind_copies(shape, p, llc_bytes, self.device, whole)
        self.copies = self.attention_copies + self.linear_copies
        self.attention = [attention_weights(shape, self.synthetic) for _ in range(self.attention_copies)]
        self.linear = [deltanet_weights(shape, self.synthetic) for _ in range(self.linear_copies)]
        tb._synthetic_head(self, shape)

    def _where(self) -> str:
        ignored = f" (the weights in {self.weights_dir} are not loaded for hybrids)" if self.weights_dir else ""
        return f"torch {tb.require_torch().__version__} on {self.device}, {self.dtype}, synthetic weights{ignored}"


class HybridDraft(_HybridRunner):
    """The whole hybrid draft at batch 1: ``round(steps)`` chained greedy decode steps."""

    def __init__(self, shape: ModelShape, *, context: int, max_steps: int, llc_bytes: int, dtype: str | None = None,
                 weights_dir: Path | None = None):
        super().__init__(shape, dtype=dtype, weights_dir=weights_dir, llc_bytes=llc_bytes, seed=0, whole=True)
        positions = context + max_steps
        cache_shape = (1, shape.kv_heads, positions, shape.head_dim)
        self.k_cache = [self.synthetic.array(cache_shape) for _ in range(shape.attention_layers)]
        self.v_cache = [self.synthetic.array(cache_shape) for _ in range(shape.attention_layers)]
        self.states = [deltanet_state(shape, self.synthetic, 1, 1) for _ in range(shape.linear_layers)]
        at = attention_layer_indices(shape)
        self.kinds = []
        for i in range(shape.layers):
            kind = "attention" if i in at else "linear"
            self.kinds.append((kind, sum(1 for k, _ in self.kinds if k == kind)))
        self.rope = tb.Rope(shape.head_dim, positions, self.tdtype, self.device)
        self.context, self.max_steps = context, max_steps
        self.token = tb.require_torch().tensor([[1]], device=self.device)

    def describe(self) -> str:
        """How a round is run, in words."""
        s = self.shape
        return (f"{self._where()}: each decode step runs all {s.layers} layers ({s.linear_layers} Gated DeltaNet, "
                f"state updated in place, and {s.attention_layers} gated attention), the final norm, the LM head "
                "and a greedy argmax at batch 1; a round is L chained steps")

    def round(self, steps: int) -> None:
        """``steps`` decode steps from position ``context`` (synchronised)."""
        if not 1 <= steps <= self.max_steps:
            raise ValueError(f"steps must be in 1..{self.max_steps}, got {steps}")
        torch = tb.require_torch()
        s = self.shape
        with torch.inference_mode():
            token = self.token
            for i in range(steps):
                x = self.embedding[token]
                for kind, j in self.kinds:
                    if kind == "attention":
                        x = attention_forward(s, self.attention[j % self.attention_copies], x, self.k_cache[j],
                                              self.v_cache[j], self.context + i, self.rope)
                    else:
                        x = deltanet_forward(s, self.linear[j % self.linear_copies], x, self.states[j])
                token = tb.head_forward(x, self.norm, self.head)
            self.token = token
        tb._sync(self.device)


class HybridTarget(_HybridRunner):
    """Verification passes of a hybrid target: one layer of each kind (times its count) and the head."""

    def __init__(self, shape: ModelShape, *, context: int, max_batch: int, max_new: int, llc_bytes: int,
                 dtype: str | None = None, weights_dir: Path | None = None):
        super().__init__(shape, dtype=dtype, weights_dir=weights_dir, llc_bytes=llc_bytes, seed=1, whole=False)
        positions = context + max_new
        cache_shape = (max_batch, shape.kv_heads, positions, shape.head_dim)
        self.k_cache = self.synthetic.array(cache_shape)
        self.v_cache = self.synthetic.array(cache_shape)
        self.decode_state = deltanet_state(shape, self.synthetic, max_batch, 1)
        self.verify_state = deltanet_state(shape, self.synthetic, max_batch, max_new)
        self.rope = tb.Rope(shape.head_dim, positions, self.tdtype, self.device)
        self.context, self.max_batch, self.max_new = context, max_batch, max_new
        self._turn = 0
        self.loaded = False

    @property
    def layer_scale(self) -> int:
        """The timed layers stand for every layer."""
        return self.shape.layers

    def describe(self) -> str:
        """How a pass is timed, in words."""
        s = self.shape
        return (f"{self._where()}: one gated attention layer timed at the exact shapes and multiplied by "
                f"{s.attention_layers}, one Gated DeltaNet layer (float32 state; a verify pass writes the state "
                f"after every position, as vLLM does) multiplied by {s.linear_layers}, plus the final norm and "
                "LM head over every position")

    def parts(self, batch: int, new_tokens: int) -> list[tuple[str, Callable[[], object], int]]:
        """``[(name, call, multiplier)]``: the attention layer, the Gated DeltaNet layer and the head."""
        if not (1 <= batch <= self.max_batch and 1 <= new_tokens <= self.max_new):
            raise ValueError(f"batch {batch} / new tokens {new_tokens} exceed the allocated "
                             f"{self.max_batch} / {self.max_new}")
        torch = tb.require_torch()
        s = self.shape
        x = self.synthetic.array((batch, new_tokens, s.hidden))
        cache = self.decode_state if new_tokens == 1 else self.verify_state
        out: dict[str, Any] = {}

        def attention() -> None:
            with torch.inference_mode():
                w = self.attention[self._turn % self.attention_copies]
                out["y"] = attention_forward(s, w, x, self.k_cache, self.v_cache, self.context, self.rope)
            tb._sync(self.device)

        def linear() -> None:
            with torch.inference_mode():
                w = self.linear[self._turn % self.linear_copies]
                self._turn += 1
                deltanet_forward(s, w, x, cache)
            tb._sync(self.device)

        def head() -> None:
            with torch.inference_mode():
                tb.head_forward(out.get("y", x), self.norm, self.head)
            tb._sync(self.device)

        return [("attention layer", attention, s.attention_layers), ("linear layer", linear, s.linear_layers),
                ("head", head, 1)]


def draft_memory(shape: ModelShape, context: int, max_steps: int, llc_bytes: int, *, dtype: str | None = None,
                 weights_dir: Path | None = None) -> list[tuple[str, int]]:
    """What :class:`HybridDraft` will allocate (on the device), before allocating anything."""
    p = DTYPE_BYTES[tb.resolve_dtype(dtype)]
    s = shape
    attention, linear = _kind_copies(s, p, llc_bytes, tb.device_name(), True)
    positions = context + max_steps
    return [
        (f"draft weights: {attention} of {s.attention_layers} attention layers", attention * s.layer_params * p),
        (f"draft weights: {linear} of {s.linear_layers} Gated DeltaNet layers", linear * s.linear_params * p),
        ("draft LM head and embedding", s.head_params * p),
        ("draft KV cache", s.attention_layers * 2 * s.kv_width * positions * p),
        ("draft recurrent state", s.linear_layers * state_nbytes(s, p, 1, 1)),
    ]


def target_memory(shape: ModelShape, context: int, max_batch: int, max_new: int, max_tokens: int, llc_bytes: int, *,
                  dtype: str | None = None, weights_dir: Path | None = None) -> list[tuple[str, int]]:
    """What :class:`HybridTarget` will allocate (on the device), before allocating anything."""
    p = DTYPE_BYTES[tb.resolve_dtype(dtype)]
    s = shape
    attention, linear = _kind_copies(s, p, llc_bytes, tb.device_name(), False)
    positions = context + max_new
    return [
        (f"target weights: {attention} of {s.attention_layers} attention layers", attention * s.layer_params * p),
        (f"target weights: {linear} of {s.linear_layers} Gated DeltaNet layers", linear * s.linear_params * p),
        ("target LM head", s.head_params * p),
        ("target KV cache (1 layer)", 2 * max_batch * s.kv_width * positions * p),
        (f"target recurrent state and {max_new} checkpoints per sequence (1 layer)",
         state_nbytes(s, p, max_batch, max_new) + state_nbytes(s, p, max_batch, 1)),
        ("target activations", max_tokens * (4 * s.intermediate + 8 * s.hidden + s.linear_in_width + s.vocab) * 4),
    ]
