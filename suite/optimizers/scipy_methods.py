"""scipy.optimize methods: quasi-Newton/CG on the BPTT gradient and derivative-free searches.

Gradient-based (the ``jac`` is the exact BPTT gradient from ``problem.loss_and_grad``; stop at
``max |g_i| <= gtol``, scipy's own convergence test):

* ``scipy-lbfgsb``  L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995; Zhu et al. 1997), bounds honoured
* ``scipy-bfgs``    BFGS (Nocedal & Wright 2006, Alg. 6.1)
* ``scipy-cg``      nonlinear conjugate gradient, Polak-Ribiere (Nocedal & Wright, Alg. 5.4)

Derivative-free (only ``problem.loss``):

* ``scipy-nelder-mead``  Nelder & Mead (1965), with Gao & Han's (2012) dimension-adaptive
  coefficients by default. The initial simplex is scipy's (``x0`` plus 5% of each non-zero
  coordinate, 0.00025 for zero ones), which is small for RNN weights of order 0.1-1, or
  ``x0 + simplex_scale * e_i`` when ``simplex_scale`` is given.
* ``scipy-powell``       Powell's (1964) conjugate-direction method (bounds honoured)
* ``scipy-de``           differential evolution (Storn & Price 1997), ``vectorized=True``:
  each generation is ONE batched ``problem.loss(X[S, P])`` call (scipy hands ``x`` as
  ``(P, S)``); ``polish=False`` keeps it derivative-free. Needs a box: ``problem.bounds`` or
  ``x0 +- radius``.
* ``scipy-dual-annealing``  generalised simulated annealing (Xiang et al. 1997; Tsallis &
  Stariolo 1996), ``no_local_search=True``; box as for ``scipy-de``.

The budget interrupts them: ``BudgetExhausted`` raised inside the objective propagates out of
``scipy.optimize`` unchanged (checked by the tests). When a method stops by itself its message
goes to ``problem.set_stop_reason``. Iteration caps default to "none" (``max_iter=None``):
the budget is the Problem's. Seeds of the stochastic ones come from the optimizer's ``rng``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.optimize

from suite.optimizers.base import (
    Optimizer,
    ProblemLike,
    at_least,
    between,
    greater_than,
    set_stop_reason,
)
from suite.optimizers.registry import register_optimizer

NO_LIMIT = 10**9
"""Iteration cap handed to scipy when ``max_iter`` is None (the budget stops the run first)."""


def _cap(max_iter: int | None) -> int:
    return NO_LIMIT if max_iter is None else max_iter


def _record(problem: ProblemLike, method: str, res: scipy.optimize.OptimizeResult) -> np.ndarray:
    message = res.message
    if isinstance(message, list | tuple):
        message = "; ".join(str(m) for m in message)
    set_stop_reason(problem, f"scipy {method}: {message}")
    return np.asarray(res.x, dtype=np.float64)


def _bounds(problem: ProblemLike) -> scipy.optimize.Bounds | None:
    if problem.bounds is None:
        return None
    lo, hi = problem.bounds
    return scipy.optimize.Bounds(np.asarray(lo, float), np.asarray(hi, float))


def _RNG(function: Any, rng: np.random.Generator) -> dict[str, Any]:
    """The keyword that hands ``rng`` to a scipy global optimizer: ``rng`` since scipy 1.15,
    ``seed`` before (both use a Generator as is, so the streams and results are the same)."""
    return {"rng" if "rng" in inspect.signature(function).parameters else "seed": rng}


def _box(
    problem: ProblemLike, x0: np.ndarray, radius: float
) -> tuple[scipy.optimize.Bounds, np.ndarray]:
    """``problem.bounds`` or the box ``x0 +- radius``, and ``x0`` clipped into it."""
    if problem.bounds is not None:
        lo, hi = (np.asarray(b, dtype=np.float64) for b in problem.bounds)
    else:
        lo, hi = x0 - radius, x0 + radius
    return scipy.optimize.Bounds(lo, hi), np.clip(x0, lo, hi)


def _loss_and_grad(problem: ProblemLike):
    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = problem.loss_and_grad(x)
        return loss, grad

    return fun


_GRAD_CONSTRAINTS = {"gtol": at_least(0), "max_iter": at_least(1)}


@register_optimizer("scipy-lbfgsb", family="scipy")
@dataclass(frozen=True)
class ScipyLBFGSB(Optimizer):
    """L-BFGS-B (scipy.optimize.minimize) on the exact BPTT gradient."""

    gtol: float = 1e-6
    ftol: float = 1e-15
    maxcor: int = 10
    max_iter: int | None = None

    tags: ClassVar[frozenset[str]] = frozenset({"gradient", "deterministic"})
    constraints: ClassVar[dict] = {
        **_GRAD_CONSTRAINTS,
        "ftol": at_least(0),
        "maxcor": at_least(1),
    }

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        cap = _cap(self.max_iter)
        res = scipy.optimize.minimize(
            _loss_and_grad(problem),
            np.array(x0, dtype=np.float64),
            jac=True,
            method="L-BFGS-B",
            bounds=_bounds(problem),
            options={
                "gtol": self.gtol,
                "ftol": self.ftol,
                "maxcor": self.maxcor,
                "maxiter": cap,
                "maxfun": cap,
                "maxls": 20,
            },
        )
        return _record(problem, "L-BFGS-B", res)


@dataclass(frozen=True)
class _ScipyUnbounded(Optimizer):
    """Scipy's unbounded gradient ``method`` ("BFGS" or "CG") on the exact BPTT gradient.

    Stops at ``max |g_i| <= gtol`` (``norm=inf``) or after ``max_iter`` iterations (none when
    None); the stop message goes to ``problem.set_stop_reason``. Not registered: each
    subclass sets ``method``.
    """

    gtol: float = 1e-6
    max_iter: int | None = None

    method: ClassVar[str]
    tags: ClassVar[frozenset[str]] = frozenset({"gradient", "deterministic"})
    constraints: ClassVar[dict] = _GRAD_CONSTRAINTS

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        res = scipy.optimize.minimize(
            _loss_and_grad(problem),
            np.array(x0, dtype=np.float64),
            jac=True,
            method=self.method,
            options={"gtol": self.gtol, "norm": np.inf, "maxiter": _cap(self.max_iter)},
        )
        return _record(problem, self.method, res)


@register_optimizer("scipy-bfgs", family="scipy")
@dataclass(frozen=True)
class ScipyBFGS(_ScipyUnbounded):
    """BFGS (scipy.optimize.minimize) on the exact BPTT gradient."""

    method: ClassVar[str] = "BFGS"


@register_optimizer("scipy-cg", family="scipy")
@dataclass(frozen=True)
class ScipyCG(_ScipyUnbounded):
    """Polak-Ribiere nonlinear conjugate gradient (scipy.optimize.minimize) on BPTT."""

    method: ClassVar[str] = "CG"


@register_optimizer("scipy-nelder-mead", family="scipy")
@dataclass(frozen=True)
class ScipyNelderMead(Optimizer):
    """Nelder-Mead simplex search (scipy.optimize.minimize), derivative-free."""

    simplex_scale: float | None = None
    adaptive: bool = True
    xatol: float = 1e-10
    fatol: float = 1e-12
    max_iter: int | None = None

    tags: ClassVar[frozenset[str]] = frozenset({"deterministic"})
    constraints: ClassVar[dict] = {
        "simplex_scale": greater_than(0),
        "xatol": at_least(0),
        "fatol": at_least(0),
        "max_iter": at_least(1),
    }

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        x0 = np.array(x0, dtype=np.float64)
        cap = _cap(self.max_iter)
        options: dict[str, Any] = {
            "adaptive": self.adaptive,
            "xatol": self.xatol,
            "fatol": self.fatol,
            "maxiter": cap,
            "maxfev": cap,
        }
        if self.simplex_scale is not None:
            options["initial_simplex"] = np.vstack([x0, x0 + self.simplex_scale * np.eye(x0.size)])
        res = scipy.optimize.minimize(
            problem.loss, x0, method="Nelder-Mead", bounds=_bounds(problem), options=options
        )
        return _record(problem, "Nelder-Mead", res)


@register_optimizer("scipy-powell", family="scipy")
@dataclass(frozen=True)
class ScipyPowell(Optimizer):
    """Powell's conjugate-direction method (scipy.optimize.minimize), derivative-free."""

    xtol: float = 1e-8
    ftol: float = 1e-12
    max_iter: int | None = None

    tags: ClassVar[frozenset[str]] = frozenset({"deterministic"})
    constraints: ClassVar[dict] = {
        "xtol": greater_than(0),
        "ftol": greater_than(0),
        "max_iter": at_least(1),
    }

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        cap = _cap(self.max_iter)
        # an inf loss makes the bounded Brent line search form inf * 0 = NaN in its parabola
        # step, which only rejects that step (golden section is used): silence the warning
        with np.errstate(invalid="ignore"):
            res = scipy.optimize.minimize(
                problem.loss,
                np.array(x0, dtype=np.float64),
                method="Powell",
                bounds=_bounds(problem),
                options={"xtol": self.xtol, "ftol": self.ftol, "maxiter": cap, "maxfev": cap},
            )
        return _record(problem, "Powell", res)


