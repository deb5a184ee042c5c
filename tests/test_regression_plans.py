"""The planners against stored optimal plans: speed work must not change a single answer.

``data/optimal_plans.json`` holds 49 random cells (1-6 users with exact knapsacks, 17-60 users on
the LP path, busy cells of 40-300 users; ragged and padded batching, affine and measured verify
times) with the plans the exact planners found before any optimisation
(``data/make_optimal_plans.py`` regenerates it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from multispin_cli.model.channel import Channel
from multispin_cli.model.system import System
from multispin_cli.model.verifier import VerifyTime
from multispin_cli.planners.exhaustive import exhaustive_best
from multispin_cli.planners.heterogeneous import BOUND_TOLERANCE, plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous

RECORDS = json.loads(Path(__file__).with_name("data").joinpath("optimal_plans.json").read_text())["cells"]


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def build(cell: dict) -> System:
    k, max_len = cell["users"], cell["max_draft_length"]
    verify = VerifyTime(_array(cell["verify_tokens"]), _array(cell["verify_seconds"]), cell["verify_affine"])
    return System(
        names=tuple(f"u{i}" for i in range(k)),
        accept_prob=_array(cell["accept_prob"]).reshape(k, max_len),
        draft_s_per_token=_array(cell["draft_s_per_token"]),
        draft_overhead_s=_array(cell["draft_overhead_s"]),
        channel=Channel(np.array(cell["power_limited"], dtype=bool), _array(cell["spectral_efficiency"]),
                        _array(cell["snr_bandwidth_hz"])),
        bits_per_token=cell["bits_per_token"],
        header_bits=cell["header_bits"],
        bandwidth_hz=cell["bandwidth_hz"],
        max_draft_length=max_len,
        verify=verify,
        downlink_s=cell["downlink_s"],
        batching=cell["batching"],
    )


def test_the_fixture_covers_every_path():
    cells = [r["cell"] for r in RECORDS]
    assert {c["batching"] for c in cells} == {"ragged", "padded"}
    assert {c["verify_affine"] for c in cells} == {True, False}
    assert min(c["users"] for c in cells) == 1 and max(c["users"] for c in cells) >= 300
    assert any(any(c["power_limited"]) for c in cells) and any(not all(c["power_limited"]) for c in cells)


@pytest.mark.parametrize("index", range(len(RECORDS)))
def test_planners_reproduce_the_stored_optimum(index):
    record = RECORDS[index]
    system = build(record["cell"])
    hom = plan_homogeneous(system)
    assert hom.draft_length == record["homogeneous"]["draft_length"]
    assert hom.evaluation.goodput_tokens_per_s == pytest.approx(record["homogeneous"]["goodput_tokens_per_s"],
                                                                rel=1e-12)
    het = plan_heterogeneous(system, start=hom)
    stored = record["heterogeneous"]
    assert het.evaluation.goodput_tokens_per_s == pytest.approx(stored["goodput_tokens_per_s"], rel=1e-12)
    assert het.evaluation.draft_lengths.tolist() == stored["draft_lengths"]
    # The bound is a certificate, not an answer: it may only get tighter (the tangent relaxation,
    # the table weighed at every total), or stop refining once within the planner's tolerance.
    value, bound = het.evaluation.goodput_tokens_per_s, het.upper_bound_tokens_per_s
    assert value <= bound
    assert bound <= max(stored["upper_bound_tokens_per_s"], value * (1 + BOUND_TOLERANCE)) * (1 + 1e-9)


def test_stored_small_plans_are_the_exhaustive_optimum():
    """The fixture itself is right: on the small cells it agrees with trying every plan."""
    checked = 0
    for record in RECORDS:
        cell = record["cell"]
        if (cell["max_draft_length"] + 1) ** cell["users"] > 20_000:
            continue
        _, best = exhaustive_best(build(cell))
        assert record["heterogeneous"]["goodput_tokens_per_s"] == pytest.approx(best, rel=1e-9)
        checked += 1
    assert checked >= 15
