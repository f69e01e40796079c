"""Hyper-parameter tuning as a stated, costed part of an experiment.

SCIENCE.md's fairness rule: tune each optimizer's main hyper-parameter on seeds that are not
used in the evaluation, and say what the tuning cost. A compare experiment may carry a
``[tuning]`` table::

    [tuning]
    seeds = [1000]                 # seed indices used only for tuning (disjoint from `seeds`)
    budget = { fe = 1e6 }          # optional; default: each problem's evaluation budget
    [tuning.grid]                  # optimizer name -> {hyper-parameter: [values]}
    adam = { lr = [0.001, 0.01, 0.1] }
    cmaes = { sigma0 = [0.1, 0.5, 2.0] }

Protocol (:func:`run_tuned`):

1. *Tuning run.* Experiment ``<name>-tuning``: every problem x every grid point of every
   optimizer entry named in the grid x the tuning seeds, at the tuning budget.
2. *Choice.* Per (problem, optimizer entry) the grid point with the highest success rate, then
   the lowest median cost to target (fe), then the lowest median final train loss wins
   (:func:`choose`). The choice and the tuning cost (fe and seconds) are written to
   ``<name>/tables/tuning.csv`` and ``tuning.md``.
3. *Evaluation run.* The experiment itself, each tuned optimizer entry replaced, per problem, by
   its chosen configuration, under its original label (so ``adam`` is one colour and one row per
   problem in every table, whatever learning rate each problem chose).

Optimizer entries not named in the grid run with their given hyper-parameters.
"""

from __future__ import annotations

import itertools
import json
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suite.experiment import (
    Experiment,
    ExperimentError,
    apply_profile,
    experiment_path,
    parse_problems,
)
from suite.kinds.load import experiment_from_dict
from suite.report.tables import write_table
from suite.runner import run_experiment
from suite.store import load_results

TUNING_KEYS = ("seeds", "budget", "grid")


def read_raw(name_or_path: str | os.PathLike[str], profile: str) -> tuple[dict, str]:
    """The experiment file's content with ``profile`` applied, and its source path."""
    path = experiment_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: not valid TOML: {exc}") from None
    merged = apply_profile(raw, profile)
    merged.setdefault("name", path.stem)
    if profile != "default":
        merged["name"] = f"{merged['name']}-{profile}"
    return merged, str(path)


def _parse_tuning(d: dict, source: str) -> dict | None:
    table = d.get("tuning")
    if table is None:
        return None
    where = f"{source}: tuning"
    if not isinstance(table, dict):
        raise ExperimentError(f"{where}: must be a table with keys {', '.join(TUNING_KEYS)}")
    unknown = sorted(set(table) - set(TUNING_KEYS))
    if unknown:
        raise ExperimentError(f"{where}: unknown key(s) {unknown}; allowed: {TUNING_KEYS}")
    grid = table.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise ExperimentError(
            f"{where}.grid: must be a non-empty table optimizer -> {{param: [..]}}"
        )
    names = {o.get("name") for o in d.get("optimizers", [])}
    for opt, params in grid.items():
        if opt not in names:
            raise ExperimentError(
                f"{where}.grid.{opt}: not an optimizer of this experiment; "
                f"allowed: {', '.join(sorted(n for n in names if n))}"
            )
        if not isinstance(params, dict) or not params:
            raise ExperimentError(f"{where}.grid.{opt}: must map hyper-parameters to lists")
        for key, values in params.items():
            if not isinstance(values, list) or not values:
                raise ExperimentError(f"{where}.grid.{opt}.{key}: must be a non-empty list")
    seeds = table.get("seeds", [1000])
    eval_seeds = d.get("seeds", 1)
    eval_set = set(range(eval_seeds)) if isinstance(eval_seeds, int) else set(eval_seeds)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if eval_set & set(seed_list):
        raise ExperimentError(
            f"{where}.seeds: tuning seeds {sorted(eval_set & set(seed_list))} are also "
            "evaluation seeds; use disjoint seed indices (e.g. 1000 and up)"
        )
    return {"seeds": seed_list, "budget": table.get("budget"), "grid": grid}


def _grid_points(entry: dict, grid: dict) -> list[dict]:
    params = grid.get(entry["name"])
    if not params:
        return []
    keys = sorted(params)
    points = []
    for values in itertools.product(*(params[k] for k in keys)):
        point = {**entry, **dict(zip(keys, values, strict=True))}
        point["label"] = (
            f"{entry.get('label', entry['name'])}["
            + ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
            + "]"
        )
        points.append(point)
    return points


