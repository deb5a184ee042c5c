"""Acceptance calibration: estimators on synthetic data with known parameters, and the input parsers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from multispin_cli.analysis.calibration import (
    acceptance_from_tokens_per_round,
    calibrate,
    geometric_fit_test,
    geometric_mle,
    moment_estimate,
    position_estimates,
    replayed_tokens_per_round,
    truncated_geometric_mean,
    truncated_geometric_variance,
    wilson,
)
from multispin_cli.documents.metrics import from_counters, from_histogram, parse_histogram, parse_prometheus
from multispin_cli.errors import InputError
from multispin_cli.model.acceptance import expected_tokens


def draw_accepted(rng: np.random.Generator, probs, drafts: int) -> np.ndarray:
    """Accepted prefix lengths of ``drafts`` drafts, position by position (first rejection stops)."""
    probs = np.asarray(probs, dtype=float)
    accepted = rng.random((drafts, probs.size)) < probs
    return np.cumprod(accepted, axis=1).sum(axis=1)


def histogram(lengths: np.ndarray, draft_length: int) -> np.ndarray:
    return np.bincount(lengths, minlength=draft_length + 1)


def vllm_text(hist: np.ndarray, *, engines: int = 2, model: str = "meta-llama/Llama-3.1-8B-Instruct") -> str:
    """Prometheus exposition like vLLM's, the counts split over ``engines`` engines."""
    length = hist.size - 1
    counts = from_histogram(hist)
    parts = np.linspace(0, 1, engines + 1)

    def split(total):
        cuts = np.floor(parts * total).astype(int)
        return np.diff(cuts)

    lines = []
    for name, total, doc in (("num_drafts", counts.drafts, "Number of spec decoding drafts."),
                             ("num_draft_tokens", counts.draft_tokens, "Number of draft tokens."),
                             ("num_accepted_tokens", counts.accepted_tokens, "Number of accepted tokens.")):
        lines += [f"# HELP vllm:spec_decode_{name}_total {doc}", f"# TYPE vllm:spec_decode_{name}_total counter"]
        for e, value in enumerate(split(total)):
            lines.append(f'vllm:spec_decode_{name}_total{{engine="{e}",model_name="{model}"}} {float(value)}')
            lines.append(f'vllm:spec_decode_{name}_created{{engine="{e}",model_name="{model}"}} 1.7e9')
    lines += ["# HELP vllm:spec_decode_num_accepted_tokens_per_pos_total Accepted tokens per draft position.",
              "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter"]
    for pos in range(length):
        for e, value in enumerate(split(counts.accepted_by_position[pos])):
            lines.append(f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{engine="{e}",model_name="{model}",'
                         f'position="{pos}"}} {float(value)}')
    lines += ['# HELP vllm:num_requests_running Number of requests in model execution batches.',
              '# TYPE vllm:num_requests_running gauge',
              f'vllm:num_requests_running{{engine="0",model_name="{model}"}} 3.0',
              'process_cpu_seconds_total 12.5']
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the recovery targets


@pytest.mark.parametrize("alpha,length", [(0.3, 4), (0.6, 5), (0.8, 4), (0.95, 8)])
def test_known_alpha_recovered_within_0_01_from_10000_drafts(alpha, length):
    rng = np.random.default_rng(int(alpha * 100) + length)
    lengths = draw_accepted(rng, [alpha] * length, 10_000)
    hist = histogram(lengths, length)
    counts = from_histogram(hist)
    by_counters = calibrate(from_counters(10_000, int(lengths.sum()), length))
    by_histogram = calibrate(counts)
    by_metrics = calibrate(parse_prometheus(vllm_text(hist)))
    for cal in (by_counters, by_histogram, by_metrics):
        assert abs(cal.geometric.value - alpha) < 0.01, cal.geometric_method
        assert cal.geometric.ci95_low < cal.geometric.value < cal.geometric.ci95_high
    assert by_metrics.geometric == by_histogram.geometric  # same counts, same numbers


def test_known_per_position_probabilities_recovered_within_their_intervals():
    truth = [0.92, 0.8, 0.66, 0.55, 0.5]
    rng = np.random.default_rng(17)
    counts = from_histogram(histogram(draw_accepted(rng, truth, 10_000), len(truth)))
    cal = calibrate(counts)
    assert len(cal.by_position) == len(truth)
    for estimate, p in zip(cal.by_position, truth):
        assert estimate.covers(p), (estimate, p)
    assert cal.fit.rejected and cal.recommended == "acceptance_by_position"
    # the per-position fit reproduces the data's tokens per round; the geometric one misses them
    assert cal.position_tokens_per_round == pytest.approx(cal.observed_tokens_per_round, rel=1e-12)
    assert abs(cal.geometric_tokens_per_round - cal.observed_tokens_per_round) > 0.03


def test_interval_coverage_is_about_95_percent():
    rng = np.random.default_rng(5)
    truth = [0.85, 0.7, 0.6]
    hits = np.zeros(5)
    trials = 400
    for _ in range(trials):
        lengths = draw_accepted(rng, truth, 800)
        counts = from_histogram(histogram(lengths, 3))
        hits[:3] += [e.covers(p) for e, p in zip(position_estimates(counts), truth)]
        geo = draw_accepted(rng, [0.7] * 4, 800)
        hits[3] += geometric_mle(from_histogram(histogram(geo, 4))).covers(0.7)
        hits[4] += moment_estimate(800, int(geo.sum()), 4).covers(0.7)
    coverage = hits / trials
    # binomial(400, 0.95) has sd 1.1 %: 0.915..0.985 is over 3 sd
    assert np.all((coverage > 0.915) & (coverage < 0.985)), coverage


def test_the_fit_test_rejects_about_5_percent_of_geometric_data():
    rng = np.random.default_rng(8)
    p_values = [geometric_fit_test(from_histogram(histogram(draw_accepted(rng, [0.75] * 5, 2_000), 5))).p_value
                for _ in range(300)]
    rate = np.mean(np.array(p_values) < 0.05)
    assert 0.02 <= rate <= 0.09, rate
    assert stats.kstest(p_values, "uniform").pvalue > 1e-3  # p-values uniform under the null


# ---------------------------------------------------------------- estimators against closed forms


def test_wilson_interval_known_values():
    low, high = wilson(50, 100)
    assert (low, high) == pytest.approx((0.40383, 0.59617), abs=1e-5)
    assert wilson(0, 20)[0] == 0 and wilson(20, 20)[1] == 1
    assert wilson(0, 0) == (0.0, 1.0)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 1.0), st.integers(1, 12))
