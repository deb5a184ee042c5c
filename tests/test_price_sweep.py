"""The large-cell path of the heterogeneous planner (planners/price_sweep.py): its pricing, its
bound and its proof, each against a brute-force oracle, and its plans against the interval search."""

from __future__ import annotations

import os
import threading
from dataclasses import replace

import numpy as np
import pytest

from multispin_cli.model.goodput import compute_seconds
from multispin_cli.model.synthetic import busy_cell
from multispin_cli.model.verifier import VerifyTime
from multispin_cli.planners import price_sweep
from multispin_cli.planners.heterogeneous import BOUND_TOLERANCE, _deadline_range, plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous
from multispin_cli.planners.level_prices import LevelPrices


def _cell(users: int, seed: int):
    system = busy_cell(np.random.default_rng(seed), users)
    return system, price_sweep._Cell(system)


@pytest.mark.parametrize("seed, in_order, idle", [(0, False, False), (1, False, False), (0, True, False),
                                                   (1, True, True), (2, False, True)])
def test_windows_price_what_every_length_costs(seed, in_order, idle):
    """Windows (users in any order, or in the prices' own order: the power-limited ones a tail);
    ``idle``: a third of the users off the uplink and windows from length 0, entries that send
    nothing (the planner's own windows all send, and take a shorter path)."""
    system, _ = _cell(300, seed)
    if idle:
        system = replace(system, no_uplink=np.arange(system.users) % 3 == 0)
    if in_order:
        system = system.take(np.argsort(system.channel.power_limited, kind="stable"))
    prices = LevelPrices(system)
    rng = np.random.default_rng(seed)
    deadlines = [0.004, 0.011, 0.03]
    if idle:  # also a deadline that ends an idle user's device time at length 3 (its need: 0 from then on)
        user = int(np.flatnonzero(system.no_uplink)[0])
        deadlines.append(float(compute_seconds(system, np.eye(system.users, dtype=int)[user] * 3)[user]))
    for deadline in deadlines:
        need, slope = prices.at(deadline, derivative=True)
        users = rng.permutation(system.users)[:200]
        if idle:  # (with that user, its window holding length 3)
            users = np.concatenate([[user], users[users != user]])[:200]
        if in_order:
            users = np.sort(users)
        first = rng.integers(0 if idle else 1, system.max_draft_length + 1, users.size)
        if idle:
            first[users == user] = 2
        w_need, w_slope = prices.window(deadline, users, first, price_sweep.WIDTH)
        levels = first[:, None] + np.arange(price_sweep.WIDTH)
        inside = levels <= system.max_draft_length
        ref = need[0][users[:, None], np.minimum(levels, system.max_draft_length)]
        ref_slope = slope[0][users[:, None], np.minimum(levels, system.max_draft_length)]
        assert np.isinf(w_need[~inside]).all()
        np.testing.assert_array_equal(w_need[inside], ref[inside])
        alone, none = prices.window(deadline, users, first, price_sweep.WIDTH, derivative=False)
        assert none is None
        np.testing.assert_array_equal(alone, w_need)  # (the LPs' needs, without their slopes)
        finite = inside & np.isfinite(ref) & np.isfinite(ref_slope)  # (an infinite need's slope: no use)
        np.testing.assert_array_equal(w_slope[finite], ref_slope[finite])


@pytest.mark.parametrize("in_order", [False, True])
def test_reach_is_where_each_need_becomes_finite(in_order):
    """``LevelPrices.reach``: a length's need is infinite up to its reach and finite just after;
    fixed-SNR users' reach is their device time."""
    system, _ = _cell(300, 4)
    if in_order:
        system = system.take(np.argsort(system.channel.power_limited, kind="stable"))
    prices = LevelPrices(system)
    rng = np.random.default_rng(4)
    users = rng.integers(0, system.users, 400)
    levels = rng.integers(1, system.max_draft_length + 1, 400)
    device, reach = prices.reach(users, levels)
    fixed = ~system.channel.power_limited[users]
    np.testing.assert_array_equal(reach[fixed], device[fixed])
    assert (reach[~fixed] > device[~fixed]).all()
    for deadline, finite in ((reach * (1 - 1e-9), False), (reach * (1 + 1e-9), True)):
        need = np.array([prices.window(d, np.array([u]), np.array([l]), 1)[0][0, 0]
                         for d, u, l in zip(deadline, users, levels)])
        assert (np.isfinite(need) == finite).all()


