"""CMA-ES's own overhead per generation against the batched evaluation of its population.

Run ``python bench/bench_cmaes.py [--quick] [--seq-len T] [--hidden H ...]``.

For Elman networks on the adding problem (128 training sequences of length T), full and
diagonal (sep-) CMA-ES are driven exactly as ``suite.optimizers.cmaes`` drives pycma (same
options). Each generation is timed in three parts, side by side in one loop so that all see
the same machine load: ``es.ask()``, the ONE batched ``problem.loss(X[lambda, P])`` call, and
``es.tell()``. The table gives per generation the mean (amortising pycma's occasional
eigendecompositions) and the median of ask + tell and of the evaluation, and their ratio
(overhead / evaluation; above 1 pycma's bookkeeping costs more than the RNN). Single-threaded
BLAS, as in the runner's workers. Two warm-up generations are not counted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common  # first: one BLAS thread, the repository on sys.path
import cma
import numpy as np

from suite.optimizers import get_optimizer
from suite.optimizers.cmaes import default_popsize
from suite.problem import make_problem

_common.limit_blas_threads()


def measure(hidden: int, seq_len: int, diagonal: bool, generations: int, seconds: float) -> dict:
    """Time ``generations`` generations (or until ``seconds`` have passed, at least 3)."""
    problem = make_problem("adding", seq_len=seq_len, hidden=hidden, seed=0)
    opt = get_optimizer("sep-cmaes" if diagonal else "cmaes")
    rng = np.random.default_rng(0)
    x0 = problem.initial_point(rng)
    popsize = default_popsize(problem.dim)
    es = cma.CMAEvolutionStrategy(x0, opt.sigma0, opt.options(problem, popsize, rng))
    overhead, evaluation = [], []
    start = time.perf_counter()
    for g in range(generations + 2):
        t0 = time.perf_counter()
        X = es.ask()
        t1 = time.perf_counter()
        losses = problem.loss(np.asarray(X))
        t2 = time.perf_counter()
        es.tell(X, np.where(np.isfinite(losses), losses, 1e100).tolist())
        t3 = time.perf_counter()
        if g >= 2:
            overhead.append((t1 - t0) + (t3 - t2))
            evaluation.append(t2 - t1)
            if len(overhead) >= 3 and time.perf_counter() - start > seconds:
                break
    mean_o, mean_e = statistics.fmean(overhead), statistics.fmean(evaluation)
    return {
        "config": f"H={hidden:<3d} {'sep' if diagonal else 'full'}",
        "P": problem.dim,
        "lambda": popsize,
        "gens": len(overhead),
        "overhead_mean": mean_o,
        "eval_mean": mean_e,
        "ratio_mean": mean_o / mean_e,
        "overhead_median": statistics.median(overhead),
        "eval_median": statistics.median(evaluation),
        "ratio_median": statistics.median(o / e for o, e in zip(overhead, evaluation, strict=True)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer generations")
    parser.add_argument("--seq-len", type=int, default=50, help="adding sequence length (50)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 64], help="H (16 64)")
    parser.add_argument("--generations", type=int, default=None, help="per configuration")
    parser.add_argument("--seconds", type=float, default=None, help="time cap per configuration")
    args = parser.parse_args(argv)
    generations = args.generations or (10 if args.quick else 100)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    print(
        f"CMA-ES overhead (ask + tell) vs batched population loss; adding T={args.seq_len}, "
        f"128 sequences; cma {cma.__version__}, numpy {np.__version__}, 1 BLAS thread"
    )
    header = (
        f"{'config':10s} {'P':>6s} {'lam':>4s} {'gens':>5s} | {'ask+tell ms':>12s} "
        f"{'loss ms':>9s} {'ratio':>7s} | {'median: a+t':>11s} {'loss':>8s} {'ratio':>7s}"
    )
    print(header)
    print("-" * len(header))
    for hidden in args.hidden:
        for diagonal in (False, True):
            r = measure(hidden, args.seq_len, diagonal, generations, seconds)
            print(
                f"{r['config']:10s} {r['P']:6d} {r['lambda']:4d} {r['gens']:5d} | "
                f"{1e3 * r['overhead_mean']:12.2f} {1e3 * r['eval_mean']:9.2f} "
                f"{r['ratio_mean']:7.3f} | {1e3 * r['overhead_median']:11.2f} "
                f"{1e3 * r['eval_median']:8.2f} {r['ratio_median']:7.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
