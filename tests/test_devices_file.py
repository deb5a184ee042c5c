"""Users from a CSV or Parquet ``devices_file``: the same users and checks as ``[[devices]]``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builders import MINIMAL_PROFILE
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from multispin_cli.cli import app
from multispin_cli.documents.catalog import profiles_dir
from multispin_cli.documents.profile import DEVICE_KEYS, TOP_KEYS, load_profile
from multispin_cli.errors import ProfileError
from multispin_cli.render.document import _Rows, num, to_json

HEAD = MINIMAL_PROFILE[: MINIMAL_PROFILE.index("[[devices]]")]
CSV = """name,count,acceptance,draft_ms_per_token,draft_overhead_ms,snr_db,tx_power_dbm,path_loss_db
fast,2,0.8,2,,15,,
slow,,0.6,5,1,,23,110
"""


@pytest.fixture
def with_file(tmp_path):
    """Write ``csv_text`` as users.csv and a profile naming it; return the profile's path."""

    def write(csv_text: str = CSV, head: str = HEAD, name: str = "users.csv"):
        (tmp_path / name).write_text(csv_text)
        path = tmp_path / "cell.toml"
        path.write_text(f'devices_file = "{name}"\n' + head)
        return path

    return write


def assert_same_users(a, b):
    sa, sb = a.system, b.system
    assert sa.names == sb.names
    for field in ("accept_prob", "draft_s_per_token", "draft_overhead_s"):
        np.testing.assert_array_equal(getattr(sa, field), getattr(sb, field))
    for field in ("power_limited", "spectral_efficiency", "snr_bandwidth_hz"):
        np.testing.assert_array_equal(getattr(sa.channel, field), getattr(sb.channel, field))
    assert list(a.users) == list(b.users)


def test_csv_users_equal_the_same_devices_entries(write_profile, with_file):
    assert_same_users(load_profile(with_file()), load_profile(write_profile()))


def test_parquet_users_equal_the_csv_users(with_file, tmp_path):
    pa = pytest.importorskip("pyarrow", reason="the parquet extra (pyarrow) is not installed")
    import pyarrow.parquet as pq

    table = pa.table({
        "name": ["fast", "slow"], "count": [2, None], "acceptance": [0.8, 0.6], "draft_ms_per_token": [2.0, 5.0],
        "draft_overhead_ms": [None, 1.0], "snr_db": [15.0, None], "tx_power_dbm": [None, 23.0],
        "path_loss_db": [None, 110.0],
    })
    pq.write_table(table, tmp_path / "users.parquet")
    from_parquet = tmp_path / "pq.toml"
    from_parquet.write_text('devices_file = "users.parquet"\n' + HEAD)
    assert_same_users(load_profile(from_parquet), load_profile(with_file()))


def test_per_position_acceptance_draft_models_and_fragments(with_file, tmp_path):
    (tmp_path / "timings.toml").write_text("[draft]\ndraft_ms_per_token = 3.5\ndraft_overhead_ms = 0.5\n")
    profile = load_profile(with_file(
        "name,acceptance_by_position,acceptance,timings,draft_model,spectral_efficiency_bps_per_hz,"
        "tx_power_dbm,distance_m\n"
        'a,0.9;0.8,,timings.toml,tiny,2,,\n'
        'b,,0.7,timings.toml,,,20,50\n'
    ))
    system = profile.system
    np.testing.assert_allclose(system.accept_prob[0, :3], [0.9, 0.8, 0.8])
    np.testing.assert_allclose(system.accept_prob[1], 0.7)
    np.testing.assert_allclose(system.draft_s_per_token, 3.5e-3)
    np.testing.assert_allclose(system.draft_overhead_s, 0.5e-3)
    assert system.channel.spectral_efficiency[0] == pytest.approx(2.0)
    assert list(system.channel.power_limited) == [False, True]
    assert profile.users[0].draft_model == "tiny" and profile.users[1].draft_model is None
    assert profile.users[1].channel == "20 dBm@50 m"


def test_devices_entries_come_first_then_the_file(write_profile, tmp_path):
    (tmp_path / "more.csv").write_text("name,acceptance,draft_ms_per_token,snr_db\nextra,0.5,3,10\n")
    profile = load_profile(write_profile('devices_file = "more.csv"\n' + MINIMAL_PROFILE))
    assert profile.system.names == ("fast-1", "fast-2", "slow", "extra")
    assert profile.users[3].device == "extra"


def test_every_device_key_of_a_csv_kind_is_a_column():
    """Columns follow the schema: a device key added later is a CSV column too."""
    from multispin_cli.documents.profile import _CSV_KINDS

    assert {k.kind for k in DEVICE_KEYS} - set(_CSV_KINDS) <= {"table"}


