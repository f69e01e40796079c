"""Records of kind ``"trial"`` as tidy pandas frames: one row per trial, one per checkpoint.

:func:`trial_frames` turns trial records (or the ``(record, trace, theta)`` parts the store
reads from its index) into the ``trials`` and ``trace`` frames of :class:`suite.store.Results`,
with the columns :data:`TRIAL_COLUMNS` and :data:`TRACE_COLUMNS` (``docs/architecture.md``).

The optimizer's ``family`` and ``tags`` come from the record (``record["optimizer"]``, written
by the trial since the records carry them), so a plugin that is not loaded in the reading
process still shows them; records written before that are filled in from the optimizer
registry of the reading process, and left empty for names it does not know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from suite.optimizers import optimizer_info, optimizer_names
from suite.seeding import canonical_json

TRACE_FIELDS = ("fe", "seconds", "evaluations", "train_loss", "test_loss")
"""The fields of a trial record's trace (each a list, one entry per checkpoint)."""

TRIAL_COLUMNS = (
    "key, experiment, task, task_params, model, model_params, problem, optimizer, "
    "optimizer_name, optimizer_params, family, tags, seed, status, error, final_train_loss, "
    "final_test_loss, target_loss, baseline_loss, success, fe, fwd_steps, bwd_steps, "
    "loss_calls, grad_calls, evaluations, nonfinite, wall, cpu, inside_wall, peak_mem_mb, "
    "budget_fe, budget_seconds, fe_to_target, seconds_to_target, hit_exact, time_model_loss, "
    "time_model_grad, time_optimizer, time_checkpoint, time_setup, time_harness"
).split(", ")
"""Columns of :attr:`Results.trials`, in order (``docs/architecture.md``). ``family`` is the
optimizer's family, ``tags`` its capability tags, sorted and comma-joined
(``"deterministic,gradient"``); both ``""`` when unknown. The ``time_*`` columns split ``wall``
into the parts of ``suite.trial.TIME_PARTS`` (seconds; NaN for records written before the
split existed)."""

TIME_COLUMNS = (
    "time_model_loss",
    "time_model_grad",
    "time_optimizer",
    "time_checkpoint",
    "time_setup",
    "time_harness",
)
"""The cost-split columns, one per part of a trial record's ``time`` (``time_<part>``)."""

TRACE_COLUMNS = (
    "key",
    "problem",
    "optimizer",
    "seed",
    "fe",
    "seconds",
    "evaluations",
    "train_loss",
    "test_loss",
)
"""Columns of :attr:`Results.trace`, in order."""


