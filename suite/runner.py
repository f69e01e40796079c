"""The runner: an experiment's pending work units -> records in the store, on an executor.

Executors:

* in-process (``jobs=1``): units run one after the other in this process (for debugging);
* local processes (the default, ``jobs`` = ``os.cpu_count()``): a
  ``concurrent.futures.ProcessPoolExecutor`` with the ``forkserver`` start method (``spawn``
  where there is none) and one BLAS/OpenMP thread per worker (the ``*_NUM_THREADS`` variables are
  set before the server and workers start, so that two workers on two cores do not fight over
  four BLAS threads); the fork server is :mod:`suite.workerpool`'s, which the command line
  starts before it loads the experiment;
* Dask (``dask="local"`` for a ``distributed.LocalCluster`` of ``jobs`` single-threaded worker
  processes, or a scheduler address): ``client.submit`` per unit, results as completed.

Protocol. Only this (client) process writes the store: each record is written as soon as its
unit returns, so an interruption loses only the units in flight. Units whose keys are all stored
are skipped, which makes a rerun resume. Plugin modules (``plugins``) are imported in every
worker before it runs a unit, so plugin optimizers resolve there too. At most ``2 * workers``
units are in flight; a unit is submitted when a slot frees.

Failures. A unit's own failures become records (status ``error`` / ``diverged``, see
:func:`suite.trial.run_trial`). A unit that raises out of ``run()`` is reported and left pending.
A worker process that dies (``BrokenProcessPool``: killed, out of memory, a crash in C) costs the
units that were in flight; they are retried, each alone, in a fresh pool; a unit whose worker
dies again is reported lost and left pending. On Dask the scheduler's own retry does the same
(``allowed-failures = 1`` on a local cluster). Ctrl-C cancels what is pending, stops the
workers, keeps every finished record and returns a summary with ``interrupted=True``.

Determinism. A record depends only on its unit (times, peak memory and provenance aside), so
every executor gives the same records when the budget is in fe only. A record whose budget has
``seconds`` carries ``"time_budgeted": true``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from suite import workerpool
from suite.experiment import Experiment
from suite.kinds.load import load_experiment
from suite.store import Store
from suite.trial import THREAD_VARS, Unit, ensure_plugins, run_unit, worker_init


@dataclass
class RunSummary:
    """What a run did. ``pending`` units remain to be run (rerun to resume)."""

    experiment: str
    directory: Path
    total: int
    skipped: int = 0
    completed: int = 0
    statuses: Counter = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)  # units that raised (left pending)
    lost: list[str] = field(default_factory=list)  # units whose worker died twice
    retried: int = 0
    corrupt: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    executor: str = ""
    errored: int = 0  # the experiment's stored records with status "error" after the run
    first_error: str = ""  # the last line of the first of their error messages

    @property
    def pending(self) -> int:
        """Units neither stored before nor completed by this run."""
        return self.total - self.skipped - self.completed

    def __str__(self) -> str:
        status = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())) or "none"
        text = (
            f"{self.experiment}: {self.completed} run ({status}), {self.skipped} already stored, "
            f"{self.pending} pending of {self.total} units in {self.seconds:.1f} s "
            f"[{self.executor}] -> {self.directory}"
        )
        if self.failed:
            text += f"; {len(self.failed)} raised"
        if self.lost:
            text += f"; {len(self.lost)} lost with their worker"
        if self.errored:
            text += f"; {self.errored} stored with status error (first: {self.first_error})"
        if self.interrupted:
            text += "; interrupted"
        return text


@contextlib.contextmanager
def _thread_env() -> Iterator[None]:
    """Set the thread variables to 1 while worker processes are spawned (they inherit them)."""
    saved = {var: os.environ.get(var) for var in THREAD_VARS}
    for var in THREAD_VARS:
        os.environ[var] = "1"
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


# -------------------------------------------------------------------------- backends
class _Backend:
    """A pool of ``slots`` workers: submit(unit) -> future; wait(futures) -> done futures."""

    name = ""
    slots = 1

    def submit(self, unit: Unit) -> Any:
        raise NotImplementedError

    def wait(self, futures: set, timeout: float) -> set:
        raise NotImplementedError

    def result(self, future: Any) -> list[dict]:
        return future.result()

    def broken(self, exc: BaseException) -> bool:
        return False

    def renew(self) -> None:
        """Replace a broken pool by a fresh one."""

    def close(self, cancel: bool) -> None:
        """Shut down; with ``cancel``, drop pending work and stop running work now."""


class _ProcessBackend(_Backend):
    def __init__(self, jobs: int, plugins: tuple[str, ...]) -> None:
        self.slots = jobs
        self.plugins = plugins
        self.name = f"{jobs} processes"
        self.pool = self._make()

    def _make(self) -> cf.ProcessPoolExecutor:
        pool = cf.ProcessPoolExecutor(
            max_workers=self.slots,
            mp_context=workerpool.context(),
            initializer=worker_init,
            initargs=(self.plugins,),
        )
        try:  # a worker that cannot even start would otherwise cost every unit
            pool.submit(os.getpid).result()
        except cf.process.BrokenProcessPool:
            pool.shutdown(wait=True, cancel_futures=True)
            raise RuntimeError(
                "worker processes die while starting (see the messages above). Run from a "
                "script or module whose top-level code is under `if __name__ == '__main__':` "
                "(not from standard input), check the --plugin modules, or use jobs=1"
            ) from None
        return pool

    def submit(self, unit: Unit) -> cf.Future:
        return self.pool.submit(run_unit, unit, self.plugins)

    def wait(self, futures: set, timeout: float) -> set:
        done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def broken(self, exc: BaseException) -> bool:
        return isinstance(exc, cf.process.BrokenProcessPool)

    def renew(self) -> None:
        self.close(cancel=True)
        self.pool = self._make()

    def close(self, cancel: bool) -> None:
        if cancel:
            # the workers we started, by their pids (the executor keeps them in _processes)
            processes = list(getattr(self.pool, "_processes", {}).values())
            self.pool.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                with contextlib.suppress(Exception):
                    proc.terminate()
            for proc in processes:
                with contextlib.suppress(Exception):
                    proc.join(timeout=5)
        self.pool.shutdown(wait=True, cancel_futures=cancel)


class _DaskBackend(_Backend):
    def __init__(self, address: str, jobs: int, plugins: tuple[str, ...]) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ValueError(
                "the Dask executor needs dask[distributed] (pip install 'rnnbench[distributed]')"
            ) from exc
        self.plugins = plugins
        self.cluster = None
        if address == "local":
            with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
                self.cluster = LocalCluster(
                    n_workers=jobs,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    env={var: "1" for var in THREAD_VARS},
                )
            self.client = Client(self.cluster)
            self.name = f"dask LocalCluster({jobs})"
        else:
            try:
                self.client = Client(address, timeout=30)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ValueError(
                    f"cannot connect to the Dask scheduler at {address!r} ({exc}); give "
                    "'local' or a scheduler address such as tcp://host:8786"
                ) from None
            self.name = f"dask {address}"
        threads = sum(self.client.nthreads().values())
        self.slots = max(1, threads)

    def submit(self, unit: Unit) -> Any:
        return self.client.submit(run_unit, unit, self.plugins, pure=False)

    def wait(self, futures: set, timeout: float) -> set:
        from distributed import wait
        from distributed.utils import TimeoutError as DaskTimeout

        try:
            done, _ = wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except (DaskTimeout, TimeoutError):
            return set()
        return set(done)

    def broken(self, exc: BaseException) -> bool:
        from distributed.scheduler import KilledWorker

        return isinstance(exc, KilledWorker)

    def close(self, cancel: bool) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


# ------------------------------------------------------------------------------ run
def _progress(total: int, initial: int, enabled: bool) -> Any:
    return tqdm(
        total=total,
        initial=initial,
        # no bar off a terminal (CI logs, pipes): tqdm's None disables it there
        disable=None if enabled else True,
        unit="unit",
        dynamic_ncols=True,
        file=sys.stderr,
        smoothing=0.05,
    )


def _note(bar: Any, message: str) -> None:
    if getattr(bar, "disable", True):
        print(message, file=sys.stderr)
    else:
        bar.write(message, file=sys.stderr)


class _Loop:
    """Book-keeping shared by the executors: store writes, progress bar, summary."""

    def __init__(self, store: Store, summary: RunSummary, bar: Any) -> None:
        self.store = store
        self.summary = summary
        self.bar = bar

    def done(self, unit: Unit, records: list[dict]) -> None:
        expected = set(unit.keys())
        for record in records:
            if record.get("key") not in expected:
                raise ValueError(
                    f"unit {type(unit).__name__} returned a record with key {record.get('key')!r}"
                    f" not among its keys {sorted(expected)}"
                )
            self.store.write(record)
            self.summary.statuses[str(record.get("status", record.get("kind", "done")))] += 1
        self.summary.completed += 1
        self.bar.update(1)
        self._postfix()

    def raised(self, unit: Unit, exc: BaseException) -> None:
        self.summary.failed.append(",".join(unit.keys()))
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        _note(self.bar, f"unit {','.join(unit.keys())} raised: {text}")
        self._postfix()

    def lost(self, unit: Unit) -> None:
        self.summary.lost.append(",".join(unit.keys()))
        _note(self.bar, f"unit {','.join(unit.keys())} lost: its worker died twice")
        self._postfix()

    def _postfix(self) -> None:
        s = self.summary.statuses
        bad = s.get("error", 0) + len(self.summary.failed) + len(self.summary.lost)
        self.bar.set_postfix(failed=bad, diverged=s.get("diverged", 0), refresh=False)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Limit the BLAS/OpenMP pools already loaded in this process to one thread for the block
    (as in the workers). Without it an in-process run uses every core's BLAS thread for small
    matrices: pycma's eigendecomposition at P = 97 measured 30-100x slower on a loaded 2-core
    machine, and ``jobs=1`` trials would not be timed like ``jobs=2`` ones."""
    try:  # an optional dependency
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def _run_inprocess(units: list[Unit], loop: _Loop, plugins: tuple[str, ...]) -> None:
    ensure_plugins(plugins)
    with _one_blas_thread():
        _run_units(units, loop)


