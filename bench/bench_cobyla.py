"""Where ``ng-cobyla``'s seconds go: COBYLA's own work, nevergrad's, and the model's.

Run ``python bench/bench_cobyla.py [--quick]`` (needs the nevergrad extra; without it this
prints one line and exits 0). Single-threaded BLAS.

On the speed study's adding problem (Elman H = 8, T = 20, P = 97 parameters) the same number of
loss evaluations is run, alternating, ``--reps`` times:

* scipy's COBYLA called directly (``scipy.optimize.minimize(method="COBYLA")``, as nevergrad
  calls it), on the Problem with no budget, stopped after that many evaluations;
* rnnbench's ``ng-cobyla`` (nevergrad's ``Cobyla``, one point per ask/tell) under an fe budget
  of that many evaluations, through :func:`suite.trial.run`.

Printed per evaluation (medians): the model's time (inside the Problem's calls), the rest
(COBYLA's own work, plus nevergrad's bookkeeping and thread hand-over for ``ng-cobyla``) and
the ratio ng-cobyla / direct of the rest. The difference is what nevergrad adds; the direct
figure is the method's own cost, which C1's seconds clock charges to it like every method's.
scipy >= 1.16 runs COBYLA as PRIMA's pure-Python implementation, so its per-iteration work
(O(P^2) and more in Python) exceeds the model's at this size.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import _common  # first: one BLAS thread, the repository on sys.path
import numpy as np
import scipy
import scipy.optimize

from suite.optimizers import get_optimizer
from suite.problem import Budget, make_problem
from suite.trial import run

_common.limit_blas_threads()


def _problem():
    return make_problem("adding", model="elman", hidden=8, seq_len=20, seed=0)


def direct(evaluations: int) -> tuple[float, float, int]:
    """(model seconds, other seconds, evaluations) of scipy's COBYLA called directly."""
    p = _problem()
    x0 = p.initial_point(np.random.default_rng(0))
    p.start()  # no budget: COBYLA's maxiter stops it

    def f(x: np.ndarray) -> float:
        return float(p.loss(x))

    t0 = time.perf_counter()
    scipy.optimize.minimize(f, x0, method="COBYLA", options={"maxiter": evaluations})
    wall = time.perf_counter() - t0
    c = p.counters
    return c.wall_inside, wall - c.wall_inside, c.loss_calls


def through_nevergrad(evaluations: int) -> tuple[float, float, int]:
    """(model seconds, other seconds, evaluations) of ``ng-cobyla`` under that many evaluations."""
    p = _problem()
    budget = Budget(fe=evaluations * p.fe_per_loss)
    x0 = p.initial_point(np.random.default_rng(0))
    t0 = time.perf_counter()
    run(p, get_optimizer("ng-cobyla"), budget, seed=1, x0=x0)
    wall = time.perf_counter() - t0
    c = p.counters
    return c.wall_inside, wall - c.wall_inside - c.wall_checkpoint, c.loss_calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args()
    if importlib.util.find_spec("nevergrad") is None:
        print('bench_cobyla: nevergrad is not installed (pip install -e ".[nevergrad]"); skipped')
        return
    import nevergrad

    evaluations = 1000 if args.quick else 3000
    reps = args.reps or (2 if args.quick else 3)
    print(
        f"COBYLA on adding (Elman H = 8, T = 20, P = 97), {evaluations} evaluations; "
        f"scipy {scipy.__version__}, nevergrad {nevergrad.__version__}"
    )
    got: dict[str, list[tuple[float, float, int]]] = {"direct": [], "ng-cobyla": []}
    for i in range(reps):
        order = ("direct", "ng-cobyla") if i % 2 == 0 else ("ng-cobyla", "direct")
        for name in order:
            fn = direct if name == "direct" else through_nevergrad
            got[name].append(fn(evaluations))
    per_eval = {}
    for name, runs in got.items():
        model = statistics.median(m / n for m, _, n in runs)
        other = statistics.median(o / n for _, o, n in runs)
        calls = statistics.median(n for _, _, n in runs)
        per_eval[name] = other
        print(
            f"  {name:9s}: model {model * 1e3:.3f} ms, the rest {other * 1e3:.3f} ms per "
            f"evaluation ({calls:.0f} evaluations)"
        )
    ratio = per_eval["ng-cobyla"] / per_eval["direct"]
    print(
        f"  ng-cobyla / direct, the rest per evaluation: {ratio:.2f}x; COBYLA's own share of "
        f"ng-cobyla's rest: {1 / ratio:.0%}"
    )


if __name__ == "__main__":
    main()