def test_truncated_geometric_moments_match_enumeration(p, length):
    x = np.arange(length + 1)
    probs = np.array([p**k * (1 - p) for k in range(length)] + [p**length])
    assert probs.sum() == pytest.approx(1.0)
    mean = (x * probs).sum()
    assert float(truncated_geometric_mean(p, length)) == pytest.approx(mean, abs=1e-12)
    assert float(truncated_geometric_variance(p, length)) == pytest.approx(((x - mean) ** 2 * probs).sum(), abs=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 16), st.floats(0.0, 1.0))
def test_moment_estimate_matches_the_mean_and_brackets_it(drafts, length, fraction):
    accepted = int(round(fraction * drafts * length))
    est = moment_estimate(drafts, accepted, length)
    assert 0 <= est.ci95_low <= est.value <= est.ci95_high <= 1
    if 0 < accepted < drafts * length:
        assert float(truncated_geometric_mean(est.value, length)) == pytest.approx(accepted / drafts, rel=1e-9)
    assert (est.value == 0) == (accepted == 0) and (est.value == 1) == (accepted == drafts * length)


def test_geometric_mle_and_the_test_statistic_by_hand():
    hist = np.array([30, 20, 10, 40])  # 100 drafts of 3 tokens
    counts = from_histogram(hist)
    assert counts.accepted_by_position == (70, 50, 40)
    accepted, failures = 70 + 50 + 40, 30 + 20 + 10
    assert geometric_mle(counts).value == pytest.approx(accepted / (accepted + failures))
    reached, ok = np.array([100, 70, 50]), np.array([70, 50, 40])
    full = (ok * np.log(ok / reached) + (reached - ok) * np.log(1 - ok / reached)).sum()
    a = accepted / (accepted + failures)
    restricted = accepted * math.log(a) + failures * math.log(1 - a)
    fit = geometric_fit_test(counts)
    assert fit.statistic == pytest.approx(2 * (full - restricted)) and fit.df == 2
    assert fit.p_value == pytest.approx(stats.chi2.sf(fit.statistic, 2))


def test_positions_no_draft_reached_are_left_out():
    counts = from_histogram(np.array([10, 0, 0, 0]))
    cal = calibrate(counts)
    assert [e.value for e in cal.by_position] == [0.0]
    assert cal.fit is None and cal.recommended == "acceptance"


# ---------------------------------------------------------------- Prometheus text


