"""Benchmark of vectorised multi-start training (suite.optimizers.batched.train_batch).

Measures
1. time per start of a 256-start study trained as one batch versus the same starts trained one
   at a time (``train_batch`` on one row each; a sample of the starts is timed and scaled), on
   the cliff (Adam, full batch; target >= 30x) and on the adding problem with 32-sequence
   minibatches (Adam; target >= 1.5x);
2. the total wall time of a 1000-start study of an H = 8 Elman network on adding with T = 20
   (Adam on 32-sequence minibatches, then L-BFGS and Newton polishing; target: minutes), with
   its end-point statuses.

Both sides run exactly the same code path; the only difference is the number of rows per call.
The machine is shared: rerun if the numbers look noisy. Run
``python bench/bench_multistart.py [--quick]``; BLAS uses one thread unless
``OPENBLAS_NUM_THREADS`` (etc.) is set (``bench/_common.py``).
"""

from __future__ import annotations

import argparse
import collections
import time

import _common  # noqa: F401  (first: one BLAS thread, the repository on sys.path)
import numpy as np

from suite import seeding
from suite.optimizers.batched import train_batch
from suite.optimizers.batched_method import Method
from suite.problem import problem_from_spec


def _problem(task: dict, model: dict):
    """The problem every start of a study shares (experiment seed 0, data seed 0)."""
    return problem_from_spec(task, model, seeding.data_stream(0, task, 0))


def _time_study(task: dict, model: dict, method: Method, n: int, sample: int, seed: int = 0):
    problem = _problem(task, model)
    theta0 = seeding.initial_points(0, problem.task.spec(), problem.model, range(n))
    t0 = time.perf_counter()
    batch = train_batch(problem, theta0, method, np.random.default_rng(seed))
    batched = (time.perf_counter() - t0) / n
    pick = np.random.default_rng(1).choice(n, size=min(sample, n), replace=False)
    t0 = time.perf_counter()
    for i in pick:
        train_batch(problem, theta0[i : i + 1], method, np.random.default_rng(seed))
    single = (time.perf_counter() - t0) / len(pick)
    return batched, single, batch


def main(argv: list[str] | None = None) -> None:
    """Print the benchmark figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller studies (a smoke test)")
    args = ap.parse_args(argv)
    n = 64 if args.quick else 256
    sample = 8 if args.quick else 16

    cliff = _time_study(
        {"task": "cliff", "steps": 50},
        {"model": "cliff", "dtype": "float64"},
        Method.make("adam", lr=0.02, max_steps=2000),
        n,
        sample,
    )
    print(
        f"cliff, adam, {n} starts: batched {cliff[0] * 1e3:.2f} ms/start, one at a time "
        f"{cliff[1] * 1e3:.1f} ms/start -> speed-up {cliff[1] / cliff[0]:.1f}x (target >= 30x); "
        f"statuses {dict(collections.Counter(cliff[2].status))}"
    )
    adding_task = {"task": "adding", "n_train": 128, "n_test": 256, "seq_len": 20}
    elman = {"model": "elman", "hidden": 8, "spectral_radius": 0.9, "dtype": "float64"}
    mb = Method.make(
        "adam", lr=0.01, batch_size=32, max_steps=300 if args.quick else 1000, polish="none"
    )
    add = _time_study(adding_task, elman, mb, n, sample)
    print(
        f"adding T=20, elman H=8, adam on 32-sequence minibatches ({mb.max_steps} steps), "
        f"{n} starts: batched {add[0] * 1e3:.1f} ms/start, one at a time {add[1] * 1e3:.1f} "
        f"ms/start -> speed-up {add[1] / add[0]:.2f}x (target >= 1.5x)"
    )

    big = 200 if args.quick else 1000
    method = Method.make(
        "adam",
        lr=0.01,
        batch_size=32,
        max_steps=500 if args.quick else 2000,
        check_every=100,
        polish_steps=300 if args.quick else 1000,
        newton_steps=5,
    )
    problem = _problem(adding_task, elman)
    theta0 = seeding.initial_points(0, problem.task.spec(), problem.model, range(big))
    t0 = time.perf_counter()
    res = train_batch(problem, theta0, method, np.random.default_rng(0))
    wall = time.perf_counter() - t0
    print(
        f"{big}-start study, adding T=20, elman H=8 (P={problem.dim}), {method.display()}: "
        f"{wall:.0f} s in one process ({wall / big * 1e3:.0f} ms/start), "
        f"{res.total_fe:.3g} fe; statuses {dict(collections.Counter(res.status))}; "
        f"median final loss {np.median(res.loss):.4g} (baseline {problem.baseline_loss:.4g})"
    )


if __name__ == "__main__":
    main()