def tuning_experiment(d: dict, tuning: dict, source: str) -> Experiment:
    """The tuning run of experiment dict ``d``: grid points x problems x tuning seeds."""
    optimizers = [p for o in d["optimizers"] for p in _grid_points(o, tuning["grid"])]
    problems = [dict(p) for p in d["problems"]]
    if tuning["budget"] is not None:
        for p in problems:
            p.pop("budget", None)
    raw = {k: v for k, v in d.items() if k not in ("tuning", "optimizers", "problems", "name")}
    raw.update(
        name=f"{d['name']}-tuning",
        seeds=tuning["seeds"],
        problems=problems,
        optimizers=optimizers,
        description=f"hyper-parameter tuning for {d['name']} (seeds not used in evaluation)",
    )
    if tuning["budget"] is not None:
        raw["budget"] = tuning["budget"]
    return experiment_from_dict(raw, source=source)


def choose(trials: pd.DataFrame) -> pd.DataFrame:
    """The winning grid point per (problem, entry): success, then cost to target, then loss.

    ``trials`` is a tuning run's trial frame; the entry is the label before ``[``.
    """
    t = trials.copy()
    t["entry"] = t["optimizer"].str.split("[", n=1).str[0]
    t["fe_to_target"] = t["fe_to_target"].fillna(np.inf)
    score = (
        t.groupby(["problem", "entry", "optimizer"], sort=False)
        .agg(
            success=("success", "mean"),
            median_fe_to_target=("fe_to_target", "median"),
            median_final_loss=("final_train_loss", "median"),
            fe=("fe", "sum"),
            seconds=("wall", "sum"),
            params=("optimizer_params", "first"),
        )
        .reset_index()
    )
    score = score.sort_values(
        ["problem", "entry", "success", "median_fe_to_target", "median_final_loss"],
        ascending=[True, True, False, True, True],
        kind="stable",
    )
    score["chosen"] = ~score.duplicated(["problem", "entry"])
    return score.reset_index(drop=True)


def _as_dict(params: Any) -> dict:
    if isinstance(params, dict):
        return params
    return json.loads(params)


def tuned_experiment(d: dict, choice: pd.DataFrame, source: str) -> Experiment:
    """Experiment ``d`` with each tuned entry replaced per problem by its chosen configuration."""
    labels = [p.label for p in parse_problems(d["problems"])]
    chosen = choice[choice["chosen"]].set_index(["problem", "entry"])
    optimizers: list[dict] = []
    tuned_names = set()
    for entry in d["optimizers"]:
        label = entry.get("label", entry["name"])
        rows = [(p, chosen.loc[(p, label)]) for p in labels if (p, label) in chosen.index]
        if not rows:
            optimizers.append(entry)
            continue
        tuned_names.add(label)
        for problem, row in rows:
            params = _as_dict(row["params"])
            optimizers.append(
                {"name": entry["name"], **params, "label": label, "problems": [problem]}
            )
    raw = {k: v for k, v in d.items() if k != "tuning"}
    raw["optimizers"] = optimizers
    raw["tuned"] = sorted(tuned_names)
    return experiment_from_dict(raw, source=source)


def _write_choice(choice: pd.DataFrame, directory: Path) -> None:

    table = choice.rename(columns={"entry": "optimizer entry", "optimizer": "configuration"})
    table = table.drop(columns=["params"])
    write_table(table, directory / "tables", "tuning", latex=False)


def run_tuned(
    name_or_path: str | os.PathLike[str],
    profile: str = "default",
    out: str | os.PathLike[str] = "results",
    jobs: int | None = None,
    dask: str | None = None,
    plugins: Sequence[str] = (),
    progress: bool = True,
) -> list[Any]:
    """Run an experiment, with its tuning phase first when it has a ``[tuning]`` table.

    Returns the run summaries (tuning, then evaluation). Without ``[tuning]`` this is
    :func:`suite.runner.run_experiment`.
    """

    d, source = read_raw(name_or_path, profile)
    tuning = _parse_tuning(d, source)
    if tuning is None:
        exp = experiment_from_dict(d, source=source)
        return [run_experiment(exp, out, jobs, dask, plugins, progress)]
    tune_exp = tuning_experiment(d, tuning, source)
    summaries = [run_experiment(tune_exp, out, jobs, dask, plugins, progress)]
    choice = choose(load_results(Path(out) / tune_exp.dirname).trials)
    exp = tuned_experiment(d, choice, source)
    summaries.append(run_experiment(exp, out, jobs, dask, plugins, progress))
    _write_choice(choice, Path(out) / exp.dirname)
    return summaries


def resolve(
    name_or_path: str | os.PathLike[str], profile: str, out: str | os.PathLike[str]
) -> Experiment:
    """The experiment as :func:`run_tuned` runs it (tuned from stored tuning results if any)."""

    d, source = read_raw(name_or_path, profile)
    tuning = _parse_tuning(d, source)
    if tuning is None:
        return experiment_from_dict(d, source=source)
    tune_exp = tuning_experiment(d, tuning, source)
    directory = Path(out) / tune_exp.dirname
    if not directory.exists():
        raise ExperimentError(
            f"{source}: the tuning run {tune_exp.dirname!r} has not been run yet "
            f"(rnnbench run {name_or_path} runs it first)"
        )
    return tuned_experiment(d, choose(load_results(directory).trials), source)
