"""Engine exporters: a planned draft length in the words each serving engine reads.

Pure functions: a plan section (or a per-batch-size schedule) and a few options in, text out.
One small function per engine turns one draft length into that engine's configuration; a
registry (:data:`ENGINES`) names them, so an unknown engine is an error that lists the known ones.

Draft length 0 means "no speculation for this user", and every engine says so in its own terms:

=============  ===============================================  =====================================
engine         draft length L > 0                               L = 0 (speculation off)
=============  ===============================================  =====================================
vllm           ``--speculative-config`` JSON: ``method``         ``null``: launch without
               ``draft_model``, ``model``,                       ``--speculative-config`` (vLLM
               ``num_speculative_tokens`` = L                    requires ``num_speculative_tokens`` > 0)
sglang         ``--speculative-algorithm STANDALONE`` (a small   no flags: leave
               draft LLM), ``--speculative-draft-model-path``,  ``--speculative-algorithm`` unset
               ``--speculative-num-steps L``,
               ``--speculative-eagle-topk 1``,
               ``--speculative-num-draft-tokens L+1`` (a chain
               of L tokens plus the root)
llama.cpp      ``llama-server`` ``--spec-type draft-simple``     ``--spec-type none``; with
               ``-md``, ``--spec-draft-n-max L``,                ``--legacy``: no flags (no ``-md``)
               ``--spec-draft-n-min L``, ``--spec-draft-p-min
               0``; ``--legacy``: ``-md``, ``--draft-max``,
               ``--draft-min``, ``--draft-p-min``
trtllm         YAML ``speculative_config``: ``decoding_type:     ``speculative_config: null``
               DraftTarget``, ``max_draft_len: L``,
               ``speculative_model``
hf             ``generation_config`` fragment:                   ``null``: call ``generate()``
               ``num_assistant_tokens: L``,                      without ``assistant_model``
               ``num_assistant_tokens_schedule: "constant"``,    (``num_assistant_tokens = 0`` is
               ``assistant_confidence_threshold: 0.0``           not "off" in transformers)
=============  ===============================================  =====================================

The option names were checked against each engine's current documentation and source (cited in
the README): vLLM ``SpeculativeConfig`` (docs v0.25+, ``draft_model`` method and Dynamic
Speculative Decoding), SGLang's speculative-decoding guide ("Standalone Speculative Decoding"),
llama.cpp ``tools/server/README.md`` (``--spec-*`` options; ``--draft-max``/``--draft-min`` are
listed there as removed), TensorRT-LLM ``docs/source/features/speculative-decoding.md`` and
``DecodingBaseConfig.draft_len_schedule``, Hugging Face transformers v5 ``GenerationConfig``.

The plan fixes each draft length; the engines' adaptive shortcuts would change it, so the exports
switch them off where the engine has one: llama.cpp's confidence cut-off (``p-min`` 0, ``n-min`` =
``n-max``) and transformers' ``assistant_confidence_threshold`` (0 disables its early stop).

Output shapes, all parseable in their own format:

* JSON engines (vllm, hf): one user, or users who all share one configuration (a homogeneous plan,
  one device group), give one JSON value on one line (ready for
  ``--speculative-config "$(multispin export ...)"``); users with different configurations give an
  object keyed by user name.
* Engines that take one draft length per server (vllm, sglang, trtllm) get a warning when the
  exported users need more than one configuration.
* flag engines (sglang, llama.cpp): per group of users with identical flags, a ``#`` comment line
  naming them and the draft length, then one line of flags (``shlex.split`` reads it). A group
  whose speculation is off without a flag to say so has the comment line only.
* YAML (trtllm): one YAML document per group of identical users, each led by a ``#`` comment and
  separated by ``---``.
"""

from __future__ import annotations

import difflib
import json
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from multispin_cli.errors import InputError

DRAFT_PLACEHOLDER = "DRAFT_MODEL"