@pytest.mark.parametrize(
    ("csv_text", "where", "reason"),
    [
        ("name,acceptance,draft_ms_per_token,snr_db\na,0.5,3,10\nb,1.2,3,10\n",
         "row 2 (line 3), column acceptance", "must be in [0, 1), got 1.2"),
        ("name,acceptance,draft_ms_per_token,snr_db\na,0.5,fast,10\n",
         "row 1 (line 2), column draft_ms_per_token", "must be a number, got 'fast'"),
        ("name,acceptance,draft_ms_per_token,snr_db\na,0.5,nan,10\n",
         "row 1 (line 2), column draft_ms_per_token", "must be a number, got 'nan'"),
        ("name,acceptance,draft_ms_per_token,snr_db,count\na,0.5,3,10,2.5\n",
         "row 1 (line 2), column count", "must be an integer, got 2.5"),
        ("name,acceptance,draft_ms_per_token,snr_db\n\na,0.5,3,10\n,0.5,3,10\n",
         "row 2 (line 4), column name", "missing (required)"),
        ("name,acceptance,draft_ms_per_token\na,0.5,3\n", "row 1 (line 2), column snr_db", "gives no channel"),
        ("name,acceptance,draft_ms_per_token,snr_db,distance_m\na,0.5,3,10,5\n",
         "row 1 (line 2), column distance_m", "only used with tx_power_dbm"),
        ("name,acceptance,draft_ms_per_token,snr_db\na,0.5,3,10\nb,0.5,3\n", "row 2 (line 3)",
         "has 3 fields, the header has 4"),
        ("name,acceptence,draft_ms_per_token,snr_db\na,0.5,3,10\n", "column acceptence",
         "unknown column (did you mean 'acceptance'?)"),
        ("name,acceptance,draft_ms_per_token,snr_db\n", "", "has no users"),
        ("name,acceptance_by_position,draft_ms_per_token,snr_db\na,0.9;1.5,3,10\n",
         "row 1 (line 2), column acceptance_by_position[2]", "must be in [0, 1], got 1.5"),
        ('name,acceptance,draft_ms_per_token,snr_db\n"a,b",0.5,3,10\n"c",0.5,3,x\n',
         "row 2 (line 3), column snr_db", "must be a number, got 'x'"),
    ],
)
def test_errors_name_the_file_row_and_column(with_file, tmp_path, csv_text, where, reason):
    path = with_file(csv_text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value).startswith(": ".join(p for p in (str(tmp_path / "users.csv"), where, reason) if p))


def test_duplicate_users_across_entries_and_file(write_profile, tmp_path):
    (tmp_path / "more.csv").write_text("name,acceptance,draft_ms_per_token,snr_db\nslow,0.5,3,10\n")
    with pytest.raises(ProfileError, match="two users are named 'slow'"):
        load_profile(write_profile('devices_file = "more.csv"\n' + MINIMAL_PROFILE))


@pytest.mark.parametrize(("name", "reason"), [("users.xlsx", "must be .csv or .parquet"), ("gone.csv", "no such file")])
def test_bad_devices_file_path_via_the_cli(tmp_path, name, reason):
    if name.endswith(".xlsx"):
        (tmp_path / name).write_text("x")
    path = tmp_path / "cell.toml"
    path.write_text(f'devices_file = "{name}"\n' + HEAD)
    result = CliRunner().invoke(app, ["plan", str(path), "--format", "json"])
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and reason in lines[0]


def test_plan_from_a_csv_is_the_plan_from_devices(write_profile, with_file):
    runner = CliRunner()
    a = runner.invoke(app, ["plan", str(with_file()), "--format", "json"])
    b = runner.invoke(app, ["plan", str(write_profile()), "--format", "json"])
    assert a.exit_code == 0 and b.exit_code == 0
    doc_a, doc_b = json.loads(a.stdout), json.loads(b.stdout)
    for doc in (doc_a, doc_b):
        del doc["plan"]["profile"], doc["plan"]["name"]
    assert doc_a == doc_b


def test_the_top_level_keys_are_documented():
    readme = (profiles_dir().parent / "README.md").read_text()
    for key in TOP_KEYS:
        assert f"`{key.name}`" in readme


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
_docs = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)), max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=5), _docs, max_size=5))
def test_fast_json_is_the_standard_indented_json(doc):
    assert to_json(doc) == json.dumps(doc, indent=2, allow_nan=False) + "\n"


_cells = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.floats(-1e300, 1e300).map(num),  # as the plan rounds them
                   st.integers(-10**6, 10**6).map(float),
                   st.sampled_from([0.0, -0.0, 1e-4, 9.999999999e-5, 1e10, 9999999999.5, 1e16, 123456.789, 5e-324]))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_cells, _cells, st.integers(-10**6, 10**6), st.text(max_size=6),
                          st.one_of(st.none(), st.text(max_size=4)), st.text(max_size=6)), min_size=1, max_size=40))
def test_users_rows_written_from_columns_are_the_standard_indented_json(rows):
    """The row templates (floats by %.10g where it is their repr) give json.dumps's text."""
    a, b, n, name, model, device = (list(column) for column in zip(*rows))
    users = _Rows({"name": name, "a_mhz": a, "b_ms": b, "n": n}, model if any(model) else [], device)
    assert users.json_chunks(1) is not None
    doc = {"plan": {"users": users}}
    assert to_json(doc) == json.dumps({"plan": {"users": users.tables()}}, indent=2, allow_nan=False) + "\n"


def test_rows_whose_floats_need_the_other_conversion_are_written_as_json_dumps_writes_them():
    """A float column takes %.10g or %r, whichever most of a piece of rows needs; the other rows
    (here a few whole numbers among 10-digit ones, and the reverse, across several pieces) are
    written again with their own template: still the standard indented JSON."""
    rng = np.random.default_rng(3)
    rows = 9000  # three pieces of rows
    mostly_short = [num(v) for v in rng.uniform(0.001, 50.0, rows)]
    mostly_whole = [float(v) for v in rng.integers(0, 5, rows)]
    for i in range(0, rows, 97):
        mostly_short[i], mostly_whole[i] = float(i % 3), num(rng.uniform(0.001, 1.0))
    names = [f"u{i}" for i in range(rows)]
    users = _Rows({"name": names, "a_mhz": mostly_short, "b_ms": mostly_whole,
                   "n": list(range(rows))}, [], names)
    assert users.json_chunks(1) is not None
    assert to_json({"plan": {"users": users}}) == json.dumps({"plan": {"users": users.tables()}}, indent=2,
                                                            allow_nan=False) + "\n"
