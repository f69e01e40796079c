"""A (1+1)-ES with the 1/5th success rule as an rnnbench plugin (Rechenberg 1973).

Keep the parent ``x``; each step try ``y = x + sigma * N(0, I)`` and keep it if it is no worse.
A success multiplies ``sigma`` by ``a = 1.5``, a failure by ``a ** (-1/4)``, so ``sigma`` is
stationary exactly at a success rate of 1/5 (Kern et al. 2004, "Learning probability
distributions in continuous evolutionary algorithms", Natural Computing 3).

Compare it with the built-ins: ``rnnbench run my_experiment.toml --plugin
examples/one_plus_one_es.py`` with ``name = "one-plus-one-es"`` among the experiment's
``[[optimizers]]``. Check it: ``suite.load_plugins(["examples/one_plus_one_es.py"]);
suite.check_optimizer("one-plus-one-es")``. See examples/README.md.
"""

from dataclasses import dataclass

import numpy as np

from suite.optimizers import Optimizer, ProblemLike, greater_than, register_optimizer


@register_optimizer("one-plus-one-es", family="plugins")
@dataclass(frozen=True)
class OnePlusOneES(Optimizer):
    """(1+1)-ES with the 1/5th success rule; loops until the budget is spent."""

    sigma0: float = 0.3
    factor: float = 1.5

    tags = frozenset({"stochastic"})
    constraints = {"sigma0": greater_than(0), "factor": greater_than(1)}

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        x, sigma = np.array(x0, dtype=float), self.sigma0
        fx = problem.loss(x)
        while True:  # the Problem raises BudgetExhausted; the runner keeps the incumbent
            y = x + sigma * rng.standard_normal(x.shape)
            fy = problem.loss(y)
            if fy <= fx:
                x, fx, sigma = y, fy, sigma * self.factor
            else:
                sigma *= self.factor**-0.25
