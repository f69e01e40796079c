"""The ``multistart`` experiment kind: many starts of one method on one problem, as one batch.

A *study* trains ``N`` starts (hundreds to thousands) of one method on one problem (one task,
one model, one dataset) and keeps every end point, for the local-optimum statistics of
:mod:`suite.analysis.optima` (statements C2 and C3 of ``SCIENCE.md``). The starts of a chunk
are trained together by :func:`suite.optimizers.batched.train_batch` (rule phase, L-BFGS and
Newton polishing, per-row stopping: see there).

Starts and data. Start ``i`` is drawn from the *init stream of seed index i*
(:func:`suite.seeding.initial_points`), exactly the start of seed index ``i`` of a compare trial
on the same problem. Every start of a study sees the same dataset, the one of the data stream of
seed index ``data_seed`` (default 0), so they all descend the same loss surface. The data stream
does not depend on the model, so an Elman study and its TDNN-twin study use the same data and
the same seed indices.

Cost. Each start is charged its own work (``counters.fe``; ``fe_share`` is the chunk's total
divided by its starts). Curvature at the end points (:func:`suite.curvature.curvature`, on by
default) is measured afterwards and recorded as ``analysis_fe``, not charged to the start.

Records: one per start, kind ``"start"``; see :func:`run_chunk`.

Experiment file (``kind = "multistart"``)::

    name = "optima_demo"
    kind = "multistart"
    seed = 0
    starts = 256           # seed indices 0..255 (or an array of indices)
    chunk = 128            # starts per work unit (the runner parallelises units)
    data_seed = 0          # seed index whose data stream every start shares
    tdnn_twin = true       # add, for every elman problem, the TDNN of matched parameter count
    hessian = true         # extreme Hessian eigenvalues at every end point that did not diverge

    [[problems]]           # as in a compare experiment
    task = "adding"
    seq_len = 10           # any task/model key may be an array: the grid of their product
    hidden = 4

    [[methods]]            # a registered gradient optimizer (sgd, momentum, adam) in the
    name = "adam"          # registry's words (lr, momentum, nesterov, b1, b2, eps, clip) plus
    lr = 0.01              # the trainer's keys (batch_size, max_steps, gtol_rel, polish, ...):
                           # see suite.optimizers.batched_method.Method

Measured (``bench/bench_multistart.py``, 2 shared cores): see the numbers in that file's
output; batching pays most where a single call is dominated by Python overhead (the cliff).
"""

from __future__ import annotations

import itertools
import time
import traceback
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

import suite.analysis.optima
import suite.report.optima
import suite.store
import tasks
from suite import seeding
from suite.curvature import curvature
from suite.experiment import (
    COMMON_KEYS,
    ExperimentError,
    ProblemSpec,
    check_keys,
    parse_problems,
    parse_seeds,
)
from suite.kinds import Kind, ReportOptions, register_kind
from suite.models import make_model, matched_tdnn_hidden
from suite.optimizers.batched import train_batch
from suite.optimizers.batched_method import Method
from suite.problem import problem_from_spec
from suite.provenance import provenance

__all__ = [
    "KIND",
    "MULTISTART_KEYS",
    "MultiStartChunk",
    "expand",
    "expand_problem_grid",
    "run_chunk",
    "twin_spec",
]