@pytest.mark.parametrize("seed, in_order, lam", [(0, False, 2e-8), (1, True, 2e-8), (0, True, 0.0)])
def test_window_terms_are_the_values_less_the_priced_needs(seed, in_order, lam):
    """``LevelPrices.terms`` (one pass) gives exactly the window's needs subtracted from the values:
    -inf with slope 0 where a length is out of reach, the users in any order, one deadline or one each."""
    system, _ = _cell(300, seed)
    if in_order:
        system = system.take(np.argsort(system.channel.power_limited, kind="stable"))
    prices = LevelPrices(system)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.5, 9.0, (system.users, system.max_draft_length + 1))
    users = rng.permutation(system.users)[:200]
    if in_order:
        users = np.sort(users)
    first = rng.integers(1, system.max_draft_length + 1, users.size)
    levels = np.minimum(first[:, None] + np.arange(price_sweep.WIDTH), system.max_draft_length)
    for deadline in (0.004, 0.011, rng.uniform(0.002, 0.03, (users.size, 1))):
        need, d_need = prices.window(deadline, users, first, price_sweep.WIDTH)
        value, slope = prices.terms(deadline, users, first, price_sweep.WIDTH, values, lam)
        reach = np.isfinite(need)
        assert (~reach).any() and reach.any()
        need, d_need = need[reach], d_need[reach]
        np.testing.assert_array_equal(value[reach], values[users[:, None], levels][reach] - lam * need)
        np.testing.assert_array_equal(slope[reach], -lam * d_need)
        assert np.isneginf(value[~reach]).all() and (slope[~reach] == 0).all()


def test_a_point_priced_at_one_deadline_per_user_equals_each_deadline_alone():
    system, cell = _cell(300, 2)
    rng = np.random.default_rng(2)
    users = np.sort(rng.permutation(system.users)[:120])
    deadlines = rng.uniform(0.004, 0.03, users.size)
    start = rng.integers(1, cell.top - price_sweep.PROOF_WIDTH + 2, users.size)
    lam, gamma = 2e-8, 2000.0
    both = price_sweep._point_of(cell, users, deadlines, lam, gamma, start)
    for i in range(0, users.size, 17):
        alone = price_sweep._point_of(cell, users[i:i + 1], float(deadlines[i]), lam, gamma, start[i:i + 1])
        for field in ("start", "value", "slope", "phi"):
            np.testing.assert_array_equal(getattr(both, field)[i], getattr(alone, field)[0])


def _dual(cell, lam, gamma, deadlines, need=None):
    """``lam W - gamma C + sum_k phi_k(D) - gamma D`` at each deadline, every length priced (``need``:
    ``cell.prices.at(deadlines)`` where the caller has it)."""
    need = cell.prices.at(deadlines) if need is None else need
    levels = np.arange(cell.top + 1)
    values = cell.g - gamma * cell.v1 * levels
    with np.errstate(invalid="ignore"):
        terms = np.where(np.isfinite(need), values[None] - lam * need, -np.inf)
    return lam * cell.budget - gamma * cell.fixed + terms.max(axis=-1).sum(axis=-1) - gamma * deadlines


