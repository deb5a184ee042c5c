"""Model shapes: the catalog in ``profiles/models/*.toml`` and Hugging Face ``config.json`` parsing.

A :class:`ModelShape` holds what the timing depends on: layer count, widths, heads, KV heads,
vocabulary and whether the LM head shares the embedding. Weight values never matter for the time
of a dense forward pass, so a shape is all the measuring backends and the roofline need.

Supported: Llama-style decoders (pre-norm RMSNorm, rotary attention with grouped KV heads, gated
SiLU MLP) as written by the ``llama``, ``mistral``, ``qwen2`` and ``qwen3`` config families, and
Qwen3.5-style hybrids (``qwen3_5_text``): ``layer_types`` mixes ``full_attention`` layers (with a
sigmoid output gate on the attention) and ``linear_attention`` layers, which are Gated DeltaNet
layers: a fixed-size recurrent state per value head instead of a KV cache, fed through a short
causal convolution. Mixture-of-experts configs and other layer kinds are refused with a clear
message rather than timed as something they are not.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.errors import InputError

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}

# Keys that mark an architecture this cost model does not describe.
_MOE_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
_ATTENTION_LAYER_TYPES = ("full_attention", "sliding_attention")
LINEAR_ATTENTION = "linear_attention"  # a Gated DeltaNet layer (Qwen3-Next / Qwen3.5)


@dataclass(frozen=True)
class ModelShape:
    """The architecture of one decoder-only model, as far as its speed is concerned."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False
    qk_norm: bool = False  # per-head RMSNorm on q and k (Qwen3)
    max_positions: int | None = None
    dtype: str | None = None  # the published weights' dtype (torch_dtype), informational
    hf_id: str | None = None
    source: str = ""
    # Hybrid models (Qwen3.5): how many of ``layers`` are Gated DeltaNet layers, and their shapes.
    linear_layers: int = 0
    linear_key_heads: int = 0
    linear_value_heads: int = 0
    linear_key_dim: int = 0
    linear_value_dim: int = 0
    conv_kernel: int = 0
    state_dtype: str | None = None  # dtype engines keep the recurrent state in (mamba_ssm_dtype)
    attn_output_gate: bool = False  # q_proj also yields a per-head sigmoid gate on the attention output

    @property
    def hybrid(self) -> bool:
        """Whether some layers are Gated DeltaNet (linear attention) layers."""
        return self.linear_layers > 0

    @property
    def attention_layers(self) -> int:
        """Layers with softmax attention and a KV cache."""
        return self.layers - self.linear_layers

    @property
    def linear_key_width(self) -> int:
        """Width of the concatenated linear-attention key (and query) heads."""
        return self.linear_key_heads * self.linear_key_dim

    @property
    def linear_value_width(self) -> int:
        """Width of the concatenated linear-attention value heads."""
        return self.linear_value_heads * self.linear_value_dim

    @property
    def conv_width(self) -> int:
        """Channels of the causal convolution (q, k and v go through it)."""
        return 2 * self.linear_key_width + self.linear_value_width

    @property
    def linear_in_width(self) -> int:
        """Outputs of a Gated DeltaNet layer's input projections: q, k, v, the gate z, beta and the decay."""
        return 2 * self.linear_key_width + 2 * self.linear_value_width + 2 * self.linear_value_heads

    @property
    def linear_params(self) -> int:
        """All weights of one Gated DeltaNet layer: projections, convolution, decay parameters, the
        gated norm, the output projection, the MLP and the two RMSNorms."""
        return (self.hidden * self.linear_in_width + self.conv_width * self.conv_kernel
                + 2 * self.linear_value_heads + self.linear_value_dim
                + self.linear_value_width * self.hidden + self.mlp_params + 2 * self.hidden)

    def state_elements(self) -> int:
        """Recurrent-state values of one Gated DeltaNet layer for one sequence (heads x d_k x d_v)."""
        return self.linear_value_heads * self.linear_key_dim * self.linear_value_dim

    def conv_state_elements(self) -> int:
        """Convolution-state values of one Gated DeltaNet layer for one sequence (the last kernel-1 inputs)."""
        return self.conv_width * max(self.conv_kernel - 1, 0)

    @property
    def q_width(self) -> int:
        """Width of the concatenated query heads (H * d)."""
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of the concatenated key (or value) heads (H_kv * d)."""
        return self.kv_heads * self.head_dim

    @property
    def q_out_width(self) -> int:
        """Outputs of the query projection: the queries, and the output gate when the model has one."""
        return self.q_width * (2 if self.attn_output_gate else 1)

    @property
    def attention_params(self) -> int:
        """Q (and gate), K, V and O projection weights of one attention layer."""
        return self.hidden * (self.q_out_width + 2 * self.kv_width) + self.q_width * self.hidden

    @property
    def mlp_params(self) -> int:
        """Gate, up and down projection weights of one layer."""
        return 3 * self.hidden * self.intermediate

    @property
    def norm_params(self) -> int:
        """RMSNorm weights of one layer (two norms, plus q/k norms when present)."""
        return 2 * self.hidden + (2 * self.head_dim if self.qk_norm else 0)

    @property
    def layer_params(self) -> int:
        """All weights of one (softmax-attention) decoder layer."""
        return self.attention_params + self.mlp_params + self.norm_params

    @property
    def stack_params(self) -> int:
        """All weights of every decoder layer (attention and Gated DeltaNet layers)."""
        return self.attention_layers * self.layer_params + self.linear_layers * (
            self.linear_params if self.hybrid else 0)

    @property
    def head_params(self) -> int:
        """LM head weights (the same matrix as the embedding when tied)."""
        return self.vocab * self.hidden

    @property
    def total_params(self) -> int:
        """Every weight: layers, embedding, LM head (once if tied) and the final norm."""
        untied_head = 0 if self.tied_embeddings else self.head_params
        return self.stack_params + self.vocab * self.hidden + untied_head + self.hidden

    def weight_bytes(self, bytes_per_param: int) -> int:
        """Bytes a decode step streams: every layer plus the LM head (the embedding is a row lookup)."""
        return (self.stack_params + self.head_params + self.hidden) * bytes_per_param

    def kv_bytes_per_token(self, bytes_per_param: int) -> int:
        """KV-cache bytes one token occupies across the attention layers."""
        return self.attention_layers * 2 * self.kv_width * bytes_per_param

    def state_bytes_per_sequence(self, bytes_per_param: int) -> int:
        """Recurrent and convolution state of one sequence across the Gated DeltaNet layers (constant
        in the context length); the recurrent state in ``state_dtype`` when the config names one."""
        state_p = DTYPE_BYTES.get(self.state_dtype or "", bytes_per_param)
        return self.linear_layers * (self.state_elements() * state_p + self.conv_state_elements() * bytes_per_param)

    def summary(self) -> str:
        """One line: size and shape."""
        gqa = f", {self.kv_heads} KV heads" if self.kv_heads != self.heads else ""
        hybrid = ""
        if self.hybrid:
            hybrid = (f" ({self.linear_layers} Gated DeltaNet: {self.linear_key_heads} QK / {self.linear_value_heads} V "
                      f"heads x {self.linear_key_dim})")
        return (f"{self.name}: {self.total_params / 1e9:.3g}B params, {self.layers} layers{hybrid}, hidden "
                f"{self.hidden}, {self.heads} heads x {self.head_dim}{gqa}, MLP {self.intermediate}, "
                f"vocab {self.vocab}{', tied embeddings' if self.tied_embeddings else ''}")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved ``--draft``/``--target`` argument: the shape, where it came from, local weights."""

    shape: ModelShape
    origin: str  # "catalog" or the config.json path
    weights_dir: Path | None = None  # a folder with *.safetensors / *.bin next to config.json


