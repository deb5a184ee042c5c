"""The multiple-choice knapsack's LP greedy against an LP solver, and its order among equal efficiencies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from multispin_cli.planners import knapsack


def _concave_instance(rng: np.random.Generator, batch: int, users: int, levels: int):
    """Values concave and weights convex in the level for l >= 1 (the planner's items), level 0 free;
    some levels out of reach (inf weight) and some users that gain nothing."""
    gains = np.sort(rng.exponential(1.0, (batch, users, levels - 1)), axis=-1)[..., ::-1]
    values = np.concatenate([rng.uniform(0, 1, (batch, users, 1)), gains], axis=-1).cumsum(axis=-1)
    steps = np.sort(rng.exponential(1.0, (batch, users, levels - 1)), axis=-1)
    weights = np.concatenate([np.zeros((batch, users, 1)), steps.cumsum(axis=-1)], axis=-1)
    reach = rng.integers(1, levels + 1, (batch, users))  # levels from reach on need inf
    weights[np.arange(levels) >= reach[..., None]] = np.inf
    idle = rng.uniform(size=(batch, users)) < 0.1
    values[idle] = values[idle][:, :1]  # nothing to gain from drafting
    return values, weights


def _lp_optimum(values: np.ndarray, weights: np.ndarray, budget: float) -> float:
    """The LP relaxation by HiGHS: x_kl >= 0, sum_l x_kl = 1, sum w x <= budget, max sum v x."""
    users, levels = values.shape
    allowed = np.isfinite(weights).ravel()
    c = -values.ravel()[allowed]
    one_each = np.kron(np.eye(users), np.ones(levels))[:, allowed]
    res = linprog(c, A_ub=weights.ravel()[allowed][None, :], b_ub=[budget], A_eq=one_each,
                  b_eq=np.ones(users), bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return -res.fun


@pytest.mark.parametrize("seed", range(12))
def test_lp_greedy_matches_an_lp_solver_and_its_plans_fit(seed):
    """The greedy's LP value is the LP optimum (HiGHS), the integer plan fits the budget and is
    worth at most that, and every row of a batch is solved as on its own (the same plans; the
    sums to rounding, the rows' running sums being one)."""
    rng = np.random.default_rng(seed)
    batch, users, levels = 3, int(rng.integers(1, 12)), int(rng.integers(2, 8))
    values, weights = _concave_instance(rng, batch, users, levels)
    budget = float(rng.uniform(0.5, 3.0) * users)
    sol = knapsack.solve(values, weights, budget)
    for r in range(batch):
        lp = _lp_optimum(values[r], weights[r], budget)
        assert sol.lp_value[r] == pytest.approx(lp, rel=1e-9, abs=1e-9)
        picked = sol.levels[r]
        assert weights[r, np.arange(users), picked].sum() <= budget * (1 + 1e-12)
        assert values[r, np.arange(users), picked].sum() <= sol.lp_value[r] + 1e-9
        alone = knapsack.solve(values[r:r + 1], weights[r:r + 1], budget)
        for field in ("levels", "rounded_up"):
            np.testing.assert_array_equal(getattr(alone, field)[0], getattr(sol, field)[r])
        for field in ("lp_value", "lp_levels", "price"):
            assert getattr(alone, field)[0] == pytest.approx(getattr(sol, field)[r], rel=1e-12)


def test_equal_efficiencies_go_in_user_then_level_order():
    """Increments of equal value per hertz are taken in (user, level) order: user 0's second level
    (efficiency 2) before user 1's first (also 2), so with room for one of them user 0 drafts two
    levels and user 1 none. A level-major order would give each user one."""
    values = np.array([[[0.0, 3.0, 5.0], [0.0, 2.0, 3.0]]])
    weights = np.array([[[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]])
    sol = knapsack.solve(values, weights, 2.0)
    np.testing.assert_array_equal(sol.levels[0], [2, 0])
    assert sol.lp_value[0] == 5.0
    assert sol.price[0] == 2.0
