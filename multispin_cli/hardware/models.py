"""Model shapes: the catalog in ``profiles/models/*.toml`` and Hugging Face ``config.json`` parsing.

A :class:`ModelShape` holds what the timing depends on: layer count, widths, heads, KV heads,
vocabulary and whether the LM head shares the embedding. Weight values never matter for the time
of a dense forward pass, so a shape is all the measuring backends and the roofline need.

Supported: Llama-style decoders (pre-norm RMSNorm, rotary attention with grouped KV heads, gated
SiLU MLP) as written by the ``llama``, ``mistral``, ``qwen2`` and ``qwen3`` config families.
Hybrid attention (linear-attention layers, as in Qwen3.5) and mixture-of-experts configs are
refused with a clear message rather than timed as something they are not.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.files import parse_json, read_text
from multispin_cli.errors import InputError

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}

# Keys that mark an architecture this cost model does not describe.
_MOE_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
_ATTENTION_LAYER_TYPES = ("full_attention", "sliding_attention")


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

    @property
    def q_width(self) -> int:
        """Width of the concatenated query heads (H * d)."""
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of the concatenated key (or value) heads (H_kv * d)."""
        return self.kv_heads * self.head_dim

    @property
    def attention_params(self) -> int:
        """Q, K, V and O projection weights of one layer."""
        return self.hidden * (self.q_width + 2 * self.kv_width) + self.q_width * self.hidden

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
        """All weights of one decoder layer."""
        return self.attention_params + self.mlp_params + self.norm_params

    @property
    def head_params(self) -> int:
        """LM head weights (the same matrix as the embedding when tied)."""
        return self.vocab * self.hidden

    @property
    def total_params(self) -> int:
        """Every weight: layers, embedding, LM head (once if tied) and the final norm."""
        untied_head = 0 if self.tied_embeddings else self.head_params
        return self.layers * self.layer_params + self.vocab * self.hidden + untied_head + self.hidden

    def weight_bytes(self, bytes_per_param: int) -> int:
        """Bytes a decode step streams: every layer plus the LM head (the embedding is a row lookup)."""
        return (self.layers * self.layer_params + self.head_params + self.hidden) * bytes_per_param

    def kv_bytes_per_token(self, bytes_per_param: int) -> int:
        """KV-cache bytes one token occupies across all layers."""
        return self.layers * 2 * self.kv_width * bytes_per_param

    def summary(self) -> str:
        """One line: size and shape."""
        gqa = f", {self.kv_heads} KV heads" if self.kv_heads != self.heads else ""
        return (f"{self.name}: {self.total_params / 1e9:.3g}B params, {self.layers} layers, hidden "
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
    if isinstance(layer_types, list):
        other = sorted({str(t) for t in layer_types} - set(_ATTENTION_LAYER_TYPES))
        if other:
            raise InputError(f"hybrid layers ({', '.join(other)}) are not supported: the cost model times "
                             "softmax-attention decoder layers only (Qwen3.5-style linear attention is not "
                             "modelled)", path=path, key="layer_types")
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
        layers=_positive_int(config, "num_hidden_layers", path),
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
    )


def read_config_json(path: str | Path) -> ModelSpec:
    """A model from a ``config.json`` file, or from a model folder that holds one."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = path / "config.json" if path.is_dir() else path
    try:
        text = read_text(file)
    except InputError as exc:
        if exc.reason == "no such file" and path.is_dir():
            raise InputError("folder has no config.json", path=file) from None
        raise
    config = parse_json(text, file)
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
