"""Builders shared by the tests: random cells, small cells and a minimal profile."""

from __future__ import annotations

import numpy as np

from multispin_cli.model.acceptance import position_matrix
from multispin_cli.model.channel import Channel
from multispin_cli.model.synthetic import busy_cell  # noqa: F401  (re-exported for the tests)
from multispin_cli.model.system import System
from multispin_cli.model.verifier import VerifyTime


def random_system(
    rng: np.random.Generator,
    users: int,
    max_len: int,
    *,
    batching: str = "ragged",
    table: bool | str = False,
    power_share: float = 0.5,
    round_overhead: bool = False,
    no_uplink_share: float = 0.0,
) -> System:
    """A random cell mixing fixed-SNR and power-limited users, drafts that sometimes pay.

    ``table="any"`` gives a measured verification table that falls as well as rises (a CPU's
    matmul steps); ``round_overhead`` adds an engine cost per round; ``no_uplink_share`` is the
    share of users whose drafts bypass the shared uplink.
    """
    pl = rng.random(users) < power_share
    channel = Channel(
        pl,
        np.where(pl, np.nan, np.log2(1 + 10 ** rng.uniform(-0.5, 3, users))),
        np.where(pl, 10 ** rng.uniform(4.5, 7.5, users), np.nan),
    )
    if table == "any":
        n = np.arange(1, 30)  # a point at every N, with bumps like a CPU's (3 rows slower than 4)
        bumps = rng.uniform(0, 0.015, n.size) * (rng.random(n.size) < 0.4)
        bumps[2] = 0.01
        verify = VerifyTime.from_table(n, 0.02 + rng.uniform(0, 0.002) * n + bumps)
    elif table:
        n = np.array([1, 4, 8, 16, 32, 64])
        verify = VerifyTime.from_table(n, np.maximum.accumulate(0.02 + 0.0005 * n + rng.uniform(0, 0.005, n.size)))
    else:
        verify = VerifyTime.from_affine(base_s=rng.uniform(0.005, 0.05), per_token_s=rng.uniform(0, 0.003))
    return System(
        names=tuple(f"u{i}" for i in range(users)),
        accept_prob=position_matrix(acceptance=list(rng.uniform(0.3, 0.95, users)), max_draft_length=max_len),
        draft_s_per_token=10 ** rng.uniform(-3.3, -1.5, users),
        draft_overhead_s=rng.uniform(0, 0.01, users) * (rng.random(users) < 0.5),
        channel=channel,
        bits_per_token=float(rng.choice([15, 500, 5000])),
        header_bits=float(rng.choice([0, 200])),
        bandwidth_hz=float(10 ** rng.uniform(4.5, 7)),
        max_draft_length=max_len,
        verify=verify,
        downlink_s=float(rng.uniform(0, 0.005)),
        batching=batching,
        round_overhead_s=float(rng.uniform(0, 0.01)) if round_overhead else 0.0,
        no_uplink=(rng.random(users) < no_uplink_share) if no_uplink_share else None,
    )


def simple_system(
    *,
    acceptance=(0.8, 0.6),
    snr_db=(10.0, 10.0),
    draft_ms=(2.0, 2.0),
    overhead_ms=(0.0, 0.0),
    bandwidth_hz: float = 1e6,
    bits: float = 500.0,
    header: float = 0.0,
    max_len: int = 8,
    base_ms: float = 30.0,
    per_token_ms: float = 0.05,
    batching: str = "ragged",
) -> System:
    """A small fixed-SNR cell with every parameter at hand."""
    k = len(acceptance)
    return System(
        names=tuple(f"u{i}" for i in range(k)),
        accept_prob=position_matrix(acceptance=list(acceptance), max_draft_length=max_len),
        draft_s_per_token=np.asarray(draft_ms, float) * 1e-3,
        draft_overhead_s=np.asarray(overhead_ms, float) * 1e-3,
        channel=Channel.fixed_snr(10 ** (np.asarray(snr_db, float) / 10)),
        bits_per_token=bits,
        header_bits=header,
        bandwidth_hz=bandwidth_hz,
        max_draft_length=max_len,
        verify=VerifyTime.from_affine(base_s=base_ms * 1e-3, per_token_s=per_token_ms * 1e-3),
        batching=batching,
    )


MINIMAL_PROFILE = """
[system]
bandwidth_mhz = 2
max_draft_length = 8

[payload]
kind = "top-k"
vocab_size = 32000
top_k = 16

[server]
target = "test-target"
verify_base_ms = 30
verify_ms_per_token = 0.05

[[devices]]
name = "fast"
count = 2
acceptance = 0.8
draft_ms_per_token = 2
snr_db = 15

[[devices]]
name = "slow"
acceptance = 0.6
draft_ms_per_token = 5
draft_overhead_ms = 1
tx_power_dbm = 23
path_loss_db = 110
"""



def invoke(*args, **kwargs):
    """Run the CLI in-process (typer's CliRunner), arguments stringified; stdout and stderr apart."""
    from typer.testing import CliRunner

    from multispin_cli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def assert_one_line_error(result, needle: str) -> None:
    """Bad input: exit 2, nothing on stdout, one line on stderr containing ``needle``, no traceback."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert needle in lines[0], lines[0]


# MINIMAL_PROFILE's users as a devices file (users.csv beside the profile) and the profile naming it.
FILE_HEAD = """
devices_file = "users.csv"

[system]
bandwidth_mhz = 2
max_draft_length = 8

[payload]
kind = "top-k"
vocab_size = 32000
top_k = 16

[server]
verify_base_ms = 30
verify_ms_per_token = 0.05
"""
FILE_ROWS = """name,count,acceptance,draft_ms_per_token,draft_overhead_ms,snr_db,tx_power_dbm,path_loss_db
fast,2,0.8,2,,15,,
slow,,0.6,5,1,,23,110
"""
