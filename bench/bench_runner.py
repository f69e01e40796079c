"""Speed of the runner and the store.

Run ``python bench/bench_runner.py [--quick] [--skip-parallel]``. Figures printed:

1. parallel speed-up: wall time of a CPU-bound compare experiment (adam and CMA-ES on the adding
   problem, T = 50, H = 16, 2e7 fe per trial, 16 trials) with ``jobs=1`` (in-process) over
   ``jobs=2`` (two worker processes, pool start-up included). Target on 2 free cores: >= 1.8x.
   The figure is only meaningful on an otherwise idle machine; the load average is printed.
   Then jobs=2 once more: the fork server (started once per command) is running, so the
   difference is its start-up (importing rnnbench, scipy and pycma). Beside them, the machine's
   ceiling for the same trials: a bare ``multiprocessing`` pool of 2
   (no runner, no store) over a bare loop, and the share of that ceiling the runner reaches.
2. runner overhead per trial: 200 trivial trials run in-process (budget 200 fe); (total run time -
   sum of the trials' own wall times) / 200, and the trials' own wall time minus the time spent
   inside the model, per trial (building the problem, the record, provenance).
3. store write throughput: 2e4 synthetic trial records (trace of 60 checkpoints, 100 parameters,
   like a real record) written one by one; records/s in the first and in the last 10 % (no
   slowdown: the ratio should be close to 1).
4. store load: ``load_results(...)`` then ``.trials`` and ``.trace`` of the 2e4 records, cold
   (a fresh Results object); and once more after one record file was removed from the index
   (the reconcile path).
5. what a user runs: the experiment of 1. as a TOML file, ``rnnbench run FILE --jobs 1`` and
   ``--jobs 2`` as whole commands (interpreter start, imports, fork server, store), in
   alternating pairs; and the start-up imports in fresh interpreters, paired: the fork server's
   (:data:`suite.workerpool.PRELOAD`, pycma without plots and scipy.stats) against what it
   imported before (plain pycma, which brings matplotlib.pyplot and scipy.stats), and the
   client's for ``rnnbench run`` (runner and compare kind) against those plus pycma and the
   report modules, which it imported before.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (first: one BLAS thread in-process and in workers; repo on sys.path)

from suite.kinds.load import experiment_from_dict
from suite.runner import run_experiment
from suite.store import INDEX, Store, load_results
from suite.trial import run_trial, worker_init


def load_note() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    except OSError:
        return f"{os.cpu_count()} CPUs"


def compare_dict(name: str, seeds: int, fe: float, problem: dict, optimizers: list) -> dict:
    return {
        "name": name,
        "seed": 0,
        "seeds": seeds,
        "budget": {"fe": fe},
        "problems": [problem],
        "optimizers": optimizers,
    }


def speedup_dict(quick: bool) -> dict:
    """The CPU-bound experiment of 1. and 5.: adam and CMA-ES on adding, T = 50, H = 16."""
    return compare_dict(
        "speedup",
        4 if quick else 8,
        5e6 if quick else 2e7,
        {"task": "adding", "seq_len": 50, "hidden": 16},
        [{"name": "adam"}, {"name": "cmaes"}],
    )


def toml_text(d: dict) -> str:
    """``d`` (flat keys, one ``problems`` table, ``optimizers`` tables) as TOML."""

    def value(v: object) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return f'"{v}"' if isinstance(v, str) else repr(v)

    lines = [f"{k} = {value(v)}" for k, v in d.items() if not isinstance(v, list)]
    for table in ("problems", "optimizers"):
        for entry in d[table]:
            lines += [f"[[{table}]]", *(f"{k} = {value(v)}" for k, v in entry.items())]
    return "\n".join(lines) + "\n"


def fresh_interpreter_seconds(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_common.ROOT)
    return time.perf_counter() - t0


def bench_commands(root: Path, quick: bool) -> None:
    raw = speedup_dict(quick)
    path = root / "speedup.toml"
    path.write_text(toml_text(raw))
    import tomllib

    assert tomllib.loads(path.read_text()) == raw  # the file is the experiment of 1.
    rnnbench = [sys.executable, "-m", "suite.cli", "run", str(path), "--no-progress"]
    ratios = []
    for i in range(2 if quick else 3):
        t = {}
        for jobs in (1, 2) if i % 2 == 0 else (2, 1):
            out = root / f"cmd{i}-{jobs}"
            t0 = time.perf_counter()
            subprocess.run(
                [*rnnbench, "--jobs", str(jobs), "--out", str(out)], check=True, capture_output=True
            )
            t[jobs] = time.perf_counter() - t0
        ratios.append(t[1] / t[2])
        print(
            f"5. rnnbench run --jobs 1 / --jobs 2, whole commands, pair {i + 1}: "
            f"{t[1]:.1f} s / {t[2]:.1f} s = {ratios[-1]:.2f}x"
        )
    print(f"   mean {statistics.mean(ratios):.2f}x ({load_note()})")
    pairs = {
        "fork server": (
            "import suite.worker_preload, suite.trial, suite.problem, suite.optimizers",
            "import cma, suite.trial, suite.problem, suite.optimizers",
        ),
        "client": (
            "import suite.runner, suite.kinds.compare",
            "import suite.runner, suite.kinds.compare, cma, suite.report",
        ),
    }
    for name, (now, before) in pairs.items():
        got: dict[str, list[float]] = {"now": [], "before": []}
        for i in range(7):
            for which in ("now", "before") if i % 2 == 0 else ("before", "now"):
                code = now if which == "now" else before
                got[which].append(fresh_interpreter_seconds(code))
        a, b = statistics.median(got["now"]), statistics.median(got["before"])
        print(
            f"   start-up imports, {name}: {a:.2f} s now vs {b:.2f} s as before "
            f"({a / b:.2f}x; medians of 7 fresh interpreters each)"
        )


def bench_parallel(root: Path, quick: bool) -> None:
    raw = speedup_dict(quick)
    exp = experiment_from_dict(raw)
    times = {}
    for jobs in (1, 2, 3):  # 3: jobs=2 again, the fork server now running (see below)
        out = root / f"par{jobs}"
        t0 = time.perf_counter()
        summary = run_experiment(exp, out=out, jobs=min(jobs, 2), progress=False)
        times[jobs] = time.perf_counter() - t0
        assert summary.completed == len(exp), summary
    cpu = {
        jobs: sum(r["time"]["cpu"] for r in Store(root / f"par{jobs}" / "speedup").records())
        for jobs in (1, 2)
    }
    print(
        f"1. speed-up jobs=2 over jobs=1: {times[1] / times[2]:.2f}x "
        f"({len(exp)} trials: {times[1]:.1f} s in-process, {times[2]:.1f} s on 2 processes "
        f"incl. pool start-up; CPU seconds in the trials {cpu[1]:.1f} vs {cpu[2]:.1f}; "
        f"{load_note()})"
    )
    print(
        f"   jobs=2 again, fork server already running (a second experiment in the same "
        f"command): {times[1] / times[3]:.2f}x ({times[3]:.1f} s); the first jobs=2 run paid "
        f"{times[2] - times[3]:.1f} s more, the fork server importing rnnbench, scipy, lean pycma"
    )
    # The machine's own ceiling for these trials, measured in the same run: the same units
    # through a bare multiprocessing pool (no runner, no store), against a bare loop.
    units = list(exp.units)
    t0 = time.perf_counter()
    for unit in units:
        run_trial(unit)
    bare1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(2, initializer=worker_init, initargs=((),)) as pool:
        list(pool.imap_unordered(run_trial, units, chunksize=1))
    bare2 = time.perf_counter() - t0
    ceiling = bare1 / bare2
    print(
        f"   bare pool of 2 over a bare loop (same trials, pool start-up included): "
        f"{ceiling:.2f}x ({bare1:.1f} s vs {bare2:.1f} s); the runner reaches "
        f"{times[1] / times[2] / ceiling:.2f} of that"
    )


def bench_overhead(root: Path) -> None:
    n = 200
    raw = compare_dict(
        "overhead",
        n // 2,
        200.0,
        {"task": "adding", "seq_len": 5, "hidden": 3, "n_train": 8, "n_test": 8},
        [{"name": "random-search"}, {"name": "sgd"}],
    )
    exp = experiment_from_dict(raw)
    warm = experiment_from_dict({**raw, "name": "warm", "seeds": 1})
    run_experiment(warm, out=root, jobs=1, progress=False)  # imports, caches
    t0 = time.perf_counter()
    summary = run_experiment(exp, out=root, jobs=1, progress=False)
    total = time.perf_counter() - t0
    assert summary.completed == n, summary
    recs = Store(root / "overhead").records("trial")
    wall = sum(r["time"]["wall"] for r in recs)
    inside = sum(r["time"]["inside_wall"] for r in recs)
    print(
        f"2. runner overhead: {1e3 * (total - wall) / n:.2f} ms per trial outside the trial "
        f"(store write, scheduling, progress); {1e3 * (wall - inside) / n:.2f} ms per trial "
        f"inside run_trial but outside the model (problem set-up, record); trials' own model "
        f"time {1e3 * inside / n:.2f} ms each"
    )


def synthetic(i: int, rng_state: list[float]) -> dict:
    n_cp = 60
    fe = [10.0 * 10 ** (j / 10) for j in range(n_cp)]
    loss = [1.0 / (1 + j + (i % 7)) for j in range(n_cp)]
    return {
        "key": f"{i:016x}",
        "kind": "trial",
        "experiment": "synth",
        "spec": {
            "task": {"task": "adding", "seq_len": 20, "n_train": 128, "n_test": 256},
            "model": {"model": "elman", "hidden": 8, "spectral_radius": 0.9, "dtype": "float64"},
            "optimizer": {"name": ["adam", "sgd", "cmaes"][i % 3], "params": {"lr": 0.01}},
            "budget": {"fe": 1e6, "seconds": None},
            "checkpoints_per_decade": 10,
            "seed": i // 3,
            "experiment_seed": 0,
        },
        "labels": {"problem": "adding / elman", "optimizer": ["adam", "sgd", "cmaes"][i % 3]},
        "status": "budget",
        "error": None,
        "time_budgeted": False,
        "final_train_loss": loss[-1],
        "final_test_loss": loss[-1] * 1.1,
        "target_loss": 0.02,
        "baseline_loss": 0.16,
        "counters": {
            "fe": fe[-1],
            "fwd_steps": 10,
            "bwd_steps": 10,
            "loss_calls": 1,
            "grad_calls": 1,
            "evaluations": 2,
            "nonfinite": 0,
        },
        "time": {"wall": 1.0, "cpu": 1.0, "inside_wall": 0.9},
        "peak_mem_mb": 150.0,
        "trace": {
            "fe": fe,
            "seconds": [f / 1e6 for f in fe],
            "evaluations": list(range(1, n_cp + 1)),
            "train_loss": loss,
            "test_loss": [x * 1.1 for x in loss],
        },
        "theta": [v + i for v in rng_state],
        "provenance": {"rnnbench": "bench", "numpy": "x", "python": "3.11"},
    }


def bench_store(root: Path, n: int) -> None:
    theta = [math.sin(j) for j in range(100)]
    records = [synthetic(i, theta) for i in range(n)]
    tenth = n // 10
    directory = root / "store"
    with Store(directory) as store:
        t0 = time.perf_counter()
        for r in records[:tenth]:
            store.write(r)
        t1 = time.perf_counter()
        for r in records[tenth:-tenth]:
            store.write(r)
        t2 = time.perf_counter()
        for r in records[-tenth:]:
            store.write(r)
        t3 = time.perf_counter()
    first, last = tenth / (t1 - t0), tenth / (t3 - t2)
    size_mb = (directory / INDEX).stat().st_size / 1e6
    print(
        f"3. store write: {n / (t3 - t0):.0f} records/s overall ({t3 - t0:.1f} s for {n}); "
        f"first 10 %: {first:.0f}/s, last 10 %: {last:.0f}/s (ratio {last / first:.2f}); "
        f"index {size_mb:.0f} MB"
    )
    t0 = time.perf_counter()
    res = load_results(directory)
    trials, trace = res.trials, res.trace
    t1 = time.perf_counter()
    assert len(trials) == n and len(trace) == 60 * n
    # reconcile path: drop the index, then one run-time sync rebuilds it from the files
    (directory / INDEX).unlink()
    t2 = time.perf_counter()
    Store(directory).sync()
    t3 = time.perf_counter()
    print(
        f"4. store load: {t1 - t0:.2f} s for {n} records into .trials ({len(trials)} rows) and "
        f".trace ({len(trace)} rows); rebuilding a lost index from {n} files: {t3 - t2:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--skip-parallel", action="store_true", help="skip the speed-up figure")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    try:
        if not args.skip_parallel:
            bench_parallel(root, args.quick)
        bench_overhead(root)
        bench_store(root, 2000 if args.quick else 20000)
        if not args.skip_parallel:
            bench_commands(root, args.quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
