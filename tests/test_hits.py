"""Exact hitting times: the Problem records the cost of the first evaluation at or below the
target, and the metrics use it instead of the next checkpoint."""

from __future__ import annotations

import numpy as np
import pandas as pd

from suite.analysis.metrics import time_to_target
from suite.frames import trial_frames
from suite.problem import Budget, make_problem


class Scripted:
    """An optimizer that evaluates a fixed list of points, one ``loss`` call each."""

    tags: tuple[str, ...] = ()

    def __init__(self, points: list[np.ndarray]) -> None:
        self.points = points

    def minimize(self, problem, x0, rng):  # noqa: ANN001, ANN201
        for p in self.points:
            problem.loss(p)
        return self.points[-1]


def _scripted_run():
    problem = make_problem("adding", model="elman", hidden=3, seq_len=6, n_train=8, n_test=4)
    rng = np.random.default_rng(3)
    points = [problem.initial_point(rng) * s for s in np.linspace(3.0, 0.01, 40)]
    losses = np.array([problem.evaluate(p) for p in points])
    running = np.minimum.accumulate(losses)
    # a target between two values of the running minimum, reached neither first nor last
    level = np.unique(running)[::-1]
    target = float(0.5 * (level[len(level) // 2] + level[len(level) // 2 + 1]))
    problem.target_loss = target
    first = int(np.flatnonzero(losses <= target)[0])
    problem.start(Budget(fe=1e9), allow_gradients=False, checkpoints_per_decade=2)
    one = problem.n_train * 6
    theta = Scripted(points).minimize(problem, None, None)
    result = problem.finish(theta)
    return problem, result, first, one, target


def test_first_hit_is_the_fe_of_the_first_evaluation_at_or_below_the_target():
    problem, result, first, one, target = _scripted_run()
    assert 0 < first < 39
    assert result.first_hit is not None
    assert result.first_hit["fe"] == (first + 1) * one
    assert result.first_hit["evaluations"] == first + 1
    assert 0 <= result.first_hit["seconds"] <= result.seconds
    # the checkpoint grid (2 per decade) would have said more
    trace_fe = np.asarray(result.trace["fe"])
    trace_loss = np.asarray(result.trace["train_loss"])
    assert trace_fe[np.flatnonzero(trace_loss <= target)[0]] > result.first_hit["fe"]


def test_the_metrics_use_the_exact_hit():
    problem, result, first, one, target = _scripted_run()
    record = {
        "key": "k",
        "spec": {"task": {"task": "adding"}, "model": {"model": "elman"}, "seed": 0,
                 "optimizer": {"name": "scripted", "params": {}}},
        "labels": {"problem": "p", "optimizer": "scripted"},
        "status": "budget",
        "target_loss": target,
        "final_train_loss": result.train_loss,
        "counters": result.counters,
        "trace": result.trace,
        "first_hit": result.first_hit,
        "optimizer": {"family": "x", "tags": []},
    }  # fmt: skip
    trials, trace = trial_frames([record])
    assert bool(trials["hit_exact"].iloc[0])
    assert trials["fe_to_target"].iloc[0] == (first + 1) * one
    hits = time_to_target(trials, trace)
    assert hits["fe"].iloc[0] == (first + 1) * one
    assert hits["seconds"].iloc[0] == result.first_hit["seconds"]
    # a ladder target other than the record's own still uses the checkpoints
    ladder = time_to_target(trials, trace, targets=pd.DataFrame({"key": ["k"], "target": [2.0]}))
    assert ladder["fe"].iloc[0] in set(result.trace["fe"])
    # records without first_hit (written before) fall back on the checkpoint
    trials2, trace2 = trial_frames([{k: v for k, v in record.items() if k != "first_hit"}])
    assert not bool(trials2["hit_exact"].iloc[0])
    assert time_to_target(trials2, trace2)["fe"].iloc[0] > (first + 1) * one