@dataclass(frozen=True)
class ExportUser:
    """What an exporter needs about one user: its name, planned draft length and draft model."""

    name: str
    draft_length: int
    draft_model: str | None = None


@dataclass(frozen=True)
class Export:
    """An exporter's text, and notes for the person (stderr), e.g. a placeholder it had to use."""

    text: str
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- one config per engine


def vllm_config(draft_length: int, draft_model: str) -> dict | None:
    """vLLM ``--speculative-config``; ``None`` (no speculative config) when the draft length is 0."""
    if draft_length <= 0:
        return None
    return {"method": "draft_model", "model": draft_model, "num_speculative_tokens": int(draft_length)}


def sglang_flags(draft_length: int, draft_model: str) -> list[str]:
    """SGLang launch flags for a standalone draft model drafting a chain of ``draft_length`` tokens.

    STANDALONE is SGLang's algorithm for a separate small draft LLM (EAGLE/EAGLE3 need an EAGLE
    head). A chain has top-k 1, ``num_steps`` = L draft steps and L + 1 verified tokens (the root
    plus L), which is also what SGLang adjusts ``num_draft_tokens`` to when top-k is 1.
    """
    if draft_length <= 0:
        return []
    n = int(draft_length)
    return [
        "--speculative-algorithm", "STANDALONE",
        "--speculative-draft-model-path", draft_model,
        "--speculative-num-steps", str(n),
        "--speculative-eagle-topk", "1",
        "--speculative-num-draft-tokens", str(n + 1),
    ]


def llama_cpp_flags(draft_length: int, draft_model: str, *, legacy: bool = False) -> list[str]:
    """``llama-server`` flags; ``legacy`` uses the older ``--draft-max``/``--draft-min`` spelling.

    n-min = n-max = L and p-min = 0 make every draft exactly L tokens long, as planned (llama.cpp
    otherwise stops a draft early when the draft model's confidence drops below p-min).
    """
    n = int(draft_length)
    if legacy:
        if n <= 0:
            return []
        return ["-md", draft_model, "--draft-max", str(n), "--draft-min", str(n), "--draft-p-min", "0"]
    if n <= 0:
        return ["--spec-type", "none"]
    return [
        "--spec-type", "draft-simple",
        "-md", draft_model,
        "--spec-draft-n-max", str(n),
        "--spec-draft-n-min", str(n),
        "--spec-draft-p-min", "0",
    ]


def trtllm_config(draft_length: int, draft_model: str) -> dict:
    """TensorRT-LLM ``--config`` YAML (as a dict); ``speculative_config: None`` when L is 0.

    The draft/target example of TensorRT-LLM's guide runs with the overlap scheduler disabled, so
    the export does too.
    """
    if draft_length <= 0:
        return {"speculative_config": None}
    return {
        "speculative_config": {
            "decoding_type": "DraftTarget",
            "max_draft_len": int(draft_length),
            "speculative_model": draft_model,
        },
        "disable_overlap_scheduler": True,
    }


def hf_generation_config(draft_length: int) -> dict | None:
    """transformers ``generation_config`` fragment; ``None`` (no ``assistant_model``) when L is 0."""
    if draft_length <= 0:
        return None
    return {
        "num_assistant_tokens": int(draft_length),
        "num_assistant_tokens_schedule": "constant",
        "assistant_confidence_threshold": 0.0,
    }


# --------------------------------------------------------------------------- a tiny YAML writer


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid double-quoted YAML scalar


