"""Hyper-parameter tuning as a stated, costed part of an experiment.

SCIENCE.md's fairness rule: tune each optimizer's main hyper-parameter on seeds that are not
used in the evaluation, and say what the tuning cost. A compare experiment may carry a
``[tuning]`` table::

    [tuning]
    seeds = [1000]                 # seed indices used only for tuning (disjoint from `seeds`)
    budget = { fe = 1e6 }          # optional; default: each problem's evaluation budget
    scale = 0.1                    # or: each problem's evaluation budget times this factor
    extend = 1                     # optional; rounds of grid extension at edges (default 0)
    [tuning.grid]                  # optimizer name -> {hyper-parameter: [values]}
    adam = { lr = [0.001, 0.01, 0.1] }
    cmaes = { sigma0 = [0.1, 0.5, 2.0] }

Protocol (:func:`run_tuned`):

1. *Tuning run.* Experiment ``<name>-tuning``: every problem x every grid point of every
   optimizer entry named in the grid x the tuning seeds, at the tuning budget. With
   ``extend = k``: up to ``k`` more rounds in which every (problem, entry) whose chosen value of
   a numeric knob sits at the edge of the values tried gets one more value beyond that edge
   (:func:`tuning_rounds`), so a grid whose best value is at its edge is extended. The shipped
   ``speed`` experiment gives every optimizer the same number of grid points (4) on 3 tuning
   seeds at the same tuning budget: equal tuning effort per optimizer, apart from the
   extensions the edge rule adds (reported per family).
2. *Choice.* Per (problem, optimizer entry) the grid point with the highest success rate, then
   the lowest median cost to target (fe), then the lowest median final train loss wins
   (:func:`choose`). Each choice is stored as a record of kind ``"tuning"`` in the evaluation's
   results folder (:func:`choice_records`), with every candidate's scores and tuning cost (fe
   and seconds); ``rnnbench report`` turns them into ``tables/tuning.csv`` and ``tuning.md``.
3. *Evaluation run.* The experiment itself, each tuned optimizer entry replaced, per problem, by
   its chosen configuration, under its original label (so ``adam`` is one colour and one row per
   problem in every table, whatever learning rate each problem chose).

Optimizer entries not named in the grid run with their given hyper-parameters.

A configuration is identified by data, ``{"name": registered name, "params": {all
hyper-parameters}}`` (as in a trial's spec), never by its display label. A tuning record::

    {"key": "tuning-<16 hex>", "kind": "tuning", "experiment": "speed",
     "tuning_experiment": "speed-tuning", "problem": "adding", "entry": "adam",
     "chosen": {"name": "adam", "params": {...}},
     "candidates": [{"label": "adam[lr=0.03]", "grid": {"lr": 0.03},
                     "optimizer": {"name": "adam", "params": {...}}, "trials": 1,
                     "success": 0.0, "median_fe_to_target": inf, "median_final_loss": 0.0045,
                     "fe": 9999360.0, "seconds": 0.53, "chosen": true}, ...]}

with the candidates in rank order (the chosen one first).
"""

from __future__ import annotations

import itertools
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
from suite.optimizers import get_optimizer, spec
from suite.runner import RunSummary, run_experiment
from suite.seeding import canonical_json, content_hash
from suite.store import Store, load_results

TUNING_KEYS = ("seeds", "budget", "scale", "grid", "extend")
RECORD_KIND = "tuning"
"""The ``kind`` of the records that store the tuning choices."""


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
    extend = table.get("extend", 0)
    if isinstance(extend, bool) or not isinstance(extend, int) or extend < 0:
        raise ExperimentError(f"{where}.extend: must be an integer >= 0, got {extend!r}")
    scale = table.get("scale")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 1:
            raise ExperimentError(f"{where}.scale: must be a number in (0, 1], got {scale!r}")
        if table.get("budget") is not None:
            raise ExperimentError(f"{where}: give either budget or scale, not both")
    return {
        "seeds": seed_list,
        "budget": table.get("budget"),
        "scale": scale,
        "grid": grid,
        "extend": extend,
    }


@dataclass(frozen=True)
class Candidate:
    """One grid point of one optimizer entry: the configuration the tuning run tries.

    ``entry`` is the entry's label, ``grid`` the grid values, ``optimizer`` the configuration as
    data (``{"name", "params"}`` with every hyper-parameter), ``label`` its display label in the
    tuning run (``entry[k=v, ...]``) and ``problems`` the problem labels the entry runs on
    (None: all).
    """

    entry: str
    grid: dict
    optimizer: dict
    label: str
    problems: tuple[str, ...] | None = None

    def config_key(self) -> str:
        """Canonical JSON of the configuration (what identifies it in a trial's spec)."""
        return canonical_json(self.optimizer)