def test_vllm_metrics_are_summed_over_engines_and_read_per_position():
    hist = np.array([10, 20, 30, 40])
    counts = parse_prometheus(vllm_text(hist, engines=3), path="metrics.txt")
    assert (counts.drafts, counts.draft_length, counts.accepted_tokens) == (100, 3, 20 + 60 + 120)
    assert counts.accepted_by_position == (90, 70, 40) and counts.warnings == ()
    assert "metrics.txt" in counts.source


def test_counters_without_the_total_suffix_escapes_timestamps_and_exemplars():
    text = "\n".join([
        'vllm:spec_decode_num_drafts{model_name="a \\"quoted\\", {odd} name",engine="0"} 10 1700000000000',
        'vllm:spec_decode_num_draft_tokens{model_name="a \\"quoted\\", {odd} name",engine="0"} 40',
        'vllm:spec_decode_num_accepted_tokens_total{model_name="a \\"quoted\\", {odd} name",engine="0"} 25 # {trace_id="x"} 1',
        "",
    ])
    counts = parse_prometheus(text)
    assert (counts.drafts, counts.draft_length, counts.accepted_tokens, counts.accepted_by_position) == (10, 4, 25, None)


def test_label_filter_picks_one_model_of_several():
    a, b = vllm_text(np.array([10, 20, 30]), model="a"), vllm_text(np.array([5, 5, 90]), model="b")
    with pytest.raises(InputError, match="several models"):
        parse_prometheus(a + b)
    assert parse_prometheus(a + b, labels={"model_name": "b"}).drafts == 100
    with pytest.raises(InputError, match="matching model_name=c"):
        parse_prometheus(a + b, labels={"model_name": "c"})


def test_mismatched_totals_and_short_drafts_are_warnings():
    model = 'engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"'
    text = vllm_text(np.array([10, 20, 30, 40]), engines=1)  # 100 drafts, 300 draft tokens, 200 accepted
    assert f"vllm:spec_decode_num_accepted_tokens_total{{{model}}} 200.0" in text
    scraped_mid_count = text.replace(f"num_accepted_tokens_total{{{model}}} 200.0", f"num_accepted_tokens_total{{{model}}} 205.0")
    counts = parse_prometheus(scraped_mid_count)
    assert counts.accepted_tokens == 200
    assert any("(205) differs from the sum over positions (200)" in w for w in counts.warnings)
    short = text.replace(f"num_draft_tokens_total{{{model}}} 300.0", f"num_draft_tokens_total{{{model}}} 250.0")
    assert any("averaged 2.5 tokens, fewer than 3" in w for w in parse_prometheus(short).warnings)
    too_many = text.replace(f"num_draft_tokens_total{{{model}}} 300.0", f"num_draft_tokens_total{{{model}}} 301.0")
    with pytest.raises(InputError, match="301 draft tokens in 100 drafts of at most 3"):
        parse_prometheus(too_many)


BAD_METRICS = [
    ("", "no metrics"),
    ("# just a comment\n", "no metrics"),
    ("vllm:spec_decode_num_drafts_total{engine=\"0\" 10\n", "line 1"),
    ("vllm:spec_decode_num_drafts_total ten\n", "line 1: malformed metrics text: 'ten' is not a number"),
    ("<html>502 Bad Gateway</html>\n", "line 1: malformed metrics text"),
    ("vllm:spec_decode_num_drafts_total -3\n", "negative"),
    ("vllm:spec_decode_num_drafts_total 2.5\n", "whole number"),
    ("vllm:num_requests_running 1\n", "no vllm:spec_decode_num_drafts counter"),
    ("vllm:spec_decode_num_drafts_total 0\n", "no drafts counted yet"),
    ("vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_draft_tokens_total 40\n"
     "vllm:spec_decode_num_accepted_tokens_total 41\n", "more accepted tokens|41 accepted tokens but only 40"),
    ("vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_draft_tokens_total 45\n"
     "vllm:spec_decode_num_accepted_tokens_total 20\n", "give --draft-length"),
    ("vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} 8\n"
     "vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"1\"} 9\n", "position 2 was accepted 9 times"),
    ("vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} 11\n",
     "more than the number of drafts"),
    ("vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} 8\n"
     "vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"2\"} 5\n", "position 1"),
    ("vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_drafts_total 10\n", "appears twice"),
]


@pytest.mark.parametrize("text,needle", BAD_METRICS, ids=range(len(BAD_METRICS)))
def test_bad_metrics_are_one_clear_error(text, needle):
    with pytest.raises(InputError, match=needle) as err:
        parse_prometheus(text, path="m.txt")
    message = str(err.value)
    assert message.startswith("m.txt") and "\n" not in message


