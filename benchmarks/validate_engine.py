"""Issue 14's check of the model against a real engine (a benchmark, not a test).

Builds the issue's pair with no download: a random-init Llama target (hidden 768, 12 layers, MLP 2048,
vocabulary 32000, 134M parameters, ``initializer_range = 5e-4``) and a layer-skip draft (its embeddings,
first decoder layer, final norm and head). Then runs ``multispin validate`` in a fresh process for
L = 0..8 (256 new tokens, greedy) ``--runs`` times and prints, per run, measured vs predicted tokens/s
per L, the worst error and how much slower the plan's L ran than the measured best. Each L runs
``--repeats`` times, then again (interleaved) while its median tokens/s (each run brought to the
verify sweeps' average speed with the slowdown of the sweeps around it) is not known within
``--stability`` per cent, up to ``--max-repeats`` runs.

    python benchmarks/validate_engine.py [--runs 2] [--repeats 3] [--max-repeats 5] [--stability 2]
                                         [--new-tokens 256] [--out DIR]

Targets (issue 14): worst |error| over L = 0..8 at most 5 %, the plan's L within 1 % of the measured
best, on two runs. The clock is the process's CPU time with one torch thread, so other processes
on the machine change the numbers less than wall time, but not by nothing: the virtual machine's
speed drifts by 10-20 % over seconds to minutes even when idle (its neighbours), which the
slowdowns follow in part; other jobs in the machine add to it: measure on an idle machine. The
defaults take about 12 minutes per run on this 2-core machine when 3 runs per L suffice, up to
about 20 when every L needs 5 (so 25-40 minutes for the two runs on an idle machine; about twice
that under load). Each run prints its load average before and after, the model's terms (with T_v's
standard error and 10-90 % spread), per L the measured tokens/s (its spread and how many runs),
the machine's slowdown over its runs, the median at the sweeps' average speed (± half its 75 %
interval) and the predicted, the error (and against the plain median), tokens per round
(predicted, and from a held-out prompt) and each phase's ms per round against the prediction, then
the worst error and the plan's L against the measured best; the last two lines say whether both
targets were met, with the error at the sweeps' average speed and against the measured medians.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 768, "intermediate_size": 2048,
    "num_hidden_layers": 12, "num_attention_heads": 12, "num_key_value_heads": 12, "vocab_size": 32000,
    "max_position_embeddings": 2048, "initializer_range": 5e-4, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-repeats", type=int, default=5)
    parser.add_argument("--stability", type=float, default=2.0, help="per cent")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--max-draft-length", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="seed of the first run (the next runs count up)")
    parser.add_argument("--out", type=Path, default=None, help="keep each run's TOML here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="multispin-validate-"))
    config = folder / "config.json"
    config.write_text(json.dumps(CONFIG))
    worst, plain, losses = [], [], []
    for run in range(args.seed, args.seed + args.runs):
        load_before = os.getloadavg()
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "multispin_cli", "validate", "--target", str(config), "--draft-layers", "1",
             "-L", str(args.max_draft_length), "--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats),
             "--max-repeats", str(args.max_repeats), "--stability", str(args.stability),
             "--seed", str(run), "--format", "json"], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()
        if done.returncode != 0:
            sys.exit(f"seed {run} failed ({done.returncode}): {done.stderr.strip()}")
        doc = json.loads(done.stdout)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"validate-seed{run}.json").write_text(done.stdout)
        s, m = doc["summary"], doc["model"]
        print(f"seed {run}: {wall:.0f} s wall; load average (1, 5, 15 min) before "
              f"{', '.join(f'{x:.2f}' for x in load_before)}, after {', '.join(f'{x:.2f}' for x in load_after)}; "
              f"clock: {doc['validate']['clock']}")
        print(f"model terms: draft {m['draft_ms_per_token']} ms/token + {m['draft_overhead_ms']} ms/round (of which "
              f"the loop's {m['loop_ms_per_token']} ms/token + {m['loop_overhead_ms']} ms/round), engine "
              f"{m['round_overhead_ms']} ms/round, T_v from {m['verify_samples']} passes per N (standard error "
              f"<= {m['verify_uncertainty_percent']} %, 10-90 % spread <= {m['verify_spread_percent']} %), "
              f"acceptance by position {m['acceptance_by_position']}")
        print("| L | measured tok/s (spread; runs) | slowdown | at avg. speed (± median's interval) | predicted tok/s "
              "| error (against the plain median) | tokens/round measured (predicted; held-out prompt) | "
              "draft ms/round (pred.) | verify ms/round (pred.) | other ms/round (pred.) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in doc["lengths"]:
            mark = " (plan)" if row["draft_length"] == s["plan_draft_length"] else ""
            best = " (best)" if row["draft_length"] == s["best_draft_length"] else ""
            sure = row.get("uncertainty_percent", float("nan"))
            print(f"| {row['draft_length']}{mark}{best} | {row['measured_tokens_per_s']:.2f} "
                  f"({row['spread_percent']:.1f} %; {row['runs']}) | {row['slowdown']:.3f} | "
                  f"{row['normalised_tokens_per_s']:.2f} (±{sure:.1f} %) | {row['predicted_tokens_per_s']:.2f} | "
                  f"{row['error_percent']:+.1f} % ({row['unadjusted_error_percent']:+.1f} %) | "
                  f"{row['tokens_per_round']:.2f} "
                  f"({row['predicted_tokens_per_round']:.2f}; {row['held_out_tokens_per_round']:.2f}) | "
                  f"{row['draft_ms_per_round']:.1f} ({row['predicted_draft_ms_per_round']:.1f}) | "
                  f"{row['verify_ms_per_round']:.1f} ({row['predicted_verify_ms_per_round']:.1f}) | "
                  f"{row['overhead_ms_per_round']:.2f} ({row['predicted_overhead_ms_per_round']:.2f}) |")
        loss = s.get("plan_loss_percent", float("nan"))
        worst.append(s["worst_error_percent"])
        plain.append(s["worst_unadjusted_error_percent"])
        losses.append(loss)
        print(f"worst |error| {s['worst_error_percent']:.1f} % (target <= 5 %; against the plain medians "
              f"{s['worst_unadjusted_error_percent']:.1f} %); plan L = {s['plan_draft_length']}, "
              f"measured best L = {s['best_draft_length']}; the plan's L ran {loss:.2f} % slower than the best "
              "(target <= 1 %)\n", flush=True)
    # Both measures of the error: at the sweeps' average speed (what validate reports first), and
    # against the engine's tokens/s as measured (the plain medians), the issue's own measure.
    for name, errors in (("at the sweeps' average speed", worst), ("against the measured medians", plain)):
        ok = all(w <= 5 for w in errors) and all(x <= 1 for x in losses)
        print(f"all runs, {name}: worst errors {', '.join(f'{w:.1f} %' for w in errors)}; plan losses "
              f"{', '.join(f'{x:.2f} %' for x in losses)}: {'MET' if ok else 'NOT met'} (<= 5 % and <= 1 %)")


if __name__ == "__main__":
    main()
