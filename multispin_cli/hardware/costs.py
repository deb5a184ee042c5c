"""FLOP and byte counts of one decoder forward pass, operation by operation (pure).

A pass processes ``batch`` sequences of ``new_tokens`` each (``T = batch * new_tokens`` positions)
on top of a KV cache of ``context`` tokens per sequence; every query attends to the
``context + new_tokens`` positions of its sequence (the causal mask hides some of them, but a dense
kernel computes the whole block, so the work is counted in full).

Counted per layer: the QKV projection, attention (QK^T and PV), the O projection, the gated MLP's
gate+up and down projections. Per pass: the LM head over every position. A matmul of ``T`` rows
``d_in -> d_out`` costs ``2 T d_in d_out`` FLOP and moves its weights once plus its input and
output activations. Attention reads the K and V of every attended position and writes the new
ones. Norms, RoPE, softmax, SiLU and the embedding lookup are O(T h) elementwise work against
O(T h^2) for the matmuls, and are left out of both counts.

Hybrid models (Qwen3.5) have two kinds of layer. Their softmax-attention layers are counted as
above, with the query projection twice as wide when it also yields the output gate. Their Gated
DeltaNet layers have no KV cache: each sequence carries a recurrent state ``S`` of
``value_heads x d_k x d_v`` values per layer (and the last ``kernel - 1`` inputs of a short causal
convolution). Per token and value head the recurrence decays ``S`` (``d_k d_v`` FLOP), reads it
against the key (``2 d_k d_v``), adds the rank-one delta-rule update (``2 d_k d_v``) and reads it
against the query (``2 d_k d_v``): ``7 d_k d_v`` FLOP. For the bytes, a pass of ``N`` tokens is
counted as vLLM runs speculative verification of hybrid models (``vllm/v1/attention/backends/
gdn_attn.py``: each speculating request owns ``num_spec + 1`` state slots,
``spec_state_indices_tensor``, and the fused recurrent kernel starts from the slot of the last
accepted token and writes the state after every position into its own slot, so rejecting drafts
is a change of index, not a recomputation): the state is read once per sequence and written once
per position, ``N`` checkpoints. The convolution reads its ``kernel - 1`` saved inputs and keeps
the ``N`` new ones. A decode step (``N = 1``) reads and writes the state once. The state is kept in
``state_dtype`` (float32 in Qwen3.5's configs, ``mamba_ssm_dtype``), the rest in the pass's dtype.
SGLang writes the same per-position states (``intermediate_ssm`` and ``intermediate_conv_window``
in ``python/sglang/srt/layers/attention/hybrid_linear_attn_backend.py``) and then copies the
accepted one back into the request's state (``update_mamba_state_after_mtp_verify``): one more
state read and write per sequence and round, after the pass, which this count leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass

from multispin_cli.hardware.models import DTYPE_BYTES, ModelShape


@dataclass(frozen=True)
class OpCost:
    """One operation: its FLOP and the bytes it moves, by kind."""

    name: str
    flop: float
    weight_bytes: float = 0.0
    kv_bytes: float = 0.0
    activation_bytes: float = 0.0

    @property
    def bytes(self) -> float:
        """Every byte moved to or from memory."""
        return self.weight_bytes + self.kv_bytes + self.activation_bytes


@dataclass(frozen=True)
class PassCost:
    """One forward pass: the ops of one attention layer (repeated ``layers`` times), of one Gated
    DeltaNet layer (repeated ``linear_layers`` times; none in a dense model) and of the LM head."""

    layers: int
    layer_ops: tuple[OpCost, ...]
    head_ops: tuple[OpCost, ...]
    linear_layers: int = 0
    linear_ops: tuple[OpCost, ...] = ()

    def _total(self, attr: str) -> float:
        return sum(count * getattr(op, attr) for op, count in self.ops())

    @property
    def flop(self) -> float:
        """FLOP of the whole pass."""
        return self._total("flop")

    @property
    def bytes(self) -> float:
        """Bytes moved by the whole pass."""
        return self._total("bytes")

    @property
    def weight_bytes(self) -> float:
        """Weight bytes streamed by the whole pass (each weight read once)."""
        return self._total("weight_bytes")

    @property
    def kv_bytes(self) -> float:
        """KV-cache and recurrent-state bytes read and written by the whole pass."""
        return self._total("kv_bytes")

    def ops(self) -> list[tuple[OpCost, int]]:
        """Every op with how many times it runs in the pass."""
        return ([(op, self.layers) for op in self.layer_ops] + [(op, self.linear_layers) for op in self.linear_ops]
                + [(op, 1) for op in self.head_ops])


def matmul(name: str, tokens: int, d_in: int, d_out: int, bytes_per_value: int) -> OpCost:
    """``tokens`` rows through a ``d_in x d_out`` weight: weights once, activations in and out."""
    return OpCost(
        name,
        flop=2.0 * tokens * d_in * d_out,
        weight_bytes=float(d_in * d_out * bytes_per_value),
        activation_bytes=float(tokens * (d_in + d_out) * bytes_per_value),
    )


def attention(shape: ModelShape, batch: int, new_tokens: int, context: int, bytes_per_value: int) -> OpCost:
    """Scores and weighted values of every head over ``context + new_tokens`` positions."""
    tokens = batch * new_tokens
    attended = context + new_tokens
    flop = 2.0 * 2.0 * tokens * shape.heads * shape.head_dim * attended  # QK^T and PV
    kv_read = batch * attended * 2 * shape.kv_width * bytes_per_value
    kv_write = tokens * 2 * shape.kv_width * bytes_per_value
    activations = 2 * tokens * shape.q_width * bytes_per_value  # q in, attention output out
    return OpCost("attention", flop=flop, kv_bytes=float(kv_read + kv_write), activation_bytes=float(activations))


def layer_ops(shape: ModelShape, batch: int, new_tokens: int, context: int, bytes_per_value: int) -> tuple[OpCost, ...]:
    """The ops of one (softmax-attention) decoder layer."""
    t = batch * new_tokens
    p = bytes_per_value
    return (
        matmul("qkv_proj", t, shape.hidden, shape.q_out_width + 2 * shape.kv_width, p),
        attention(shape, batch, new_tokens, context, p),
        matmul("o_proj", t, shape.q_width, shape.hidden, p),
        matmul("gate_up_proj", t, shape.hidden, 2 * shape.intermediate, p),
        matmul("down_proj", t, shape.intermediate, shape.hidden, p),
    )


def state_bytes_per_value(shape: ModelShape, bytes_per_value: int) -> int:
    """Bytes of one recurrent-state value: ``state_dtype`` when the config names one."""
    return DTYPE_BYTES.get(shape.state_dtype or "", bytes_per_value)


def conv(shape: ModelShape, batch: int, new_tokens: int, bytes_per_value: int) -> OpCost:
    """The depthwise causal convolution over q, k and v: ``kernel`` taps per channel and token; its
    saved ``kernel - 1`` inputs are read and the ``new_tokens`` new ones kept (per sequence)."""
    t = batch * new_tokens
    c, k = shape.conv_width, shape.conv_kernel
    state = batch * c * ((k - 1) + new_tokens) * bytes_per_value
    return OpCost("conv1d", flop=2.0 * t * c * k, weight_bytes=float(c * k * bytes_per_value),
                  kv_bytes=float(state), activation_bytes=float(2 * t * c * bytes_per_value))


def recurrence(shape: ModelShape, batch: int, new_tokens: int, bytes_per_value: int) -> OpCost:
    """The gated delta rule over ``new_tokens`` positions of ``batch`` sequences: ``7 d_k d_v`` FLOP
    per token and value head; the state read once per sequence and written after every position
    (the per-position checkpoints a verification keeps for rollback; one write for a decode step)."""
    t = batch * new_tokens
    dk, dv, hv = shape.linear_key_dim, shape.linear_value_dim, shape.linear_value_heads
    state = shape.state_elements() * state_bytes_per_value(shape, bytes_per_value)
    # q, k, v, the decay and beta in; the output out
    activations = t * (2 * shape.linear_key_width + 2 * shape.linear_value_width + 2 * hv) * bytes_per_value
    return OpCost("gated_delta_rule", flop=7.0 * t * hv * dk * dv, kv_bytes=float(batch * state * (1 + new_tokens)),
                  activation_bytes=float(activations))


def linear_layer_ops(shape: ModelShape, batch: int, new_tokens: int, bytes_per_value: int) -> tuple[OpCost, ...]:
    """The ops of one Gated DeltaNet decoder layer."""
    t = batch * new_tokens
    p = bytes_per_value
    return (
        matmul("in_proj", t, shape.hidden, shape.linear_in_width, p),
        conv(shape, batch, new_tokens, p),
        recurrence(shape, batch, new_tokens, p),
        matmul("out_proj", t, shape.linear_value_width, shape.hidden, p),
        matmul("gate_up_proj", t, shape.hidden, 2 * shape.intermediate, p),
        matmul("down_proj", t, shape.intermediate, shape.hidden, p),
    )


def head_ops(shape: ModelShape, tokens: int, bytes_per_value: int) -> tuple[OpCost, ...]:
    """The LM head over ``tokens`` positions (verification needs the logits of every position)."""
    return (matmul("lm_head", tokens, shape.hidden, shape.vocab, bytes_per_value),)


def forward_cost(shape: ModelShape, *, batch: int, new_tokens: int, context: int, bytes_per_value: int) -> PassCost:
    """The whole forward pass: ``shape.layers`` layers and the LM head."""
    if batch < 1 or new_tokens < 1 or context < 0:
        raise ValueError(f"batch and new_tokens must be >= 1 and context >= 0, got {batch}, {new_tokens}, {context}")
    return PassCost(
        layers=shape.attention_layers,
        layer_ops=layer_ops(shape, batch, new_tokens, context, bytes_per_value),
        head_ops=head_ops(shape, batch * new_tokens, bytes_per_value),
        linear_layers=shape.linear_layers,
        linear_ops=linear_layer_ops(shape, batch, new_tokens, bytes_per_value) if shape.hybrid else (),
    )
