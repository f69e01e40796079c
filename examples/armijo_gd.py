"""A gradient-method plugin: steepest descent with Armijo backtracking (Nocedal & Wright 2006,
Algorithm 3.1), on the exact BPTT gradient.

Each iteration takes ``g = grad L(x)`` and tries ``x - t g`` for ``t = step, step/2, ...`` until
``L(x - t g) <= L(x) - c t |g|^2``; the next iteration starts from ``2t``. It stops on its own
when ``|g| < gtol`` (and says so with ``problem.set_stop_reason``), else runs until the budget.
"""

from dataclasses import dataclass

import numpy as np

from suite.optimizers import Optimizer, greater_than, register_optimizer


@register_optimizer("armijo-gd", family="plugins")
@dataclass(frozen=True)
class ArmijoGD(Optimizer):
    """Steepest descent with backtracking line search."""

    step: float = 1.0
    c: float = 1e-4
    gtol: float = 1e-8

    # "gradient": may call loss_and_grad; "deterministic": never draws from rng
    tags = frozenset({"gradient", "deterministic"})
    constraints = {"step": greater_than(0), "c": greater_than(0), "gtol": greater_than(0)}

    def minimize(self, problem, x0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x, t = np.array(x0, dtype=float), self.step
        fx, g = problem.loss_and_grad(x)
        while True:  # the Problem raises BudgetExhausted when the budget is spent
            gg = float(g @ g)
            if not np.isfinite(gg) or gg < self.gtol**2:
                problem.set_stop_reason(f"gradient norm {np.sqrt(gg):.3g} < gtol")
                return x
            while True:
                y = x - t * g
                fy = problem.loss(y)
                if fy <= fx - self.c * t * gg or t < 1e-12:
                    break
                t /= 2
            x = y
            fx, g = problem.loss_and_grad(x)
            t *= 2
