"""How C1 grows with the network (``scaling`` experiment): ERT ratios against parameter count,
and CMA-ES's own cost per generation against the model's evaluation cost.

:func:`scaling_ratios`: per problem (one task at one hidden size), every pair (gradient method,
black-box method) gets ``ERT(black-box) / ERT(gradient)`` in fe and in seconds with the interval
of :func:`suite.analysis.verdicts.c1.ert_ratio` (paired bootstrap when both sides succeed;
Clopper-Pearson bound from the side that never succeeded otherwise). Each trial's budget is in fe
and in seconds (whichever ends first), so a failed run's cost is what it spent on each clock.
Every black-box method is reported (full and separable CMA-ES), not only the best.

:func:`cmaes_overhead`: per CMA-ES trial, ``generations = evaluations / popsize`` (pycma's
default popsize ``4 + floor(3 ln P)`` when not set), the optimizer's own time per generation
``(wall - inside_wall) / generations`` (ask, tell, eigendecompositions: everything outside the
Problem) and the model's ``inside_wall / generations`` (the batched loss of one population);
their ratio is the measurement of ``bench/bench_cmaes.py``, taken from the records (pycma's
set-up, which grows with ``P^2``, is amortised over the generations of the run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from suite.analysis.metrics import time_to_target
from suite.analysis.verdicts.c1 import ert_ratio, paired_runs
from suite.optimizers.cmaes import default_popsize

SCALING_COLUMNS = [
    "task", "model", "hidden", "params", "problem", "bptt", "group", "black_box", "clock",
    "ratio", "ratio_low", "ratio_high", "bound", "bptt_successes", "bb_successes", "runs",
]  # fmt: skip
"""Columns of :func:`scaling_ratios`; ``bound`` is ``"lower"``, ``"upper"``, ``"none"`` (no
success on either side) or ``""`` (both succeeded: a bootstrap interval)."""


def _hidden(params: str) -> float:
    try:
        return float(json.loads(params).get("hidden", np.nan))
    except (TypeError, ValueError, AttributeError):
        return np.nan


def scaling_ratios(
    trials: pd.DataFrame, trace: pd.DataFrame, params: Mapping[str, int]
) -> pd.DataFrame:
    """ERT ratio black-box / gradient per problem, pair and clock (see the module docstring).

    ``params`` maps each problem label to the model's parameter count.
    """
    hits = time_to_target(trials, trace)
    meta = trials[["key", "task", "model", "model_params", "family", "tags"]]
    hits = hits.merge(meta, on="key", how="left")
    rows = []
    for problem, g in hits.groupby("problem", sort=False):
        seeds = np.array(sorted(g["seed"].unique()))
        per = paired_runs(g, seeds)
        first = g.iloc[0]
        for a, A in per.items():
            if A["group"] == "black-box":
                continue
            for b, B in per.items():
                if B["group"] != "black-box":
                    continue
                for clock, col in (("fe", "fe"), ("seconds", "s")):
                    e = ert_ratio(A, B, col)
                    ha, hb = A["hit"].any(), B["hit"].any()
                    bound = "" if ha and hb else ("lower" if ha else "upper" if hb else "none")
                    rows.append(
                        [
                            first["task"],
                            first["model"],
                            _hidden(first["model_params"]),
                            params.get(str(problem), np.nan),
                            problem,
                            a,
                            A["group"],
                            b,
                            clock,
                            e.value,
                            e.low,
                            e.high,
                            bound,
                            int(A["hit"].sum()),
                            int(B["hit"].sum()),
                            len(seeds),
                        ]  # fmt: skip
                    )
    out = pd.DataFrame(rows, columns=SCALING_COLUMNS)
    return out.sort_values(["task", "params", "bptt", "black_box", "clock"], kind="stable")


def cmaes_overhead(trials: pd.DataFrame, params: Mapping[str, int]) -> pd.DataFrame:
    """Median per problem and CMA-ES variant of the optimizer's and the model's seconds per
    generation and their ratio: ``task, hidden, params, optimizer, popsize, generations,
    optimizer_s_per_gen, model_s_per_gen, overhead_ratio``."""
    t = trials[trials["family"] == "cmaes"]
    cols = ["task", "hidden", "params", "optimizer", "popsize", "generations"]
    cols += ["optimizer_s_per_gen", "model_s_per_gen", "overhead_ratio"]
    if t.empty:
        return pd.DataFrame(columns=cols)
    P = t["problem"].map(lambda p: params.get(str(p), np.nan)).astype(float)
    pop = [
        json.loads(s).get("popsize") or (default_popsize(int(p)) if np.isfinite(p) else np.nan)
        for s, p in zip(t["optimizer_params"], P, strict=True)
    ]
    gens = t["evaluations"].astype(float) / np.asarray(pop, dtype=float)
    gens = gens.where(gens >= 1)  # a trial stopped before its first generation says nothing
    frame = pd.DataFrame(
        {
            "task": t["task"],
            "hidden": t["model_params"].map(_hidden),
            "params": P,
            "optimizer": t["optimizer"],
            "popsize": pop,
            "generations": gens,
            "optimizer_s_per_gen": (t["wall"] - t["inside_wall"]) / gens,
            "model_s_per_gen": t["inside_wall"] / gens,
        }
    )
    out = frame.groupby(["task", "hidden", "params", "optimizer"], sort=True).median().reset_index()
    out["overhead_ratio"] = out["optimizer_s_per_gen"] / out["model_s_per_gen"]
    return out[cols]