def _num(value: Any) -> float:
    """A stored number (possibly ``"inf"`` or None) as a float; None is NaN."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _params_text(params: dict) -> str:
    try:  # the fast path; canonical_json also handles non-finite values
        return json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return canonical_json(params)


def _label(name: str, params: dict) -> str:
    inner = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"{name}({inner})" if inner else name


def _about(record: dict, name: str, registry: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """``(family, comma-joined sorted tags)`` of the record's optimizer: from the record, else
    from the registry of this process (``registry`` caches the look-ups), else empty."""
    about = record.get("optimizer")
    if isinstance(about, dict) and "family" in about:
        family = about.get("family")
        tags = about.get("tags") or []
        return ("" if family is None else str(family)), ",".join(sorted(map(str, tags)))
    if name not in registry:
        if name in optimizer_names():
            info = optimizer_info(name)
            registry[name] = (str(info["family"]), ",".join(sorted(info["tags"])))
        else:
            registry[name] = ("", "")
    return registry[name]


_INT_COLUMNS = ("fwd_steps", "bwd_steps", "loss_calls", "grad_calls", "evaluations", "nonfinite")
"""The integer cost counters of a record (columns of :attr:`Results.trials` after ``fe``)."""


def _trial_row(
    record: dict, trace: dict | None = None, registry: dict[str, tuple[str, str]] | None = None
) -> tuple[dict, dict]:
    spec = record.get("spec", {})
    task = dict(spec.get("task", {}))
    model = dict(spec.get("model", {}))
    opt = spec.get("optimizer", {})
    task_name = str(task.pop("task", ""))
    model_name = str(model.pop("model", ""))
    opt_name = str(opt.get("name", ""))
    opt_params = dict(opt.get("params", {}))
    labels = record.get("labels") or {}
    problem = labels.get("problem") or f"{_label(task_name, task)} / {_label(model_name, model)}"
    optimizer = labels.get("optimizer") or _label(opt_name, opt_params)
    family, tags = _about(record, opt_name, {} if registry is None else registry)
    counters = record.get("counters") or {}
    times = record.get("time") or {}
    budget = spec.get("budget") or {}
    if trace is None:
        raw_trace = record.get("trace") or {}
        trace = {
            name: np.asarray(raw_trace.get(name, []), dtype=np.float64) for name in TRACE_FIELDS
        }
    target = _num(record.get("target_loss"))
    final = _num(record.get("final_train_loss"))
    success = bool(final <= target)
    fe_hit = seconds_hit = math.nan
    hits = np.flatnonzero(np.asarray(trace["train_loss"]) <= target)
    first_hit = record.get("first_hit")
    exact = False
    if isinstance(first_hit, dict) and "fe" in first_hit:  # exact, recorded by the Problem
        exact = True
        fe_hit, seconds_hit = _num(first_hit.get("fe")), _num(first_hit.get("seconds"))
    elif len(hits):  # older records: the first checkpoint at or below the target
        fe_hit = float(trace["fe"][hits[0]])
        seconds_hit = float(trace["seconds"][hits[0]]) if len(trace["seconds"]) else math.nan
    row = {
        "key": record.get("key"),
        "experiment": record.get("experiment"),
        "task": task_name,
        "task_params": _params_text(task),
        "model": model_name,
        "model_params": _params_text(model),
        "problem": problem,
        "optimizer": optimizer,
        "optimizer_name": opt_name,
        "optimizer_params": _params_text(opt_params),
        "family": family,
        "tags": tags,
        "seed": int(spec.get("seed", -1)),
        "status": record.get("status"),
        "error": record.get("error"),
        "final_train_loss": final,
        "final_test_loss": _num(record.get("final_test_loss")),
        "target_loss": target,
        "baseline_loss": _num(record.get("baseline_loss")),
        "success": success,
        "fe": _num(counters.get("fe")),
        **{name: _num(counters.get(name)) for name in _INT_COLUMNS},
        "wall": _num(times.get("wall")),
        "cpu": _num(times.get("cpu")),
        "inside_wall": _num(times.get("inside_wall")),
        "peak_mem_mb": _num(record.get("peak_mem_mb")),
        "budget_fe": _num(budget.get("fe")),
        "budget_seconds": _num(budget.get("seconds")),
        "fe_to_target": fe_hit,
        "seconds_to_target": seconds_hit,
        "hit_exact": exact,
        **{name: _num(times.get(name[len("time_") :])) for name in TIME_COLUMNS},
    }
    return row, trace


def trial_frames(
    records: Iterable[dict] | Iterable[tuple[dict, dict | None, Any]],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials and trace frames of records of kind ``"trial"`` (see ``docs/architecture.md``).

    ``records`` are records, or ``(record, trace, theta)`` parts as the store reads them.
    ``success`` is ``final_train_loss <= target_loss``; ``fe_to_target`` and
    ``seconds_to_target`` are the exact cost at which the Problem's incumbent first reached the
    target (``record["first_hit"]``, ``hit_exact`` True), or for records written before the
    Problem recorded it, those of the first checkpoint at or below the target (NaN if none).
    """
    rows: list[dict] = []
    traces: list[dict] = []
    registry: dict[str, tuple[str, str]] = {}
    for item in records:
        record, trace = (item[0], item[1]) if isinstance(item, tuple) else (item, None)
        row, trace = _trial_row(record, trace, registry)
        rows.append(row)
        traces.append(trace)
    trials = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))
    if rows:
        trials["seed"] = trials["seed"].astype(np.int64)
        trials["success"] = trials["success"].astype(bool)
        trials["hit_exact"] = trials["hit_exact"].astype(bool)
        for name in _INT_COLUMNS:
            col = trials[name]
            if col.notna().all():
                trials[name] = col.astype(np.int64)
    lengths = np.array([len(t["fe"]) for t in traces], dtype=np.int64)

    def repeat(values: list) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=object), lengths)

    def cat(name: str) -> np.ndarray:
        if not traces:
            return np.empty(0)
        return np.concatenate([t[name] for t in traces])

    trace = pd.DataFrame(
        {
            "key": repeat([r["key"] for r in rows]),
            "problem": repeat([r["problem"] for r in rows]),
            "optimizer": repeat([r["optimizer"] for r in rows]),
            "seed": np.repeat(np.asarray([r["seed"] for r in rows], dtype=np.int64), lengths),
            "fe": cat("fe"),
            "seconds": cat("seconds"),
            "evaluations": cat("evaluations").astype(np.int64),
            "train_loss": cat("train_loss"),
            "test_loss": cat("test_loss"),
        },
        columns=list(TRACE_COLUMNS),
    )
    for name in ("key", "problem", "optimizer"):
        trace[name] = trace[name].astype(trials[name].dtype if rows else "str")
    return trials, trace
