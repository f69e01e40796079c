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

Resolution (``resolve`` table, :mod:`suite.optimizers.resolve`). After training, unconverged
end points get a trust-region Newton polish from exact Hessian-vector products, every live end
point its extreme Hessian eigenvalues at two finite-difference steps
(:func:`suite.curvature.curvature_checked`) and the diverging-valley test, and every end point
above 1% of the chunk's gap to the baseline the escape test; the results go into the record's
``resolved`` field and decide its class (:func:`suite.analysis.optima.classify_end_points`).
Without the table a study runs as before (same keys, no ``resolved`` field).

Design keys for C3 and the gated answer to C2: ``tdnn_design`` (TDNNs with the Elman's H and
windows {2, T/2, T} plus the parameter-matched one), ``gated`` / ``gated_hidden`` (GRU/LSTM of
matched parameter count), ``data_seed`` as an array (one study per dataset draw, label suffix
``/ data k``).

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

import suite.store
import tasks
from suite import seeding
from suite.curvature import curvature, curvature_checked
from suite.experiment import (
    COMMON_KEYS,
    ExperimentError,
    ProblemSpec,
    check_keys,
    parse_problems,
    parse_seeds,
)
from suite.kinds import Kind, ReportOptions, register_kind
from suite.models import make_model, matched_hidden, matched_tdnn_hidden
from suite.optimizers.batched import ZERO_LOSS_REL, train_batch
from suite.optimizers.batched_method import Method
from suite.optimizers.resolve import (
    Counted,
    ResolveConfig,
    escape_test,
    polish_trust,
    valley_test,
)
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
    resolve: dict | None = None
    labels: dict = field(default_factory=dict, compare=False)

    def study_content(self) -> dict:
        """What identifies the study (every field but the chunk's seeds and labels; ``resolve``
        only when set, so studies of files without it keep their keys)."""
        content = {
            "task": self.task,
            "model": self.model,
            "method": self.method,
            "experiment_seed": self.experiment_seed,
            "data_seed": self.data_seed,
            "hessian": self.hessian,
        }
        if self.resolve is not None:
            content["resolve"] = self.resolve
        return content

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
    ``theta`` (the end point), ``time`` (``wall`` = chunk wall time / starts), ``provenance``,
    and with a ``resolve`` table ``resolved`` (see :func:`_resolve`).
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
        resolved: list[dict] | None = None
        if unit.resolve is not None:
            resolved = _resolve(unit, problem, res, rng)
            eigs = np.array([[r["lambda_min"], r["lambda_max"]] for r in resolved])
        elif unit.hessian and conv.any():
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
        if resolved is not None:
            records[-1]["resolved"] = {
                k: v for k, v in resolved[i].items() if k not in ("lambda_min", "lambda_max")
            }
    return records