def _grid_points(entry: dict, grid: dict, where: str) -> list[tuple[dict, Candidate]]:
    params = grid.get(entry["name"])
    if not params:
        return []
    keys = sorted(params)
    entry_label = entry.get("label", entry["name"])
    problems = entry.get("problems")
    points = []
    for values in itertools.product(*(params[k] for k in keys)):
        values_by_key = dict(zip(keys, values, strict=True))
        point = {**entry, **values_by_key}
        point["label"] = (
            f"{entry_label}[" + ", ".join(f"{k}={v}" for k, v in values_by_key.items()) + "]"
        )
        hyper = {k: v for k, v in point.items() if k not in ("name", "label", "problems")}
        try:
            config = spec(get_optimizer(entry["name"], **hyper))
        except (ValueError, TypeError) as exc:
            raise ExperimentError(f"{where}.grid.{entry['name']}: {exc}") from None
        candidate = Candidate(
            entry=entry_label,
            grid=values_by_key,
            optimizer=config,
            label=point["label"],
            problems=None if problems is None else tuple(problems),
        )
        points.append((point, candidate))
    return points


def tuning_plan(d: dict, tuning: dict, source: str) -> tuple[Experiment, list[Candidate]]:
    """The tuning run of experiment dict ``d`` (grid points x problems x tuning seeds) and the
    candidates it tries."""
    points = [p for o in d["optimizers"] for p in _grid_points(o, tuning["grid"], source)]
    return _tuning_experiment(d, tuning, source, [p for p, _ in points]), [c for _, c in points]


def _tuning_experiment(d: dict, tuning: dict, source: str, points: list[dict]) -> Experiment:
    problems = [dict(p) for p in d["problems"]]
    if tuning["budget"] is not None:
        for p in problems:
            p.pop("budget", None)
    if tuning.get("scale") is not None:  # each problem's own budget, scaled
        for p in problems:
            budget = p.get("budget", d.get("budget")) or {}
            p["budget"] = {k: v * tuning["scale"] for k, v in budget.items()}
    raw = {k: v for k, v in d.items() if k not in ("tuning", "optimizers", "problems", "name")}
    raw.update(
        name=f"{d['name']}-tuning",
        seeds=tuning["seeds"],
        problems=problems,
        optimizers=points,
        description=f"hyper-parameter tuning for {d['name']} (seeds not used in evaluation)",
    )
    if tuning["budget"] is not None:
        raw["budget"] = tuning["budget"]
    return experiment_from_dict(raw, source=source)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)


def edge_value(values: Sequence[float], chosen: float) -> float | None:
    """The next grid value beyond ``chosen`` when it sits at an edge of ``values`` (None if
    inside, or if the values are not numbers). One step of the same size as the edge step:
    geometric (``v_0^2 / v_1``, ``v_n^2 / v_{n-1}``) for positive values, arithmetic
    otherwise; integer grids stay integers (and move by at least 1)."""
    nums = sorted({float(v) for v in values if _number(v)})
    if len(nums) < 2 or len(nums) != len(values) or not _number(chosen):
        return None
    if chosen == nums[0]:
        a, b = nums[0], nums[1]
    elif chosen == nums[-1]:
        a, b = nums[-1], nums[-2]
    else:
        return None
    new = a * a / b if a > 0 and b > 0 else 2 * a - b
    if all(isinstance(v, int) for v in values):
        new = float(round(new))
        if new == a:
            new = a + (1 if a > b else -1)
    return new


def _edge_points(
    d: dict, tuning: dict, source: str, choice: pd.DataFrame, tried: dict
) -> list[tuple[dict, Candidate]]:
    """One new configuration per (problem, entry, knob) whose chosen value is at the edge of
    the values tried: the other knobs at their chosen values (``tried`` is updated)."""
    entries = {o.get("label", o["name"]): o for o in d["optimizers"]}
    out = []
    for _, r in choice[choice["chosen"]].iterrows():
        entry = entries.get(r["entry"])
        if entry is None:
            continue
        for knob, value in sorted(dict(r["grid"]).items()):
            values = tried.setdefault(
                (r["problem"], r["entry"], knob), list(tuning["grid"][entry["name"]][knob])
            )
            new = edge_value(values, value)
            if new is None:
                continue
            if all(isinstance(v, int) for v in values):
                new = int(new)
            point = {**entry, "problems": [r["problem"]]}
            grid = {k: [v] for k, v in dict(r["grid"]).items()}
            grid[knob] = [new]
            try:
                out += _grid_points(point, {entry["name"]: grid}, source)
            except ExperimentError:  # the step left the parameter's range: the edge is a bound
                continue
            values.append(new)
    return out