def _run_units(units: list[Unit], loop: _Loop) -> None:
    for unit in units:
        try:
            records = unit.run()
        except Exception as exc:  # noqa: BLE001 -- one unit's failure never stops the others
            loop.raised(unit, exc)
            continue
        loop.done(unit, records)


def _run_pool(units: list[Unit], loop: _Loop, backend: _Backend) -> None:
    queue = list(reversed(units))  # pop() from the end keeps the experiment's order
    retry: list[Unit] = []
    attempts: dict[int, int] = {}
    inflight: dict[Any, Unit] = {}
    window = 2 * backend.slots
    isolated = False  # while retrying a unit whose worker died, it runs alone
    while queue or retry or inflight:
        if not inflight:
            isolated = bool(retry)
        if isolated:
            if not inflight and retry:
                unit = retry.pop()
                inflight[backend.submit(unit)] = unit
        else:
            while queue and len(inflight) < window:
                unit = queue.pop()
                inflight[backend.submit(unit)] = unit
        done = backend.wait(set(inflight), timeout=0.5)
        broke: list[Unit] = []
        for future in done:
            unit = inflight.pop(future)
            try:
                records = backend.result(future)
            except Exception as exc:  # noqa: BLE001
                if backend.broken(exc):
                    broke.append(unit)
                else:
                    loop.raised(unit, exc)
                continue
            loop.done(unit, records)
        if broke and isinstance(backend, _ProcessBackend):
            # a broken pool fails every unit in flight: collect them all, then start afresh
            for future, unit in list(inflight.items()):
                try:
                    records = future.result(timeout=30)
                except Exception:  # noqa: BLE001
                    broke.append(unit)
                else:
                    loop.done(unit, records)
            inflight.clear()
            backend.renew()
        for unit in broke:
            n = attempts[id(unit)] = attempts.get(id(unit), 0) + 1
            if n >= 2 or isinstance(backend, _DaskBackend):
                loop.lost(unit)  # Dask has already retried it on another worker
            else:
                loop.summary.retried += 1
                retry.append(unit)


