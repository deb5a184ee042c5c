"""Every file multispin reads is checked as strictly as a profile, within limits.

Included fragments (timings, calibration) and plan files: unknown tables and keys, wrong types,
names with control characters, users listed twice. Limits: deep nesting, huge counts, device
files and named pipes, file size, users per profile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from builders import MINIMAL_PROFILE, assert_one_line_error, invoke

from multispin_cli.documents.files import MAX_FILE_BYTES, MAX_NESTING
from multispin_cli.documents.planfile import load_plan_file
from multispin_cli.documents.profile import load_profile
from multispin_cli.errors import PlanFileError, ProfileError

TIMINGS = """
[server]
target = "t"
verify_base_ms = 20
verify_ms_per_token = 0.1

[draft]
model = "m"
draft_ms_per_token = 4
draft_overhead_ms = 1

[measurement]
anything = "free-form notes"
"""

CALIBRATION = """
[acceptance]
acceptance = 0.7
acceptance_ci95_low = 0.6
acceptance_ci95_high = 0.8

[calibration]
drafts = 100
"""


def _with_fragments(write_profile, timings: str = TIMINGS, calibration: str = CALIBRATION):
    write_profile(timings, name="timings.toml")
    write_profile(calibration, name="acc.toml")
    text = MINIMAL_PROFILE.replace("verify_base_ms = 30\nverify_ms_per_token = 0.05", 'timings = "timings.toml"')
    text = text.replace('name = "slow"\nacceptance = 0.6\ndraft_ms_per_token = 5',
                        'name = "slow"\ncalibration = "acc.toml"\ntimings = "timings.toml"')
    assert text.count("timings.toml") == 2 and "acc.toml" in text
    return write_profile(text)


def test_well_formed_fragments_load(write_profile):
    system = load_profile(_with_fragments(write_profile)).system
    assert system.draft_s_per_token[-1] == pytest.approx(4e-3)


FRAGMENT_MISTAKES = [
    ("timings", ("draft_overhead_ms = 1", "draft_overhead_msec = 1"), "draft.draft_overhead_msec",
     "did you mean 'draft_overhead_ms'"),
    ("timings", ("verify_ms_per_token = 0.1", "verify_ms_per_tok = 0.1"), "server.verify_ms_per_tok", "unknown key"),
    ("timings", ("[draft]", "[drafts]"), "drafts", "did you mean [draft]"),
    ("timings", ('model = "m"', "model = 42"), "draft.model", "must be a string"),
    ("timings", ('[measurement]\nanything = "free-form notes"', "[draft.sub]\nx = 1"), "draft.sub", "unknown key"),
    ("timings", ("draft_ms_per_token = 4", "draft_ms_per_token = -4"), "draft.draft_ms_per_token", "at least"),
    ("calibration", ("acceptance = 0.7", "acceptence = 0.7"), "acceptance.acceptence", "did you mean 'acceptance'"),
    ("calibration", ("acceptance_ci95_low = 0.6", "acceptance_ci95_low = 7"), "acceptance.acceptance_ci95_low",
     "probabilities"),
    ("calibration", ("acceptance = 0.7", "acceptance = 1.5"), "acceptance.acceptance", "[0, 1)"),
]


@pytest.mark.parametrize("which,edit,key,reason", FRAGMENT_MISTAKES, ids=[f"{m[0]}:{m[2]}" for m in FRAGMENT_MISTAKES])
def test_a_mistake_in_an_included_fragment_names_the_fragment_and_key(write_profile, which, edit, key, reason):
    old, new = edit
    timings = TIMINGS.replace(old, new, 1) if which == "timings" else TIMINGS
    calibration = CALIBRATION.replace(old, new, 1) if which == "calibration" else CALIBRATION
    assert (timings, calibration) != (TIMINGS, CALIBRATION)
    path = _with_fragments(write_profile, timings, calibration)
    fragment = path.parent / ("timings.toml" if which == "timings" else "acc.toml")
    result = invoke("plan", path, "--format", "json")
    assert_one_line_error(result, f"{fragment}: {key}")
    assert reason in result.stderr


@pytest.mark.parametrize("name", ["phone\nnext", "tab\there", "bell\x07", "del\x7f", "line\u2028sep", "nul\x00"])
def test_names_with_control_characters_are_refused(write_profile, name):
    path = write_profile(MINIMAL_PROFILE.replace('name = "slow"', f"name = {json.dumps(name)}"))
    with pytest.raises(ProfileError, match=r"devices\[2\]\.name: must not contain control characters"):
        load_profile(path)


def test_a_description_may_span_lines(write_profile):
    path = write_profile(MINIMAL_PROFILE.replace("[system]", '[system]\ndescription = """two\nlines"""'))
    assert load_profile(path).system.users == 3


# ---------------------------------------------------------------- plan files


@pytest.fixture
def plan_json(write_profile, tmp_path):
    profile = write_profile()
    out = tmp_path / "plan.json"
    assert invoke("plan", profile, "--format", "json", "--output", out).exit_code == 0
    return profile, out


def _edit_plan(out, change):
    doc = json.loads(out.read_text())
    change(doc)
    out.write_text(json.dumps(doc))


PLAN_MISTAKES = [
    ("user twice", lambda d: d["heterogeneous"]["users"].append(dict(d["heterogeneous"]["users"][0])),
     "users[4].name", "listed twice"),
    ("draft_model 42", lambda d: d["heterogeneous"]["users"][0].update(draft_model=42), "users[1].draft_model",
     "must be a string"),
    ("newline in name", lambda d: d["homogeneous"]["users"][1].update(name="fast\n2"), "users[2].name",
     "control characters"),
    ("unknown user key", lambda d: d["heterogeneous"]["users"][0].update(draft_lenght=3), "users[1].draft_lenght",
     "did you mean 'draft_length'"),
    ("unknown section key", lambda d: d["homogeneous"].update(goodput=1.0), "homogeneous.goodput", "unknown key"),
    ("unknown table", lambda d: d.update(heterogenous={}), "heterogenous", "did you mean 'heterogeneous'"),
    ("target 1", lambda d: d["plan"].update(target=1), "plan.target", "must be a string"),
    ("empty name", lambda d: d["heterogeneous"]["users"][0].update(name=" "), "users[1].name", "must not be empty"),
]


@pytest.mark.parametrize("case,change,key,reason", PLAN_MISTAKES, ids=[m[0] for m in PLAN_MISTAKES])
def test_a_plan_file_is_checked_like_a_profile(plan_json, case, change, key, reason):
    profile, out = plan_json
    _edit_plan(out, change)
    for command in (("simulate", profile, "--plan", out, "-n", "10"), ("export", out, "--engine", "vllm")):
        result = invoke(*command)
        assert_one_line_error(result, key)
        assert reason in result.stderr


def test_nan_in_a_json_plan_is_refused(plan_json):
    _, out = plan_json
    out.write_text(out.read_text().replace('"goodput_tokens_per_s": ', '"goodput_tokens_per_s": NaN, "x": ', 1))
    with pytest.raises(PlanFileError, match="NaN"):
        load_plan_file(out)


def test_inf_in_a_toml_plan_is_refused(write_profile, tmp_path):
    out = tmp_path / "plan.toml"
    assert invoke("plan", write_profile(), "--format", "toml", "--output", out).exit_code == 0
    text = out.read_text()
    out.write_text(text.replace("bandwidth_mhz = ", "bandwidth_mhz = inf\nx = ", 1))
    with pytest.raises(PlanFileError, match="finite"):
        load_plan_file(out)


@pytest.mark.parametrize("profile", ["llama2-a100-phones-jetsons", "campus-32-mixed", "narrowband-64-handhelds",
                                     "nr-30khz-51rb-qwen3"])
@pytest.mark.parametrize("mode", ["both", "heterogeneous", "homogeneous"])
def test_every_plan_document_reads_back(tmp_path, profile, mode):
    """The key lists of planfile.py cover what render/document.py writes (add new keys to both)."""
    from multispin_cli.documents.catalog import profiles_dir

    for fmt in ("json", "toml"):
        out = tmp_path / f"plan.{fmt}"
        assert invoke("plan", profiles_dir() / f"{profile}.toml", "-m", mode, "-f", fmt, "-o", out).exit_code == 0
        assert load_plan_file(out).plans


# ---------------------------------------------------------------- limits


def _timed(call):
    start = time.perf_counter()
    try:
        call()
    except (ProfileError, PlanFileError) as exc:
        return time.perf_counter() - start, str(exc)
    raise AssertionError("no error")


@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{a=", "}")])
def test_deep_nesting_in_a_profile_is_a_clean_error(write_profile, opener, closer):
    depth = 100_000
    path = write_profile(MINIMAL_PROFILE.replace("[system]", f"[system]\nx = {opener * depth}1{closer * depth}"))
    seconds, message = _timed(lambda: load_profile(path))
    assert f"nested more than {MAX_NESTING} levels deep" in message and seconds < 5


def test_deep_nesting_in_a_json_plan_is_a_clean_error(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text('{"plan": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _, message = _timed(lambda: load_plan_file(path))
    assert "nested more than" in message


def test_a_huge_count_is_refused_at_once(write_profile):
    path = write_profile(MINIMAL_PROFILE.replace("count = 2", "count = 1000000000"))
    seconds, message = _timed(lambda: load_profile(path))
    assert "devices[1].count: must be at most 1e+06" in message and seconds < 2


def test_users_per_profile_are_bounded_over_all_devices(write_profile, monkeypatch):
    from multispin_cli.documents import profile

    monkeypatch.setattr(profile, "MAX_USERS", 10)  # the check, at a size cheap to build
    assert load_profile(write_profile(MINIMAL_PROFILE.replace("count = 2", "count = 9"))).system.users == 10
    _, message = _timed(lambda: load_profile(write_profile(MINIMAL_PROFILE.replace("count = 2", "count = 10"))))
    assert "devices[2].count" in message and "more than 10 users" in message


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_an_include_pointing_at_dev_zero_is_refused(write_profile):
    path = write_profile(MINIMAL_PROFILE.replace("draft_ms_per_token = 2", 'timings = "/dev/zero"'))
    seconds, message = _timed(lambda: load_profile(path))
    assert "/dev/zero: cannot read: a device" in message and seconds < 2


def test_an_include_pointing_at_a_fifo_is_refused_without_waiting(write_profile, tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    path = write_profile(MINIMAL_PROFILE.replace("draft_ms_per_token = 2", 'timings = "fifo.toml"'))
    # In a child process, so that a regression (an open that waits for a writer) fails, not hangs.
    done = subprocess.run([sys.executable, "-m", "multispin_cli", "plan", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == f"multispin: error: {fifo}: cannot read: a named pipe; give a regular file"


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "big.toml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written
    seconds, message = _timed(lambda: load_profile(path))
    assert "too large" in message and seconds < 1
    seconds, message = _timed(lambda: load_plan_file(path))
    assert "too large" in message


def test_a_metrics_file_that_is_a_device_is_refused():
    result = invoke("calibrate", "--metrics", "/dev/zero")
    assert_one_line_error(result, "a device")