def _planned(users: int, seed: int):
    """A busy cell, its heterogeneous plan's deadline and goodput, and the whole cell's LP there."""
    system, cell = _cell(users, seed)
    het = plan_heterogeneous(system, start=plan_homogeneous(system))
    d_star, goodput = het.evaluation.draft_upload_s, het.evaluation.goodput_tokens_per_s
    sol, lengths, _, _ = price_sweep._lp(cell, d_star, goodput, None)
    return system, cell, d_star, goodput, float(sol.price[0]), lengths


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interval_bound_is_above_the_dual_everywhere_in_the_interval(seed):
    """The bound of each interval is at least the dual's maximum over a fine grid inside it."""
    system, cell, d_star, gamma, price, lengths = _planned(400, seed)
    rng = np.random.default_rng(seed)
    for lam in (price, 0.3 * price, 3.0 * price):
        start = price_sweep._centred(np.maximum(lengths, 1), cell.top)
        for _ in range(6):
            a = d_star * np.exp(rng.uniform(-0.6, 0.5))
            b = a * np.exp(rng.uniform(0.005, 0.4))
            pa = price_sweep._point(cell, a, lam, gamma, start)
            pb = price_sweep._point(cell, b, lam, gamma, pa.start)
            bound = price_sweep._interval_bound(cell, pa, pb, a, b, lam, gamma)
            grid = np.linspace(a, b, 257)
            exact = _dual(cell, lam, gamma, grid).max()
            assert bound >= exact - 1e-9 * abs(exact) - 1e-9, (a, b, lam)
            # ... and not absurdly above it: the bound is the certificate's whole strength.
            assert bound - exact <= 0.05 * gamma * (b + cell.fixed + cell.v1 * lengths.sum())


@pytest.mark.parametrize("seed, band", [(0, 1.0), (1, 0.1), (2, 10.0)])
def test_each_users_best_length_only_grows_with_the_deadline(seed, band):
    """The proof leaves out the lengths above a user's best at b and below its best at a: a longer
    draft's need falls faster with D, so the best length never falls as D grows. Checked on every
    length at 400 deadlines, for bands from a tenth to ten times the busy cell's and prices from
    slack to dear."""
    system, _ = _cell(400, seed)
    cell = price_sweep._Cell(system.with_bandwidth(system.bandwidth_hz * band))
    deadlines = np.geomspace(2e-4, 1.0, 400)
    need = cell.prices.at(deadlines)
    for lam in (1e-10, 1e-8, 1e-7, 1e-6):
        for gamma in (5e3 * system.users, 5e2 * system.users):
            with np.errstate(invalid="ignore"):
                terms = np.where(np.isfinite(need), cell._values(gamma)[None] - lam * need, -np.inf)
            best = np.argmax(terms, axis=2)  # (deadline, user), the lowest of a tie
            assert (np.diff(best, axis=0) >= 0).all(), (lam, gamma)
            reach = np.isfinite(terms[:, :, 1:]).any(axis=2)
            best_drafting = np.where(reach, np.argmax(terms[:, :, 1:], axis=2), 0)
            assert (np.diff(best_drafting, axis=0)[reach[:-1]] >= 0).all(), (lam, gamma)


def _intervals_near_the_plan(seed: int, count: int, spread: tuple[float, float], widths: tuple[float, float]):
    """Random intervals [a, b] around a planned 400-user cell's deadline (ln(a / D*) in ``spread``,
    ln(b / a) in ``widths``), ``count`` at each of three prices on the band: (cell, lam, gamma, a,
    b, a's point from windows centred on the plan)."""
    _, cell, d_star, gamma, price, lengths = _planned(400, seed)
    rng = np.random.default_rng(seed)
    start = price_sweep._centred(np.maximum(lengths, 1), cell.top, price_sweep.PROOF_WIDTH)
    for lam in (price, 0.3 * price, 3.0 * price):
        for _ in range(count):
            a = d_star * np.exp(rng.uniform(*spread))
            b = a * np.exp(rng.uniform(*widths))
            yield cell, lam, gamma, a, b, price_sweep._point(cell, a, lam, gamma, start)


