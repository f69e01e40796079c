"""CMA-ES through pycma's ask/tell interface: ``cmaes``, ``sep-cmaes`` and ``ipop-cmaes``.

Each generation asks pycma for ``lambda`` candidates, evaluates the whole population in ONE
batched ``problem.loss(X[lambda, P])`` call and tells pycma the losses. Non-finite losses
(returned by the Problem as ``+inf``) are told as the large finite value
``NONFINITE_LOSS = 1e100``: pycma only uses the ranking, and a finite stand-in keeps its
termination tests and warnings quiet (pycma warns on every generation with ``inf`` values).

Every pycma default that matters is set explicitly (STYLE habit 5): the sampler draws from the
optimizer's ``numpy.random.Generator`` through pycma's ``randn`` option, and ``seed`` is NaN so
that pycma never seeds or reads the global ``numpy.random`` state (its ``seed`` option would
call ``np.random.seed``, and ``seed=0`` means "use the clock"); ``verbose=-9``,
``verb_log=0``, ``verb_disp=0`` and ``verb_plot=0`` so it prints nothing and writes no files
(and ``signals_filename=""`` so it reads none: by default it polls ``cma_signals.in``);
``maxfevals`` and ``maxiter`` are infinite because the budget is the Problem's; ``popsize``,
``CMA_diagonal``, ``tolfun``, ``tolx`` and ``bounds`` (from ``problem.bounds``) come from
the hyper-parameters.

* ``cmaes``: Hansen & Ostermeier (2001), "Completely derandomized self-adaptation in evolution
  strategies"; Hansen (2016), "The CMA evolution strategy: a tutorial", arXiv:1604.00772.
* ``sep-cmaes``: diagonal covariance, Ros & Hansen (2008), "A simple modification in CMA-ES
  achieving linear time and space complexity", PPSN X.
* ``ipop-cmaes``: restarts with the population doubled whenever pycma's ``stop()`` fires,
  Auger & Hansen (2005), "A restart CMA evolution strategy with increasing population size",
  CEC. Each restart starts again from ``x0`` with ``sigma0`` (pycma's behaviour for a fixed
  ``x0``).
* ``cmaes-auto``: full covariance up to ``separable_above`` parameters (default
  :data:`SEPARABLE_ABOVE` = 200), the separable variant above it. Measured with
  ``bench/bench_cmaes.py`` (adding, T = 20, 128 sequences, one BLAS thread): pycma's own time
  per generation (ask + tell, eigendecompositions amortised) over the batched evaluation of the
  population is 1.1x at P = 97, 2.1x at P = 321 and 5.5x at P = 1153 with full covariance, and
  0.2-0.4x separable: above a few hundred parameters full CMA-ES spends most of its trial in
  its own linear algebra (O(P^2) per sample, O(P^3) per decomposition).

Bookkeeping the suite does not use is off: without bounds, pycma's archive of sent solutions
(which maps each phenotype back to its genotype through a hash of its bytes, about 10% of a
trial's time at P = 97) is replaced by pycma's own empty archive class, and ``tell`` is called
with ``check_points=False`` (pycma then takes the told solutions as the genotypes, which they
are without bounds or a transformation). The runs are bit-identical to the archived ones
(checked on adding, cliff and sunspots for all three variants). With bounds (the cliff unit)
the archive stays: the boundary handler needs it.

The point returned is the best evaluated one (pycma's ``xbest``), not the distribution mean
(``xfavorite``), so that nothing unevaluated is reported.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from suite.optimizers.base import Optimizer, ProblemLike, at_least, greater_than, set_stop_reason
from suite.optimizers.registry import register_optimizer, register_variant

SEPARABLE_ABOVE = 200
"""Dimension above which ``cmaes-auto`` runs the separable variant (see the module docstring)."""

LEAN = True
"""Whether pycma's archive of sent solutions is switched off when the problem has no bounds
(False gives pycma's default bookkeeping; the tests check both give the same run)."""

NONFINITE_LOSS = 1e100
"""What pycma is told for a non-finite loss (rank-preserving for any real loss below it)."""


def default_popsize(dim: int) -> int:
    """pycma's default population size ``4 + floor(3 ln n)``."""
    return 4 + int(3 * math.log(dim))


@register_optimizer("cmaes", family="cmaes")
@dataclass(frozen=True)
class CMAES(Optimizer):
    """CMA-ES (Hansen & Ostermeier 2001) via pycma ask/tell, one batched call per generation."""

    sigma0: float = 0.5
    popsize: int | None = None
    diagonal: bool = False
    max_restarts: int = 0
    incpopsize: float = 2.0
    tolfun: float = 1e-11
    tolx: float = 1e-11

    tags: ClassVar[frozenset[str]] = frozenset({"population", "stochastic"})
    imports: ClassVar[tuple[str, ...]] = ("cma",)  # pycma takes ~0.8 s: imported in set-up
    constraints: ClassVar[dict] = {
        "sigma0": greater_than(0),
        "popsize": at_least(2),
        "max_restarts": at_least(0),
        "incpopsize": at_least(1),
        "tolfun": at_least(0),
        "tolx": at_least(0),
    }

    def options(
        self, problem: ProblemLike, popsize: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        """The pycma options of one run, every relevant default set explicitly."""
        bounds = problem.bounds
        return {
            "popsize": popsize,
            "CMA_diagonal": bool(self.diagonal),
            "bounds": [None, None] if bounds is None else [list(bounds[0]), list(bounds[1])],
            "tolfun": self.tolfun,
            "tolx": self.tolx,
            "maxfevals": math.inf,
            "maxiter": math.inf,
            "randn": lambda *shape: rng.standard_normal(shape),
            "seed": math.nan,
            "verbose": -9,
            "verb_log": 0,
            "verb_disp": 0,
            "verb_plot": 0,
            "verb_time": False,
            "signals_filename": "",
        }

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Run CMA-ES (and its IPOP restarts) until pycma stops or the budget is spent."""
        with warnings.catch_warnings():
            # pycma's diagonal decoding (separable variants) warns when a coordinate's step is
            # large, with the values in the message, so each one prints: dozens per study.
            # verbose=-9 is meant to keep pycma quiet; this is the one warning it lets through
            warnings.filterwarnings("ignore", message="elements of z2", category=UserWarning)
            return self._minimize(problem, x0, rng)

    def _minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        import cma

        # pycma's empty archive of sent solutions: the class ``get_CMASolutionDict(False)``
        # returns in pycma 4; pycma 3.3 (the declared minimum) has the class, not the factory
        from cma.evolution_strategy import _CMASolutionDict_empty as EmptyArchive

        x0 = np.array(x0, dtype=np.float64, copy=True)
        base = self.popsize or default_popsize(problem.dim)
        best_x, best_f = x0, math.inf
        reasons = []
        lean = LEAN and problem.bounds is None  # no archive of sent solutions (module docstring)
        for restart in range(self.max_restarts + 1):
            popsize = int(round(base * self.incpopsize**restart))
            es = cma.CMAEvolutionStrategy(x0, self.sigma0, self.options(problem, popsize, rng))
            if lean:
                es.sent_solutions = EmptyArchive()
            while not es.stop():
                X = es.ask()
                losses = np.asarray(problem.loss(np.asarray(X)), dtype=np.float64)
                told = np.where(np.isfinite(losses), losses, NONFINITE_LOSS)
                if lean:
                    es.tell(X, told.tolist(), check_points=False)
                else:
                    es.tell(X, told.tolist())
                i = int(np.argmin(losses))
                if losses[i] < best_f:
                    best_x, best_f = np.array(X[i], dtype=np.float64), float(losses[i])
            stop = ", ".join(f"{k}={v}" for k, v in es.stop().items())
            reasons.append(f"run {restart} (popsize {popsize}): {stop}")
        set_stop_reason(problem, "pycma stop: " + "; ".join(reasons))
        return best_x


SepCmaes = register_variant(
    "sep-cmaes",
    CMAES,
    diagonal=True,
    doc="Separable CMA-ES (Ros & Hansen 2008): CMA-ES with a diagonal covariance matrix.",
)

IpopCmaes = register_variant(
    "ipop-cmaes",
    CMAES,
    max_restarts=9,
    doc="IPOP-CMA-ES (Auger & Hansen 2005): restarts with the population doubled each time.",
)


@register_optimizer("cmaes-auto", family="cmaes")
@dataclass(frozen=True)
class CMAESAuto(CMAES):
    """CMA-ES with full covariance up to ``separable_above`` parameters, separable (Ros & Hansen
    2008) above: the choice pycma's bookkeeping cost makes (see the module docstring)."""

    separable_above: int = SEPARABLE_ABOVE

    constraints: ClassVar[dict] = {**CMAES.constraints, "separable_above": at_least(1)}

    def options(
        self, problem: ProblemLike, popsize: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        """:meth:`CMAES.options` with ``CMA_diagonal`` chosen from the problem's dimension."""
        opts = super().options(problem, popsize, rng)
        opts["CMA_diagonal"] = bool(self.diagonal) or problem.dim > self.separable_above
        return opts
