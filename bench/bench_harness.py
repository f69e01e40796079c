"""Throughput of the whole harness against the model alone, per optimizer family.

Run ``python bench/bench_harness.py [--quick] [--old-tree PATH]``. Single-threaded BLAS.

1. For shipped trials (problems of ``speed.toml``: adding and sunspots, H = 8; one optimizer per
   family), the trial's fe/s (``fe / wall`` of :func:`suite.trial.run_trial`, everything
   included: set-up, optimizer, checkpoints, record) against the model-only fe/s of the same
   problem: every model call the trial made (method, rows, split, truncation) is logged and
   replayed straight on the model, without the Problem, the optimizer or the harness (online
   truncated-BPTT chunks carry state and are charged their in-trial model time). Trial and
   replay alternate, ``--reps`` times; medians are printed with the ratio trial / model-only
   (1 = model-bound). The record's own cost split (``time``) is printed alongside.
2. Per-call overhead on small batches (sunspots, H = 8, one row, full batch): CPU time (so
   that other jobs on a shared machine do not count) of ``problem.loss_and_grad`` and
   ``problem.loss`` with a trivial model (the model's bookkeeping: step counts, split
   validation; no arithmetic) and with the Elman network, checkpoints switched off. With
   ``--old-tree PATH`` the same measurement runs in a
   subprocess on that source tree, alternating rounds with this tree, and the ratio of the
   overheads new / old is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common  # first: one BLAS thread, the repository on sys.path
import numpy as np

import suite.trial as trial_module
from suite.optimizers import get_optimizer
from suite.trial import Trial, run_trial

_common.limit_blas_threads()

PROBLEMS = {
    "adding": ({"task": "adding", "seq_len": 20}, {"model": "elman", "hidden": 8}),
    "sunspots": ({"task": "sunspots"}, {"model": "elman", "hidden": 8}),
}
OPTIMIZERS = {  # one per family (speed.toml's hyper-parameters where it sets them)
    "gradient": {"name": "adam", "params": {}},
    "truncated": {"name": "tbptt", "params": {"rule": "adam", "h": 10, "lr": 0.01}},
    "scipy (gradient)": {"name": "scipy-lbfgsb", "params": {}},
    "scipy (derivative-free)": {"name": "scipy-nelder-mead", "params": {}},
    "cmaes": {"name": "cmaes", "params": {}},
    "random": {"name": "random-search", "params": {}},
}


class _Logged:
    """The model, with every call logged: (method, rows, split, kind, truncate)."""

    def __init__(self, model) -> None:
        self._model = model
        self.calls: list[tuple] = []
        self.online_seconds = 0.0

    def __getattr__(self, name):
        return getattr(self._model, name)

    def loss(self, rows, split, kind):
        self.calls.append(("loss", len(rows), split, kind, None))
        return self._model.loss(rows, split, kind)

    def loss_and_grad(self, rows, split, kind, truncate=None):
        self.calls.append(("grad", len(rows), split, kind, truncate))
        return self._model.loss_and_grad(rows, split, kind, truncate=truncate)

    def online_chunk(self, *args):
        t = time.perf_counter()
        out = self._model.online_chunk(*args)
        self.online_seconds += time.perf_counter() - t
        return out


def _trial(problem: str, optimizer: dict, fe: float) -> Trial:
    task, model = PROBLEMS[problem]
    opt = {"name": optimizer["name"], "params": dict(optimizer["params"])}
    full = get_optimizer(opt["name"], **opt["params"])
    opt["params"] = {f.name: getattr(full, f.name) for f in dataclasses.fields(full)}
    return Trial("harness", task, model, opt, {"fe": fe, "seconds": None}, 0, 0)


def trial_and_model(trial: Trial) -> tuple[float, float, dict]:
    """(trial fe/s, model-only fe/s, the record's time) of one run of ``trial``."""
    logged: list[_Logged] = []
    build = trial_module.problem_from_spec

    def wrapped(*args, **kwargs):
        problem = build(*args, **kwargs)
        problem.model = _Logged(problem.model)
        logged.append(problem.model)
        return problem

    trial_module.problem_from_spec = wrapped
    try:
        record = run_trial(trial)
    finally:
        trial_module.problem_from_spec = build
    assert record["status"] != "error", record["error"]
    fe = record["counters"]["fe"]
    log = logged[0]
    model = log._model
    theta = np.tile(model.init(np.random.default_rng(0)), (max([1] + [c[1] for c in log.calls]), 1))
    t = time.perf_counter()
    for method, n, split, kind, truncate in log.calls:
        if method == "loss":
            model.loss(theta[:n], split, kind)
        else:
            model.loss_and_grad(theta[:n], split, kind, truncate=truncate)
    replay = time.perf_counter() - t + log.online_seconds
    return fe / record["time"]["wall"], fe / replay, record["time"]


def bench_throughput(reps: int, fe: float) -> None:
    print(f"1. trial fe/s vs model-only fe/s (budget {fe:.0e} fe, medians of {reps})")
    print(
        f"   {'problem':9s} {'family':24s} {'trial Mfe/s':>11s} {'model Mfe/s':>11s} "
        f"{'ratio':>6s} | model optim chkpt setup harness (share of wall)"
    )
    for problem in PROBLEMS:
        for family, optimizer in OPTIMIZERS.items():
            trial = _trial(problem, optimizer, fe)
            runs = [trial_and_model(trial) for _ in range(reps)]
            tr = statistics.median(r[0] for r in runs)
            mo = statistics.median(r[1] for r in runs)
            ratio = statistics.median(r[0] / r[1] for r in runs)
            t = runs[len(runs) // 2][2]
            w = t["wall"]
            shares = [
                (t["model_loss"] + t["model_grad"]) / w,
                t["optimizer"] / w,
                t["checkpoint"] / w,
                t["setup"] / w,
                t["harness"] / w,
            ]
            print(
                f"   {problem:9s} {family:24s} {tr / 1e6:11.2f} {mo / 1e6:11.2f} {ratio:6.2f} | "
                + " ".join(f"{s:5.3f}" for s in shares),
                flush=True,
            )


PER_CALL = r"""
import json, sys, time
import numpy as np
from suite.problem import make_problem
p = make_problem("sunspots", model="elman", hidden=8, seed=0)
th = p.initial_point(np.random.default_rng(0))
p._next_checkpoint = float("inf")  # no checkpoint evaluations: the per-call work alone
real = p.model
class Trivial:  # the model's bookkeeping (steps, validation) without its arithmetic
    def __getattr__(self, name):
        return getattr(real, name)
    def loss_and_grad(self, rows, split, kind, truncate=None):
        real._data(split)
        return np.zeros(len(rows)), np.zeros((len(rows), p.dim))
    def loss(self, rows, split, kind):
        real._data(split)
        return np.zeros(len(rows))
def timed(fn, n):  # CPU time: a shared machine's descheduling is not the harness's
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n
n = int(sys.argv[1])
out = {}
for model_name, model in (("trivial", Trivial()), ("elman", real)):
    p.model = model
    for call, fn in (("grad", lambda: p.loss_and_grad(th)), ("loss", lambda: p.loss(th))):
        out[f"{call} {model_name}"] = sorted(timed(fn, n) for _ in range(5))[2]
# an online truncated-BPTT chunk on cliff (2 parameters; 14,285 chunks per speed trial)
c = make_problem("cliff", seed=0)
c._next_checkpoint = float("inf")
cth = c.initial_point(np.random.default_rng(0))
session = c.online()
state = session._state
state.last_fwd_steps, state.last_bwd_steps = 1, 1  # state.t stays 0: never done
zero = np.zeros(c.dim)
class TrivialChunk:  # the chunk's bookkeeping without the model: same state, no arithmetic
    def __getattr__(self, name):
        return getattr(c.model, name)
    def online_chunk(self, theta, split, kind, st, h, h_prime):
        return 0.5, 1.0, zero, st
c.model = TrivialChunk()
out["online trivial"] = sorted(timed(lambda: session.step(cth, 10, 10), n) for _ in range(5))[2]
print(json.dumps(out))
"""


def _per_call(tree: Path, n: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", PER_CALL, str(n)],
        env=env,
        cwd=tree,  # "-c" puts the working directory first on sys.path
        capture_output=True,
        text=True,
    )
    if res.returncode:
        raise RuntimeError(res.stderr)
    return json.loads(res.stdout)


def bench_per_call(rounds: int, old: Path | None) -> None:
    print("2. CPU time per Problem call, sunspots H=8, one row, full batch (medians)")
    trees = {"new": _common.ROOT} | ({"old": old} if old else {})
    got: dict[str, list[dict]] = {k: [] for k in trees}
    for i in range(rounds):
        for name in list(trees) if i % 2 == 0 else list(reversed(trees)):
            got[name].append(_per_call(trees[name], 2000))
    keys = list(got["new"][0])
    med = {t: {k: statistics.median(r[k] for r in rs) for k in keys} for t, rs in got.items()}
    for k in keys:
        line = f"   {k:14s} " + " ".join(f"{t} {med[t][k] * 1e6:7.1f} us" for t in trees)
        if old:
            line += f"   new / old {med['new'][k] / med['old'][k]:.3f}"
        print(line)
    print("   (trivial: the Problem's and the model's per-call bookkeeping, no arithmetic)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--old-tree", type=Path, default=None, help="source tree to compare with")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    reps = args.reps or (3 if args.quick else 5)
    if not args.skip_throughput:
        bench_throughput(reps, 3e5 if args.quick else 2e6)
    bench_per_call(4 if args.quick else 8, args.old_tree)


if __name__ == "__main__":
    main()
