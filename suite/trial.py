"""Work units, the one run of an optimizer on a problem, and the compare trial.

Running an optimizer
--------------------
:func:`run` is the one place that runs an optimizer on a problem under a budget (the compare
trial, the conformance checks and the tests all use it): start the budget (gradients allowed
only for optimizers tagged ``"gradient"``), draw ``x0`` (unless given), call
``minimize(problem, x0, rng)``, and turn :class:`~suite.problem.BudgetExhausted` and
:class:`~suite.problem.Diverged` into a status of the returned :class:`RunResult`::

    result = run(problem, get_optimizer("adam"), Budget(fe=1e5), seed=0)
    result.status, result.best, result.counters["fe"]

Work-unit protocol
------------------
The runner executes *units*. A unit is a small, picklable, frozen dataclass with two methods::

    class Unit(Protocol):
        def keys(self) -> list[str]: ...       # the record keys run() will produce
        def run(self) -> list[dict]: ...        # plain-JSON records, one per key

Every record is a ``dict`` of plain JSON data (str, int, float, bool, None, list, dict) with at
least ``"key"`` (one of ``keys()``), ``"kind"`` (e.g. ``"trial"``) and ``"experiment"`` (the
experiment's name). Non-finite floats are allowed in a record; the store encodes them. The runner
skips a unit when all its keys are stored, writes each returned record as it arrives, and never
pickles anything but the unit itself (the records are plain data). A unit may carry a ``group``
attribute (a short label) used by ``rnnbench status`` to break counts down. ``run()`` should catch
the failures of the thing it measures and record them; an exception escaping ``run()`` is reported
by the runner and leaves the unit pending.

The compare trial
-----------------
:class:`Trial` is the unit of the ``compare`` kind: one optimizer on one problem with one seed
index, producing one record of kind ``"trial"`` with the fields listed in
``docs/architecture.md`` ("Records and frames"). Its key is the first 16 hex digits of the SHA-256
of the canonical JSON of its content (task spec, model spec, optimizer spec with all
hyper-parameters, budget, checkpoints per decade, seed index, experiment seed), so a rerun finds
it done and any change of content makes a new trial.
"""

from __future__ import annotations

import importlib
import math
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import numpy as np

from suite import seeding
from suite.optimizers import Optimizer, get_optimizer, load_plugins, optimizer_info
from suite.problem import Budget, BudgetExhausted, Diverged, Problem, problem_from_spec
from suite.provenance import provenance

Seed = int | np.random.SeedSequence | np.random.Generator
"""What seeds a generator: an int, a ``SeedSequence`` or a ``Generator`` (used as it is)."""


# ----------------------------------------------------------------------- one run


@dataclass(frozen=True)
class RunResult:
    """What one :func:`run` left behind.

    ``status`` is ``"ok"`` (``minimize`` returned ``theta``), ``"budget"`` (the problem raised
    :class:`~suite.problem.BudgetExhausted`; ``theta`` is None) or ``"diverged"`` (``error``
    says why). ``incumbent`` is the problem's best point evaluated on the full training set
    (None if none was); ``x0`` the start as drawn and ``x0_after`` the array handed to
    ``minimize`` after the run (they differ if the optimizer modified it in place).
    ``counters``, ``stop_reason`` and ``seconds`` are the problem's at the end of the run.
    ``times`` splits the run's wall time (seconds): ``init`` (start and initial point),
    ``minimize`` (the optimizer's call, Problem calls included) and ``optimizer`` (its own time:
    ``minimize`` minus the time inside the Problem's calls and checkpoints).
    """

    status: str
    theta: np.ndarray | None
    incumbent: np.ndarray | None
    x0: np.ndarray
    x0_after: np.ndarray
    error: str | None
    counters: dict[str, float]
    stop_reason: str | None
    seconds: float
    times: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> np.ndarray | None:
        """The result of the run: what ``minimize`` returned, else the incumbent."""
        return self.theta if self.status == "ok" else self.incumbent


