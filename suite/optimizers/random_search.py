"""Batched random search: ``random-search``.

Each iteration draws ``batch`` points and evaluates them in ONE ``problem.loss(X[batch, P])``
call; the best point seen is kept and returned. Two sampling laws:

* ``distribution="gaussian"``: ``x = x0 + sigma * z``, ``z ~ N(0, I)`` (a fixed cloud around
  the start, not a walk);
* ``distribution="uniform"``: uniform in ``problem.bounds`` when the problem has bounds, else in
  the box ``x0 +- sigma``; with ``x0 = 0`` this is Hochreiter & Schmidhuber's "random weight
  guessing".

The first batch also contains ``x0`` itself, so the result is never worse than the start.

Reference: Brooks (1958), "A discussion of random methods for seeking maxima"; Hochreiter &
Schmidhuber (1997), "Long short-term memory", Sec. 5 (guessing experiments); Bergstra & Bengio
(2012) for random search as a baseline.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from suite.optimizers.base import (
    Optimizer,
    ProblemLike,
    at_least,
    greater_than,
    one_of,
    set_stop_reason,
)
from suite.optimizers.registry import register_optimizer


@register_optimizer("random-search", family="random")
@dataclass(frozen=True)
class RandomSearch(Optimizer):
    """Batched random sampling around x0 (Gaussian) or in the box (uniform); keeps the best."""

    batch: int = 32
    sigma: float = 0.5
    distribution: str = "gaussian"
    max_batches: int | None = None

    tags: ClassVar[frozenset[str]] = frozenset({"population", "stochastic"})
    constraints: ClassVar[dict] = {
        "batch": at_least(1),
        "sigma": greater_than(0),
        "distribution": one_of("gaussian", "uniform"),
        "max_batches": at_least(1),
    }

    def _sample(self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shape = (self.batch, x0.size)
        if self.distribution == "gaussian":
            return x0 + self.sigma * rng.standard_normal(shape)
        if problem.bounds is not None:
            lo, hi = (np.asarray(b, dtype=np.float64) for b in problem.bounds)
        else:
            lo, hi = x0 - self.sigma, x0 + self.sigma
        return rng.uniform(lo, hi, size=shape)

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Sample and evaluate batches until the budget (or ``max_batches``) is spent."""
        x0 = np.array(x0, dtype=np.float64, copy=True)
        best_x, best_f = x0, math.inf
        batches = itertools.count() if self.max_batches is None else range(self.max_batches)
        for i in batches:
            X = self._sample(problem, x0, rng)
            if i == 0:
                X[0] = x0
            losses = np.asarray(problem.loss(X), dtype=np.float64)
            j = int(np.argmin(losses))
            if losses[j] < best_f:
                best_x, best_f = X[j].copy(), float(losses[j])
        set_stop_reason(problem, f"max_batches={self.max_batches} reached")
        return best_x