@register_optimizer("scipy-de", family="scipy")
@dataclass(frozen=True)
class ScipyDE(Optimizer):
    """Differential evolution (scipy.optimize.differential_evolution), batched per generation."""

    popsize: int = 15
    strategy: str = "best1bin"
    mutation_low: float = 0.5
    mutation_high: float = 1.0
    recombination: float = 0.7
    tol: float = 0.01
    radius: float = 1.0
    max_iter: int | None = None

    tags: ClassVar[frozenset[str]] = frozenset({"population", "stochastic"})
    constraints: ClassVar[dict] = {
        "popsize": at_least(1),
        "mutation_low": between(0, 2),
        "mutation_high": between(0, 2),
        "recombination": between(0, 1),
        "tol": at_least(0),
        "radius": greater_than(0),
        "max_iter": at_least(1),
    }

    def _check(self) -> None:
        if self.mutation_low > self.mutation_high:
            raise ValueError(
                "optimizer 'scipy-de': need mutation_low <= mutation_high (the dithering range), "
                f"got {self.mutation_low} > {self.mutation_high}"
            )

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        bounds, start = _box(problem, np.array(x0, dtype=np.float64), self.radius)
        mutation = (
            self.mutation_low
            if self.mutation_low == self.mutation_high
            else (self.mutation_low, self.mutation_high)
        )

        def fun(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x)
            return problem.loss(x) if x.ndim == 1 else problem.loss(x.T)

        res = scipy.optimize.differential_evolution(
            fun,
            bounds,
            strategy=self.strategy,
            maxiter=_cap(self.max_iter),
            popsize=self.popsize,
            tol=self.tol,
            atol=0.0,
            mutation=mutation,
            recombination=self.recombination,
            **_RNG(scipy.optimize.differential_evolution, rng),
            polish=False,
            init="latinhypercube",
            updating="deferred",
            vectorized=True,
            workers=1,
            x0=start,
            disp=False,
        )
        return _record(problem, "differential_evolution", res)


