"""The default measuring backend: a Llama-style decoder in numpy at exact shapes, synthetic weights.

One layer is what a real one is: RMSNorm, the fused QKV projection, RoPE, attention with grouped KV
heads over a KV cache (causal within the new tokens), the O projection, a residual, RMSNorm, the
fused gate+up projection, SiLU gating, the down projection and a residual. The LM head is an
RMSNorm and a ``hidden x vocab`` matmul with a greedy argmax.

Hybrid models (Qwen3.5) also have Gated DeltaNet layers, run as the engines run them (see
:func:`linear_layer_forward`): the fused input projection, the depthwise causal convolution with its
saved inputs, the gated delta rule token by token over a float32 recurrent state per value head,
the gated RMSNorm and the output projection, then the same MLP. A decode step updates the state in
place; a verification pass of N tokens starts from the state at the last accepted token and writes
the state after every position into its own checkpoint slot, as vLLM does for speculative decoding,
so a rejection only changes which slot the next round starts from. Their attention layers carry the
sigmoid output gate from the widened query projection.

Weights are synthetic (a tiled pseudo-random block, scaled by 1/sqrt(fan-in)): a dense matmul takes
the same time whatever the values are, and filling at memory speed keeps start-up short. The dtype
is float32: numpy has no fast float16 matmul (it does not call BLAS for float16), so a 16-bit run
would time numpy's fallback loops, not the hardware. A layer whose weights fit in the last-level
cache would be timed from cache, which a full model never is; distinct copies of the layer are
cycled through until the working set is at least twice the cache.

Nothing here prints or reads files; the timing harness lives in :mod:`~multispin_cli.hardware.profiling`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from multispin_cli.hardware.models import ModelShape
from multispin_cli.hardware.roofline import LocalPeaks

NAME = "numpy"
DTYPE = np.float32
BYTES = 4
ROPE_THETA = 10000.0
EPS = 1e-6
_BLOCK = 4099  # prime length: the tiled pattern does not line up with power-of-two rows
DRAFT_DISTINCT_BYTES = 2**30  # a draft whose layers fit in this is run with every layer distinct


class Filler:
    """Fills arrays at memory speed with a tiled deterministic pseudo-random block."""

    def __init__(self, seed: int = 0):
        self.block = np.random.default_rng(seed).standard_normal(_BLOCK).astype(DTYPE)

    def fill(self, array: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Overwrite ``array`` (C-contiguous) with the block times ``scale``; returns it."""
        flat = array.reshape(-1)
        block = self.block * DTYPE(scale)
        whole = flat.size // block.size
        if whole:
            flat[: whole * block.size].reshape(whole, block.size)[...] = block
        rest = flat.size - whole * block.size
        if rest:
            flat[whole * block.size:] = block[:rest]
        return array

    def array(self, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
        """A new filled float32 array."""
        return self.fill(np.empty(shape, dtype=DTYPE), scale)


@dataclass
class LayerWeights:
    """One decoder layer in PyTorch's ``Linear`` layout (``out x in``), QKV and gate+up fused.

    ``W @ x.T`` with this layout measured about 20% faster through OpenBLAS than ``x @ W`` with
    ``in x out`` weights at the small token counts of decoding and verification.
    """

    wqkv: np.ndarray  # (q_out_width + 2 kv_width, hidden): q rows (then the output gate's), then k, then v
    wo: np.ndarray  # (hidden, q_width)
    w_gate_up: np.ndarray  # (2 intermediate, hidden): gate rows first, then up
    w_down: np.ndarray  # (hidden, intermediate)
    attn_norm: np.ndarray  # (hidden,)
    mlp_norm: np.ndarray  # (hidden,)
    q_norm: np.ndarray | None = None  # (head_dim,)
    k_norm: np.ndarray | None = None

    @classmethod
    def synthetic(cls, shape: ModelShape, filler: Filler) -> "LayerWeights":
        h, i = shape.hidden, shape.intermediate
        qkv = shape.q_out_width + 2 * shape.kv_width
        norm = np.ones(h, dtype=DTYPE)
        return cls(
            wqkv=filler.array((qkv, h), 1 / math.sqrt(h)),
            wo=filler.array((h, shape.q_width), 1 / math.sqrt(shape.q_width)),
            w_gate_up=filler.array((2 * i, h), 1 / math.sqrt(h)),
            w_down=filler.array((h, i), 1 / math.sqrt(i)),
            attn_norm=norm,
            mlp_norm=norm.copy(),
            q_norm=np.ones(shape.head_dim, dtype=DTYPE) if shape.qk_norm else None,
            k_norm=np.ones(shape.head_dim, dtype=DTYPE) if shape.qk_norm else None,
        )

    @property
    def nbytes(self) -> int:
        arrays = (self.wqkv, self.wo, self.w_gate_up, self.w_down, self.attn_norm, self.mlp_norm,
                  self.q_norm, self.k_norm)
        return sum(a.nbytes for a in arrays if a is not None)


@dataclass
class LinearLayerWeights:
    """One Gated DeltaNet layer (``out x in`` layout): the fused input projection (q, k, v, the gate
    z, beta's and the decay's logits), the depthwise convolution, the decay parameters, the gated
    norm, the output projection and the MLP."""

    w_in: np.ndarray  # (linear_in_width, hidden)
    conv: np.ndarray  # (conv_width, kernel)
    a_log: np.ndarray  # (value_heads,)
    dt_bias: np.ndarray  # (value_heads,)
    out_norm: np.ndarray  # (value_dim,)
    w_out: np.ndarray  # (hidden, value_width)
    w_gate_up: np.ndarray
    w_down: np.ndarray
    attn_norm: np.ndarray
    mlp_norm: np.ndarray

    @classmethod
    def synthetic(cls, shape: ModelShape, filler: Filler) -> "LinearLayerWeights":
        h, i = shape.hidden, shape.intermediate
        hv = shape.linear_value_heads
        return cls(
            w_in=filler.array((shape.linear_in_width, h), 1 / math.sqrt(h)),
            conv=filler.array((shape.conv_width, shape.conv_kernel), 1 / math.sqrt(shape.conv_kernel)),
            a_log=np.zeros(hv, dtype=DTYPE),
            dt_bias=np.ones(hv, dtype=DTYPE),
            out_norm=np.ones(shape.linear_value_dim, dtype=DTYPE),
            w_out=filler.array((h, shape.linear_value_width), 1 / math.sqrt(shape.linear_value_width)),
            w_gate_up=filler.array((2 * i, h), 1 / math.sqrt(h)),
            w_down=filler.array((h, i), 1 / math.sqrt(i)),
            attn_norm=np.ones(h, dtype=DTYPE),
            mlp_norm=np.ones(h, dtype=DTYPE),
        )


@dataclass
class LinearState:
    """What one Gated DeltaNet layer keeps per sequence: the recurrent state, the convolution's
    last ``kernel - 1`` inputs, and (for verification) one state checkpoint per new position plus
    the convolution window they came from."""

    state: np.ndarray  # (batch, value_heads, d_k, d_v)
    conv: np.ndarray  # (batch, conv_width, kernel - 1)
    checkpoints: np.ndarray | None = None  # (batch, max_new, value_heads, d_k, d_v)
    conv_window: np.ndarray | None = None  # (batch, conv_width, kernel - 1 + max_new)

    @classmethod
    def synthetic(cls, shape: ModelShape, filler: Filler, batch: int, max_new: int) -> "LinearState":
        hv, dk, dv = shape.linear_value_heads, shape.linear_key_dim, shape.linear_value_dim
        k = shape.conv_kernel - 1
        verify = max_new > 1
        return cls(
            state=filler.array((batch, hv, dk, dv), 0.01),
            conv=filler.array((batch, shape.conv_width, k)),
            checkpoints=np.zeros((batch, max_new, hv, dk, dv), dtype=DTYPE) if verify else None,
            conv_window=np.zeros((batch, shape.conv_width, k + max_new), dtype=DTYPE) if verify else None,
        )

    @staticmethod
    def nbytes_for(shape: ModelShape, batch: int, max_new: int) -> int:
        """Bytes :meth:`synthetic` allocates."""
        per_state = shape.state_elements() * BYTES
        conv = shape.conv_state_elements() * BYTES
        if max_new > 1:
            per_state *= 1 + max_new
            conv += shape.conv_width * max_new * BYTES
        return batch * (per_state + conv)


def layer_bytes(shape: ModelShape) -> int:
    """Bytes of one (attention) layer's float32 weights."""
    return shape.layer_params * BYTES


def linear_layer_bytes(shape: ModelShape) -> int:
    """Bytes of one Gated DeltaNet layer's float32 weights."""
    return shape.linear_params * BYTES if shape.hybrid else 0


def attention_layer_indices(shape: ModelShape) -> frozenset[int]:
    """Which of the layers are softmax-attention layers: spread evenly, the last of each group
    (Qwen3.5: layers 3, 7, 11, ...); every layer of a dense model."""
    n, a = shape.layers, shape.attention_layers
    return frozenset(i for i in range(n) if (i + 1) * a // n > i * a // n)


def linear(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w.T`` for ``x`` of shape ``(tokens, in)`` and ``w`` of shape ``(out, in)``."""
    return np.matmul(w, x.T).T


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float = EPS) -> np.ndarray:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last axis."""
    scale = 1.0 / np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True) + DTYPE(eps))
    return (x * scale) * weight


class Rope:
    """Rotary position embedding tables (the half-split form of Llama's Hugging Face code)."""

    def __init__(self, head_dim: int, positions: int, theta: float = ROPE_THETA):
        inv = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
        angles = np.outer(np.arange(positions, dtype=np.float64), inv)
        self.cos = np.cos(angles).astype(DTYPE)
        self.sin = np.sin(angles).astype(DTYPE)

    def apply(self, x: np.ndarray, pos: int) -> np.ndarray:
        """Rotate ``x`` of shape ``(batch, heads, n, head_dim)`` for positions ``pos .. pos+n-1``."""
        n, half = x.shape[2], x.shape[3] // 2
        cos, sin = self.cos[pos:pos + n], self.sin[pos:pos + n]
        x1, x2 = x[..., :half], x[..., half:]
        out = np.empty(x.shape, dtype=DTYPE)
        np.multiply(x1, cos, out=out[..., :half])
        out[..., :half] -= x2 * sin
        np.multiply(x2, cos, out=out[..., half:])
        out[..., half:] += x1 * sin
        return out


def layer_forward(shape: ModelShape, w: LayerWeights, x: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray,
                  pos: int, rope: Rope) -> np.ndarray:
    """One decoder layer over ``x`` of shape ``(batch, n, hidden)`` at positions ``pos .. pos+n-1``.

    ``k_cache``/``v_cache`` have shape ``(max_batch, kv_heads, max_positions, head_dim)``; the new
    keys and values are written at ``pos``, and every new token attends to positions ``0 .. pos+i``.
    """
    b, n, h = x.shape
    t = b * n
    hq, hkv, d = shape.heads, shape.kv_heads, shape.head_dim
    group = hq // hkv

    hs = rms_norm(x, w.attn_norm).reshape(t, h)
    qkv = linear(hs, w.wqkv)
    q = qkv[:, : hq * d].reshape(b, n, hq, d)
    qo = shape.q_out_width  # the output gate's rows follow the queries' when the model has one
    k = qkv[:, qo:qo + hkv * d].reshape(b, n, hkv, d)
    v = qkv[:, qo + hkv * d:].reshape(b, n, hkv, d)
    if w.q_norm is not None:
        q = rms_norm(q, w.q_norm)
        k = rms_norm(k, w.k_norm)
    q = rope.apply(q.transpose(0, 2, 1, 3), pos)  # (b, hq, n, d), contiguous
    k = rope.apply(k.transpose(0, 2, 1, 3), pos)
    k_cache[:b, :, pos:pos + n] = k
    v_cache[:b, :, pos:pos + n] = v.transpose(0, 2, 1, 3)
    length = pos + n
    keys = k_cache[:b, :, :length]
    values = v_cache[:b, :, :length]

    # Query head j uses KV head j // group: stack each KV head's group of queries as rows.
    qg = q.reshape(b, hkv, group * n, d)
    scores = np.matmul(qg, keys.swapaxes(-1, -2))
    scores *= DTYPE(1.0 / math.sqrt(d))
    if n > 1:  # causal inside the new tokens: row r is token r % n, which sees positions <= pos + r % n
        token = np.arange(group * n) % n
        hidden_pos = np.arange(length)[None, :] > (pos + token)[:, None]
        scores[..., hidden_pos] = -np.inf
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    attn = np.matmul(scores, values).reshape(b, hq, n, d).transpose(0, 2, 1, 3).reshape(t, hq * d)
    if shape.attn_output_gate:
        attn = attn * sigmoid(qkv[:, hq * d:qo])
    x = x + linear(attn, w.wo).reshape(b, n, h)

    hs = rms_norm(x, w.mlp_norm).reshape(t, h)
    gate_up = linear(hs, w.w_gate_up)
    inter = shape.intermediate
    gate, up = gate_up[:, :inter], gate_up[:, inter:]
    with np.errstate(over="ignore"):  # exp(-gate) may overflow to inf for very negative gates: SiLU -> 0
        act = gate / (1.0 + np.exp(-gate)) * up  # SiLU(gate) * up
    return x + linear(act, w.w_down).reshape(b, n, h)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` (overflow to inf gives 0, as it should)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _mlp(shape: ModelShape, w, x: np.ndarray) -> np.ndarray:
    b, n, h = x.shape
    hs = rms_norm(x, w.mlp_norm).reshape(b * n, h)
    gate_up = linear(hs, w.w_gate_up)
    inter = shape.intermediate
    act = gate_up[:, :inter] * sigmoid(gate_up[:, :inter]) * gate_up[:, inter:]
    return x + linear(act, w.w_down).reshape(b, n, h)


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.sum(np.square(x), axis=-1, keepdims=True) + DTYPE(EPS))


def linear_layer_forward(shape: ModelShape, w: LinearLayerWeights, x: np.ndarray, cache: LinearState) -> np.ndarray:
    """One Gated DeltaNet decoder layer over ``x`` of shape ``(batch, n, hidden)``.

    ``n == 1`` is a decode step: the convolution inputs and the recurrent state are updated in
    place. ``n > 1`` is a verification pass: it starts from the state of the last accepted token
    and writes the state after each of the ``n`` positions to ``cache.checkpoints[:, i]`` (and the
    convolution window to ``cache.conv_window``), leaving the starting state untouched, so the next
    round resumes from whichever position was accepted.
    """
    b, n, h = x.shape
    t = b * n
    hk, hv = shape.linear_key_heads, shape.linear_value_heads
    dk, dv = shape.linear_key_dim, shape.linear_value_dim
    kw, vw = shape.linear_key_width, shape.linear_value_width
    cw = shape.conv_width

    hs = rms_norm(x, w.attn_norm).reshape(t, h)
    proj = linear(hs, w.w_in)  # (t, 2 kw + 2 vw + 2 hv)
    mixed = proj[:, :cw].reshape(b, n, cw).transpose(0, 2, 1)  # (b, cw, n): q, k, v channels
    z = proj[:, cw:cw + vw]
    beta = sigmoid(proj[:, cw + vw:cw + vw + hv]).reshape(b, n, hv)
    a = proj[:, cw + vw + hv:].reshape(b, n, hv)

    # depthwise causal convolution over the saved kernel-1 inputs and the n new ones, then SiLU
    window = np.concatenate([cache.conv[:b], mixed], axis=2)  # (b, cw, kernel - 1 + n)
    kernel = shape.conv_kernel
    conv = window[:, :, 0:n] * w.conv[None, :, 0, None]
    for j in range(1, kernel):
        conv += window[:, :, j:j + n] * w.conv[None, :, j, None]
    conv = conv * sigmoid(conv)
    if n == 1:
        cache.conv[:b] = window[:, :, 1:]
    else:
        cache.conv_window[:b, :, :kernel - 1 + n] = window
    conv = conv.transpose(0, 2, 1)  # (b, n, cw)
    q = _l2_normalize(conv[..., :kw].reshape(b, n, hk, dk)) * DTYPE(1.0 / math.sqrt(dk))
    k = _l2_normalize(conv[..., kw:2 * kw].reshape(b, n, hk, dk))
    v = conv[..., 2 * kw:].reshape(b, n, hv, dv)
    if hv != hk:  # each key head serves hv / hk value heads
        q = np.repeat(q, hv // hk, axis=2)
        k = np.repeat(k, hv // hk, axis=2)

    # decay g = -exp(A_log) softplus(a + dt_bias), applied as exp(g)
    decay = np.exp(-np.exp(w.a_log) * np.logaddexp(DTYPE(0.0), a + w.dt_bias)).astype(DTYPE)
    state = cache.state[:b]
    out = np.empty((b, n, hv, dv), dtype=DTYPE)
    for i in range(n):
        s_i = state * decay[:, i, :, None, None]  # reads the state (or the previous position's)
        ki, qi = k[:, i, :, None, :], q[:, i, :, None, :]  # (b, hv, 1, dk)
        delta = (v[:, i] - np.matmul(ki, s_i)[:, :, 0]) * beta[:, i, :, None]
        s_i += ki.transpose(0, 1, 3, 2) * delta[:, :, None, :]  # rank-one delta-rule update
        out[:, i] = np.matmul(qi, s_i)[:, :, 0]
        if n == 1:
            cache.state[:b] = s_i
        else:
            cache.checkpoints[:b, i] = s_i  # the state after position i, for rollback
        state = s_i

    # gated RMSNorm per value head, then the output projection
    gated = rms_norm(out, w.out_norm).reshape(t, vw) * (z * sigmoid(z))
    x = x + linear(gated, w.w_out).reshape(b, n, h)
    return _mlp(shape, w, x)


def head_forward(x: np.ndarray, norm: np.ndarray, w_head: np.ndarray) -> np.ndarray:
    """Final RMSNorm and LM head (``vocab x hidden``) over every position; the greedy token of each."""
    b, n, h = x.shape
    logits = linear(rms_norm(x, norm).reshape(b * n, h), w_head)
    return logits.argmax(axis=-1).reshape(b, n)


def copies_needed(layers: int, layer_nbytes: int, other_nbytes: int, llc_bytes: int) -> int:
    """Distinct layer copies so that one timed pass touches at least twice the last-level cache."""
    missing = 2 * llc_bytes - other_nbytes
    if missing <= 0 or layer_nbytes <= 0:
        return 1
    return max(1, min(layers, math.ceil(missing / layer_nbytes)))


def draft_copies(shape: ModelShape, llc_bytes: int) -> int:
    """Distinct layers of the draft: all of them when they fit in DRAFT_DISTINCT_BYTES (a draft is
    small: run the real thing), else enough to defeat the cache. A hybrid draft: see
    :func:`draft_kind_copies`."""
    if shape.hybrid:
        return sum(draft_kind_copies(shape, llc_bytes))
    total = shape.layers * layer_bytes(shape)
    if total <= DRAFT_DISTINCT_BYTES:
        return shape.layers
    return copies_needed(shape.layers, layer_bytes(shape), shape.head_params * BYTES, llc_bytes)


def draft_kind_copies(shape: ModelShape, llc_bytes: int) -> tuple[int, int]:
    """Distinct (attention, Gated DeltaNet) layers of a hybrid draft, by the same rule."""
    if shape.stack_params * BYTES <= DRAFT_DISTINCT_BYTES:
        return shape.attention_layers, shape.linear_layers
    head = shape.head_params * BYTES
    return (copies_needed(shape.attention_layers, layer_bytes(shape), head, llc_bytes),
            copies_needed(shape.linear_layers, linear_layer_bytes(shape), head, llc_bytes))


def target_kind_copies(shape: ModelShape, llc_bytes: int) -> tuple[int, int]:
    """Distinct (attention, Gated DeltaNet) layer copies the target cycles through."""
    head = shape.head_params * BYTES
    attention = copies_needed(shape.attention_layers, layer_bytes(shape), head, llc_bytes)
    if not shape.hybrid:
        return attention, 0
    return attention, copies_needed(shape.linear_layers, linear_layer_bytes(shape), head, llc_bytes)


# --------------------------------------------------------------------------- memory plans


def draft_memory(shape: ModelShape, context: int, max_steps: int, llc_bytes: int) -> list[tuple[str, int]]:
    """What :class:`NumpyDraft` will allocate, item by item, before it allocates anything."""
    lb = layer_bytes(shape)
    head = shape.head_params * BYTES
    copies = draft_copies(shape, llc_bytes)
    positions = context + max_steps
    if shape.hybrid:
        attention, linear_copies = draft_kind_copies(shape, llc_bytes)
        weights = [(f"draft weights: {attention} of {shape.attention_layers} attention layers", attention * lb),
                   (f"draft weights: {linear_copies} of {shape.linear_layers} Gated DeltaNet layers",
                    linear_copies * linear_layer_bytes(shape)),
                   (f"draft recurrent state ({shape.linear_layers} layers)",
                    shape.linear_layers * LinearState.nbytes_for(shape, 1, 1))]
    else:
        weights = [(f"draft weights: {copies} of {shape.layers} layers", copies * lb)]
    items = [
        *weights,
        ("draft LM head" + (" (tied with the embedding)" if shape.tied_embeddings else " and embedding"),
         head * (1 if shape.tied_embeddings else 2)),
        (f"draft KV cache ({positions} positions x {shape.attention_layers} layers)",
         shape.attention_layers * 2 * shape.kv_width * positions * BYTES),
        ("draft activations", (shape.heads * positions + 4 * shape.intermediate + 2 * shape.vocab) * BYTES),
    ]
    return items


def target_memory(shape: ModelShape, context: int, max_batch: int, max_new: int, max_tokens: int,
                  llc_bytes: int) -> list[tuple[str, int]]:
    """What :class:`NumpyTarget` will allocate, item by item, before it allocates anything."""
    lb = layer_bytes(shape)
    head = shape.head_params * BYTES
    copies, linear_copies = target_kind_copies(shape, llc_bytes)
    positions = context + max_new
    scores = max_batch * shape.heads * max_new * positions * BYTES
    activations = max_tokens * (2 * (shape.q_out_width + 2 * shape.kv_width + shape.linear_in_width)
                                + 4 * shape.intermediate + 6 * shape.hidden + shape.vocab) * BYTES
    hybrid = []
    if shape.hybrid:
        hybrid = [(f"target weights: {linear_copies} of {shape.linear_layers} Gated DeltaNet layers",
                   linear_copies * linear_layer_bytes(shape)),
                  (f"target recurrent state and {max_new} checkpoints per sequence ({max_batch} sequences, one layer)",
                   LinearState.nbytes_for(shape, max_batch, max_new) + LinearState.nbytes_for(shape, max_batch, 1))]
    return [
        *hybrid,
        (f"target weights: {copies} of {shape.attention_layers} {'attention ' if shape.hybrid else ''}layers",
         copies * lb),
        ("target LM head", head),
        (f"target KV cache ({max_batch} x {positions} positions, one layer)",
         2 * max_batch * shape.kv_width * positions * BYTES),
        ("target attention scores (x2 while normalising)", 2 * scores),
        ("target activations", activations),
    ]


def peaks_memory(llc_bytes: int) -> list[tuple[str, int]]:
    """The arrays :func:`measure_bandwidth` and :func:`measure_matmul_flops` allocate."""
    return [("bandwidth test array", bandwidth_array_bytes(llc_bytes)), ("matmul test", 3 * 2048 * 2048 * BYTES)]


# --------------------------------------------------------------------------- runners


class NumpyDraft:
    """The whole draft model at batch 1: ``round(steps)`` runs ``steps`` chained greedy decode steps.

    Each step embeds the previous token, runs every layer (each with its own weights, or cycling
    over copies for a large draft, see :func:`draft_copies`; each layer has its own KV cache), the
    final norm, the LM head and argmax,
    and feeds the token back. A round starts at position ``context`` (the cache holds that many
    tokens already), like a draft continuing a conversation.
    """

    def __init__(self, shape: ModelShape, *, context: int, max_steps: int, llc_bytes: int, seed: int = 0):
        filler = Filler(seed)
        self.shape = shape
        self.context = context
        self.copies = draft_copies(shape, llc_bytes)
        attention, linear_copies = draft_kind_copies(shape, llc_bytes) if shape.hybrid else (self.copies, 0)
        self.attention_copies, self.linear_copies = attention, linear_copies
        self.weights = [LayerWeights.synthetic(shape, filler) for _ in range(attention)]
        self.linear_weights = [LinearLayerWeights.synthetic(shape, filler) for _ in range(linear_copies)]
        self.head = filler.array((shape.vocab, shape.hidden), 1 / math.sqrt(shape.hidden))
        self.embedding = self.head if shape.tied_embeddings else filler.array((shape.vocab, shape.hidden))
        self.norm = np.ones(shape.hidden, dtype=DTYPE)
        positions = context + max_steps
        cache_shape = (1, shape.kv_heads, positions, shape.head_dim)
        # layer i -> ("attention", its index among attention layers) or ("linear", its index among those)
        attention_at = attention_layer_indices(shape)
        self.kinds: list[tuple[str, int]] = []
        for i in range(shape.layers):
            kind = "attention" if i in attention_at else "linear"
            self.kinds.append((kind, sum(1 for k, _ in self.kinds if k == kind)))
        self.k_cache = [filler.array(cache_shape) for _ in range(shape.attention_layers)]
        self.v_cache = [filler.array(cache_shape) for _ in range(shape.attention_layers)]
        self.states = [LinearState.synthetic(shape, filler, 1, 1) for _ in range(shape.linear_layers)]
        self.rope = Rope(shape.head_dim, positions)
        self.max_steps = max_steps
        self.token = 1

    dtype = "float32"

    def describe(self) -> str:
        """How a round is run, in words."""
        s = self.shape
        reuse = "" if self.copies == s.layers else (
            f" ({self.copies} distinct weight cop{'y' if self.copies == 1 else 'ies'} cycled through the "
            f"{s.layers} layers: with the LM head they exceed twice the last-level cache, so weights stream "
            "from memory as in the full model)")
        if s.hybrid:
            reuse = "" if self.copies == s.layers else (
                f" ({self.attention_copies} attention and {self.linear_copies} Gated DeltaNet weight copies cycled "
                "through: with the LM head they exceed twice the last-level cache, so weights stream from memory)")
            return (f"numpy float32, synthetic weights: each decode step runs all {s.layers} layers "
                    f"({s.linear_layers} Gated DeltaNet, state updated in place, and {s.attention_layers} gated "
                    f"attention){reuse}, the final norm, the LM head and a greedy argmax at batch 1; a round is L "
                    "chained steps")
        return (f"numpy float32, synthetic weights: each decode step runs all {s.layers} layers{reuse}, the final "
                "norm, the LM head and a greedy argmax at batch 1; a round is L chained steps")

    def _embed(self, token: int) -> np.ndarray:
        return self.embedding[token].reshape(1, 1, self.shape.hidden).copy()

    def round(self, steps: int) -> None:
        """``steps`` decode steps from position ``context``."""
        if not 1 <= steps <= self.max_steps:
            raise ValueError(f"steps must be in 1..{self.max_steps}, got {steps}")
        token = self.token
        for i in range(steps):
            x = self._embed(token)
            for kind, j in self.kinds:
                if kind == "attention":
                    x = layer_forward(self.shape, self.weights[j % self.attention_copies], x, self.k_cache[j],
                                      self.v_cache[j], self.context + i, self.rope)
                else:
                    x = linear_layer_forward(self.shape, self.linear_weights[j % self.linear_copies], x,
                                             self.states[j])
            token = int(head_forward(x, self.norm, self.head)[0, 0])
        self.token = token


class NumpyTarget:
    """One target layer and the LM head, sized for a grid of (batch, new tokens) passes.

    ``parts(batch, new_tokens)`` returns the two calls to time: the layer (cycling over distinct
    copies, see :func:`copies_needed`) and the head, whose input is that layer's output. The layer's
    time is multiplied by the layer count: every layer of a dense decoder has the same shapes.
    """

    def __init__(self, shape: ModelShape, *, context: int, max_batch: int, max_new: int, llc_bytes: int,
                 seed: int = 1):
        filler = Filler(seed)
        self.shape = shape
        self.context = context
        self.copies, self.linear_copies = target_kind_copies(shape, llc_bytes)
        self.weights = [LayerWeights.synthetic(shape, filler) for _ in range(self.copies)]
        self.linear_weights = [LinearLayerWeights.synthetic(shape, filler) for _ in range(self.linear_copies)]
        # decode passes (one token) update a state in place; verification passes write checkpoints
        self.decode_state = LinearState.synthetic(shape, filler, max_batch, 1) if shape.hybrid else None
        self.verify_state = LinearState.synthetic(shape, filler, max_batch, max_new) if shape.hybrid else None
        self._linear_turn = 0
        self.head = filler.array((shape.vocab, shape.hidden), 1 / math.sqrt(shape.hidden))
        self.norm = np.ones(shape.hidden, dtype=DTYPE)
        positions = context + max_new
        cache_shape = (max_batch, shape.kv_heads, positions, shape.head_dim)
        self.k_cache = filler.array(cache_shape)
        self.v_cache = filler.array(cache_shape)
        self.rope = Rope(shape.head_dim, positions)
        self.filler = filler
        self.max_batch, self.max_new = max_batch, max_new
        self._turn = 0

    dtype = "float32"

    @property
    def layer_scale(self) -> int:
        """The timed layer stands for every layer."""
        return self.shape.layers

    def describe(self) -> str:
        """How a pass is timed, in words."""
        s = self.shape
        copies = "" if self.copies == 1 else (
            f" (cycling over {self.copies} distinct copies so it is not timed from cache)")
        if s.hybrid:
            return (f"numpy float32, synthetic weights: one gated attention layer timed at the exact shapes and "
                    f"multiplied by {s.attention_layers}, one Gated DeltaNet layer (float32 state; a verify pass "
                    f"writes the state after every position, as vLLM does) multiplied by {s.linear_layers}, plus "
                    "the final norm and LM head over every position")
        return (f"numpy float32, synthetic weights: one decoder layer timed at the exact shapes{copies} and multiplied "
                f"by {s.layers} layers, plus the final norm and LM head over every position")

    def parts(self, batch: int, new_tokens: int) -> list[tuple[str, Callable[[], object], int]]:
        """``[(name, call, multiplier)]``: the layer (x layers) and the LM head (x 1)."""
        if not (1 <= batch <= self.max_batch and 1 <= new_tokens <= self.max_new):
            raise ValueError(f"batch {batch} / new tokens {new_tokens} exceed the allocated "
                             f"{self.max_batch} / {self.max_new}")
        x = self.filler.array((batch, new_tokens, self.shape.hidden))
        out: dict[str, np.ndarray] = {"x": x}

        def layer() -> None:
            w = self.weights[self._turn % self.copies]
            self._turn += 1
            out["y"] = layer_forward(self.shape, w, x, self.k_cache, self.v_cache, self.context, self.rope)

        def head() -> None:
            head_forward(out.get("y", x), self.norm, self.head)

        if not self.shape.hybrid:
            return [("layer", layer, self.shape.layers), ("head", head, 1)]
        cache = self.decode_state if new_tokens == 1 else self.verify_state

        def linear_layer() -> None:
            w = self.linear_weights[self._linear_turn % self.linear_copies]
            self._linear_turn += 1
            linear_layer_forward(self.shape, w, x, cache)

        return [("attention layer", layer, self.shape.attention_layers),
                ("linear layer", linear_layer, self.shape.linear_layers), ("head", head, 1)]


# --------------------------------------------------------------------------- the machine's peaks


def bandwidth_array_bytes(llc_bytes: int) -> int:
    """Size of the bandwidth test array: well beyond the caches."""
    return max(256 * 2**20, 8 * llc_bytes)


def _best_time(call: Callable[[], object], warmup: int, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls: a peak rate is the best the machine achieves."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return float(min(samples))


def measure_bandwidth(llc_bytes: int, *, repeats: int = 3) -> tuple[float, str]:
    """Best streaming read rate of a float32 array many times the cache: a sum (numpy, one thread)
    and a matrix-vector product (BLAS, every thread) -- the access pattern of a decode step."""
    n = bandwidth_array_bytes(llc_bytes) // BYTES
    cols = 4096
    rows = n // cols
    a = Filler(7).array((rows, cols))
    x = np.ones(cols, dtype=DTYPE)
    rates = {
        "sum": a.nbytes / _best_time(a.sum, 1, repeats),
        "gemv": a.nbytes / _best_time(lambda: a @ x, 1, repeats),
    }
    best = max(rates, key=rates.get)
    detail = ", ".join(f"{k} {v / 1e9:.3g} GB/s" for k, v in rates.items())
    return rates[best], (f"fastest streaming read of a {a.nbytes / 2**20:.0f} MiB float32 array, best of "
                         f"{repeats} ({detail})")


def measure_matmul_flops(*, size: int = 2048, repeats: int = 3) -> tuple[float, str]:
    """float32 matmul rate of an ``size x size`` square product through numpy's BLAS."""
    filler = Filler(11)
    a = filler.array((size, size))
    b = filler.array((size, size))
    seconds = _best_time(lambda: a @ b, 1, repeats)
    return 2.0 * size**3 / seconds, f"float32 {size}x{size} matmul through BLAS, best of {repeats}"


def measure_local_peaks(machine, settings) -> LocalPeaks:
    """Memory bandwidth and float32 matmul rate of this machine, measured with numpy."""
    quick = settings.quick
    bandwidth, bw_method = measure_bandwidth(machine.llc_bytes, repeats=5 if quick else 9)
    flops, fl_method = measure_matmul_flops(size=1536 if quick else 2048, repeats=2 if quick else 3)
    return LocalPeaks(bandwidth, flops, bw_method, fl_method, "float32")


def memory_available(machine) -> int | None:
    """Memory a new allocation can get now (the runners allocate in RAM)."""
    from multispin_cli.hardware.machine import memory_available_bytes

    return memory_available_bytes()


def describe_backend(settings) -> str:
    """The backend in a few words."""
    return f"numpy {np.__version__}, float32"


def make_draft(shape: ModelShape, *, context: int, max_steps: int, llc_bytes: int) -> "NumpyDraft":
    """The draft runner (see :class:`NumpyDraft`)."""
    return NumpyDraft(shape, context=context, max_steps=max_steps, llc_bytes=llc_bytes)


def make_target(shape: ModelShape, *, context: int, max_batch: int, max_new: int, llc_bytes: int) -> "NumpyTarget":
    """The target runner (see :class:`NumpyTarget`)."""
    return NumpyTarget(shape, context=context, max_batch=max_batch, max_new=max_new, llc_bytes=llc_bytes)
