"""A plan (draft length and bandwidth per user) with its predicted performance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispin_cli.model.goodput import Evaluation


@dataclass(frozen=True, eq=False)
class Plan:
    """One way to run the cell: the planners' and baselines' common result.

    ``draft_length`` is the common length where the plan gives every user the same one (the
    homogeneous plan and the baselines); ``goodput_by_length`` is the homogeneous goodput for each
    common length 0..L_max where the plan came from such a sweep; ``upper_bound_tokens_per_s`` is a
    proven bound on any plan's goodput where the planner computed one.
    """

    name: str
    evaluation: Evaluation
    draft_length: int | None = None
    goodput_by_length: np.ndarray | None = None
    upper_bound_tokens_per_s: float | None = None

    @property
    def goodput_tokens_per_s(self) -> float:
        """Predicted sum token goodput (tokens/s over all users)."""
        return self.evaluation.goodput_tokens_per_s

    def gain_over(self, other: "Plan") -> float:
        """Relative goodput gain over another plan (0.25 = 25 % more tokens/s)."""
        if other.goodput_tokens_per_s <= 0:
            return float("inf")
        return self.goodput_tokens_per_s / other.goodput_tokens_per_s - 1.0
