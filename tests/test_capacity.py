"""`multispin capacity`: exact searches checked by planning the answer and its neighbour."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
import tomli_w
from builders import assert_one_line_error, invoke

from multispin_cli.analysis.capacity import largest_meeting, smallest_meeting
from multispin_cli.documents.profile import load_profile
from multispin_cli.planners.report import plan_report


@pytest.mark.parametrize("target", [1, 2, 3, 7, 8, 9, 100, 999, 1000])
def test_searches_find_the_exact_boundary(target):
    calls = []

    def probe(n):
        calls.append(n)
        return n

    up = largest_meeting(probe, lambda v: v <= target, limit=1000)
    assert (up.answer, up.neighbour) == (target, target + 1)
    assert up.at_neighbour == (None if target == 1000 else target + 1)
    assert len(calls) == len(set(calls)) and len(calls) <= 2 * np.log2(1000) + 3
    down = smallest_meeting(lambda n: n, lambda v: v >= target, limit=1000)
    assert down.answer == target and down.neighbour == target - 1


def test_searches_report_no_answer():
    assert largest_meeting(lambda n: n, lambda v: v < 1, limit=10) is None
    assert smallest_meeting(lambda n: n, lambda v: v > 10, limit=10) is None


def _plan_with(tmp_path, path, name, edit):
    data = tomllib.loads(path.read_text())
    edit(data)
    cell = tmp_path / f"{name}.toml"
    cell.write_text(tomli_w.dumps(data))
    return plan_report(load_profile(cell).system)


def _set_count(n):
    def edit(data):
        data["devices"][0]["count"] = n
    return edit


def test_user_capacity_answer_meets_and_one_more_does_not(write_profile, tmp_path):
    path = write_profile()
    result = invoke("capacity", path, "--device", "fast", "--min-user-tokens-per-s", "40", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    head = doc["capacity"]
    n = head["count"]
    assert head["next_count"] == n + 1 and n > 1
    assert head["user_tokens_per_s_at_count"] >= 40 > head["user_tokens_per_s_at_next_count"]
    # independently: plan N and N + 1 from edited profiles
    at_n = _plan_with(tmp_path, path, "n", _set_count(n)).heterogeneous
    at_next = _plan_with(tmp_path, path, "n1", _set_count(n + 1)).heterogeneous
    assert at_n.evaluation.user_tokens_per_s.min() >= 40 > at_next.evaluation.user_tokens_per_s.min()
    # the plan at the answer is in the output
    assert doc["plan"]["users"] == n + 1 and len(doc["heterogeneous"]["users"]) == n + 1
    assert doc["heterogeneous"]["goodput_tokens_per_s"] == pytest.approx(at_n.goodput_tokens_per_s, rel=1e-9)


def test_mean_target_admits_more_users_than_the_worst_user(write_profile):
    path = write_profile()
    worst = json.loads(invoke("capacity", path, "--device", "fast", "--min-user-tokens-per-s", "40", "-f",
                              "json").stdout)["capacity"]
    mean = json.loads(invoke("capacity", path, "--device", "fast", "--min-user-tokens-per-s", "40", "--mean", "-f",
                             "json").stdout)["capacity"]
    assert mean["statistic"] == "mean" and mean["count"] >= worst["count"]


def test_bandwidth_answer_meets_and_one_step_less_does_not(write_profile, tmp_path):
    path = write_profile()
    result = invoke("capacity", path, "--min-bandwidth-for-goodput", "225", "--step-mhz", "0.05", "-f", "toml")
    assert result.exit_code == 0, result.stderr
    head = tomllib.loads(result.stdout)["capacity"]
    band, previous = head["bandwidth_mhz"], head["previous_bandwidth_mhz"]
    assert previous == pytest.approx(band - 0.05)

    def with_band(mhz):
        def edit(data):
            data["system"]["bandwidth_mhz"] = mhz
        return edit

    assert _plan_with(tmp_path, path, "w", with_band(band)).heterogeneous.goodput_tokens_per_s >= 225
    assert _plan_with(tmp_path, path, "w1", with_band(previous)).heterogeneous.goodput_tokens_per_s < 225


def test_table_view_states_the_answer_and_the_check(write_profile):
    result = invoke("capacity", write_profile(), "--device", "fast", "--min-user-tokens-per-s", "40")
    assert result.exit_code == 0 and result.stderr == ""
    assert "Capacity:" in result.stdout and "Checked:" in result.stdout and "Users" in result.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (("--device", "fast", "--min-user-tokens-per-s", "3000"), "no count of fast meets 3000 tokens/s per user"),
    (("--min-bandwidth-for-goodput", "5000"), "no band up to 100000 MHz reaches 5000 tokens/s"),
    (("--device", "fats", "--min-user-tokens-per-s", "10"), "no [[devices]] entry named 'fats' (did you mean 'fast'?)"),
    (("--device", "fast"), "--device and --min-user-tokens-per-s go together"),
    ((), "ask one question"),
    (("--device", "fast", "--min-user-tokens-per-s", "1", "--max-count", "4"), "raise --max-count"),
])
def test_unmeetable_or_malformed_questions_exit_2_in_one_line(write_profile, args, needle):
    assert_one_line_error(invoke("capacity", write_profile(), *args), needle)


def test_bandwidth_search_counts_whole_blocks_when_the_profile_has_them(tmp_path):
    from multispin_cli.documents.catalog import profiles_dir

    path = profiles_dir() / "nr-30khz-51rb-qwen3.toml"
    result = invoke("capacity", path, "--min-bandwidth-for-goodput", "340", "-f", "json")
    assert result.exit_code == 0, result.stderr
    head = json.loads(result.stdout)["capacity"]
    n = head["resource_blocks"]
    assert head["question"] == "resource_blocks" and head["previous_resource_blocks"] == n - 1
    assert head["goodput_tokens_per_s_at_resource_blocks"] >= 340 > head[
        "goodput_tokens_per_s_at_previous_resource_blocks"]

    def with_blocks(count):
        def edit(data):
            data["system"]["resource_blocks"] = count
        return edit

    assert _plan_with(tmp_path, path, "b", with_blocks(n)).heterogeneous.goodput_tokens_per_s >= 340
    assert _plan_with(tmp_path, path, "b1", with_blocks(n - 1)).heterogeneous.goodput_tokens_per_s < 340


def test_user_capacity_counts_a_devices_file_row_like_an_entry(write_profile, tmp_path):
    from builders import FILE_HEAD, FILE_ROWS

    from multispin_cli.execution.capacity import user_capacity

    (tmp_path / "users.csv").write_text(FILE_ROWS)
    from_file = user_capacity(write_profile(FILE_HEAD, "file.toml"), "fast", 40.0)
    entries = user_capacity(write_profile(), "fast", 40.0)
    assert (from_file.answer, from_file.neighbour) == (entries.answer, entries.neighbour) and from_file.answer > 1
    assert from_file.at_answer.value == entries.at_answer.value
    assert_one_line_error(invoke("capacity", tmp_path / "file.toml", "--device", "fats", "--min-user-tokens-per-s",
                                 "40"), "no [[devices]] entry or devices_file row named 'fats' (did you mean 'fast'?)")


def _fading(text: str) -> str:
    return text.replace("max_draft_length = 8\n", 'max_draft_length = 8\nfading = "rayleigh"\n', 1)


def test_rate_met_in_a_percentile_of_rounds():
    from multispin_cli.analysis.capacity import rate_met_in

    tokens = np.arange(1.0, 11.0)[:, None] * np.array([1.0, 2.0])  # draws 1..10, user 2 twice user 1
    v = rate_met_in(tokens, np.full(10, 0.5), 90)  # 9 of the 10 draws at or above: the 2nd smallest
    assert v.tolist() == [4.0, 8.0]
    assert rate_met_in(tokens, np.full(10, 0.5), 50).tolist() == [12.0, 24.0]
    assert rate_met_in(tokens, np.ones(10), 99.99).tolist() == [1.0, 2.0]


def test_user_capacity_at_a_percentile_under_fading_is_checked_at_n_and_n_plus_1(write_profile, tmp_path):
    """--percentile 90: the worst user's tokens/s met in 90 % of the adaptive plan's fading draws;
    the answer N meets the target and N + 1 does not, both re-planned here from written profiles."""
    from builders import MINIMAL_PROFILE

    from multispin_cli.planners.report import plan_report

    path = write_profile(_fading(MINIMAL_PROFILE))
    result = invoke("capacity", path, "--device", "fast", "--min-user-tokens-per-s", "44", "--percentile", "90",
                    "--samples", "50", "-f", "json")
    assert result.exit_code == 0, result.stderr
    head = json.loads(result.stdout)["capacity"]
    n = head["count"]
    assert head["judged_plan"] == "adaptive" and head["percentile"] == 90 and head["fading_samples"] == 50
    for count, meets in ((n, True), (n + 1, False)):
        data = tomllib.loads(path.read_text())
        data["devices"][0]["count"] = count
        cell = tmp_path / f"n{count}.toml"
        cell.write_text(tomli_w.dumps(data))
        score = plan_report(load_profile(cell).system, samples=50).adaptive.score
        rates = score.tokens / score.round_s[:, None]  # (draws, users)
        # the largest v per user with at least 90 % of the draws at or above it
        worst = min(max(v for v in rates[:, k] if np.mean(rates[:, k] >= v) >= 0.9) for k in range(rates.shape[1]))
        assert bool(worst >= 44) is meets, (count, worst)
        key = "user_tokens_per_s_at_count" if meets else "user_tokens_per_s_at_next_count"
        assert head[key] == pytest.approx(worst, rel=1e-9)


def test_percentile_needs_fading(write_profile):
    result = invoke("capacity", write_profile(), "--device", "fast", "--min-user-tokens-per-s", "10",
                    "--percentile", "95")
    assert_one_line_error(result, "--percentile needs a fading channel")


def test_a_static_target_on_a_fading_profile_plans_the_adaptive_rule_at_the_answer_only(write_profile):
    from builders import MINIMAL_PROFILE

    from multispin_cli.execution.capacity import user_capacity

    result = user_capacity(write_profile(_fading(MINIMAL_PROFILE)), "fast", 40.0, max_count=64)
    probes = result.search
    assert result.at_answer.report.adaptive is not None  # the document shows it, as `plan` does
    assert result.at_answer.plan.name == "heterogeneous" and probes.at_neighbour.report.adaptive is None
    assert result.at_answer.value == float(np.min(result.at_answer.report.heterogeneous.evaluation.user_tokens_per_s))
