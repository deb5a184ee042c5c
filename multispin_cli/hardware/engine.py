"""A real speculative-decoding engine: Hugging Face transformers' assisted generation, timed.

Used by ``multispin validate`` to check the model against a real engine. It

* builds a target and a draft (random weights from a config with a given ``initializer_range``, a
  local checkpoint, or a *layer-skip* draft: the target's embeddings, first decoder layers, final
  norm and head);
* **profiles** them the way multispin's model needs: the verification time ``T_v(N)`` at every N
  the plan can reach (one forward pass of N new tokens over a KV cache), the draft's and the
  engine's per-round costs (from short runs of the engine loop itself: the draft phase of each
  round is timed around the assistant's ``generate`` call, the target's passes by forward hooks,
  the rest is the loop's own work), in sweeps that can be interleaved with other runs, and the
  acceptance by position (the draft's greedy choice against the target's greedy text,
  teacher-forced, with greedy rounds replayed on it);
* **runs** assisted generation with the draft length held constant (``num_assistant_tokens = L``,
  schedule ``constant``, no confidence cut-off; L = 0 is plain greedy decoding) and reports tokens,
  rounds, accepted tokens and the time of each phase.

Clocks: on CPU the process's CPU time with one torch thread (other processes on a shared machine
then barely change the numbers); on CUDA wall time with synchronisation. Rates leave out the first
round (the prompt's prefill), in measurement and prediction alike.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from multispin_cli.errors import InputError, MissingExtraError
from multispin_cli.hardware.fit import relative_error, sweep_slowdowns, typical_seconds

Progress = Callable[[str], None]


def require_transformers():
    """Import torch and transformers, or explain which extra to install."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingExtraError("multispin validate", "validate", "torch") from None
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise MissingExtraError("multispin validate", "validate", "transformers") from None
    import torch
    import transformers

    return torch, transformers


# --------------------------------------------------------------------------- clocks


class Clock:
    """CPU time of the process on CPU (torch limited to one thread), synchronised wall time on CUDA."""

    def __init__(self, device: str):
        self.device = device
        self.kind = "cuda wall time" if device.startswith("cuda") else "process CPU time (1 thread)"

    def __call__(self) -> float:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelPair:
    """The target and the draft, ready to run, with how they were made."""

    target: object
    draft: object
    target_label: str
    draft_label: str
    vocab: int
    device: str


def _config_from_shape(transformers, shape, init_std: float):
    """A Llama (or Qwen3, with q/k norms) config at a catalog model's shapes."""
    common = dict(vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                  num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                  num_key_value_heads=shape.kv_heads, head_dim=shape.head_dim,
                  tie_word_embeddings=shape.tied_embeddings, initializer_range=init_std,
                  max_position_embeddings=shape.max_positions or 4096)
    if shape.qk_norm:
        return transformers.Qwen3Config(**common)
    return transformers.LlamaConfig(**common)


def _load(transformers, torch, spec: str, *, option: str, init_std: float | None, seed: int):
    """A model from what ``profile-hardware`` takes: a catalog name (random weights at its shapes), a
    ``config.json`` (random weights), or a model folder (its weights if it has any)."""
    from multispin_cli.hardware.models import resolve_model

    resolved = resolve_model(spec, option=option)
    folder = resolved.weights_dir
    if folder is not None and init_std is None:
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        return model, f"{resolved.shape.name} (weights from {folder})"
    if resolved.origin == "catalog":
        config = _config_from_shape(transformers, resolved.shape, init_std if init_std is not None else 0.02)
    else:
        path = Path(resolved.origin)
        config = transformers.AutoConfig.from_pretrained(path.parent if path.name == "config.json" else path)
        if init_std is not None:
            config.initializer_range = init_std
    torch.manual_seed(seed)
    try:
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    except ValueError as exc:
        raise InputError(f"transformers cannot build this model: {exc}", key=option) from None
    return model, f"{resolved.shape.name} (random weights, initializer_range {config.initializer_range:g})"


def layer_skip_draft(transformers, torch, target, layers: int):
    """The target's embeddings, first ``layers`` decoder layers, final norm and head, as a model of its own."""
    config = target.config.__class__.from_dict(target.config.to_dict())
    total = config.num_hidden_layers
    if not 1 <= layers <= total:
        raise InputError(f"must be in 1..{total} (the target's layers), got {layers}", key="--draft-layers")
    config.num_hidden_layers = layers
    if getattr(config, "layer_types", None):
        config.layer_types = list(config.layer_types)[:layers]
    draft = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = {k: v for k, v in target.state_dict().items()
             if not k.startswith("model.layers.") or int(k.split(".")[2]) < layers}
    draft.load_state_dict(state, strict=False)
    return draft