def to_yaml(data: dict, indent: int = 0) -> str:
    """Block-style YAML of nested dicts of scalars (all the exports need; keys are plain words)."""
    lines = []
    pad = " " * indent
    for key, value in data.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            lines.append(to_yaml(value, indent + 2).rstrip("\n"))
        else:
            lines.append(f"{pad}{key}: {_yaml_scalar(value)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Engine:
    """A serving engine: its name, aliases, the words it reads, and how its output is laid out."""

    name: str
    title: str
    kind: str  # "json", "flags" or "yaml"
    config: Callable[[int, str, bool], Any]
    aliases: tuple[str, ...] = field(default=())
    schedule: bool = False  # reads a per-batch-size draft length table
    one_length: bool = False  # one draft length per server (all its users share it)


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine("vllm", "vLLM --speculative-config", "json", lambda n, m, legacy: vllm_config(n, m), schedule=True,
               one_length=True),
        Engine("sglang", "SGLang launch flags", "flags", lambda n, m, legacy: sglang_flags(n, m),
               one_length=True),
        Engine("llama.cpp", "llama-server flags", "flags", lambda n, m, legacy: llama_cpp_flags(n, m, legacy=legacy),
               aliases=("llama-cpp", "llamacpp", "llama-server")),
        Engine("trtllm", "TensorRT-LLM --config YAML", "yaml", lambda n, m, legacy: trtllm_config(n, m),
               aliases=("tensorrt-llm", "tensorrt_llm", "trt-llm"), schedule=True, one_length=True),
        Engine("hf", "transformers generation_config", "json", lambda n, m, legacy: hf_generation_config(n),
               aliases=("transformers", "huggingface")),
    )
}


def engine_names() -> list[str]:
    """The engines' canonical names, in the order the help and errors list them."""
    return list(ENGINES)


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (or one of its aliases, any case); an InputError lists the known ones."""
    wanted = name.strip().lower()
    for engine in ENGINES.values():
        if wanted == engine.name or wanted in engine.aliases:
            return engine
    known = [*ENGINES, *(a for e in ENGINES.values() for a in e.aliases)]
    hint = difflib.get_close_matches(wanted, known, n=1)
    more = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise InputError(f"unknown engine '{name}'{more}; known engines: {', '.join(ENGINES)}", key="--engine")


# --------------------------------------------------------------------------- whole exports


def _draft_models(users: Sequence[ExportUser]) -> tuple[list[str], tuple[str, ...]]:
    models = [u.draft_model or DRAFT_PLACEHOLDER for u in users]
    missing = [u.name for u in users if not u.draft_model and u.draft_length > 0]
    notes = ()
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        notes = (f"the plan names no draft_model for {shown}: the export says {DRAFT_PLACEHOLDER} instead; "
                 "set draft_model on the device in the profile and plan again",)
    return models, notes


def _what(length: int) -> str:
    return f"draft length {length}" if length > 0 else "draft length 0: speculation off"


def _label(names: list[str]) -> str:
    if len(names) > 8:  # a long group: its first and last users and the count (--user gives one)
        return f"users {', '.join(names[:3])}, ..., {names[-1]} ({len(names)} users)"
    return ("user " if len(names) == 1 else "users ") + ", ".join(names)


def _groups(users: Sequence[ExportUser], configs: list[Any]) -> list[tuple[list[str], int, Any]]:
    """Users with identical configs, in order of first appearance."""
    groups: dict[str, tuple[list[str], int, Any]] = {}
    for user, config in zip(users, configs):
        key = json.dumps(config, sort_keys=True)
        if key not in groups:
            groups[key] = ([], user.draft_length, config)
        groups[key][0].append(user.name)
    return list(groups.values())


def export_users(
    users: Sequence[ExportUser], engine: str | Engine, *, target_model: str | None = None, legacy: bool = False,
    single: bool = False,
) -> Export:
    """Every user's configuration for ``engine`` as one text (``single``: the one user, bare)."""
    eng = engine if isinstance(engine, Engine) else get_engine(engine)
    if legacy and eng.name != "llama.cpp":
        raise InputError("--legacy applies to llama.cpp only (its older --draft-max/--draft-min spelling)",
                         key="--legacy")
    if not users:
        raise InputError("the plan has no users to export")
    models, notes = _draft_models(users)
    if eng.name == "llama.cpp":
        not_gguf = sorted({m for u, m in zip(users, models)
                           if u.draft_length > 0 and u.draft_model and not m.lower().endswith(".gguf")})
        if not_gguf:
            notes += (f"llama.cpp's -md loads a GGUF file; {', '.join(not_gguf)} is not one: convert it and put "
                      "the .gguf path there",)
    configs = [eng.config(u.draft_length, m, legacy) for u, m in zip(users, models)]
    target = f"; target {target_model}" if target_model else ""
    groups = _groups(users, configs)
    if eng.one_length and len(groups) > 1:
        lengths = sorted({length for _, length, _ in groups})
        notes += (f"{eng.name} takes one draft length per server, and these {len(users)} users have "
                  f"{len(groups)} different configurations (lengths {', '.join(map(str, lengths))}): run one "
                  "server per group, or export the homogeneous plan (--mode homogeneous)",)
    if eng.kind == "json":
        if len(groups) == 1 and len(users) > 1:
            # One configuration for everyone (a homogeneous plan, one device group): the single object
            # the engine takes, not the same object once per user.
            single = True
        if single:
            text = json.dumps(configs[0]) + "\n"
        else:
            text = json.dumps({u.name: c for u, c in zip(users, configs)}, indent=2) + "\n"
        off = [u.name for u in users if u.draft_length <= 0]
        if off:
            how = ("launch vLLM without --speculative-config" if eng.name == "vllm"
                   else "call generate() without assistant_model")
            notes += (f"null means speculation off ({how}) for: {', '.join(off[:5])}"
                      + (f" and {len(off) - 5} more" if len(off) > 5 else ""),)
        return Export(text, notes)
    blocks = []
    for names, length, config in groups:
        comment = f"# {eng.title} for {_label(names)}: {_what(length)}{target}"
        if eng.kind == "flags":
            block = comment + ("\n" + shlex.join(config) if config else "")
        else:
            block = comment + "\n" + to_yaml(config).rstrip("\n")
        blocks.append(block)
    sep = "\n---\n" if eng.kind == "yaml" else "\n"
    return Export(sep.join(blocks) + "\n", notes)


