"""The scaling analysis: ERT ratio per size and pair with bounds, CMA-ES cost per generation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from suite.analysis.scaling import cmaes_overhead, scaling_ratios
from suite.analysis.verdicts.c1 import ert_bound


def _frames(hit_fe: dict[tuple[int, str], list[float]], budget: float = 1e6):
    trials, trace = [], []
    about = {"adam": ("gradient", "gradient,stochastic"), "cmaes": ("cmaes", "population")}
    for (hidden, opt), costs in hit_fe.items():
        problem = f"adding H={hidden}"
        for seed, hit in enumerate(costs):
            key = f"{problem}-{opt}-{seed}"
            trials.append(
                dict(
                    key=key, problem=problem, optimizer=opt, optimizer_name=opt, seed=seed,
                    task="adding", model="elman", model_params=json.dumps({"hidden": hidden}),
                    optimizer_params=json.dumps({"popsize": 10} if opt == "cmaes" else {}),
                    family=about[opt][0], tags=about[opt][1], target_loss=0.01, fe=budget,
                    wall=2.0, inside_wall=0.5, evaluations=100, status="budget",
                    final_train_loss=0.001 if math.isfinite(hit) else 0.5,
                )
            )  # fmt: skip
            for fe in np.geomspace(10, budget, 51):
                loss = 0.001 if fe >= hit else 1.0
                trace.append(
                    dict(key=key, problem=problem, optimizer=opt, seed=seed, fe=fe,
                         seconds=fe / 1e6, evaluations=int(fe), train_loss=loss, test_loss=loss)
                )  # fmt: skip
    return pd.DataFrame(trials), pd.DataFrame(trace)


def test_ratio_per_size_with_a_bound_where_the_black_box_never_succeeded():
    grid = np.geomspace(10, 1e6, 51)
    hit = float(grid[20])  # on the checkpoint grid: exact
    trials, trace = _frames(
        {(4, "adam"): [hit] * 6, (4, "cmaes"): [hit * 10] * 6,
         (8, "adam"): [hit] * 6, (8, "cmaes"): [math.inf] * 6}
    )  # fmt: skip
    out = scaling_ratios(trials, trace, {"adding H=4": 33, "adding H=8": 97})
    fe = out[out["clock"] == "fe"].set_index("params")
    assert list(fe.index) == [33, 97]
    assert fe.at[33, "ratio"] == pytest.approx(10) and fe.at[33, "bound"] == ""
    assert fe.at[33, "ratio_low"] <= fe.at[33, "ratio"] <= fe.at[33, "ratio_high"]
    assert fe.at[97, "bound"] == "lower" and fe.at[97, "ratio_high"] == math.inf
    assert fe.at[97, "ratio"] == pytest.approx(ert_bound(np.full(6, 1e6), np.zeros(6)) / hit)
    assert (fe["group"] == "first-order").all() and (fe["black_box"] == "cmaes").all()


def test_cmaes_cost_per_generation_from_the_records():
    trials, _ = _frames({(4, "cmaes"): [math.inf] * 2, (4, "adam"): [1.0] * 2})
    out = cmaes_overhead(trials, {"adding H=4": 33})
    (row,) = out.itertuples()
    assert row.generations == 10  # 100 evaluations / popsize 10
    assert row.optimizer_s_per_gen == pytest.approx(0.15)  # (2.0 - 0.5) / 10
    assert row.model_s_per_gen == pytest.approx(0.05)
    assert row.overhead_ratio == pytest.approx(3.0)


def test_scaling_figure_draws_intervals_and_bounds(tmp_path):
    from suite.report.scaling import scaling_figure

    grid = np.geomspace(10, 1e6, 51)
    hit = float(grid[20])
    trials, trace = _frames(
        {(4, "adam"): [hit] * 6, (4, "cmaes"): [hit * 10] * 6,
         (8, "adam"): [hit] * 6, (8, "cmaes"): [math.inf] * 6,
         (16, "adam"): [math.inf] * 6, (16, "cmaes"): [math.inf] * 6}
    )  # fmt: skip
    ratios = scaling_ratios(trials, trace, {"adding H=4": 33, "adding H=8": 97, "adding H=16": 321})
    assert set(ratios["bound"]) == {"", "lower", "none"}
    path = scaling_figure(ratios, tmp_path / "scaling.png")
    assert path.exists() and path.stat().st_size > 1000