@dataclass(frozen=True)
class MultiStartChunk:
    """A work unit: a chunk of the starts of one study (one problem, one method).

    ``task``/``model`` are resolved specs, ``method`` a :meth:`Method.spec` dict, ``seeds`` the
    seed indices of the chunk, ``study_seeds`` the number of starts in the whole study (for the
    label only). Records: kind ``"start"``, one per seed index (see :func:`run_chunk`).
    """

    experiment: str
    task: dict
    model: dict
    method: dict
    seeds: tuple[int, ...]
    experiment_seed: int = 0
    data_seed: int = 0
    hessian: bool = True
    labels: dict = field(default_factory=dict, compare=False)

    def study_content(self) -> dict:
        """What identifies the study (every field but the chunk's seeds and labels)."""
        return {
            "task": self.task,
            "model": self.model,
            "method": self.method,
            "experiment_seed": self.experiment_seed,
            "data_seed": self.data_seed,
            "hessian": self.hessian,
        }

    @cached_property
    def study_key(self) -> str:
        """Hash of :meth:`study_content`."""
        return seeding.content_hash(self.study_content())

    def key(self, seed: int) -> str:
        """Record key of seed index ``seed``: hash of the study content and the seed."""
        return seeding.content_hash({**self.study_content(), "seed": int(seed)})

    @property
    def group(self) -> str:
        """Status label: the study."""
        return str(self.labels.get("study") or self.study_key)

    def keys(self) -> list[str]:
        """One key per seed index of the chunk."""
        return [self.key(s) for s in self.seeds]

    def run(self) -> list[dict]:
        """Train the chunk and return its records."""
        return run_chunk(self)


def run_chunk(unit: MultiStartChunk) -> list[dict]:
    """Train one chunk of starts and return one record of kind ``"start"`` per start.

    Record fields: ``key``, ``kind``, ``experiment``, ``study`` (label), ``study_key``, ``spec``
    (task, model, method, seed, experiment_seed, data_seed), ``status``
    (:data:`suite.optimizers.batched.STATUSES` or ``"error"`` with ``error`` the traceback),
    ``final_train_loss``, ``final_test_loss``,
    ``grad_norm``, ``gtol``, ``steps``, ``polish_steps``, ``counters`` (``fe`` charged to this
    start, ``fe_share`` = chunk total / starts), ``analysis_fe``, ``lambda_min``,
    ``lambda_max`` (NaN if diverged or without ``hessian``), ``baseline_loss``, ``target_loss``,
    ``theta`` (the end point), ``time`` (``wall`` = chunk wall time / starts), ``provenance``.
    """
    method = Method.from_spec(unit.method)
    label = (
        unit.labels.get("study")
        or f"{unit.task['task']} / {unit.model['model']} / {method.display()}"
    )
    base = {
        "kind": "start",
        "experiment": unit.experiment,
        "study": label,
        "study_key": unit.study_key,
    }

    def spec(seed: int) -> dict:
        return {
            "task": unit.task,
            "model": unit.model,
            "method": method.spec(),
            "seed": int(seed),
            "experiment_seed": unit.experiment_seed,
            "data_seed": unit.data_seed,
        }

    t0 = time.perf_counter()
    try:
        stream = seeding.data_stream(unit.experiment_seed, unit.task, unit.data_seed)
        problem = problem_from_spec(unit.task, unit.model, stream)
        theta0 = seeding.initial_points(unit.experiment_seed, unit.task, problem.model, unit.seeds)
        rng = np.random.default_rng(
            seeding.optimizer_stream(unit.experiment_seed, unit.study_content())
        )
        problem.start()
        res = train_batch(problem, theta0, method, rng)
        eigs = np.full((len(unit.seeds), 2), np.nan)
        fe_before = problem.counters.fe
        # curvature at every end point that did not diverge: converged ones are classified by
        # it, unconverged ones can be recognised as plateaus (see suite.analysis.optima)
        conv = res.status != "diverged"
        if unit.hessian and conv.any():
            eigs[conv] = curvature(problem.loss_and_grad, res.theta[conv])
        analysis_fe = (problem.counters.fe - fe_before) / max(int(conv.sum()), 1)
        test = np.full(len(unit.seeds), np.nan)
        ok = np.isfinite(res.theta).all(axis=1)
        if ok.any():
            test[ok] = problem.evaluate(res.theta[ok], "test")
    except Exception:  # noqa: BLE001 -- a chunk's failure becomes error records
        error = traceback.format_exc()
        return [
            {**base, "key": unit.key(s), "spec": spec(s), "status": "error", "error": error}
            for s in unit.seeds
        ]
    wall = (time.perf_counter() - t0) / max(len(unit.seeds), 1)
    prov = provenance()
    keep = ~np.isnan(res.trace_steps)
    records = []
    for i, s in enumerate(unit.seeds):
        records.append(
            {
                **base,
                "key": unit.key(s),
                "spec": spec(s),
                "status": str(res.status[i]),
                "error": None,
                "final_train_loss": float(res.loss[i]),
                "final_test_loss": float(test[i]),
                "grad_norm": float(res.grad_norm[i]),
                "gtol": float(res.gtol),
                "steps": int(res.steps[i]),
                "polish_steps": int(res.polish_steps[i]),
                "counters": {"fe": float(res.fe[i]), "fe_share": res.total_fe / len(unit.seeds)},
                "analysis_fe": float(analysis_fe if conv[i] else 0.0),
                "lambda_min": float(eigs[i, 0]),
                "lambda_max": float(eigs[i, 1]),
                "baseline_loss": float(problem.baseline_loss),
                "target_loss": float(problem.target_loss),
                "trace": {
                    "steps": [int(v) for v in res.trace_steps[i][keep[i]]],
                    "loss": [float(v) for v in res.trace_loss[i][keep[i]]],
                },
                "theta": [float(v) for v in res.theta[i]],
                "time": {"wall": wall},
                "provenance": prov,
            }
        )
    return records