@pytest.mark.parametrize("seed", [0, 1])
def test_windows_from_an_earlier_deadlines_best_lengths_find_the_same_terms(seed):
    """A point priced from the best lengths at an earlier deadline (its windows start there and do
    not move down) finds every user's best term and length as one priced from centred windows,
    at one deadline or one per user (the movers' pieces)."""
    rng = np.random.default_rng(100 + seed)
    wrong_way = 0
    for cell, lam, gamma, a, b, pa in _intervals_near_the_plan(seed, 4, (-1.0, 0.5), (0.01, 0.5)):
        centred = price_sweep._point(cell, b, lam, gamma, pa.start)
        from_a = price_sweep._point(cell, b, lam, gamma, price_sweep._from_floor(pa.lead, cell.top), floor=pa.lead)
        np.testing.assert_array_equal(from_a.phi, centred.phi)
        np.testing.assert_array_equal(from_a.lead, centred.lead)
        ends = a * np.exp(rng.uniform(0.0, np.log(b / a), cell.k))
        one_each = price_sweep._point(cell, ends, lam, gamma, price_sweep._from_floor(pa.lead, cell.top),
                                      floor=pa.lead)
        alone = price_sweep._point(cell, ends, lam, gamma, pa.start)
        np.testing.assert_array_equal(one_each.phi, alone.phi)
        np.testing.assert_array_equal(one_each.lead, alone.lead)
        # The other way round (b's best lengths as a's floor) is no floor: the check can tell.
        from_b = price_sweep._point(cell, a, lam, gamma, price_sweep._from_floor(centred.lead, cell.top),
                                    floor=centred.lead)
        wrong_way += int((from_b.phi < pa.phi).sum())
    assert wrong_way > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_each_users_bound_is_above_its_own_maximum(seed):
    """Each user's bound on ``max_D (phi_k(D) - mu_k D)`` over [a, b] is at least that maximum on a
    fine grid: intervals near the plan and far below it (where lengths come into reach inside the
    interval), common ends or one pair per user (the movers' pieces)."""
    for cell, lam, gamma, a, b, pa in _intervals_near_the_plan(seed, 5, (-1.5, 0.5), (0.005, 0.6)):
        pb = price_sweep._point(cell, b, lam, gamma, pa.start)
        best, mu = price_sweep._user_bounds(cell, cell.users, pa, pb, a, b)
        grid = np.linspace(a, b, 257)
        need = cell.prices.at(grid)
        with np.errstate(invalid="ignore"):
            terms = np.where(np.isfinite(need), cell._values(gamma)[None] - lam * need, -np.inf)
        exact = (terms.max(axis=2) - mu[None] * grid[:, None]).max(axis=0)
        assert (best >= exact - 1e-9 * np.abs(exact) - 1e-9).all(), (a, b, lam)
        # One pair of ends per user: the same bound as each user alone.
        piece, _ = price_sweep._user_bounds(cell, cell.users, pa, pb, np.full(cell.k, a), np.full(cell.k, b))
        np.testing.assert_allclose(piece, best, rtol=1e-12, atol=1e-9)


def test_certificate_refuses_a_ratio_a_plan_reaches():
    """Proving "no plan reaches gamma" must fail when a plan does (gamma just below the best)."""
    system, cell = _cell(2500, 3)
    d_lo, d_hi = _deadline_range(system)
    hom = plan_homogeneous(system)
    ev = hom.evaluation
    best = price_sweep._Best(system, ev.draft_lengths.astype(np.int64), ev.goodput_tokens_per_s,
                             ev.draft_upload_s, ev.bandwidth_hz)
    sample = price_sweep._Cell(price_sweep._sample(system, price_sweep.SAMPLE))
    lam, window = price_sweep._search(cell, sample, price_sweep._start_deadline(sample, best.deadline, d_lo, d_hi),
                                      best, (d_lo, d_hi))
    assert price_sweep.certify(cell, lam, best.value * (1 + BOUND_TOLERANCE), d_lo, d_hi, window) == []
    stuck = price_sweep.certify(cell, lam, best.value * (1 - 1e-6), d_lo, d_hi, window)
    assert stuck and all(d_lo <= a < b <= d_hi and bound > 0 for a, b, bound in stuck)