def tuning_rounds(
    d: dict,
    tuning: dict,
    source: str,
    out: str | os.PathLike[str],
    run: Callable[[Experiment], object] | None = None,
) -> tuple[Experiment, pd.DataFrame]:
    """The tuning protocol with its grid extensions, and :func:`choose`'s final frame.

    Round 0 is :func:`tuning_plan`. After each round, every (problem, entry) whose chosen value
    of a numeric knob sits at the edge of the values tried gets one more value beyond it
    (:func:`edge_value`, other knobs at their chosen values), for ``tuning["extend"]`` rounds or
    until no choice is at an edge. ``run`` runs a round's experiment (all points so far; stored
    trials are reused); without it the stored trials are read (the report path), and a round
    whose trials are missing simply adds no information.
    """
    base = [p for o in d["optimizers"] for p in _grid_points(o, tuning["grid"], source)]
    points, candidates = [p for p, _ in base], [c for _, c in base]
    tried: dict = {}
    for round_ in range(int(tuning.get("extend", 0)) + 1):
        exp = _tuning_experiment(d, tuning, source, points)
        directory = Path(out) / exp.dirname
        if run is not None:
            run(exp)
        elif not directory.exists():
            raise ExperimentError(
                f"{source}: the tuning run {exp.dirname!r} has not been run yet "
                "(rnnbench run on this experiment runs it first)"
            )
        choice = choose(load_results(directory).trials, candidates, exp.keys())
        if round_ == int(tuning.get("extend", 0)):
            break
        new = _edge_points(d, tuning, source, choice, tried)
        if not new:
            break
        points += [p for p, _ in new]
        candidates += [c for _, c in new]
    return exp, choice


def choose(
    trials: pd.DataFrame, candidates: Sequence[Candidate], keys: Iterable[str] | None = None
) -> pd.DataFrame:
    """Score every candidate per problem and mark the winner per (problem, entry).

    ``trials`` is the tuning run's trial frame (only the rows whose key is in ``keys``, if
    given, count: a folder may hold trials of an earlier grid). A trial belongs to a candidate
    when its configuration (name and all hyper-parameters) equals the candidate's and the
    candidate's entry runs on its problem. The winner has the highest success rate, then the
    lowest median fe to target (a miss counts as inf), then the lowest median final train loss,
    then the earlier of ``candidates`` (so that the choice never depends on the trials' order).
    One row per (problem, candidate): ``problem, entry, configuration`` (the display label),
    ``optimizer`` (the configuration as data), ``grid``, ``trials``, ``success``,
    ``median_fe_to_target``, ``median_final_loss``, ``fe`` and ``seconds`` (summed tuning
    cost), ``chosen``; sorted by problem, entry and rank.
    """
    t = trials if keys is None else trials[trials["key"].isin(set(keys))]
    config = [
        canonical_json({"name": n, "params": json.loads(p)})
        for n, p in zip(t["optimizer_name"], t["optimizer_params"], strict=True)
    ]
    t = t.assign(_config=config, fe_to_target=t["fe_to_target"].fillna(np.inf))
    cands = pd.DataFrame(
        {
            "_config": [c.config_key() for c in candidates],
            "_cand": range(len(candidates)),
            "entry": [c.entry for c in candidates],
        }
    )
    m = t.merge(cands, on="_config", how="inner")
    runs_on = [
        candidates[i].problems is None or p in candidates[i].problems
        for i, p in zip(m["_cand"], m["problem"], strict=True)
    ]
    m = m[np.asarray(runs_on, dtype=bool)]
    score = (
        m.groupby(["problem", "entry", "_cand"], sort=False)
        .agg(
            trials=("key", "size"),
            success=("success", "mean"),
            median_fe_to_target=("fe_to_target", "median"),
            median_final_loss=("final_train_loss", "median"),
            fe=("fe", "sum"),
            seconds=("wall", "sum"),
        )
        .reset_index()
    )
    # exact ties (two configurations whose runs never differ, e.g. a gtol that no run reaches)
    # go to the earlier candidate of the grid, never to whichever trial was stored first: the
    # store's order is the executor's completion order
    score = score.sort_values(
        ["problem", "entry", "success", "median_fe_to_target", "median_final_loss", "_cand"],
        ascending=[True, True, False, True, True, True],
        kind="stable",
    )
    score["chosen"] = ~score.duplicated(["problem", "entry"])
    score.insert(2, "configuration", [candidates[i].label for i in score["_cand"]])
    score.insert(3, "optimizer", [candidates[i].optimizer for i in score["_cand"]])
    score.insert(4, "grid", [candidates[i].grid for i in score["_cand"]])
    return score.drop(columns=["_cand"]).reset_index(drop=True)


