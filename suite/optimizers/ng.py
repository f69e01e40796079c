"""nevergrad's optimizers as the ``ng-*`` family (extra: ``pip install -e ".[nevergrad]"``).

Each ``ng-<name>`` wraps one optimizer of nevergrad's registry (Rapin & Teytaud 2018,
"Nevergrad - A gradient-free optimization platform", https://github.com/facebookresearch/nevergrad)
through its ask/tell interface:

* the parametrization is ``ng.p.Array(init=x0)`` with mutation scale ``sigma`` (and
  ``problem.bounds`` as nevergrad bounds when the model has them), seeded from the trial's
  ``rng`` (never from numpy's global state);
* nevergrad's ``budget`` is the number of full-training-set loss evaluations left when
  ``minimize`` starts, ``problem.remaining_fe() // problem.fe_per_loss`` (``None`` for a budget
  in seconds only), so that methods which plan with it (NGOpt's choice of algorithm, the
  samplers) see the real budget;
* each round asks ``num_workers`` candidates and evaluates them in ONE batched
  ``problem.loss(X[num_workers, P])`` call (the last round is shrunk to what the budget still
  allows), then tells every loss. Methods that nevergrad runs one point at a time (its wrappers
  of scipy) have no ``num_workers``: one point per call;
* a non-finite loss (``+inf`` from the Problem) or one above ``MAX_TOLD_LOSS`` is told as
  ``MAX_TOLD_LOSS = 1e20`` (rank-preserving; nevergrad itself clips at 5e20 with a warning);
* the loop ends when the Problem raises ``BudgetExhausted`` (the runner takes the incumbent).
  Nothing nevergrad raises is caught: a crash inside nevergrad becomes a trial record with
  status ``error`` and its traceback.

The family registers only when nevergrad is importable (checked with ``find_spec``: nevergrad
itself is imported on the first ``minimize``, since importing it takes seconds). Without it,
asking for an ``ng-*`` name says which extra to install (see
:data:`suite.optimizers.registry.OPTIONAL_FAMILIES`).

========================  ======================  ===========  =================================
rnnbench name             nevergrad name          batch        reference
========================  ======================  ===========  =================================
``ng-ngopt``              ``NGOpt``               16           Meunier et al. 2022 (wizard)
``ng-twopointsde``        ``TwoPointsDE``         16           Storn & Price 1997 (DE)
``ng-de``                 ``DE``                  16           Storn & Price 1997
``ng-pso``                ``PSO``                 16           Kennedy & Eberhart 1995
``ng-cma``                ``CMA``                 16           Hansen & Ostermeier 2001
``ng-diagonalcma``        ``DiagonalCMA``         16           Ros & Hansen 2008
``ng-tbpsa``              ``TBPSA``               16           Hellwig & Beyer 2016
``ng-oneplusone``         ``OnePlusOne``          1            Rechenberg 1973, 1/5th rule
``ng-metamodel``          ``MetaModel``           16           surrogate-assisted CMA
``ng-cobyla``             ``Cobyla``              sequential   Powell 1994 (via scipy)
``ng-sqp``                ``SQP``                 sequential   scipy SLSQP, finite differences
``ng-chaincmapowell``     ``ChainCMAPowell``      sequential   CMA then Powell
========================  ======================  ===========  =================================

Conformance (``suite.check_optimizer(name, raise_on_failure=False)``, quick settings,
nevergrad 1.0.12, numpy 2.4.6, scipy 1.17.1):

* pass every check their tags select: ``ng-twopointsde``, ``ng-de``, ``ng-pso``, ``ng-cma``,
  ``ng-diagonalcma``, ``ng-tbpsa`` (10/10), ``ng-oneplusone``, ``ng-cobyla``, ``ng-sqp``,
  ``ng-chaincmapowell`` (9/9: no ``population`` tag);
* fail every check, inside nevergrad: ``ng-ngopt`` and ``ng-metamodel`` (0/10), each run raising
  ``TypeError: only 0-dimensional arrays can be converted to Python scalars`` from
  ``nevergrad/optimization/metamodel.py`` (``float(model.predict(...))`` of a 1-element array,
  refused by numpy 2). NGOpt delegates to MetaModel on small budgets and dimensions (the 4-D toy;
  also every problem of ``speed.toml`` except parity and sunspots at the reference budget), and
  the surrogate is fitted, and fails, once about ``(P + 1)(P + 2) / 2`` points are evaluated: on
  the 2-D ``cliff`` every trial is an ``error`` record; on the ~90-D RNN problems the quick
  budgets stay below that. They stay registered, as nevergrad's failure, recorded as such.

Not registered: ``NgIohTuned`` (nevergrad's newer wizard: draws from numpy's global random state
inside nevergrad, so two runs with the same seed differ and the ``seeded_determinism`` and
``no_global_random_state`` checks fail), ``SPSA`` (fails ``improves_on_convex_toy``: 0.976 ->
0.835 in 20000 fe on the 4-parameter least-squares toy), ``BO`` (Gaussian-process cost grows
cubically with the evaluations), nevergrad's other scipy wrappers (``NelderMead``, ``Powell``,
``BFGS``: the built-in ``scipy-*`` family runs them directly) and its discrete methods.

A quick screen (``speed.toml``'s problems at the quick budgets, 3 seeds, default
hyper-parameters) ranked by final training loss ``ng-oneplusone``, ``ng-cobyla``,
``ng-chaincmapowell``, ``ng-cma`` and ``ng-diagonalcma`` first, ahead of the built-in ``cmaes``;
all but ``ng-cma`` (the same pycma as ``cmaes``) run in ``suite/experiments/speed-nevergrad.toml``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from suite.optimizers.base import Optimizer, at_least, greater_than
from suite.optimizers.registry import register_optimizer

MAX_TOLD_LOSS = 1e20
"""The largest loss told to nevergrad; non-finite and larger losses are told as this."""

PREFIX = "ng-"
"""Prefix of the registered names (see ``OPTIONAL_FAMILIES`` in the registry)."""

AVAILABLE: bool = importlib.util.find_spec("nevergrad") is not None
"""Whether nevergrad is installed (the ``ng-*`` optimizers register only then)."""

METHODS: dict[str, tuple[str, int | None, str]] = {
    # rnnbench name: (nevergrad name, default batch (None: sequential), summary)
    "ng-ngopt": ("NGOpt", 16, "nevergrad's algorithm-selection wizard (Meunier et al. 2022)"),
    "ng-twopointsde": ("TwoPointsDE", 16, "differential evolution, two-points crossover"),
    "ng-de": ("DE", 16, "differential evolution (Storn & Price 1997)"),
    "ng-pso": ("PSO", 16, "particle swarm optimisation (Kennedy & Eberhart 1995)"),
    "ng-cma": ("CMA", 16, "CMA-ES through pycma (Hansen & Ostermeier 2001)"),
    "ng-diagonalcma": ("DiagonalCMA", 16, "separable CMA-ES (Ros & Hansen 2008)"),
    "ng-tbpsa": ("TBPSA", 16, "test-based population-size adaptation (Hellwig & Beyer 2016)"),
    "ng-oneplusone": ("OnePlusOne", 1, "(1+1)-ES with the 1/5th success rule (Rechenberg 1973)"),
    "ng-metamodel": ("MetaModel", 16, "CMA-ES assisted by a quadratic surrogate model"),
    "ng-cobyla": ("Cobyla", None, "COBYLA via scipy (Powell 1994)"),
    "ng-sqp": ("SQP", None, "scipy SLSQP with finite-difference gradients"),
    "ng-chaincmapowell": ("ChainCMAPowell", None, "CMA-ES for half the budget, then Powell"),
}
"""The registered ``ng-*`` names -> (nevergrad's name, default ``num_workers``, summary)."""


def _nevergrad() -> Any:
    """Import nevergrad (an optional dependency, seconds to import: only when a run starts)."""
    import nevergrad

    return nevergrad


def _seed(rng: np.random.Generator) -> np.random.RandomState:
    """A legacy RandomState for nevergrad's parametrization, drawn from the trial's ``rng``."""
    return np.random.RandomState(int(rng.integers(2**32)))  # noqa: NPY002 - nevergrad's type


def evaluations_left(problem: Any) -> int | None:
    """Full-training-set loss evaluations left in the budget (``None`` without an fe budget)."""
    left = problem.remaining_fe()
    if not math.isfinite(left):
        return None
    return int(left // problem.fe_per_loss)


@dataclass(frozen=True)
class NevergradOptimizer(Optimizer):
    """A nevergrad optimizer, one point per ``problem.loss`` call (base of the ``ng-*`` family).

    ``sigma`` is the initial mutation scale of the parametrization ``ng.p.Array(init=x0)``.
    """

    sigma: float = 0.5

    method: ClassVar[str] = ""
    tags: ClassVar[frozenset[str]] = frozenset({"stochastic"})
    imports: ClassVar[tuple[str, ...]] = ("nevergrad",)
    constraints: ClassVar[dict] = {"sigma": greater_than(0)}

    def batch(self) -> int:
        """Candidates asked (and evaluated in one call) per round."""
        return 1

    def build(self, problem: Any, x0: np.ndarray, rng: np.random.Generator) -> Any:
        """The nevergrad optimizer of one run: parametrization, budget and workers set."""
        ng = _nevergrad()
        factory = ng.optimizers.registry.get(self.method)
        if factory is None:
            raise ValueError(
                f"nevergrad {ng.__version__} has no optimizer {self.method!r}; "
                'upgrade it: pip install -e ".[nevergrad]"'
            )
        param = ng.p.Array(init=np.array(x0, dtype=np.float64, copy=True))
        param.set_mutation(sigma=self.sigma)
        if problem.bounds is not None:
            lower, upper = (np.asarray(b, dtype=np.float64) for b in problem.bounds)
            param.set_bounds(lower=lower, upper=upper)
        param.random_state = _seed(rng)
        return factory(
            parametrization=param, budget=evaluations_left(problem), num_workers=self.batch()
        )

    def minimize(self, problem: Any, x0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Ask, evaluate in one batched call, tell; until the Problem raises BudgetExhausted.

        Once no full evaluation is left, the next (one-row) call is made without asking
        nevergrad: its scipy wrappers, whose budget is used up then, would otherwise warn and
        hand out random points.
        """
        opt = self.build(problem, x0, rng)
        with warnings.catch_warnings():
            # nevergrad calls scipy's COBYLA with tol=0 (and, on its last restarts, with
            # maxiter < P + 2), which scipy corrects with a warning on every restart; the
            # filter also covers the thread's last steps, which end after the budget's
            warnings.filterwarnings("ignore", message="COBYLA: Invalid (RHOEND|MAXFUN)")
            try:
                while True:  # ends with BudgetExhausted from problem.loss
                    left = evaluations_left(problem)
                    if left == 0:
                        problem.loss(np.array(x0, dtype=np.float64))  # raises BudgetExhausted
                    n = self.batch() if left is None else min(self.batch(), left)
                    candidates = [opt.ask() for _ in range(n)]
                    X = np.stack([np.asarray(c.value, dtype=np.float64) for c in candidates])
                    losses = np.atleast_1d(np.asarray(problem.loss(X), dtype=np.float64))
                    told = np.where(losses < MAX_TOLD_LOSS, losses, MAX_TOLD_LOSS)  # NaN, inf
                    for candidate, loss in zip(candidates, told, strict=True):
                        opt.tell(candidate, float(loss))
            finally:
                # nevergrad runs its scipy wrappers in a thread waiting for the next tell: stop
                # it, and let it finish while the filter holds (a second at most)
                thread = getattr(opt, "_messaging_thread", None)
                if thread is not None:
                    thread.stop()
                    inner = getattr(thread, "_thread", None)
                    if inner is not None and inner.is_alive():
                        inner.join(timeout=1.0)


@dataclass(frozen=True)
class BatchedNevergradOptimizer(NevergradOptimizer):
    """A nevergrad optimizer asked ``num_workers`` points per batched ``problem.loss`` call."""

    num_workers: int = 16

    constraints: ClassVar[dict] = {"sigma": greater_than(0), "num_workers": at_least(1)}

    def batch(self) -> int:
        """``num_workers``: nevergrad's parallelism, the rows of each ``problem.loss`` call."""
        return self.num_workers


def _class_name(name: str) -> str:
    return "Ng" + "".join(part.capitalize() for part in name.removeprefix(PREFIX).split("-"))


def _make(name: str, method: str, workers: int | None, summary: str) -> type[Optimizer]:
    """Generate and register the class of one ``ng-*`` name (at module level, so it pickles)."""
    base = NevergradOptimizer if workers is None else BatchedNevergradOptimizer
    fields = [] if workers is None else [("num_workers", int, dataclasses.field(default=workers))]
    tags = {"stochastic"} | ({"population"} if workers and workers > 1 else set())
    batch = "one point per call" if workers is None else f"num_workers={workers} per call"
    cls = dataclasses.make_dataclass(
        _class_name(name),
        fields,
        bases=(base,),
        frozen=True,
        namespace={
            "__doc__": f"nevergrad {method}: {summary}; {batch}.",
            "__module__": __name__,
            "__qualname__": _class_name(name),
            "method": method,
            "tags": frozenset(tags),
        },
    )
    return register_optimizer(name, family="nevergrad")(cls)


if AVAILABLE:
    for _name, (_method, _workers, _summary) in METHODS.items():
        _cls = _make(_name, _method, _workers, _summary)
        globals()[_cls.__name__] = _cls