def export_plan(plan, engine: str | Engine, *, user: str | None = None, target_model: str | None = None,
                legacy: bool = False, path: str | None = None, device: str | None = None) -> Export:
    """Export a plan section (:class:`~multispin_cli.documents.planfile.PlanSection`): all users, the users
    of one ``device`` group, or one ``user``."""
    eng = engine if isinstance(engine, Engine) else get_engine(engine)
    if user is not None and device is not None:
        raise InputError("give --user or --device, not both", key="--device")
    users = [ExportUser(u.name, int(u.draft_length), u.draft_model) for u in plan.users]
    if device is not None:
        users = [e for e, u in zip(users, plan.users) if u.in_device(device)]
        if not users:
            groups = list(dict.fromkeys(u.device or u.name.rpartition("-")[0] or u.name for u in plan.users))
            hint = difflib.get_close_matches(device, groups, n=1)
            more = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise InputError(f"no users of device '{device}' in the {plan.name} plan{more}; its devices: "
                             f"{', '.join(groups[:12])}", path=path, key="--device")
    if user is not None:
        chosen = [u for u in users if u.name == user]
        if not chosen:
            names = [u.name for u in users]
            hint = difflib.get_close_matches(user, names, n=1)
            more = f" (did you mean '{hint[0]}'?)" if hint else ""
            shown = ", ".join(names[:8]) + (f", ... ({len(names)} users)" if len(names) > 8 else "")
            raise InputError(f"user '{user}' is not in the {plan.name} plan{more}; its users: {shown}",
                             path=path, key="--user")
        users = chosen
    return export_users(users, eng, target_model=target_model, legacy=legacy, single=user is not None)


# --------------------------------------------------------------------------- per-batch-size schedules


