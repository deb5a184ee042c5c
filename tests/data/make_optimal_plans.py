"""Regenerate ``optimal_plans.json``: random cells with the plans the exact planners chose for them.

Run once from the repository root (``python tests/data/make_optimal_plans.py``) with planners known
to be right; tests/test_regression_plans.py then checks that every later planner still finds the
same goodput and draft lengths. The cells are stored whole (arrays in SI units), so the fixture
does not depend on how the random builders draw them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builders import busy_cell, random_system  # noqa: E402

from multispin_cli.planners.heterogeneous import plan_heterogeneous  # noqa: E402
from multispin_cli.planners.homogeneous import plan_homogeneous  # noqa: E402

OUT = Path(__file__).with_name("optimal_plans.json")


def _floats(values) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=float).ravel()]


def cell_record(system) -> dict:
    ch = system.channel
    return {
        "users": system.users,
        "accept_prob": _floats(system.accept_prob),
        "draft_s_per_token": _floats(system.draft_s_per_token),
        "draft_overhead_s": _floats(system.draft_overhead_s),
        "power_limited": [bool(p) for p in ch.power_limited],
        "spectral_efficiency": _floats(ch.spectral_efficiency),
        "snr_bandwidth_hz": _floats(ch.snr_bandwidth_hz),
        "bits_per_token": system.bits_per_token,
        "header_bits": system.header_bits,
        "bandwidth_hz": system.bandwidth_hz,
        "max_draft_length": system.max_draft_length,
        "verify_tokens": _floats(system.verify.tokens),
        "verify_seconds": _floats(system.verify.seconds),
        "verify_affine": bool(system.verify.affine),
        "downlink_s": system.downlink_s,
        "batching": system.batching,
    }


def cells():
    rng = np.random.default_rng(20261128)
    for i in range(36):  # small cells, where the planner's knapsacks are exact DPs
        yield random_system(rng, int(rng.integers(1, 7)), int(rng.integers(2, 9)),
                            batching="padded" if i % 4 == 3 else "ragged", table=i % 3 == 2)
    for i in range(10):  # medium cells: LP knapsacks, Dinkelbach, screened local search
        yield random_system(rng, int(rng.integers(17, 60)), 16, batching="padded" if i % 5 == 4 else "ragged",
                            table=i % 3 == 2)
    for users in (40, 120, 300):
        yield busy_cell(rng, users)


def main() -> None:
    records = []
    for system in cells():
        hom = plan_homogeneous(system)
        het = plan_heterogeneous(system, start=hom)
        records.append({
            "cell": cell_record(system),
            "homogeneous": {"draft_length": int(hom.draft_length),
                            "goodput_tokens_per_s": hom.evaluation.goodput_tokens_per_s},
            "heterogeneous": {"draft_lengths": [int(v) for v in het.evaluation.draft_lengths],
                              "goodput_tokens_per_s": het.evaluation.goodput_tokens_per_s,
                              "upper_bound_tokens_per_s": het.upper_bound_tokens_per_s},
        })
    OUT.write_text(json.dumps({"generated_by": "tests/data/make_optimal_plans.py", "cells": records}) + "\n")
    print(f"wrote {len(records)} cells to {OUT}")


if __name__ == "__main__":
    main()
