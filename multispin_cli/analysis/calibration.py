"""Estimating a draft model's acceptance from counts, with 95 % intervals (pure functions).

The model: a draft of L tokens is checked position by position; position i is accepted with
conditional probability ``p_i`` given that 1..i-1 were, and the first rejection ends the draft.
The **geometric** model has one ``p`` for every position; the **per-position** model one per
position (the profile's ``acceptance_by_position``).

Estimators, by what the data hold:

* **Per-position counts** (vLLM's ``num_accepted_tokens_per_pos``, or a histogram of accepted
  lengths, which gives the same numbers): ``a_i`` drafts had position i accepted, out of
  ``a_{i-1}`` that reached it (``a_0`` = drafts). The likelihood is a product of binomials, so
  ``p_i = a_i / a_{i-1}`` with a Wilson score interval each. Under the geometric model the
  likelihood is ``p^A (1 - p)^F`` (A accepted tokens, F rejections = drafts that stopped before L),
  so the maximum-likelihood estimate is ``A / (A + F)``, again with a Wilson interval (the observed
  information is that of A successes in A + F trials; the stopping rule does not change it).
* **Totals only** (drafts N, accepted tokens A, draft length L): the geometric model's ``p`` whose
  expected accepted tokens per draft, ``m(p) = sum_{i=1..L} p^i``, equals ``A / N`` (moment
  matching; the issue's definition). Its interval is the score-type set
  ``{p : |A/N - m(p)| <= 1.96 sqrt(v(p) / N)}`` with ``v(p)`` the variance of the accepted count
  under p, found by root finding on each side.

**Goodness of fit.** With per-position counts, the likelihood-ratio (G) test of the geometric model
against the per-position one: ``G^2 = 2 (log L_per-position - log L_geometric)``, chi-square with
(positions reached - 1) degrees of freedom. When it rejects at 5 % the per-position form is
recommended. With millions of drafts the test rejects even small departures, so the report also
gives the effect on what the planner uses: expected tokens per round at L under each fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats

from multispin_cli.model.acceptance import expected_tokens


@dataclass(frozen=True)
class DraftCounts:
    """Counts of one draft model's speculation: what every estimator works from.

    ``accepted_by_position[i]`` is the number of drafts whose position i+1 was accepted (so its
    first entry is at most ``drafts`` and the entries never increase); None where the source gives
    only totals. ``warnings`` are things the caller should tell the user, in words.
    """

    source: str
    drafts: int
    draft_length: int
    accepted_tokens: int
    draft_tokens: int
    accepted_by_position: tuple[int, ...] | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def mean_accepted(self) -> float:
        """Accepted draft tokens per draft, ``A / N``."""
        return self.accepted_tokens / self.drafts


Z95 = 1.959963984540054
SIGNIFICANCE = 0.05

GEOMETRIC = "acceptance"
PER_POSITION = "acceptance_by_position"


@dataclass(frozen=True)
class Estimate:
    """A probability with its 95 % interval."""

    value: float
    ci95_low: float
    ci95_high: float

    def covers(self, p: float) -> bool:
        return self.ci95_low <= p <= self.ci95_high


@dataclass(frozen=True)
class FitTest:
    """Likelihood-ratio test of the geometric model against per-position acceptance."""

    statistic: float
    df: int
    p_value: float

    @property
    def rejected(self) -> bool:
        """Whether the data reject the geometric model at the 5 % level."""
        return self.p_value < SIGNIFICANCE


@dataclass(frozen=True)
class Calibration:
    """What `multispin calibrate` reports: both fits, the test between them and a recommendation."""

    counts: DraftCounts
    geometric: Estimate
    geometric_method: str
    by_position: tuple[Estimate, ...] | None
    fit: FitTest | None

    @property
    def recommended(self) -> str:
        """``acceptance_by_position`` when the data reject the geometric model, else ``acceptance``."""
        if self.by_position is not None and self.fit is not None and self.fit.rejected:
            return PER_POSITION
        return GEOMETRIC

    @property
    def observed_tokens_per_round(self) -> float:
        """Committed tokens per round in the data at the measured length: ``1 + A / N``."""
        return 1.0 + self.counts.mean_accepted

    @property
    def geometric_tokens_per_round(self) -> float:
        """Expected committed tokens per round at the measured L under the geometric fit."""
        return float(truncated_geometric_mean(self.geometric.value, self.counts.draft_length)) + 1.0

    @property
    def position_tokens_per_round(self) -> float | None:
        """Expected committed tokens per round at the measured L under the per-position fit."""
        if self.by_position is None:
            return None
        probs = [e.value for e in self.by_position]
        probs += [probs[-1]] * (self.counts.draft_length - len(probs))
        return float(expected_tokens(np.array(probs))[-1])


def wilson(successes: float, trials: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (``(0, 1)`` without trials)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2.0 * trials)) / denom
    half = z * math.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials)) / denom
    low = 0.0 if successes <= 0 else max(0.0, float(centre - half))
    high = 1.0 if successes >= trials else min(1.0, float(centre + half))
    return low, high


def truncated_geometric_mean(p, length: int):
    """Expected accepted tokens of an L-token draft with acceptance p: ``sum_{i=1..L} p^i``."""
    p = np.asarray(p, dtype=float)
    i = np.arange(1, length + 1)
    return (p[..., None] ** i).sum(axis=-1)


def truncated_geometric_variance(p, length: int):
    """Variance of the accepted tokens: ``E[X^2] = sum (2i - 1) p^i``, minus the squared mean."""
    p = np.asarray(p, dtype=float)
    i = np.arange(1, length + 1)
    powers = p[..., None] ** i
    mean = powers.sum(axis=-1)
    return np.maximum(((2 * i - 1) * powers).sum(axis=-1) - mean * mean, 0.0)


def moment_estimate(drafts: int, accepted_tokens: int, draft_length: int) -> Estimate:
    """Geometric acceptance from totals: ``m(p) = A / N``, with the score-type 95 % interval."""
    mean = accepted_tokens / drafts
    length = draft_length

    def m(p):
        return float(truncated_geometric_mean(p, length))

    def spread(p):
        return Z95 * math.sqrt(float(truncated_geometric_variance(p, length)) / drafts)

    if mean <= 0:
        value = 0.0
    elif mean >= length:
        value = 1.0
    else:
        value = optimize.brentq(lambda p: m(p) - mean, 0.0, 1.0, xtol=1e-14, rtol=1e-14)
    low = 0.0
    if mean > 0 and value > 0:
        low = optimize.brentq(lambda p: mean - m(p) - spread(p), 0.0, value, xtol=1e-14, rtol=1e-14) \
            if mean - m(value) - spread(value) < 0 else value
    high = 1.0
    if mean < length and value < 1:
        high = optimize.brentq(lambda p: m(p) - mean - spread(p), value, 1.0, xtol=1e-14, rtol=1e-14) \
            if m(value) - mean - spread(value) < 0 else value
    return Estimate(float(value), float(low), float(high))


def _trials(counts: DraftCounts) -> tuple[np.ndarray, np.ndarray]:
    """Per position: drafts that reached it (trials) and drafts that had it accepted (successes)."""
    accepted = np.asarray(counts.accepted_by_position, dtype=float)
    reached = np.concatenate([[counts.drafts], accepted[:-1]])
    return reached, accepted


def geometric_mle(counts: DraftCounts) -> Estimate:
    """Maximum-likelihood geometric acceptance ``A / (A + F)`` from per-position counts."""
    reached, accepted = _trials(counts)
    successes = accepted.sum()
    trials = reached.sum()
    low, high = wilson(successes, trials)
    return Estimate(float(successes / trials), low, high)


def position_estimates(counts: DraftCounts) -> tuple[Estimate, ...]:
    """``p_i = a_i / a_{i-1}`` with Wilson intervals, for the positions some draft reached."""
    reached, accepted = _trials(counts)
    out = []
    for n, a in zip(reached, accepted):
        if n <= 0:
            break
        low, high = wilson(a, n)
        out.append(Estimate(float(a / n), low, high))
    return tuple(out)


def geometric_fit_test(counts: DraftCounts) -> FitTest | None:
    """Likelihood-ratio test of one rate for every position; None with fewer than two positions."""
    reached, accepted = _trials(counts)
    live = reached > 0
    reached, accepted = reached[live], accepted[live]
    if reached.size < 2:
        return None
    failed = reached - accepted
    per_position = (special.xlogy(accepted, accepted / reached) + special.xlogy(failed, failed / reached)).sum()
    a, f = accepted.sum(), failed.sum()
    total = a + f
    geometric = special.xlogy(a, a / total) + special.xlogy(f, f / total)
    statistic = max(2.0 * float(per_position - geometric), 0.0)
    df = int(reached.size - 1)
    return FitTest(statistic, df, float(stats.chi2.sf(statistic, df)))


def calibrate(counts: DraftCounts) -> Calibration:
    """Both fits (where the data allow), the test between them and the recommendation."""
    if counts.accepted_by_position is None:
        estimate = moment_estimate(counts.drafts, counts.accepted_tokens, counts.draft_length)
        return Calibration(counts, estimate, "moment matching (truncated geometric)", None, None)
    return Calibration(counts, geometric_mle(counts), "maximum likelihood", position_estimates(counts),
                       geometric_fit_test(counts))


# --------------------------------------------------------------------------- from the text itself


def replayed_tokens_per_round(agreement: list[np.ndarray], max_draft_length: int, *,
                              skip_first_round: bool = False) -> np.ndarray:
    """Tokens per round, G(L) for L = 0..max_draft_length, of greedy speculative decoding replayed on texts.

    ``agreement[t][i]`` says whether the draft's greedy token at position i of text t (given the text
    before it) is the target's. A round starting at i accepts the run of agreements from i, up to L
    of them, and commits one token more (the target's correction or bonus token): exactly what a
    greedy engine does on that text. Pooled over the texts (all tokens over all rounds);
    ``skip_first_round`` leaves each text's first round out, as rates that leave out the prefill do.
    """
    out = np.ones(max_draft_length + 1)
    for length in range(1, max_draft_length + 1):
        tokens = rounds = 0
        for agree in agreement:
            agree = np.asarray(agree, dtype=bool)
            # next_miss[i]: agreements in a row from i (the run stops at the first miss or the end)
            runs = np.zeros(agree.size + 1, dtype=int)
            for i in range(agree.size - 1, -1, -1):
                runs[i] = runs[i + 1] + 1 if agree[i] else 0
            i = 0
            first = True
            while i < agree.size:
                step = min(int(runs[i]), length) + 1
                if not (first and skip_first_round):
                    tokens += min(step, agree.size - i)
                    rounds += 1
                first = False
                i += step
        out[length] = tokens / rounds if rounds else 1.0
    return out


def acceptance_from_tokens_per_round(tokens_per_round: np.ndarray) -> np.ndarray:
    """Per-position acceptance whose expected tokens per round best match ``G(L)``, L = 0..L_max.

    ``G(L) - G(L-1)`` is the chance that a round accepts L drafts, the product of ``p_1..p_L``; it
    cannot increase with L, so a measured sequence that does (noise, or agreement that clusters in
    the text) is first made non-increasing by pooling adjacent violators (the least-squares fit).
    """
    steps = np.clip(np.diff(np.asarray(tokens_per_round, dtype=float)), 1e-9, 1.0)
    blocks: list[list[float]] = []  # [mean, weight]
    for value in steps:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            value2, weight2 = blocks.pop()
            blocks[-1] = [(blocks[-1][0] * blocks[-1][1] + value2 * weight2) / (blocks[-1][1] + weight2),
                          blocks[-1][1] + weight2]
    survive = np.concatenate([np.full(int(w), v) for v, w in blocks])
    return survive / np.concatenate([[1.0], survive[:-1]])