def choice_records(choice: pd.DataFrame, experiment: str, tuning_experiment: str) -> list[dict]:
    """One record of kind ``"tuning"`` per (problem, entry) of :func:`choose`'s frame (see the
    module docstring); its key hashes (problem, entry), so a rerun replaces it."""
    records = []
    for (problem, entry), g in choice.groupby(["problem", "entry"], sort=False):
        candidates = [
            {
                "label": r["configuration"],
                "grid": dict(r["grid"]),
                "optimizer": r["optimizer"],
                "trials": int(r["trials"]),
                **{
                    k: float(r[k])
                    for k in ("success", "median_fe_to_target", "median_final_loss", "fe")
                },
                "seconds": float(r["seconds"]),
                "chosen": bool(r["chosen"]),
            }
            for _, r in g.iterrows()
        ]
        records.append(
            {
                "key": "tuning-" + content_hash({"problem": problem, "entry": entry}),
                "kind": RECORD_KIND,
                "experiment": experiment,
                "tuning_experiment": tuning_experiment,
                "problem": problem,
                "entry": entry,
                "chosen": next(c["optimizer"] for c in candidates if c["chosen"]),
                "candidates": candidates,
            }
        )
    return records


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
            config = row["optimizer"]
            optimizers.append(
                {"name": config["name"], **config["params"], "label": label, "problems": [problem]}
            )
    raw = {k: v for k, v in d.items() if k != "tuning"}
    raw["optimizers"] = optimizers
    raw["tuned"] = sorted(tuned_names)
    return experiment_from_dict(raw, source=source)


def stored_choice(
    d: dict, tuning: dict, source: str, out: str | os.PathLike[str]
) -> tuple[Experiment, pd.DataFrame]:
    """The tuning run of ``d`` and :func:`choose`'s frame from its stored trials under ``out``
    (with the grid extensions that were run); ExperimentError if it has not been run."""
    return tuning_rounds(d, tuning, source, out)


def record_choices(
    d: dict, tuning: dict, source: str, out: str | os.PathLike[str]
) -> tuple[Experiment, pd.DataFrame]:
    """Choose from the stored tuning run, store the choices as records in the evaluation's
    folder (:func:`choice_records`); return the tuned evaluation experiment and the choices."""
    tune_exp, choice = stored_choice(d, tuning, source, out)
    exp = tuned_experiment(d, choice, source)
    with Store(Path(out) / exp.dirname) as store:
        for record in choice_records(choice, exp.name, tune_exp.name):
            store.write(record)
    return exp, choice


def run_tuned(
    name_or_path: str | os.PathLike[str],
    profile: str = "default",
    out: str | os.PathLike[str] = "results",
    jobs: int | None = None,
    dask: str | None = None,
    plugins: Sequence[str] = (),
    progress: bool = True,
    retry: bool = False,
) -> list[RunSummary]:
    """Run an experiment, with its tuning phase first when it has a ``[tuning]`` table.

    Returns the run summaries (tuning, then evaluation). Without ``[tuning]`` this is
    :func:`suite.runner.run_experiment`. The choices are stored (:func:`record_choices`)
    before the evaluation runs. ``retry`` reruns errored units (see ``run_experiment``).
    """
    d, source = read_raw(name_or_path, profile)
    tuning = _parse_tuning(d, source)
    if tuning is None:
        exp = experiment_from_dict(d, source=source)
        return [run_experiment(exp, out, jobs, dask, plugins, progress, retry=retry)]
    summaries: list[RunSummary] = []
    tuning_rounds(
        d,
        tuning,
        source,
        out,
        run=lambda e: summaries.append(
            run_experiment(e, out, jobs, dask, plugins, progress, retry=retry)
        ),
    )
    exp, _ = record_choices(d, tuning, source, out)
    summaries.append(run_experiment(exp, out, jobs, dask, plugins, progress, retry=retry))
    return summaries


def resolve(
    name_or_path: str | os.PathLike[str], profile: str, out: str | os.PathLike[str]
) -> Experiment:
    """The experiment as :func:`run_tuned` runs it (tuned from stored tuning results if any)."""
    d, source = read_raw(name_or_path, profile)
    tuning = _parse_tuning(d, source)
    if tuning is None:
        return experiment_from_dict(d, source=source)
    _, choice = stored_choice(d, tuning, source, out)
    return tuned_experiment(d, choice, source)