@register_optimizer("scipy-dual-annealing", family="scipy")
@dataclass(frozen=True)
class ScipyDualAnnealing(Optimizer):
    """Dual annealing (scipy.optimize.dual_annealing) without local search."""

    initial_temp: float = 5230.0
    restart_temp_ratio: float = 2e-5
    visit: float = 2.62
    accept: float = -5.0
    radius: float = 1.0
    max_iter: int | None = None

    tags: ClassVar[frozenset[str]] = frozenset({"stochastic"})
    constraints: ClassVar[dict] = {
        "initial_temp": between(0.01, 5e4, low_open=True),
        "restart_temp_ratio": between(0, 1, low_open=True, high_open=True),
        "visit": between(1, 3, low_open=True),
        "accept": between(-1e4, -5, low_open=True),
        "radius": greater_than(0),
        "max_iter": at_least(1),
    }

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        bounds, start = _box(problem, np.array(x0, dtype=np.float64), self.radius)
        res = scipy.optimize.dual_annealing(
            problem.loss,
            bounds,
            maxiter=_cap(self.max_iter),
            initial_temp=self.initial_temp,
            restart_temp_ratio=self.restart_temp_ratio,
            visit=self.visit,
            accept=self.accept,
            maxfun=float(NO_LIMIT) ** 2,
            **_RNG(scipy.optimize.dual_annealing, rng),
            no_local_search=True,
            x0=start,
        )
        return _record(problem, "dual_annealing", res)