def _run(
    experiment: Experiment,
    directory: Path,
    summary: RunSummary,
    backend: _Backend | None,
    jobs: int,
    plugins: tuple[str, ...],
    progress: bool,
    retry: bool = False,
) -> None:
    store = Store(directory)
    store.write_experiment(experiment.spec)
    scan = store.sync()
    summary.corrupt = len(scan.corrupt)
    stored = set(scan.entries)
    if retry:  # units with an errored record run again; the record is replaced when they finish
        stored -= {k for k, e in scan.entries.items() if e.status == "error"}
    pending = [u for u in experiment.units if not set(u.keys()) <= stored]
    summary.skipped = summary.total - len(pending)
    bar = _progress(summary.total, summary.skipped, progress and bool(pending))
    loop = _Loop(store, summary, bar)
    pool: _Backend | None = None
    try:
        if not pending:
            summary.executor = backend.name if backend else "nothing to run"
        elif backend is None and jobs == 1:
            summary.executor = "in-process"
            _run_inprocess(pending, loop, plugins)
        else:
            pool = backend or _ProcessBackend(min(jobs, len(pending)), plugins)
            summary.executor = pool.name
            _run_pool(pending, loop, pool)
    except KeyboardInterrupt:
        summary.interrupted = True
        _note(bar, "interrupted: stopping workers; finished records are kept")
    finally:
        if pool is not None and pool is not backend:
            pool.close(cancel=summary.interrupted or summary.pending > 0)
        bar.close()
        store.close()
    _count_errors(store, experiment, summary)