# -------------------------------------------------------------------------- expansion
MULTISTART_KEYS = (
    "starts",
    "chunk",
    "data_seed",
    "tdnn_twin",
    "tdnn_window",
    "hessian",
    "problems",
    "methods",
)


def expand_problem_grid(entries: Any) -> Any:
    """Expand ``[[problems]]`` entries whose task or model keys are arrays into their Cartesian
    product (``seq_len = [10, 20]`` with ``spectral_radius = [0.5, 1.5]`` gives 4 entries).

    A ``label`` is kept only for entries without arrays (it would not be unique otherwise).
    Anything that is not a list of tables is returned unchanged (``parse_problems`` reports it).
    """
    if not isinstance(entries, list):
        return entries
    out: list[Any] = []
    for entry in entries:
        if not isinstance(entry, dict):
            out.append(entry)
            continue
        grid = {k: v for k, v in entry.items() if isinstance(v, list) and k != "label"}
        if not grid:
            out.append(entry)
            continue
        fixed = {k: v for k, v in entry.items() if k not in grid and k != "label"}
        for combo in itertools.product(*grid.values()):
            out.append({**fixed, **dict(zip(grid, combo, strict=True))})
    return out


def twin_spec(problem: Any, window: int | None = None) -> Any:
    """The :class:`~suite.experiment.ProblemSpec` of the TDNN twin of an Elman problem:
    same task, hidden size from ``matched_tdnn_hidden`` (closest parameter count), window
    ``window`` or the task's ``seq_len`` (the whole sequence), else 10."""
    task = tasks.get(problem.task["task"], **{k: v for k, v in problem.task.items() if k != "task"})
    if window is None:
        window = int(task.params.get("seq_len", 10))
    hidden = matched_tdnn_hidden(int(problem.model["hidden"]), task.n_in, task.n_out, window)
    model = make_model(
        "tdnn", task.n_in, task.n_out, hidden=hidden, window=window, dtype=problem.model["dtype"]
    )
    head = problem.label.split(" / ")[0]
    return ProblemSpec(
        task=problem.task,
        model=model.spec(),
        label=f"{head} / tdnn(hidden={hidden}, window={window})",
    )