def _resolve(unit: MultiStartChunk, problem: Any, res: Any, rng: np.random.Generator) -> list:
    """Second-order polish, checked curvature, valley and escape tests of a chunk's end points
    (:mod:`suite.optimizers.resolve`); updates ``res`` in place for polished rows and returns
    one plain-data dict per row (``lambda_min``, ``lambda_max``, ``curvature_ok``,
    ``trust_iters``, ``diverging``, ``norm_path``, ``loss_path``, ``escape_loss``: NaN where
    not tested, ``escape_radius``, ``escape_k``)."""
    cfg = ResolveConfig.from_dict(unit.resolve or {})
    n = len(unit.seeds)
    grad = Counted(problem.loss_and_grad)
    live = (res.status != "diverged") & np.isfinite(res.theta).all(axis=1)
    out = [
        {
            "lambda_min": np.nan,
            "lambda_max": np.nan,
            "curvature_ok": False,
            "trust_iters": 0,
            "diverging": False,
            "norm_path": [],
            "loss_path": [],
            "escape_loss": np.nan,
            "escape_radius": cfg.escape_radius,
            "escape_k": cfg.escape_k,
        }
        for _ in range(n)
    ]
    todo = np.flatnonzero(live & (res.status != "converged"))
    if todo.size and cfg.polish_iters:
        th, L, gn, it = polish_trust(grad, res.theta[todo], float(res.gtol), cfg.polish_iters)
        res.theta[todo], res.loss[todo], res.grad_norm[todo] = th, L, gn
        ok = gn <= res.gtol
        res.status[todo[ok]] = "converged"
        for j, i in enumerate(todo):
            out[i]["trust_iters"] = int(it[j])
    idx = np.flatnonzero(live)
    if idx.size == 0:
        return out
    eigs, ok = curvature_checked(grad, res.theta[idx])
    zero = ZERO_LOSS_REL * float(problem.baseline_loss)
    div, norms, losses = valley_test(
        grad, res.theta[idx], cfg.valley_segments, cfg.valley_iters, cfg.valley_growth, zero
    )
    # escape test for the end points above 1% of the chunk's gap to the baseline
    best = float(np.min(res.loss[idx]))
    margin = best + 0.01 * max(float(problem.baseline_loss) - best, 0.0)
    esc_rows = np.flatnonzero(res.loss[idx] > margin)
    esc = np.full(idx.size, np.nan)
    if esc_rows.size and cfg.escape_k:
        esc[esc_rows] = escape_test(
            grad,
            res.theta[idx[esc_rows]],
            cfg.escape_k,
            cfg.escape_radius,
            cfg.escape_iters,
            np.random.default_rng(rng.integers(2**63)),
        )
    for j, i in enumerate(idx):
        out[i].update(
            lambda_min=float(eigs[j, 0]),
            lambda_max=float(eigs[j, 1]),
            curvature_ok=bool(ok[j]),
            diverging=bool(div[j]),
            norm_path=[float(v) for v in norms[j]],
            loss_path=[float(v) for v in losses[j]],
            escape_loss=float(esc[j]),
        )
    return out