def build_pair(*, target: str, draft: str | None, draft_layers: int | None, init_std: float | None, seed: int = 0,
               device: str | None = None) -> ModelPair:
    """Target and draft as ``validate`` describes them (a layer-skip draft when ``draft`` is None)."""
    torch, transformers = require_transformers()
    transformers.logging.set_verbosity_error()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(1)
    target_model, target_label = _load(transformers, torch, target, option="--target", init_std=init_std, seed=seed)
    if draft is None:
        layers = draft_layers or 1
        draft_model = layer_skip_draft(transformers, torch, target_model, layers)
        draft_label = f"layer-skip: the target's first {layers} layer{'s' if layers > 1 else ''}"
    else:
        draft_model, draft_label = _load(transformers, torch, draft, option="--draft", init_std=init_std,
                                         seed=seed + 1)
    if draft_model.config.vocab_size != target_model.config.vocab_size:
        raise InputError(f"the draft's vocabulary ({draft_model.config.vocab_size}) differs from the target's "
                         f"({target_model.config.vocab_size}): assisted generation needs a shared one", key="--draft")
    for model in (target_model, draft_model):
        model.to(device).eval()
        model.generation_config.pad_token_id = 0
        model.generation_config.eos_token_id = None
    return ModelPair(target_model, draft_model, target_label, draft_label, int(target_model.config.vocab_size), device)