def batch_ranges(batch_sizes: Sequence[int], lengths: Sequence[int]) -> list[tuple[int, int, int]]:
    """Contiguous batch-size ranges ``(first, last, L)`` from 1 up to the largest planned batch size.

    The draft length is known at the planned batch sizes only; a batch size between two of them
    gets the length planned for the next larger one (``(b_{i-1}, b_i]`` takes ``L(b_i)``): with a
    draft length that falls as the batch grows, that errs on the short side. Neighbouring ranges
    with the same length are merged.
    """
    ranges: list[list[int]] = []
    first = 1
    for b, n in sorted(zip(batch_sizes, lengths)):
        if ranges and ranges[-1][2] == n:
            ranges[-1][1] = int(b)
        else:
            ranges.append([first, int(b), int(n)])
        first = int(b) + 1
    return [tuple(r) for r in ranges]


def vllm_schedule(batch_sizes: Sequence[int], lengths: Sequence[int], draft_model: str) -> dict | None:
    """vLLM ``--speculative-config`` with ``num_speculative_tokens_per_batch_size`` (Dynamic SD).

    Entries are ``[first_bs, last_bs, K]`` (inclusive, starting at 1, as vLLM requires); each K is at
    most ``num_speculative_tokens``, which is the largest planned length. vLLM keeps the last K for
    batch sizes above the last range. ``None`` when no batch size speculates.
    """
    ranges = batch_ranges(batch_sizes, lengths)
    top = max(n for _, _, n in ranges)
    if top <= 0:
        return None
    config = vllm_config(top, draft_model)
    if len(ranges) > 1:
        config["num_speculative_tokens_per_batch_size"] = [list(r) for r in ranges]
    return config


def trtllm_schedule(batch_sizes: Sequence[int], lengths: Sequence[int], draft_model: str) -> dict:
    """TensorRT-LLM YAML with ``draft_len_schedule`` (batch size -> draft length).

    Current TensorRT-LLM reads each key as the largest batch size of a range that starts after the
    previous key (``{4: 4, 8: 2}``: 1-4 draft 4, 5-8 draft 2) and turns speculation off above the
    largest key, so trailing ranges of length 0 are left to that rule. (Releases before the change
    of March 2026 read keys as lower thresholds instead.)
    """
    ranges = batch_ranges(batch_sizes, lengths)
    while ranges and ranges[-1][2] == 0:
        ranges.pop()
    if not ranges:
        return trtllm_config(0, draft_model)
    top = max(n for _, _, n in ranges)
    config = trtllm_config(top, draft_model)
    config["speculative_config"]["draft_len_schedule"] = {last: n for _, last, n in ranges}
    return config


SCHEDULE_ENGINES = tuple(name for name, e in ENGINES.items() if e.schedule)


def export_schedule(batch_sizes: Sequence[int], lengths: Sequence[int], engine: str | Engine, *,
                    draft_model: str | None = None, label: str = "") -> Export:
    """A per-batch-size schedule in the words of ``engine`` (vllm or trtllm)."""
    eng = engine if isinstance(engine, Engine) else get_engine(engine)
    if not eng.schedule:
        raise InputError(f"engine '{eng.name}' reads no per-batch-size draft length; a schedule exports to: "
                         f"{', '.join(SCHEDULE_ENGINES)}", key="--engine")
    notes: tuple[str, ...] = ()
    model = draft_model or DRAFT_PLACEHOLDER
    if not draft_model and max(lengths, default=0) > 0:
        notes = (f"the profile names no single draft_model for its devices: the export says {DRAFT_PLACEHOLDER} "
                 "instead",)
    if eng.name == "vllm":
        config = vllm_schedule(batch_sizes, lengths, model)
        if config is None:
            notes += ("no batch size speculates: null means launch vLLM without --speculative-config",)
        return Export(json.dumps(config) + "\n", notes)
    config = trtllm_schedule(batch_sizes, lengths, model)
    head = f"# TensorRT-LLM --config YAML{(' for ' + label) if label else ''}: draft length by batch size"
    return Export(head + "\n" + to_yaml(config), notes)
