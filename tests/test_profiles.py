"""Tests of suite.analysis.profiles on hand-made frames with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_metrics import coco_runs, make_frames

from suite.analysis import metrics as m
from suite.analysis import profiles as p

# ----------------------------------------------------------------------- ECDF, budgets, curves


def test_runtime_ecdf_fractions() -> None:
    trials, trace = make_frames(coco_runs())
    hits = m.time_to_target(trials, trace, targets=[0.1])
    e = p.runtime_ecdf(hits, grid=np.array([5.0, 10.0, 15.0, 20.0, 1000.0]))
    np.testing.assert_allclose(e["fraction"], [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert set(e["pairs"]) == {3}


def test_aggregate_ecdf_weights_problems_equally() -> None:
    ecdf = pd.DataFrame(
        {
            "problem": ["A", "A", "B", "B"],
            "optimizer": ["o"] * 4,
            "cost": [1.0, 2.0, 1.0, 2.0],
            "fraction": [0.0, 1.0, 0.5, 0.5],
        }
    )
    agg = p.aggregate_ecdf(ecdf)
    np.testing.assert_allclose(agg["fraction"], [0.25, 0.75])
    assert set(agg["problems"]) == {2}


def test_fixed_budget_takes_last_checkpoint_before_budget() -> None:
    trials, trace = make_frames(coco_runs())
    fb = p.fixed_budget(trace, [5, 25, 1000])
    run0 = fb[fb["seed"] == 0].set_index("budget")["train_loss"]
    np.testing.assert_allclose(run0.to_numpy(), [1.0, 0.05, 0.01])
    run2 = fb[fb["seed"] == 2].set_index("budget")["train_loss"]
    assert np.isnan(run2.loc[5.0]) and run2.loc[1000.0] == 0.2
    with pytest.raises(ValueError, match="budgets"):
        p.fixed_budget(trace, [0.0])


def test_loss_curves_quantiles_over_seeds() -> None:
    runs = [
        {"problem": "P", "optimizer": "a", "seed": s, "fe": [1, 10, 100], "loss": [v, v, v]}
        for s, v in enumerate([1.0, 2.0, 3.0])
    ]
    trials, trace = make_frames(runs)
    c = p.loss_curves(trace, "fe", points_per_decade=2)
    np.testing.assert_allclose(c["cost"], [1, 10**0.5, 10, 10**1.5, 100])
    np.testing.assert_allclose(c["median"], 2.0)
    np.testing.assert_allclose(c["low"], 1.5)
    np.testing.assert_allclose(c["high"], 2.5)


def test_loss_curves_undefined_before_runs_report() -> None:
    runs = [
        {"problem": "P", "optimizer": "a", "seed": 0, "fe": [1, 100], "loss": [1.0, 0.5]},
        {"problem": "P", "optimizer": "a", "seed": 1, "fe": [50, 100], "loss": [2.0, 0.1]},
    ]
    _, trace = make_frames(runs)
    c = p.loss_curves(trace, "fe", points_per_decade=1).set_index("cost")
    assert np.isnan(c.loc[1.0, "median"])  # one of two runs has no value yet
    assert c.loc[100.0, "median"] == pytest.approx(0.3)


def test_anytime_score_extremes_and_midpoint() -> None:
    common = {"problem": "P", "fe": [1, 1e4], "budget": 1e4, "target": 0.01, "baseline": 1.0}
    runs = [
        {**common, "optimizer": "fast", "seed": 0, "loss": [0.001, 0.001]},
        {**common, "optimizer": "stuck", "seed": 0, "loss": [1.0, 1.0]},
        {**common, "optimizer": "mid", "seed": 0, "loss": [0.1, 0.1]},
        {**common, "optimizer": "late", "seed": 0, "fe": [5e3, 1e4], "loss": [0.001, 0.001]},
    ]
    trials, trace = make_frames(runs)
    s = p.anytime_score(trials, trace, decades=4).set_index("optimizer")["anytime"]
    assert s["fast"] == 0.0 and s["stuck"] == 1.0
    assert s["mid"] == pytest.approx(0.5)
    assert 0.9 < s["late"] < 1.0  # undefined (g = 1) until 5e3 fe, then at the target


# ----------------------------------------------------------------------- profiles


def test_performance_profile_known_ratios() -> None:
    costs = pd.DataFrame(
        {
            "problem": ["P1", "P1", "P2", "P2", "P3", "P3"],
            "optimizer": ["A", "B"] * 3,
            "ert": [10.0, 20.0, 40.0, 20.0, np.inf, np.inf],
        }
    )
    ratios = p.performance_ratios(costs).set_index(["problem", "optimizer"])["ratio"]
    assert ratios["P1", "A"] == 1.0 and ratios["P1", "B"] == 2.0 and ratios["P2", "A"] == 2.0
    assert np.isinf(ratios["P3", "A"])
    prof = p.performance_profile(costs, taus=np.array([1.0, 1.5, 2.0, 100.0]))
    a = prof[prof["optimizer"] == "A"]["fraction"].to_numpy()
    np.testing.assert_allclose(a, [1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_performance_profile_missing_pair_counts_as_unsolved() -> None:
    costs = pd.DataFrame({"problem": ["P1", "P1", "P2"], "optimizer": ["A", "B", "A"]})
    costs["ert"] = [1.0, 1.0, 1.0]
    prof = p.performance_profile(costs, taus=np.array([1.0]))
    assert prof.set_index("optimizer").loc["B", "fraction"] == 0.5