@pytest.mark.parametrize("users, seed", [(1000, 7), (1500, 8), (2000, 4), (2500, 5), (3000, 6)])
def test_large_cells_agree_with_the_interval_search(users, seed):
    """Both paths prove their bound: each plan is below the other path's bound, and the two plans are
    within the tolerance of each other."""
    system = busy_cell(np.random.default_rng(seed), users)
    hom = plan_homogeneous(system)
    assert price_sweep.applies(system)
    fast = plan_heterogeneous(system, start=hom)
    slow = plan_heterogeneous(system, start=hom, intervals_only=True)
    g_fast, g_slow = fast.evaluation.goodput_tokens_per_s, slow.evaluation.goodput_tokens_per_s
    assert g_fast <= slow.upper_bound_tokens_per_s * (1 + 1e-12)
    assert g_slow <= fast.upper_bound_tokens_per_s * (1 + 1e-12)
    assert g_fast >= g_slow * (1 - BOUND_TOLERANCE)
    assert fast.upper_bound_tokens_per_s <= g_fast * (1 + BOUND_TOLERANCE) * (1 + 1e-12)
    # The plan is what its lengths give under the exact split.
    assert fast.evaluation.bandwidth_hz.sum() <= system.bandwidth_hz * (1 + 1e-9)


def test_sweeps_below_two_thousand_users_are_polished_by_local_search(monkeypatch):
    """From 1,000 to 1,999 users the sweep's plan then goes through the interval search's local
    search (one user's length matters there): on this cell it moves the plan up."""
    from multispin_cli.planners import heterogeneous

    system = busy_cell(np.random.default_rng(1001), 1000)
    hom = plan_homogeneous(system)
    polished = plan_heterogeneous(system, start=hom).evaluation.goodput_tokens_per_s
    monkeypatch.setattr(heterogeneous, "POLISHED_SWEEP", 0)
    raw = plan_heterogeneous(system, start=hom)
    assert raw.evaluation.goodput_tokens_per_s < polished <= raw.upper_bound_tokens_per_s


def test_small_or_irregular_cells_keep_the_interval_search():
    assert not price_sweep.applies(busy_cell(np.random.default_rng(0), price_sweep.LARGE_CELL - 1))
    assert not price_sweep.applies(busy_cell(np.random.default_rng(0), price_sweep.LARGE_CELL, batching="padded"))
    cell = busy_cell(np.random.default_rng(0), price_sweep.LARGE_CELL)
    assert price_sweep.applies(cell)
    table = VerifyTime(np.array([1.0, 4000.0, 40000.0]), np.array([0.03, 0.04, 0.06]), False)
    assert not price_sweep.applies(replace(cell, verify=table))  # a measured table: no affine T_v


def _variants(users: int):
    from dataclasses import replace

    from multispin_cli.model.channel import Channel

    rng = np.random.default_rng(21)
    base = busy_cell(np.random.default_rng(11), users)
    no_uplink = np.zeros(users, dtype=bool)
    no_uplink[::3] = True
    return {
        "busy": base,
        "fixed SNR only": replace(base, channel=Channel(np.zeros(users, bool), np.log2(1 + 10 ** rng.uniform(0, 2.5, users)),
                                                        np.full(users, np.nan))),
        "power-limited only": replace(base, channel=Channel(np.ones(users, bool), np.full(users, np.nan),
                                                            10 ** rng.uniform(5, 7.5, users))),
        "a tenth of the band": base.with_bandwidth(base.bandwidth_hz * 0.1),
        "ten times the band": base.with_bandwidth(base.bandwidth_hz * 10),
        "a third off the uplink": replace(base, no_uplink=no_uplink),
    }