def run(
    problem: Problem,
    optimizer: Optimizer,
    budget: Budget,
    seed: Seed = 0,
    *,
    x0: np.ndarray | None = None,
    init_seed: Seed = 0,
    checkpoints_per_decade: int = 10,
) -> RunResult:
    """Run ``optimizer`` on ``problem`` under ``budget`` and say how it ended.

    Starts the problem (counters, trace and incumbent reset; gradients allowed only if the
    optimizer is tagged ``"gradient"``), draws ``x0 = problem.initial_point(rng(init_seed))``
    unless ``x0`` is given, and calls ``optimizer.minimize(problem, copy of x0, rng(seed))``
    with floating-point warnings silenced (overflow on the way to divergence is expected and
    recorded by the problem). BudgetExhausted and Diverged become the status; any other
    exception (e.g. :class:`~suite.problem.GradientNotAllowed`) propagates.
    """
    for module in getattr(optimizer, "imports", ()):
        importlib.import_module(module)  # set-up, not the optimizer's clock (Optimizer.imports)
    t_init = time.perf_counter()
    problem.start(
        budget,
        allow_gradients="gradient" in getattr(optimizer, "tags", ()),
        checkpoints_per_decade=checkpoints_per_decade,
    )
    if x0 is None:
        x0 = problem.initial_point(np.random.default_rng(init_seed))
    start = np.array(x0, dtype=np.float64, copy=True)
    handed = start.copy()
    theta, error = None, None
    t_min = time.perf_counter()
    try:
        with np.errstate(all="ignore"):
            theta = optimizer.minimize(problem, handed, np.random.default_rng(seed))
        status = "ok"
    except BudgetExhausted:
        status = "budget"
    except Diverged as exc:
        status, error = "diverged", f"{type(exc).__name__}: {exc}"
    t_end = time.perf_counter()
    c = problem.counters
    times = {
        "init": t_min - t_init,
        "minimize": t_end - t_min,
        "optimizer": max(0.0, t_end - t_min - c.wall_calls - c.wall_checkpoint),
    }
    return RunResult(
        status=status,
        theta=theta,
        incumbent=problem.incumbent,
        x0=start,
        x0_after=handed,
        error=error,
        counters=problem.counters.as_dict(),
        stop_reason=problem.stop_reason,
        seconds=problem.seconds,
        times=times,
    )


@runtime_checkable
class Unit(Protocol):
    """A unit of work for the runner (see the module docstring)."""

    def keys(self) -> list[str]:
        """The record keys :meth:`run` will produce."""
        ...

    def run(self) -> list[dict]:
        """Do the work; return plain-JSON records, one per key."""
        ...