# -------------------------------------------------------------------------- expansion
MULTISTART_KEYS = (
    "starts",
    "chunk",
    "data_seed",
    "tdnn_twin",
    "tdnn_window",
    "tdnn_design",
    "gated",
    "gated_hidden",
    "resolve",
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


def design_specs(problem: Any) -> list[Any]:
    """The C3 size x window design for one Elman problem of hidden size ``H`` on a task of
    length ``T``: TDNNs with the same ``H`` and windows ``{2, T // 2, T}`` (distinct, >= 1),
    and the parameter-matched TDNN of window ``T`` (:func:`twin_spec`)."""
    task = tasks.get(problem.task["task"], **{k: v for k, v in problem.task.items() if k != "task"})
    T = int(task.params.get("seq_len", 10))
    H = int(problem.model["hidden"])
    head = problem.label.split(" / ")[0]
    out = []
    for w in dict.fromkeys(max(1, x) for x in (2, T // 2, T)):
        model = make_model(
            "tdnn", task.n_in, task.n_out, hidden=H, window=w, dtype=problem.model["dtype"]
        )
        out.append(
            ProblemSpec(
                task=problem.task,
                model=model.spec(),
                label=f"{head} / tdnn(hidden={H}, window={w})",
            )
        )
    out.append(twin_spec(problem, T))
    return out


def gated_spec(problem: Any, name: str) -> Any:
    """The ``name`` ("gru" or "lstm") network whose parameter count is closest to the Elman
    problem's (:func:`suite.models.matched_hidden`), same task and dtype."""
    task = tasks.get(problem.task["task"], **{k: v for k, v in problem.task.items() if k != "task"})
    hidden = matched_hidden(name, int(problem.model["hidden"]), task.n_in, task.n_out)
    model = make_model(name, task.n_in, task.n_out, hidden=hidden, dtype=problem.model["dtype"])
    head = problem.label.split(" / ")[0]
    return ProblemSpec(
        task=problem.task, model=model.spec(), label=f"{head} / {name}(hidden={hidden})"
    )


def _derived(problems: list, d: dict, window: int | None) -> list:
    """Append the TDNN twins / design and the gated networks of every Elman problem."""
    seen = {seeding.canonical_json([p.task, p.model]) for p in problems}
    gated = d.get("gated", [])
    if not isinstance(gated, list) or any(g not in ("gru", "lstm") for g in gated):
        raise ExperimentError(f"gated: must be an array of 'gru' / 'lstm', got {gated!r}")
    sizes = d.get("gated_hidden")
    if sizes is not None and (
        not isinstance(sizes, list)
        or any(isinstance(h, bool) or not isinstance(h, int) for h in sizes)
    ):
        raise ExperimentError(f"gated_hidden: must be an array of integers, got {sizes!r}")
    for p in list(problems):
        if p.model["model"] != "elman":
            continue
        if sizes is not None and int(p.model["hidden"]) not in sizes:
            gated_here: list = []
        else:
            gated_here = gated
        extra = []
        try:
            if d.get("tdnn_twin", False):
                extra.append(twin_spec(p, window))
            if d.get("tdnn_design", False):
                extra += design_specs(p)
            extra += [gated_spec(p, g) for g in gated_here]
        except (ValueError, TypeError) as exc:
            raise ExperimentError(f"tdnn_twin/tdnn_design/gated: {exc}") from None
        for q in extra:
            key = seeding.canonical_json([q.task, q.model])
            if key not in seen:  # elman problems differing only in spectral radius share a twin
                seen.add(key)
                problems.append(q)
    return problems


def _data_seeds(d: dict) -> list[int]:
    value = d.get("data_seed", 0)
    values = value if isinstance(value, list) and value else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ExperimentError(
                f"data_seed: must be an integer >= 0 or an array of them, got {value!r}"
            )
    return list(dict.fromkeys(values))


def expand(d: dict, profile: str) -> list[MultiStartChunk]:
    """Units of a ``multistart`` experiment: problem (and TDNN twin) x method x chunk of starts.

    Keys (besides the common ones): ``starts`` (int n: seed indices 0..n-1, or an array),
    ``chunk`` (starts per unit, default 128), ``data_seed`` (default 0), ``tdnn_twin``
    (default false), ``tdnn_window`` (default: the task's ``seq_len``), ``hessian`` (default
    true), ``tdnn_design`` (the C3 size x window design, :func:`design_specs`), ``gated``
    (array of "gru"/"lstm": the matched gated network of every Elman problem, or only of those
    whose hidden size is in ``gated_hidden``), ``resolve`` (a table of
    :class:`~suite.optimizers.resolve.ResolveConfig`; absent: no resolution, as before),
    ``data_seed`` may be an array (one study per draw), ``problems`` (as in compare; array
    values expand to a grid, see
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
    data_seeds = _data_seeds(d)
    resolve = d.get("resolve")
    if resolve is not None:
        if not isinstance(resolve, dict):
            raise ExperimentError(f"resolve: must be a table, got {resolve!r}")
        try:
            resolve = ResolveConfig.from_dict(resolve).spec()
        except (ValueError, TypeError) as exc:
            raise ExperimentError(f"resolve: {exc}") from None
    for flag in ("tdnn_twin", "tdnn_design", "hessian"):
        if flag in d and not isinstance(d[flag], bool):
            raise ExperimentError(f"{flag}: must be true or false, got {d[flag]!r}")
    window = d.get("tdnn_window")
    if window is not None and (
        isinstance(window, bool) or not isinstance(window, int) or window < 1
    ):
        raise ExperimentError(f"tdnn_window: must be an integer >= 1, got {window!r}")
    problems = _derived(parse_problems(expand_problem_grid(d["problems"])), d, window)
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
    for data_seed, p, m in itertools.product(data_seeds, problems, methods):
        tail = f" / data {data_seed}" if len(data_seeds) > 1 else ""
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
                    resolve=resolve,
                    labels={"study": f"{p.label} / {m.display()}{tail}", "problem": p.label},
                )
            )
    return units


def _analyse(folder: Path) -> Any:
    # the analysis and report modules are imported when used, not by a run
    from suite.analysis.optima import analyse_records

    return analyse_records(suite.store.load_results(folder).records("start"))


def _report(folder: Path, opts: ReportOptions) -> list[Path]:
    from suite.report.optima import write_optima_report

    return write_optima_report(folder, pdf=opts.pdf)


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