@pytest.mark.parametrize("name", list(_variants(8)))
def test_the_proof_closes_on_unlike_cells(name):
    """Band scarce or plentiful, one channel form, users off the uplink: the price sweep proves its
    plan itself (no fallback), and agrees with the interval search within both bounds."""
    system = _variants(2500)[name]
    hom = plan_homogeneous(system)
    ev = hom.evaluation
    d_lo, d_hi = _deadline_range(system)
    large = price_sweep.plan_large(system, lengths=ev.draft_lengths, goodput=ev.goodput_tokens_per_s,
                                   deadline=ev.draft_upload_s, bandwidth=ev.bandwidth_hz, d_lo=d_lo, d_hi=d_hi,
                                   tolerance=BOUND_TOLERANCE)
    assert large is not None
    slow = plan_heterogeneous(system, start=hom, intervals_only=True)
    assert large.goodput <= slow.upper_bound_tokens_per_s * (1 + 1e-12)
    assert slow.evaluation.goodput_tokens_per_s <= large.bound * (1 + 1e-12)


def test_two_parts_run_on_two_threads_once_and_errors_reach_the_caller():
    """``_both`` runs its second item on a thread of its own, does not split again inside a part
    (two threads in all), and raises a part's error in the calling thread."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: no threads")
    seen = []

    def work(item):
        inner = price_sweep._both(lambda x: threading.get_ident(), (0, 1))
        seen.append((item, threading.get_ident(), inner))
        return item * 2

    assert price_sweep._both(work, (3, 4)) == [6, 8]
    threads = {ident for _, ident, _ in seen}
    assert len(threads) == 2 and all(inner == [ident, ident] for _, ident, inner in seen)
    with pytest.raises(ZeroDivisionError):
        price_sweep._both(lambda x: 1 / x, (1, 0))
    assert price_sweep._both(lambda x: x, ("a", "b")) == ["a", "b"]  # nothing left marked busy


def test_threaded_proof_points_are_the_single_threaded_ones(monkeypatch):
    """Two halves of the users on two threads give the very same terms and windows."""
    system, cell = _cell(600, 2)
    hom = plan_homogeneous(system)
    gamma = hom.evaluation.goodput_tokens_per_s * 1.1
    start = price_sweep._centred(np.full(system.users, 4), cell.top, price_sweep.PROOF_WIDTH)
    monkeypatch.setattr(price_sweep, "THREADED_CELL", 10**9)
    single = [price_sweep._point(cell, d, 2e-8, gamma, start) for d in (0.004, 0.011, 0.05)]
    monkeypatch.setattr(price_sweep, "THREADED_CELL", 2)
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: no threads")
    threaded = [price_sweep._point(cell, d, 2e-8, gamma, start) for d in (0.004, 0.011, 0.05)]
    for one, two in zip(single, threaded):
        for field in ("start", "value", "slope", "phi"):
            np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    # ... and so are the bounds of an interval, by ends common to all users or one pair per user.
    ends = (0.011, 0.0125), (np.full(system.users, 0.011), np.linspace(0.0115, 0.013, system.users))
    for a, b in ends:
        pb = single[1] if np.ndim(b) == 0 else price_sweep._point(cell, b, 2e-8, gamma, start)
        both = price_sweep._user_bounds(cell, cell.users, single[1], pb, a, b)
        monkeypatch.setattr(price_sweep, "THREADED_CELL", 10**9)
        alone = price_sweep._user_bounds(cell, cell.users, single[1], pb, a, b)
        monkeypatch.setattr(price_sweep, "THREADED_CELL", 2)
        for x, y in zip(both, alone):
            np.testing.assert_array_equal(x, y)


def test_the_proof_on_two_threads_finds_what_one_thread_finds(monkeypatch):
    """The intervals below and above the plan's deadline, proven on two threads, close or stick
    exactly as on one (each half prices its own deadlines)."""
    system, cell, d_star, goodput, price, lengths = _planned(1500, 3)
    d_lo, d_hi = _deadline_range(system)
    start = price_sweep._centred(np.maximum(lengths, 1), cell.top, price_sweep.PROOF_WIDTH)
    threads = set()
    close = price_sweep._close

    def watched(*args):
        threads.add(threading.get_ident())
        return close(*args)

    monkeypatch.setattr(price_sweep, "_close", watched)
    for gamma in (goodput * (1 + BOUND_TOLERANCE), goodput * (1 - 1e-4)):
        monkeypatch.setattr(price_sweep, "THREADED_PROOF", 10**9)
        one = price_sweep.certify(cell, price, gamma, d_lo, d_hi, start, near=d_star)
        monkeypatch.setattr(price_sweep, "THREADED_PROOF", 2)
        threads.clear()
        two = price_sweep.certify(cell, price, gamma, d_lo, d_hi, start, near=d_star)
        assert one == two
        assert len(threads) == (2 if (os.cpu_count() or 1) > 1 else 1)
    assert one  # (gamma below the plan's goodput: the proof must stick somewhere)


@pytest.mark.parametrize("seed", [0, 1])
def test_summing_the_steady_users_never_closes_an_interval_with_a_positive_dual(seed):
    """The interval test that sums the users whose best length holds and prices the others inside
    the interval must refuse every interval whose dual is above 0 somewhere (gamma a hair below the
    interval's own break-even, found on a fine grid), and should close it a little above that."""
    system, cell, d_star, goodput, lam, lengths = _planned(2500, seed)
    start = price_sweep._centred(np.maximum(lengths, 1), cell.top, price_sweep.PROOF_WIDTH)
    closed = 0
    for low, high in ((1.0, 1.08), (0.9, 1.0), (1.04, 1.2), (0.6, 0.75)):
        a, b = d_star * low, d_star * high
        grid = np.geomspace(a, b, 65)  # a positive maximum on it is one in [a, b]
        need = cell.prices.at(grid)  # the needs do not depend on gamma: price once

        def dual(gamma):
            return _dual(cell, lam, gamma, grid, need).max()

        lo, hi = goodput * 0.9, goodput * 1.2  # the gamma at which the grid's maximum is 0
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if dual(mid) > 0 else (lo, mid)
        below = lo * (1 - 1e-7)
        assert dual(below) > 0
        pa = price_sweep._point(cell, a, lam, below, start)
        pb = price_sweep._point(cell, b, lam, below, pa.start)
        assert not price_sweep._refined(cell, pa, pb, a, b, lam, below), (low, high)
        above = hi * (1 + 2e-3)
        pa = price_sweep._point(cell, a, lam, above, start)
        pb = price_sweep._point(cell, b, lam, above, pa.start)
        closed += price_sweep._refined(cell, pa, pb, a, b, lam, above)
    assert closed >= 3  # the test's strength: it closes what is clearly below (not a bound of +inf)


@pytest.mark.parametrize("seed", [0, 1])
def test_summing_the_steady_users_closes_whatever_the_users_one_by_one_close(seed, monkeypatch):
    """The proof goes straight to the interval test that sums the steady users: its first round (no
    prices inside the interval) is never above the bound with every user one by one, so it closes
    every interval that bound closes; on a range of intervals and gammas around the plan's."""
    _, cell, d_star, goodput, lam, lengths = _planned(2500, seed)
    start = price_sweep._centred(np.maximum(lengths, 1), cell.top, price_sweep.PROOF_WIDTH)
    monkeypatch.setattr(price_sweep, "MOVER_PIECES", 0)  # the first round alone
    one_by_one = summed = 0
    for gamma in goodput * np.array([1.0005, 1.001, 1.003, 1.01]):
        for low, high in ((1.0, 1.06), (0.94, 1.0), (1.0, 1.13), (0.88, 1.0), (1.13, 1.27), (0.7, 0.8), (1.3, 1.6)):
            a, b = d_star * low, d_star * high
            pa = price_sweep._point(cell, a, lam, gamma, start)
            pb = price_sweep._point(cell, b, lam, gamma, pa.start)
            closes = price_sweep._interval_bound(cell, pa, pb, a, b, lam, gamma) <= 0.0
            refined = price_sweep._refined(cell, pa, pb, a, b, lam, gamma)
            assert refined or not closes, (gamma / goodput, low, high)
            one_by_one += closes
            summed += refined
    assert one_by_one >= 5 and summed > one_by_one  # (both close some; the sum closes more)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_deadlines_closed_without_prices_hold_no_dual_above_zero(seed):
    """The long tail (from :func:`_long_closed` on) and the short one (up to :func:`_short_closed`)
    are proven without pricing anyone: the dual with every length priced must be at most 0 all
    through them. With gamma 3 % below the plan's goodput the dual is above 0 between them (so a
    tail that reached too far would hold it), and each tail still closes a part of the range."""
    system, cell, d_star, goodput, price, _ = _planned(400, seed)
    d_lo, d_hi = _deadline_range(system)
    for gamma in (goodput * (1 + BOUND_TOLERANCE), goodput * 0.97):
        for lam in (price, 0.5 * price, 2.0 * price):
            rest = gamma * cell.fixed - lam * cell.budget
            long = price_sweep._long_closed(cell, gamma, rest)
            short = price_sweep._short_closed(cell, gamma, rest, d_lo, d_star)
            assert d_lo < short < d_star < long, (gamma, lam, short, long)
            for deadlines in (np.geomspace(d_lo, short, 400), np.geomspace(long, 20 * max(long, d_hi), 400)):
                dual = _dual(cell, lam, gamma, deadlines)
                assert dual.max() <= 1e-9 * gamma * d_star, (gamma, lam, deadlines[0], deadlines[-1], dual.max())
            if gamma < goodput and lam == price:
                assert _dual(cell, lam, gamma, np.geomspace(short, long, 400)).max() > 0.0


@pytest.mark.parametrize("peak", [0.3, -0.45, 0.02])
def test_successive_parabolas_find_the_peak_of_a_smooth_ratio(peak):
    """``_vertex_max`` from a bracket (the best inside) ends within its tolerance of a smooth
    function's maximum, evaluating only inside the bracket; a bumpy one still ends at a point at
    least as good as the bracket's best."""
    for bumps in (0.0, 1e-4):
        tried = {}

        def f(x, tried=tried, bumps=bumps):
            tried[x] = (-(x - peak) ** 2 * (1.5 + x) + bumps * np.sin(300 * x),)
            return tried[x][0]

        mid = peak - 0.08  # (the bracket the search hands over: its middle the best of three)
        low, high = mid - 0.5, mid + 0.45
        for x in (low, mid, high):
            f(x)
        price_sweep._vertex_max(f, tried, low, high, tolerance=0.005, steps=8)
        best = max(tried, key=lambda x: tried[x][0])
        assert all(low <= x <= high for x in tried)
        assert tried[best][0] >= tried[mid][0]
        if bumps == 0.0:
            assert abs(best - peak) < 0.01, (peak, best, sorted(tried))


@pytest.mark.parametrize("above", [1.4, 0.7])
def test_the_search_brackets_its_peak_without_a_step_past_it(above, monkeypatch):
    """From a start above the peak (or below it) ``_peak`` steps towards it and then refines only
    inside the bracket its steps found: no deadline past the first step, which is already worse
    (steps down leave their points in falling order; read as a bracket they once cost an LP at
    the far side)."""
    system = busy_cell(np.random.default_rng(3), 1500)
    cell = price_sweep._Cell(system)
    span = _deadline_range(system)
    goodput = plan_homogeneous(system).goodput_tokens_per_s
    best, _, _ = price_sweep._peak(cell, float(np.sqrt(span[0] * span[1])), goodput, 0.15, span)
    seen = []
    real = price_sweep._lp
    monkeypatch.setattr(price_sweep, "_lp", lambda c, d, g, w: seen.append(d) or real(c, d, g, w))
    found, _, _ = price_sweep._peak(cell, best * above, goodput, 0.15, span)
    assert abs(np.log(found / best)) < 0.02
    start, first = seen[0], seen[1]
    assert (first < start) == (above > 1)  # the first step goes towards the peak
    beyond = [d for d in seen[2:] if (d > first if above > 1 else d < first)]
    assert not beyond, (start, first, beyond)