def expand(d: dict, profile: str) -> list[MultiStartChunk]:
    """Units of a ``multistart`` experiment: problem (and TDNN twin) x method x chunk of starts.

    Keys (besides the common ones): ``starts`` (int n: seed indices 0..n-1, or an array),
    ``chunk`` (starts per unit, default 128), ``data_seed`` (default 0), ``tdnn_twin``
    (default false), ``tdnn_window`` (default: the task's ``seq_len``), ``hessian`` (default
    true), ``problems`` (as in compare; array values expand to a grid, see
    :func:`expand_problem_grid`), ``methods`` (array of tables: the keys of
    :meth:`suite.optimizers.batched_method.Method.from_dict`).
    """
    check_keys(d, COMMON_KEYS + MULTISTART_KEYS, "")
    for key in ("problems", "methods"):
        if key not in d:
            raise ExperimentError(f"missing key {key!r} (a multistart experiment needs it)")
    seeds = parse_seeds(d.get("starts", 100), "starts")
    chunk = d.get("chunk", 128)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ExperimentError(f"chunk: must be an integer >= 1, got {chunk!r}")
    data_seed = d.get("data_seed", 0)
    if isinstance(data_seed, bool) or not isinstance(data_seed, int) or data_seed < 0:
        raise ExperimentError(f"data_seed: must be an integer >= 0, got {data_seed!r}")
    for flag in ("tdnn_twin", "hessian"):
        if flag in d and not isinstance(d[flag], bool):
            raise ExperimentError(f"{flag}: must be true or false, got {d[flag]!r}")
    window = d.get("tdnn_window")
    if window is not None and (
        isinstance(window, bool) or not isinstance(window, int) or window < 1
    ):
        raise ExperimentError(f"tdnn_window: must be an integer >= 1, got {window!r}")
    problems = parse_problems(expand_problem_grid(d["problems"]))
    if d.get("tdnn_twin", False):
        seen = {seeding.canonical_json([p.task, p.model]) for p in problems}
        for p in list(problems):
            if p.model["model"] != "elman":
                continue
            try:
                twin = twin_spec(p, window)
            except (ValueError, TypeError) as exc:
                raise ExperimentError(f"tdnn_twin: {exc}") from None
            key = seeding.canonical_json([twin.task, twin.model])
            if key not in seen:  # elman problems differing only in spectral radius share a twin
                seen.add(key)
                problems.append(twin)
    methods_raw = d["methods"]
    if not isinstance(methods_raw, list) or not methods_raw:
        raise ExperimentError("methods: must be a non-empty array of tables ([[methods]])")
    methods = []
    for i, m in enumerate(methods_raw):
        if not isinstance(m, dict):
            raise ExperimentError(f"methods[{i}]: must be a table")
        try:
            methods.append(Method.from_dict(m))
        except (ValueError, TypeError) as exc:
            raise ExperimentError(f"methods[{i}]: {exc}") from None
    labels = [m.display() for m in methods]
    if len(set(labels)) != len(labels):
        raise ExperimentError(f"methods: duplicate method entries: {labels}")
    units: list[MultiStartChunk] = []
    for p in problems:
        for m in methods:
            for c0 in range(0, len(seeds), chunk):
                units.append(
                    MultiStartChunk(
                        experiment=d["name"],
                        task=p.task,
                        model=p.model,
                        method=m.spec(),
                        seeds=tuple(seeds[c0 : c0 + chunk]),
                        experiment_seed=d["seed"],
                        data_seed=data_seed,
                        hessian=d.get("hessian", True),
                        labels={"study": f"{p.label} / {m.display()}", "problem": p.label},
                    )
                )
    return units


def _analyse(folder: Path) -> Any:
    return suite.analysis.optima.analyse_records(suite.store.load_results(folder).records("start"))


def _report(folder: Path, opts: ReportOptions) -> list[Path]:
    return suite.report.optima.write_optima_report(folder, pdf=opts.pdf)


KIND = register_kind(
    Kind(
        name="multistart",
        expand=expand,
        keys=MULTISTART_KEYS,
        record_kinds=("start",),
        analyse=_analyse,
        report=_report,
        doc="many starts of one method per problem; end points classified and clustered (C2/C3)",
    )
)