# ---------------------------------------------------------------- histograms


@pytest.mark.parametrize("text,expected", [
    ("accepted,count\n0,10\n1,20\n2,30\n", (10, 20, 30)),
    ("# from my logs\naccepted_tokens,rounds\n2,30\n0,10\n1,20\n", (10, 20, 30)),
    ("committed,count\n1,10\n2,20\n3,30\n", (10, 20, 30)),
    ("[10, 20, 30]", (10, 20, 30)),
    ('{"0": 10, "1": 20, "2": 30}', (10, 20, 30)),
    ('{"committed": [10, 20, 30]}', (10, 20, 30)),
    ('{"accepted": {"0": 10, "2": 30}, "draft_length": 3}', (10, 0, 30, 0)),
])
def test_histogram_formats(text, expected):
    counts = parse_histogram(text)
    hist = np.array(expected)
    assert counts == from_histogram(hist, source=counts.source)


def test_histogram_draft_length_option():
    counts = parse_histogram("accepted,count\n0,10\n1,20\n", draft_length=4)
    assert counts.draft_length == 4 and counts.accepted_by_position == (20, 0, 0, 0)


BAD_HISTOGRAMS = [
    ("", "empty histogram"),
    ("accepted,count\n", "empty histogram"),
    ("accepted,count\n0,0\n1,0\n", "empty histogram"),
    ("[]", "empty histogram"),
    ("length,howmany\n0,1\n", "header must name"),
    ("accepted,count\n0,5\n1,-2\n", "negative"),
    ("accepted,count\n0,5\n0,2\n", "appears twice"),
    ("accepted,count\n0,5\nx,2\n", "line 3"),
    ("accepted,count\n0,5\n1,2.5\n", "whole number"),
    ("accepted,count\n0,5\n1\n", "line 3: expected 2 columns"),
    ("committed,count\n0,5\n", "at least 1 token"),
    ('{"accepted": [1, 2], "committed": [1]}', "not both"),
    ('{"accepted": [1, 2], "extra": 1}', "unknown key"),
    ('{"accepted": [1, "two"]}', "accepted\\[1\\]"),
    ("[1, 2", "invalid JSON"),
    ('{"accepted": "many"}', "a list of counts"),
]


@pytest.mark.parametrize("text,needle", BAD_HISTOGRAMS, ids=range(len(BAD_HISTOGRAMS)))
def test_bad_histograms_are_one_clear_error(text, needle):
    with pytest.raises(InputError, match=needle):
        parse_histogram(text, path="h.csv")


def test_histogram_longer_than_the_draft_cannot_be():
    with pytest.raises(InputError, match="more than the draft length 2"):
        parse_histogram("accepted,count\n0,5\n3,1\n", draft_length=2)


@pytest.mark.parametrize("args,needle", [
    ((0, 0, 4), "no drafts"), ((10, 41, 4), "41 accepted tokens but only 10 drafts"), ((10, -1, 4), "negative"),
    ((10, 5, 0), "between 1"),
])
def test_impossible_counters(args, needle):
    with pytest.raises(InputError, match=needle):
        from_counters(*args)


def test_replayed_rounds_by_hand():
    # greedy rounds on a known agreement pattern, counted by hand
    agree = np.array([1, 1, 0, 1, 1, 1, 1], dtype=bool)
    g = replayed_tokens_per_round([agree], 3)
    # L = 1: rounds 2, 1, 2, 2 (the last one stops at the text's end) -> 7 tokens / 4 rounds
    # L = 2: rounds 3 (1 1 +miss), 3 (1 1 +bonus), 1 (the last token) -> 7 / 3
    # L = 3: rounds 3, 4 -> 7 / 2
    assert g.tolist() == [1.0, 7 / 4, 7 / 3, 7 / 2]


@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(1, 8))
@settings(max_examples=60, deadline=None)
def test_acceptance_fit_reproduces_any_concave_replay(bits, length):
    g = replayed_tokens_per_round([np.array(bits, dtype=bool)], length)
    p = acceptance_from_tokens_per_round(g)
    assert np.all((p > 0) & (p <= 1 + 1e-12))
    fit = expected_tokens(p)
    steps = np.diff(g)
    if np.all(np.diff(steps) <= 1e-12) and steps.min() > 1e-9:  # concave: matched exactly
        assert fit == pytest.approx(g, abs=1e-9)
    # pooling adjacent violators keeps the sum of the steps: G(L_max) is always matched
    assert fit[-1] == pytest.approx(1 + np.clip(steps, 1e-9, 1).sum(), abs=1e-9)