@dataclass(frozen=True)
class Trial:
    """One optimizer, one problem, one seed index: the unit of a ``compare`` experiment.

    ``task`` is a task spec ``{"task": name, **params}``, ``model`` a model spec
    ``{"model": name, **options}``, ``optimizer`` ``{"name": name, "params": {...all...}}``,
    ``budget`` ``{"fe": float | None, "seconds": float | None}``. ``labels`` (display names of the
    problem and the optimizer) are not part of the content or the key.
    """

    experiment: str
    task: dict
    model: dict
    optimizer: dict
    budget: dict
    seed: int
    experiment_seed: int
    checkpoints_per_decade: int = 10
    labels: dict = field(default_factory=dict, compare=False)

    def content(self) -> dict:
        """What the trial is (and what its key hashes): every field but the labels/experiment."""
        return {
            "task": self.task,
            "model": self.model,
            "optimizer": self.optimizer,
            "budget": self.budget,
            "checkpoints_per_decade": self.checkpoints_per_decade,
            "seed": self.seed,
            "experiment_seed": self.experiment_seed,
        }

    @cached_property
    def key(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON of :meth:`content`."""
        return seeding.content_hash(self.content())

    @property
    def group(self) -> str:
        """Label used to break status counts down (the optimizer's display name)."""
        return str(self.labels.get("optimizer") or self.optimizer["name"])

    def streams(self) -> seeding.TrialStreams:
        """The data, init and optimizer seed sequences of this trial."""
        return seeding.trial_streams(
            self.experiment_seed, self.task, self.model, self.seed, self.content()
        )

    def keys(self) -> list[str]:
        """The one record key this trial produces."""
        return [self.key]

    def run(self) -> list[dict]:
        """Run the trial; one record of kind ``"trial"``."""
        return [run_trial(self)]


# ------------------------------------------------------------------------------ workers
# The worker-side entry points live here, not in suite.runner, so that a worker process imports
# only what running a unit needs (not pandas and the store).
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
"""Environment variables set to 1 in worker processes (one BLAS thread per worker)."""

_LOADED_PLUGINS: set[tuple[str, ...]] = set()


def ensure_plugins(plugins: tuple[str, ...]) -> None:
    """Import the plugin modules (names or ``.py`` paths) once per process."""
    plugins = tuple(plugins)
    if plugins and plugins not in _LOADED_PLUGINS:
        load_plugins(list(plugins))
        _LOADED_PLUGINS.add(plugins)


def worker_init(plugins: tuple[str, ...]) -> None:
    """Process-pool initializer: one BLAS thread, Ctrl-C left to the client, plugins imported."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in THREAD_VARS:
        os.environ[var] = "1"
    _one_blas_thread()
    ensure_plugins(plugins)


_BLAS_LIMITED = False


def _one_blas_thread() -> None:
    """Limit this process's BLAS/OpenMP pools to one thread, once (needs threadpoolctl).

    A worker that runs one unit per core must not let BLAS spread small matrices over every
    core: on a loaded 2-core machine pycma's eigendecomposition at P = 97 ran 30-100x slower
    with the default pool. Dask workers started by hand may lack the ``*_NUM_THREADS=1``
    environment, so :func:`run_unit` applies this too."""
    global _BLAS_LIMITED
    if _BLAS_LIMITED:
        return
    _BLAS_LIMITED = True
    try:  # also limits thread pools already loaded; an optional dependency
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def run_unit(unit: Unit, plugins: tuple[str, ...] = ()) -> list[dict]:
    """Run one unit in a worker (one BLAS thread), importing the plugins first (module level,
    so it pickles)."""
    _one_blas_thread()
    ensure_plugins(tuple(plugins))
    return unit.run()


def _about(name: str) -> dict:
    """``{"family", "tags"}`` of a registered optimizer, as stored in its trial records."""
    info = optimizer_info(name)
    return {"family": info["family"], "tags": sorted(info["tags"])}


# --------------------------------------------------------------------------- peak memory
_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where unsupported."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb(reset_ok: bool) -> float:
    """Peak resident set size in MB since the last reset (Linux ``VmHWM``), else process peak."""
    if reset_ok:
        try:
            with open(_STATUS) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
        except (OSError, ValueError, IndexError):
            pass
    try:
        import resource  # POSIX only
    except ImportError:
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


# ----------------------------------------------------------------------------- run one
def _floats(values: Any) -> list:
    return np.asarray(values, dtype=np.float64).ravel().tolist()


def _trace(trace: dict) -> dict:
    out: dict[str, list] = {}
    for name in ("fe", "seconds", "evaluations", "train_loss", "test_loss"):
        values = trace.get(name, [])
        out[name] = [int(v) for v in values] if name == "evaluations" else _floats(values)
    return out


def run_trial(trial: Trial) -> dict:
    """Run one compare trial and return its record (plain JSON, see ``docs/architecture.md``).

    Builds the problem from the data stream, draws ``x0`` from the init stream, configures the
    optimizer, starts the budget (gradients allowed only for optimizers tagged ``"gradient"``) and
    calls ``minimize(problem, x0, rng)`` with the optimizer stream. The status is ``"ok"`` when
    ``minimize`` returns, ``"budget"`` on :class:`~suite.problem.BudgetExhausted`, ``"diverged"``
    on :class:`~suite.problem.Diverged` and ``"error"`` (with the traceback) on anything else.
    ``peak_mem_mb`` is the process's peak resident set during the trial on Linux (the mark is
    reset before the trial), else the process's peak so far.
    """
    reset_ok = _reset_peak_rss()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    streams = trial.streams()
    status, error, problem, theta, about = "error", None, None, None, None
    run_times: dict[str, float] = {}
    t_setup = wall0
    try:
        problem = problem_from_spec(trial.task, trial.model, streams.data, reuse_data=True)
        about = _about(trial.optimizer["name"])
        optimizer = get_optimizer(trial.optimizer["name"], **trial.optimizer["params"])
        budget = Budget(fe=trial.budget.get("fe"), seconds=trial.budget.get("seconds"))
        t_setup = time.perf_counter()
        outcome = run(
            problem,
            optimizer,
            budget,
            streams.optimizer,
            init_seed=streams.init,
            checkpoints_per_decade=trial.checkpoints_per_decade,
        )
        status, error, theta = outcome.status, outcome.error, outcome.theta
        run_times = outcome.times
    except Exception:  # noqa: BLE001 -- one trial's failure must never stop the others
        status, error = "error", traceback.format_exc()
    result = None
    if problem is not None:
        try:
            with np.errstate(all="ignore"):
                result = problem.finish(
                    None if theta is None else np.asarray(theta, dtype=np.float64)
                )
        except Exception:  # noqa: BLE001
            status, error = "error", (error or "") + traceback.format_exc()
    record = _record(trial, status, error, problem, result)
    record["optimizer"] = about or {"family": None, "tags": []}
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    record["time"] = _time_split(wall, cpu, t_setup - wall0, run_times, problem)
    record["peak_mem_mb"] = _peak_rss_mb(reset_ok)
    record["provenance"] = provenance()
    return record


TIME_PARTS = ("model_loss", "model_grad", "optimizer", "checkpoint", "setup", "harness")
"""The parts of a trial's wall time in its record's ``time`` (seconds; they sum to ``wall``):
the model in loss-only and in gradient calls, the optimizer's own work between the Problem's
calls, checkpoint evaluations (trace and final evaluation), set-up (task data, model, optimizer
and initial point) and the harness (the Problem's per-call work plus the trial's own
bookkeeping: finishing, building the record)."""


def _time_split(
    wall: float, cpu: float, setup: float, run_times: dict[str, float], problem: Any
) -> dict[str, float]:
    """The record's ``time``: wall, cpu, the model's time and the :data:`TIME_PARTS` split."""
    c = problem.counters if problem is not None else None
    out = {
        "wall": wall,
        "cpu": cpu,
        "inside_wall": float(c.wall_inside) if c is not None else 0.0,
    }
    parts = {
        "model_loss": float(c.wall_loss) if c is not None else 0.0,
        "model_grad": float(c.wall_grad) if c is not None else 0.0,
        "optimizer": float(run_times.get("optimizer", 0.0)),
        "checkpoint": float(c.wall_checkpoint) if c is not None else 0.0,
        "setup": setup + float(run_times.get("init", 0.0)),
    }
    parts["harness"] = max(0.0, wall - sum(parts.values()))
    out.update(parts)
    return out


def _record(trial: Trial, status: str, error: str | None, problem: Any, result: Any) -> dict:
    budget = trial.budget
    record: dict[str, Any] = {
        "key": trial.key,
        "kind": "trial",
        "experiment": trial.experiment,
        "spec": trial.content(),
        "labels": dict(trial.labels),
        "status": status,
        "error": error,
        "time_budgeted": budget.get("seconds") is not None,
        "stopped_by": None,
        "stop_reason": None,
        "final_train_loss": math.nan,
        "final_test_loss": math.nan,
        "target_loss": math.nan,
        "baseline_loss": math.nan,
        "counters": {},
        "trace": _trace({}),
        "theta": [],
    }
    if problem is not None:
        record["target_loss"] = float(problem.target_loss)
        record["baseline_loss"] = float(problem.baseline_loss)
    if result is not None:
        counters = dict(result.counters)
        record["counters"] = {
            name: (float(counters[name]) if name == "fe" else int(counters[name]))
            for name in (
                "fe",
                "fwd_steps",
                "bwd_steps",
                "loss_calls",
                "grad_calls",
                "evaluations",
                "nonfinite",
            )
            if name in counters
        }
        record["final_train_loss"] = float(result.train_loss)
        record["final_test_loss"] = float(result.test_loss)
        record["trace"] = _trace(result.trace)
        record["theta"] = _floats(result.theta)
        record["stop_reason"] = result.stop_reason
        record["first_hit"] = result.first_hit  # exact cost of the first hit of the target
        if status == "budget":
            seconds = budget.get("seconds")
            record["stopped_by"] = (
                "seconds" if seconds is not None and result.seconds >= seconds else "fe"
            )
    return record