def prompt_ids(pair: ModelPair, length: int, seed: int):
    """A reproducible prompt of random token ids."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, pair.vocab, (1, length), generator=gen).to(pair.device)


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class EngineRun:
    """One generation at a constant draft length, its first round (the prefill) left out.

    ``tokens`` and ``rounds`` count what followed the first round; the seconds are totals over
    those rounds: the draft phase (the assistant's call), the target's forward passes, and the
    rest (the engine loop's own work).
    """

    draft_length: int
    tokens: int
    rounds: int
    seconds: float
    draft_s: float
    verify_s: float
    # per round after the first: (tokens drafted, draft phase s, verify s, whole round s)
    round_rows: tuple[tuple[int, float, float, float], ...] = ()

    @property
    def overhead_s(self) -> float:
        return self.seconds - self.draft_s - self.verify_s

    @property
    def accepted(self) -> int:
        """Draft tokens the target accepted (each round commits its accepted prefix plus one token)."""
        return self.tokens - self.rounds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def per_round(self, seconds: float) -> float:
        return seconds / self.rounds if self.rounds else 0.0


class _Timer:
    """Times every target forward pass and every assistant ``generate`` call with one clock."""

    def __init__(self, pair: ModelPair, clock: Clock):
        self.clock = clock
        self.events: list[tuple[str, float, float, int]] = []  # (what, start, end, cache length)
        self._start = 0.0
        self._cache = 0
        self.handles = [pair.target.register_forward_pre_hook(self._pre, with_kwargs=True),
                        pair.target.register_forward_hook(self._post)]
        self.draft = pair.draft
        self._generate = pair.draft.generate

        def timed_generate(*args, **kwargs):
            start = clock()
            out = self._generate(*args, **kwargs)
            end = clock()
            given = kwargs.get("input_ids", args[0] if args else None)
            sequences = getattr(out, "sequences", out)
            drafted = int(sequences.shape[-1] - given.shape[-1]) if given is not None else 0
            self.events.append(("draft", start, end, drafted))
            return out

        pair.draft.generate = timed_generate

    def _pre(self, module, args, kwargs):
        positions = kwargs.get("position_ids")
        if positions is not None:
            self._cache = int(positions.reshape(-1)[0])  # where this pass's first token sits
        else:
            cache = kwargs.get("past_key_values", kwargs.get("cache"))
            self._cache = int(cache.get_seq_length()) if cache is not None else 0
        self._start = self.clock()

    def _post(self, module, args, output):
        self.events.append(("verify", self._start, self.clock(), self._cache))

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        del self.draft.generate  # back to the class's method


def run_engine(pair: ModelPair, prompt, draft_length: int, new_tokens: int) -> EngineRun:
    """Greedy generation of ``new_tokens`` with ``draft_length`` draft tokens per round (0: no draft)."""
    import torch

    clock = Clock(pair.device)
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                  attention_mask=torch.ones_like(prompt))
    if draft_length > 0:
        config = pair.draft.generation_config
        config.num_assistant_tokens = draft_length
        config.num_assistant_tokens_schedule = "constant"
        config.assistant_confidence_threshold = 0.0
        kwargs["assistant_model"] = pair.draft
    timer = _Timer(pair, clock)
    try:
        with torch.inference_mode():
            out = pair.target.generate(prompt, **kwargs)
        end = clock()
    finally:
        timer.close()
    verify = [e for e in timer.events if e[0] == "verify"]
    if len(verify) < 2:
        raise InputError(f"--new-tokens {new_tokens} is too few: the run ended after its first round")
    first_end = verify[0][2]
    later = [e for e in timer.events if e[1] >= first_end]
    committed_after_first = verify[1][3] + 1 - prompt.shape[1]  # the second pass starts at the cache length
    tokens = int(out.shape[1] - prompt.shape[1] - committed_after_first)
    rows = []
    for before, this in zip(verify[:-1], verify[1:]):  # round = from one target pass's end to the next's
        drafts = [e for e in timer.events if e[0] == "draft" and before[2] <= e[1] < this[1]]
        rows.append((sum(e[3] for e in drafts), sum(e[2] - e[1] for e in drafts), this[2] - this[1],
                     this[2] - before[2]))
    return EngineRun(
        draft_length=draft_length,
        tokens=tokens,
        rounds=len(verify) - 1,
        seconds=end - first_end,
        draft_s=sum(e[2] - e[1] for e in later if e[0] == "draft"),
        verify_s=sum(e[2] - e[1] for e in later if e[0] == "verify"),
        round_rows=tuple(rows),
    )


# --------------------------------------------------------------------------- profiling


@dataclass(frozen=True)
class EngineProfile:
    """What multispin's model needs about this engine and pair, measured without the runs it predicts."""

    verify_tokens: tuple[int, ...]  # N = 1 .. L_max + 1
    verify_s: tuple[float, ...]  # T_v(N), the expected time of a pass (hardware.fit.typical_seconds)
    verify_spread: float  # largest spread of a point's samples: (90th - 10th percentile) / T_v(N)
    draft_s_per_token: float  # tau
    draft_overhead_s: float  # c: per drafting round, besides the draft steps
    round_overhead_s: float  # t_o: the engine loop's own cost per round
    acceptance_by_position: tuple[float, ...]  # from the workload's texts (the prompts the runs use)
    context: int  # the mean KV cache length of the verify sweeps
    clock: str
    held_out_acceptance: tuple[float, ...] = ()  # the same estimate from the calibration prompt's text
    verify_uncertainty: float = 0.0  # largest standard error of a T_v(N) over its value
    verify_samples: int = 0  # passes timed at each N
    # The engine loop's extra work in a drafting round, a + b L: part of draft_overhead_s and
    # draft_s_per_token (the model's drafting round), shown apart only to compare with the engine.
    loop_overhead_s: float = 0.0
    loop_s_per_token: float = 0.0


def _verify_sweep(pair: ModelPair, text, context: int, counts, passes: int, clock: Clock) -> dict[int, list[float]]:
    """Seconds of forward passes of the target over a KV cache of the first ``context`` tokens of
    ``text``, ``passes`` times for each token count in ``counts`` (in that order), as the engine's
    verification passes run: one prefill, then each pass's tokens added to the cache and cropped off
    again, with the mask and positions ``generate`` passes. A first pass warms up and is not kept."""
    import torch
    from transformers import DynamicCache

    model = pair.target
    # transformers 5 names the argument ``cache``; earlier releases ``past_key_values``.
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    samples: dict[int, list[float]] = {n: [] for n in counts}
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        model(text[:, :context], use_cache=True, **{name: cache})
        for i, n in enumerate([counts[0], *counts]):
            new = torch.randint(1, pair.vocab, (1, n), generator=torch.Generator().manual_seed(n)).to(pair.device)
            positions = torch.arange(context, context + n, device=pair.device)
            extra = dict(attention_mask=torch.ones(1, context + n, dtype=torch.long, device=pair.device),
                         position_ids=positions[None], cache_position=positions)
            for _ in range(passes if i else 1):
                start = clock()
                model(new, use_cache=True, **{name: cache}, **extra)
                elapsed = clock() - start
                cache.crop(-n)  # negative: drop the tokens just added
                if i:
                    samples[n].append(elapsed)
    return samples


def _spread_fraction(k: int) -> float:
    """The k-th point (from 1) of the van der Corput sequence in base 2: 1/2, 1/4, 3/4, 1/8, ...; any
    number of sweeps spreads its contexts evenly over a run's range."""
    value, denominator = 0.0, 1.0
    while k:
        k, bit = divmod(k, 2)
        denominator *= 2
        value += bit / denominator
    return value


def draft_agreement(pair: ModelPair, text_ids, prompt_len: int) -> np.ndarray:
    """Whether the draft's greedy token matches the target's greedy text at each position after the
    prompt, given the text before it (teacher-forced: one forward pass of the draft)."""
    import torch

    with torch.inference_mode():
        logits = pair.draft(text_ids).logits[0]
    guess = logits[prompt_len - 1:-1].argmax(-1).cpu().numpy()
    return guess == text_ids[0, prompt_len:].cpu().numpy()


def acceptance_by_position(pair: ModelPair, texts, prompt_len: int, max_len: int, *,
                           skip_first_round: bool = True) -> np.ndarray:
    """Per-position acceptance of positions 1..max_len from the target's greedy texts: the draft's
    agreement with each text, greedy rounds replayed on it at every L (each round starts where the
    last one's correction token left off, as in the engine), and the acceptance whose expected
    tokens per round match the replayed ones (see ``analysis.calibration``). The first round (the
    prompt's prefill) is left out, as the engine's rates leave it out."""
    from multispin_cli.analysis.calibration import acceptance_from_tokens_per_round, replayed_tokens_per_round

    agreement = [draft_agreement(pair, text, prompt_len) for text in texts]
    return acceptance_from_tokens_per_round(replayed_tokens_per_round(agreement, max_len,
                                                                      skip_first_round=skip_first_round))


class EngineProfiler:
    """Collects multispin's model terms for a pair in *sweeps* that can be interleaved with other work.

    A verify sweep times ``T_v(N)`` twice at every N; a rounds sweep runs the engine loop on the
    calibration prompt at L = 0 (the loop's own cost per round), 1 and L_max (the draft's cost per
    token and per round). ``validate`` interleaves them with the runs it predicts, so a slow spell of
    a shared machine (the CPU-time clock still slows down when other processes take the memory
    bandwidth and the caches) weighs on the prediction as much as on the runs. The terms are expected
    times (:func:`multispin_cli.hardware.fit.typical_seconds`) over every sweep so far.

    The machine's speed drifts (on this 2-core virtual machine by 10-20 % over seconds to minutes, all
    passes alike, whatever else runs in it), so each verify sweep also gives a *slowdown*: how much
    slower its passes ran than the sweeps' average (:func:`multispin_cli.hardware.fit.sweep_slowdowns`).
    Anything else timed between two sweeps (an engine-loop run here, a run ``validate`` predicts)
    ran at about the mean of theirs (:meth:`slowdown_at`); the engine-loop costs are divided by it,
    so every term is at the sweeps' average speed.
    """

    def __init__(self, pair: ModelPair, *, max_draft_length: int, prompt_len: int, new_tokens: int, seed: int):
        self.pair = pair
        self.clock = Clock(pair.device)
        self.top = max(1, max_draft_length)
        self.prompt_len = prompt_len
        self.new_tokens = new_tokens
        self.prompt = prompt_ids(pair, prompt_len, seed)
        self.text = _greedy_text(pair, self.prompt, new_tokens)
        self.verify_samples: list[list[float]] = [[] for _ in range(self.top + 1)]
        self.contexts: list[int] = []  # the KV cache length of each verify sweep
        self.sweeps: list[list[tuple[int, int, float]]] = []  # per verify sweep: (N, context, seconds) per pass
        # Engine-loop runs, each with its position (the verify sweeps done before it: see slowdown_at):
        self.plain: list[tuple[float, int]] = []  # the loop's own seconds per round at L = 0, one per run
        self.rounds: list[tuple[int, float, int]] = []  # (tokens drafted, round minus its verify pass, position)
        self.loop: list[tuple[int, float, int]] = []  # (tokens drafted, the loop's own work, position)

    @property
    def position(self) -> int:
        """Where the next piece of work sits among the verify sweeps: after this many of them."""
        return len(self.contexts)

    def slowdowns(self) -> np.ndarray:
        """Each verify sweep's slowdown against the sweeps' average (1.1: 10 % slower)."""
        return sweep_slowdowns(self.sweeps)

    def slowdown_at(self, position: int, slowdowns=None) -> float:
        """The machine's slowdown for work done at ``position`` (:attr:`position` when it started): the
        mean of the sweeps just before and just after it (the one there is, at either end)."""
        s = self.slowdowns() if slowdowns is None else slowdowns
        near = [s[k] for k in (position - 1, position) if 0 <= k < len(s)]
        return float(np.mean(near)) if near else 1.0

    def sweep_verify(self, passes: int = 2) -> None:
        """T_v(N) at every N, ``passes`` times each, over one KV cache whose length moves from sweep to
        sweep over the range the runs' verification passes see (the prompt up to the prompt plus the
        new tokens); the order of N turns by one each sweep, so a slow spell hits every N alike."""
        k = len(self.contexts)
        context = self.prompt_len + int(_spread_fraction(k + 1) * self.new_tokens)
        counts = list(range(1, self.top + 2))
        counts = counts[k % len(counts):] + counts[: k % len(counts)]
        timed = _verify_sweep(self.pair, self.text, context, counts, passes, self.clock)
        for n, seconds in timed.items():
            self.verify_samples[n - 1] += seconds
        self.sweeps.append([(n, context, t) for n, seconds in timed.items() for t in seconds])
        self.contexts.append(context)

    def round_lengths(self) -> tuple[int, ...]:
        """The draft lengths of the engine-loop runs: 0 (the loop alone), 1 and the largest."""
        return tuple(sorted({0, 1, max(2, self.top)}))

    def sweep_round(self, length: int, new_tokens: int | None = None) -> None:
        """One run of the engine loop on the calibration prompt at ``length``."""
        at = self.position
        run = run_engine(self.pair, self.prompt, length, new_tokens or self.new_tokens)
        if length == 0:
            self.plain.append((run.per_round(run.overhead_s), at))
        else:
            self.rounds += [(n, whole - verify, at) for n, _, verify, whole in run.round_rows if n > 0]
            self.loop += [(n, whole - verify - draft, at) for n, draft, verify, whole in run.round_rows if n > 0]

    def sweep_rounds(self, new_tokens: int | None = None) -> None:
        """A verify sweep, then each engine-loop run followed by one (so each has a sweep on both sides)."""
        if not self.contexts:
            self.sweep_verify()
        for length in self.round_lengths():
            self.sweep_round(length, new_tokens)
            self.sweep_verify()

    def profile(self, workload=()) -> EngineProfile:
        """The terms from every sweep so far, and the acceptance (see :func:`profile_engine`)."""
        # Expected times (outliers out, then the mean: see ``typical_seconds``), as the runs' rates
        # are total times over many passes.
        verify = np.array([typical_seconds(s) for s in self.verify_samples])
        spread = float(max(np.subtract(*np.percentile(s, [90, 10])) / typical_seconds(s)
                           for s in self.verify_samples))
        uncertainty = float(max(relative_error(s) for s in self.verify_samples))
        # The engine-loop costs at the sweeps' average speed: each divided by its run's slowdown.
        slowdowns = self.slowdowns()
        speed = {at: self.slowdown_at(at, slowdowns) for at in {r[-1] for r in (*self.plain, *self.rounds)}}
        round_overhead = max(typical_seconds([t / speed[at] for t, at in self.plain]), 0.0)
        # A drafting round's own cost: the assistant's call plus the loop's work beyond plain decoding,
        # against the tokens actually drafted (the last rounds draft fewer): the expected time at each
        # count, then a line through them weighted by how many rounds each holds.
        rows = np.array([(n, t / speed[at]) for n, t, at in self.rounds], dtype=float)
        counts = np.unique(rows[:, 0])
        x = counts
        y = np.array([typical_seconds(rows[rows[:, 0] == n, 1]) for n in counts]) - round_overhead
        w = np.sqrt([np.sum(rows[:, 0] == n) for n in counts])
        slope, intercept = np.polyfit(x, y, 1, w=w) if x.size > 1 else (float(y[0] / x[0]), 0.0)
        # The part of that cost which is the engine loop's own work (not the assistant's call), the
        # same way: it grows with the tokens drafted (each candidate's logits are checked).
        loop = np.array([(n, t / speed[at]) for n, t, at in self.loop], dtype=float)
        y_loop = np.array([typical_seconds(loop[loop[:, 0] == n, 1]) for n in counts]) - round_overhead
        loop_slope, loop_intercept = (np.polyfit(x, y_loop, 1, w=w) if x.size > 1
                                      else (float(y_loop[0] / x[0]), 0.0))
        held_out = acceptance_by_position(self.pair, [self.text], self.prompt_len, self.top)
        texts = [_greedy_text(self.pair, p, self.new_tokens) for p in workload]
        accept = acceptance_by_position(self.pair, texts, self.prompt_len, self.top) if texts else held_out
        return EngineProfile(tuple(range(1, self.top + 2)), tuple(float(t) for t in verify), spread,
                             float(max(slope, 1e-9)), float(max(intercept, 0.0)), round_overhead,
                             tuple(float(p) for p in accept), int(round(np.mean(self.contexts))), self.clock.kind,
                             tuple(float(p) for p in held_out), uncertainty,
                             int(min(len(v) for v in self.verify_samples)),
                             float(max(loop_intercept, 0.0)), float(max(loop_slope, 0.0)))


def profile_engine(pair: ModelPair, *, max_draft_length: int, prompt_len: int, new_tokens: int, repeats: int,
                   seed: int, workload=(), progress: Progress | None = None) -> EngineProfile:
    """Measure T_v at every N and the per-round costs on a calibration prompt, and the acceptance on
    the target's greedy text of the ``workload`` prompts (the calibration prompt's if none): with
    random weights the agreement differs by +-15 % from one prompt to the next, so acceptance is taken
    from the traffic it predicts, as ``calibrate`` would be run on served traffic (the teacher-forced
    text only, never the engine's own counts). The calibration prompt's acceptance is kept as well."""
    say = progress or (lambda text: None)
    say("calibration: target's greedy text")
    profiler = EngineProfiler(pair, max_draft_length=max_draft_length, prompt_len=prompt_len,
                              new_tokens=new_tokens, seed=seed)
    for rep in range(max(1, repeats)):
        say(f"verification time at N = 1..{profiler.top + 1} ({rep + 1}/{repeats})")
        profiler.sweep_verify()
        if rep < max(1, repeats // 2):
            say("engine loop: per-round costs")
            profiler.sweep_rounds()
    say("acceptance by position")
    return profiler.profile(workload)


def _greedy_text(pair: ModelPair, prompt, new_tokens: int):
    import torch

    with torch.inference_mode():
        return pair.target.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                    attention_mask=torch.ones_like(prompt))


# --------------------------------------------------------------------------- for profile-hardware


def measure_round_overhead(shape, *, new_tokens: int = 48, repeats: int = 3,
                           device: str | None = None) -> tuple[float, float]:
    """The engine loop's own seconds per round (``round_overhead_ms``) and their spread over the repeats.

    Runs transformers' plain greedy decoding on a *narrow* copy of the target (its vocabulary, one
    decoder layer, hidden size 64, random weights): the forward passes are timed apart and left out,
    and what remains (input preparation, the cache and mask upkeep, the logits over the vocabulary,
    the stopping checks) depends on the vocabulary, not on the model's width or depth. The clock is
    the process's CPU time with one torch thread on CPU (that work is single-threaded Python, so it
    is what an idle machine's wall clock would show), synchronised wall time on CUDA.
    """
    torch, transformers = require_transformers()
    transformers.logging.set_verbosity_error()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads = torch.get_num_threads()
    try:
        if device == "cpu":
            torch.set_num_threads(1)
        config = transformers.LlamaConfig(vocab_size=shape.vocab, hidden_size=64, intermediate_size=128,
                                          num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
                                          max_position_embeddings=4096, tie_word_embeddings=True)
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).to(device).eval()
        model.generation_config.pad_token_id = 0
        model.generation_config.eos_token_id = None
        pair = ModelPair(model, model, shape.name, shape.name, int(shape.vocab), device)
        prompt = prompt_ids(pair, 16, 0)
        run_engine(pair, prompt, 0, 8)  # warm-up
        per_round = [run.per_round(run.overhead_s)
                     for run in (run_engine(pair, prompt, 0, new_tokens) for _ in range(repeats))]
    finally:
        torch.set_num_threads(threads)
    typical = typical_seconds(per_round)
    spread = (max(per_round) - min(per_round)) / typical if typical > 0 and len(per_round) > 1 else 0.0
    return max(typical, 0.0), float(spread)
