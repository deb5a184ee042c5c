"""Tables at 80 and 120 columns: numbers never cut with an ellipsis, small shares in kHz or Hz,
identical users folded, and no trailing spaces in piped output."""

from __future__ import annotations

import json
import math
import re

import pytest
from builders import invoke

from multispin_cli.documents.catalog import shipped_profiles
from multispin_cli.render.tables import band


def distinct_cell(users: int = 32) -> str:
    """A cell of distinct users with shares from a few Hz to MHz (long names, mixed channels)."""
    parts = ['[system]\nname = "distinct"\nbandwidth_mhz = 20\n[payload]\nkind = "top-k"\nvocab_size = 32000\n'
             'top_k = 16\n[server]\nverify_base_ms = 150.0\nverify_ms_per_token = 0.086\n']
    for i in range(users):
        channel = f"snr_db = {-5 + i}" if i % 2 else f"tx_power_dbm = 20\ndistance_m = {20 + 15 * i}"
        parts.append(f'[[devices]]\nname = "handheld-unit-{i}"\nacceptance = {0.4 + 0.017 * i:.3f}\n'
                     f"draft_ms_per_token = {1 + (i * 7) % 9}\n{channel}\n")
    return "\n".join(parts)


@pytest.mark.parametrize("width", [80, 120])
def test_numbers_are_never_cut_and_lines_fit(write_profile, width):
    path = write_profile(distinct_cell())
    result = invoke("plan", path, "--rows", "0", env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "…" not in out
    for line in out.splitlines():
        assert len(line) <= width, line
        assert line == line.rstrip(), f"trailing spaces: {line!r}"
    assert not re.search(r"\de-\d", out), "an exponent in a table"
    for i in range(32):
        assert f"handheld-unit-{i}" in out.replace("\n", "") or f"handheld-unit-{i}" in out
    # small shares read in kHz or Hz, large ones in MHz
    assert re.search(r"\d kHz", out) and re.search(r"\d MHz", out)


def test_band_units():
    assert band(20e6) == "20 MHz"
    assert band(2.45e6) == "2.45 MHz"
    assert band(999.4e3) == "999 kHz"
    assert band(35.8e3) == "35.8 kHz"
    assert band(508.3) == "508 Hz"
    assert band(0.0) == "0"


def test_identical_users_fold_and_rows_caps(write_profile):
    out = invoke("plan", "qwen3-l4-laptops-phones", env={"COLUMNS": "80"}).stdout
    assert "laptop-rtx-1..4" in out and "phone-1..4" in out
    capped = invoke("plan", "campus-32-mixed", "--rows", "2", env={"COLUMNS": "80"}).stdout
    assert "3 more rows" in capped and "--rows 0 shows all" in capped
    assert "workstation-1..4" in capped  # a folded row's label is not broken
    assert "…" not in capped  # per-position acceptance reads first..last, not cut


def test_headline_counts_and_target_label(write_profile):
    one = '[system]\nbandwidth_mhz = 1\n[server]\nverify_base_ms = 10\nverify_ms_per_token = 0.1\n[payload]\nvocab_size = 32000\n' \
          '[[devices]]\nname = "solo"\nacceptance = 0.7\ndraft_ms_per_token = 2\nsnr_db = 10\n'
    out = invoke("plan", write_profile(one)).stdout
    assert "1 user," in out and "1 users" not in out
    assert "target target" not in out


@pytest.mark.parametrize("name", ["campus-32-mixed", "qwen3-l4-laptops-phones", "narrowband-64-handhelds"])
def test_document_shares_sum_to_the_band(name):
    doc = json.loads(invoke("plan", name, "-f", "json").stdout)
    band_mhz = doc["plan"]["bandwidth_mhz"]
    for plan in ("homogeneous", "heterogeneous"):
        users = doc[plan]["users"]
        total = sum(u["bandwidth_mhz"] for u in users)
        if total > 0:
            assert math.isclose(total, band_mhz, rel_tol=1e-14), total
        assert all("device" in u for u in users)


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", sorted(shipped_profiles()))
def test_shipped_profiles_fit(name, width):
    out = invoke("plan", name, "--rows", "0", env={"COLUMNS": str(width)}).stdout
    assert "…" not in out
    assert all(len(line) <= width and line == line.rstrip() for line in out.splitlines())
    assert out.split("Users")[1].splitlines()[3].endswith("tok/s"), "the last column is cut"