# --------------------------------------------------------------------------- config.json parsing


def _positive_int(config: dict, key: str, where: str | Path | None, *, default: Any = None) -> int:
    value = config.get(key, default)
    if value is None:
        raise InputError("missing (a Llama-style decoder config needs it)", path=where, key=key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise InputError(f"must be a positive integer, got {value!r}", path=where, key=key)
    if value < 1:
        raise InputError(f"must be a positive integer, got {value!r}", path=where, key=key)
    return int(value)


def shape_from_config(config: Any, *, name: str, path: str | Path | None = None, source: str = "",
                      hf_id: str | None = None) -> ModelShape:
    """A :class:`ModelShape` from the keys of a Hugging Face ``config.json`` (already parsed).

    Raises :class:`InputError` naming the file and key for anything missing, mistyped or
    inconsistent, and for architectures the cost model does not describe.
    """
    if not isinstance(config, dict):
        raise InputError(f"must be a JSON object, got {type(config).__name__}", path=path)
    if "hidden_size" not in config and isinstance(config.get("text_config"), dict):
        config = config["text_config"]  # multimodal wrappers keep the decoder here
    for key in _MOE_KEYS:
        experts = config.get(key)
        if isinstance(experts, (int, float)) and not isinstance(experts, bool) and experts > 1:
            raise InputError(f"a mixture-of-experts model ({experts} experts) is not supported: the cost "
                             "model times dense decoder layers only", path=path, key=key)
    layer_types = config.get("layer_types")
    layers = _positive_int(config, "num_hidden_layers", path)
    interval = config.get("full_attention_interval")
    if layer_types is None and "linear_num_value_heads" in config and isinstance(interval, int) and interval > 0:
        # Qwen3-Next / Qwen3.5 configs without the list: every interval-th layer is full attention
        layer_types = ["full_attention" if (i + 1) % interval == 0 else LINEAR_ATTENTION for i in range(layers)]
    linear: dict[str, Any] = {}
    if isinstance(layer_types, list):
        other = sorted({str(t) for t in layer_types} - set(_ATTENTION_LAYER_TYPES) - {LINEAR_ATTENTION})
        if other:
            raise InputError(f"layer kinds {', '.join(other)} are not supported: the cost model times "
                             "softmax-attention and Gated DeltaNet (linear_attention) layers", path=path,
                             key="layer_types")
        if len(layer_types) != layers:
            raise InputError(f"lists {len(layer_types)} layers but num_hidden_layers is {layers}", path=path,
                             key="layer_types")
        count = sum(1 for t in layer_types if t == LINEAR_ATTENTION)
        if count:
            linear = _linear_attention(config, path, count)
    hidden = _positive_int(config, "hidden_size", path)
    heads = _positive_int(config, "num_attention_heads", path)
    kv_heads = _positive_int(config, "num_key_value_heads", path, default=heads)
    if heads % kv_heads:
        raise InputError(f"num_attention_heads ({heads}) must be a multiple of num_key_value_heads "
                         f"({kv_heads})", path=path, key="num_key_value_heads")
    if "head_dim" in config and config["head_dim"] is not None:
        head_dim = _positive_int(config, "head_dim", path)
    else:
        if hidden % heads:
            raise InputError(f"hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) "
                             "and no head_dim is given", path=path, key="hidden_size")
        head_dim = hidden // heads
    if head_dim % 2:
        raise InputError(f"head dimension {head_dim} must be even (rotary embeddings)", path=path, key="head_dim")
    tied = config.get("tie_word_embeddings", False)
    if not isinstance(tied, bool):
        raise InputError(f"must be true or false, got {tied!r}", path=path, key="tie_word_embeddings")
    max_pos = config.get("max_position_embeddings")
    if max_pos is not None:
        max_pos = _positive_int(config, "max_position_embeddings", path)
    dtype = config.get("torch_dtype", config.get("dtype"))
    model_type = str(config.get("model_type", "") or "")
    return ModelShape(
        name=name,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=_positive_int(config, "intermediate_size", path),
        vocab=_positive_int(config, "vocab_size", path),
        tied_embeddings=tied,
        qk_norm=model_type.startswith("qwen3"),
        max_positions=max_pos,
        dtype=dtype if isinstance(dtype, str) else None,
        hf_id=hf_id,
        source=source,
        attn_output_gate=bool(config.get("attn_output_gate", False)) and bool(linear),
        **linear,
    )


def _linear_attention(config: dict, path: str | Path | None, count: int) -> dict[str, Any]:
    """The Gated DeltaNet shapes of a hybrid config, as :class:`ModelShape` fields."""
    key_heads = _positive_int(config, "linear_num_key_heads", path)
    value_heads = _positive_int(config, "linear_num_value_heads", path)
    if value_heads % key_heads:
        raise InputError(f"linear_num_value_heads ({value_heads}) must be a multiple of linear_num_key_heads "
                         f"({key_heads})", path=path, key="linear_num_value_heads")
    state_dtype = config.get("mamba_ssm_dtype")
    return {
        "linear_layers": count,
        "linear_key_heads": key_heads,
        "linear_value_heads": value_heads,
        "linear_key_dim": _positive_int(config, "linear_key_head_dim", path),
        "linear_value_dim": _positive_int(config, "linear_value_head_dim", path),
        "conv_kernel": _positive_int(config, "linear_conv_kernel_dim", path),
        "state_dtype": state_dtype if state_dtype in DTYPE_BYTES else None,
    }


def read_config_json(path: str | Path) -> ModelSpec:
    """A model from a ``config.json`` file, or from a model folder that holds one."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = path / "config.json" if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file" if not path.is_dir() else "folder has no config.json", path=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", path=file) from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path=file) from None
    # The folder names a downloaded model (``models/Llama-2-7b-hf/config.json``); a lone file its stem.
    name = folder.resolve().name if file.name == "config.json" and folder.resolve().name else file.stem
    shape = shape_from_config(config, name=name, path=file, source=str(file))
    has_weights = any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))
    return ModelSpec(shape, str(file), folder if has_weights else None)


# --------------------------------------------------------------------------- the catalog


def models_dir() -> Path:
    """The folder of the shipped model catalog."""
    return profiles_dir() / "models"


def _catalog_entry(path: Path) -> ModelShape:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"unreadable catalog entry: {exc}", path=path) from None
    for key in ("name", "source"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InputError("missing (every catalog entry names itself and its source)", path=path, key=key)
    if not isinstance(data.get("config"), dict):
        raise InputError("missing the [config] table (the config.json values)", path=path, key="config")
    return shape_from_config(data["config"], name=data["name"], path=path, source=data["source"],
                             hf_id=data.get("hf_id"))


def _aliases(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    names = [data.get("name"), data.get("hf_id"), *(data.get("aliases") or [])]
    return [n for n in names if isinstance(n, str) and n]


def catalog() -> dict[str, ModelShape]:
    """Every shipped model, by name, in name order."""
    entries = [_catalog_entry(p) for p in sorted(models_dir().glob("*.toml"))]
    return {shape.name: shape for shape in sorted(entries, key=lambda s: s.name)}


def catalog_names() -> list[str]:
    """Names of the shipped models."""
    return list(catalog())


def resolve_model(spec: str, *, option: str = "--target") -> ModelSpec:
    """A ``--draft``/``--target`` argument: a catalog name (or alias, or Hugging Face id), else a
    path to a ``config.json`` or to a model folder holding one (write ``./name`` for a folder that
    shares a catalog name)."""
    spec = spec.strip()
    if not spec:
        raise InputError("must name a model", key=option)
    lookup: dict[str, Path] = {}
    for path in sorted(models_dir().glob("*.toml")):
        for alias in _aliases(path):
            lookup.setdefault(alias.lower(), path)
    hit = lookup.get(spec.lower())
    if hit is not None:
        return ModelSpec(_catalog_entry(hit), "catalog")
    if spec.endswith(".json") or Path(spec).exists():
        return read_config_json(spec)
    known = catalog_names()
    hint = difflib.get_close_matches(spec.lower(), list(lookup), n=1, cutoff=0.6)
    guess = ""
    if hint:
        guess = f" (did you mean '{_catalog_entry(lookup[hint[0]]).name}'?)"
    raise InputError(f"unknown model '{spec}'{guess}; known: {', '.join(known)}; or give the path of a "
                     "Hugging Face config.json (or of a model folder)", key=option)


def fmt_bytes(n_bytes: float) -> str:
    """A byte count in GiB or MiB, for messages."""
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:.3g} GiB"
    return f"{n_bytes / 2**20:.3g} MiB" if n_bytes >= 2**20 else f"{max(n_bytes, 0) / 2**10:.3g} KiB"