def _count_errors(store: Store, experiment: Experiment, summary: RunSummary) -> None:
    """Fill ``summary.errored`` and ``summary.first_error`` from the stored records."""
    statuses = store.statuses()
    errored = [k for k in experiment.keys() if statuses.get(k) == "error"]
    summary.errored = len(errored)
    if errored:
        try:
            record = json.loads((store.records_dir / f"{errored[0]}.json").read_bytes())
            lines = str(record.get("error") or "").strip().splitlines()
            summary.first_error = f"{errored[0]}: {lines[-1] if lines else 'no message'}"
        except (OSError, ValueError):
            summary.first_error = errored[0]


def run_experiment(
    experiment: Experiment | str | os.PathLike[str],
    out: str | os.PathLike[str] = "results",
    jobs: int | None = None,
    dask: str | None = None,
    plugins: Sequence[str] = (),
    progress: bool = True,
    profile: str = "default",
    retry: bool = False,
) -> RunSummary:
    """Run the pending units of ``experiment`` and store their records under ``out``.

    ``experiment`` is an :class:`~suite.experiment.Experiment` or a shipped name / TOML path
    (loaded with ``profile``). Records go to ``out/<experiment.dirname>/`` (see
    :mod:`suite.store`). ``jobs=1`` runs in this process; ``jobs=None`` means ``os.cpu_count()``
    local processes; ``dask`` is ``"local"`` (a LocalCluster of ``jobs`` workers) or a scheduler
    address. ``plugins`` are module names or ``.py`` paths imported in every worker. ``retry``
    also runs the units with a stored record of status ``error`` (a raised exception, e.g. a
    plugin bug since fixed); their old record is replaced only when the unit finishes. Returns a
    :class:`RunSummary`; Ctrl-C stops cleanly (``interrupted=True``).
    """
    t0 = time.perf_counter()
    plugins = tuple(os.fspath(p) for p in plugins)
    ensure_plugins(plugins)  # the client validates optimizer names, so it needs them too
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment, profile=profile)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a positive integer or None, got {jobs!r}")
    jobs = jobs or os.cpu_count() or 1
    directory = Path(out) / experiment.dirname
    summary = RunSummary(experiment.name, directory, total=len(experiment.units))
    backend: _Backend | None = None
    with _thread_env():
        if dask is not None:  # connect first: a bad address must fail before anything is written
            backend = _DaskBackend(dask, jobs, plugins)
        try:
            _run(experiment, directory, summary, backend, jobs, plugins, progress, retry)
        finally:
            if backend is not None:
                backend.close(cancel=summary.interrupted or summary.pending > 0)
    summary.seconds = time.perf_counter() - t0
    return summary
