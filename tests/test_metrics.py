"""Tests of suite.analysis.metrics on hand-made frames with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from suite.analysis import metrics as m
from suite.analysis import profiles
from suite.analysis.stats import holm


def make_frames(runs: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trials and trace frames from a list of runs ``{problem, optimizer, seed, fe, loss, ...}``."""
    trials, traces = [], []
    for r in runs:
        key = f"{r['problem']}|{r['optimizer']}|{r['seed']}"
        fe = np.asarray(r["fe"], dtype=float)
        loss = np.asarray(r["loss"], dtype=float)
        seconds = np.asarray(r.get("seconds", fe / 1000.0), dtype=float)
        trials.append(
            {
                "key": key,
                "problem": r["problem"],
                "optimizer": r["optimizer"],
                "seed": r["seed"],
                "status": r.get("status", "budget"),
                "error": r.get("error"),
                "final_train_loss": r.get("final", loss[-1] if loss.size else np.inf),
                "final_test_loss": r.get("final_test", loss[-1] if loss.size else np.inf),
                "target_loss": r.get("target", 0.1),
                "baseline_loss": r.get("baseline", 1.0),
                "fe": r.get("spent", fe[-1] if fe.size else 0.0),
                "wall": r.get("wall", 1.0),
                "budget_fe": r.get("budget", np.nan),
            }
        )
        traces.append(
            pd.DataFrame(
                {
                    "key": key,
                    "problem": r["problem"],
                    "optimizer": r["optimizer"],
                    "seed": r["seed"],
                    "fe": fe,
                    "seconds": seconds,
                    "evaluations": np.arange(fe.size),
                    "train_loss": loss,
                    "test_loss": loss * 1.5,
                }
            )
        )
    return pd.DataFrame(trials), pd.concat(traces, ignore_index=True)


def coco_runs() -> list[dict]:
    """Two successes at 10 and 20 fe and one failure that spent 30 fe (target 0.1)."""
    return [
        {"problem": "P", "optimizer": "a", "seed": 0, "fe": [1, 10, 100], "loss": [1, 0.05, 0.01]},
        {
            "problem": "P",
            "optimizer": "a",
            "seed": 1,
            "fe": [10, 20, 30],
            "loss": [0.5, 0.09, 0.08],
        },
        {"problem": "P", "optimizer": "a", "seed": 2, "fe": [10, 30], "loss": [0.5, 0.2]},
    ]


# ----------------------------------------------------------------------- time to target, ERT


def test_ert_known_answer_direct() -> None:
    assert m.ert(np.array([10.0, 20.0, 30.0]), np.array([True, True, False])) == 30.0
    assert np.isinf(m.ert(np.array([5.0, 7.0]), np.array([False, False])))
    stacked = m.ert(np.array([[10.0, 30.0], [4.0, 4.0]]), np.array([[True, False], [True, True]]))
    np.testing.assert_allclose(stacked, [40.0, 4.0])


def test_ert_known_answer_from_trace() -> None:
    trials, trace = make_frames(coco_runs())
    hits = m.time_to_target(trials, trace)
    got = hits.set_index("seed")
    assert list(got["hit"]) == [True, True, False]
    np.testing.assert_allclose(got.loc[[0, 1], "fe"], [10.0, 20.0])
    np.testing.assert_allclose(got.loc[2, "spent_fe"], 30.0)
    table = m.ert_table(hits, n_boot=200, rng=np.random.default_rng(1))
    assert table.loc[0, "ert"] == pytest.approx(30.0)
    assert table.loc[0, "successes"] == 2 and table.loc[0, "runs"] == 3
    assert table.loc[0, "ert_low"] <= 30.0
    # a resample with only the failure has no success: the upper bound is infinite
    assert np.isinf(table.loc[0, "ert_high"])


def test_ert_clock_seconds_uses_trace_seconds() -> None:
    runs = coco_runs()
    for r in runs:
        r["seconds"] = [2.0 * f for f in r["fe"]]
    trials, trace = make_frames(runs)
    hits = m.time_to_target(trials, trace)
    table = m.ert_table(hits, clock="seconds", n_boot=10)
    assert table.loc[0, "ert"] == pytest.approx(60.0)


def test_time_to_target_uses_best_so_far_and_nan_as_inf() -> None:
    runs = [
        {
            "problem": "P",
            "optimizer": "a",
            "seed": 0,
            "fe": [1, 2, 4, 8],
            "loss": [0.5, 0.05, np.nan, 0.2],  # non-monotone trace, NaN in the middle
        }
    ]
    trials, trace = make_frames(runs)
    hits = m.time_to_target(trials, trace, targets=[0.5, 0.1, 0.05, 0.01])
    assert list(hits["hit"]) == [True, True, True, False]
    np.testing.assert_allclose(hits["fe"].to_numpy()[:3], [1.0, 2.0, 2.0])
    assert np.isnan(hits["fe"].iloc[3])


def test_time_to_target_matches_a_loop_on_random_traces() -> None:
    rng = np.random.default_rng(3)
    runs = []
    for seed in range(25):
        n = int(rng.integers(1, 30))
        fe = np.cumsum(rng.uniform(1, 10, n))
        loss = rng.lognormal(0, 1, n)
        loss[rng.uniform(size=n) < 0.1] = np.inf
        runs.append(
            {"problem": f"P{seed % 3}", "optimizer": "o", "seed": seed, "fe": fe, "loss": loss}
        )
    trials, trace = make_frames(runs)
    targets = np.sort(rng.lognormal(0, 1, 7))
    hits = m.time_to_target(trials, trace, targets=list(targets))
    for r in runs:
        best = np.minimum.accumulate(np.nan_to_num(r["loss"], nan=np.inf))
        key = f"{r['problem']}|o|{r['seed']}"
        h = hits[hits["key"] == key].sort_values("target_id")
        for t, (_, row) in zip(targets, h.iterrows(), strict=True):
            first = np.flatnonzero(best <= t)
            assert row["hit"] == bool(first.size)
            if first.size:
                assert row["fe"] == r["fe"][first[0]]


def test_time_to_target_run_without_trace_is_a_failure() -> None:
    trials, trace = make_frames(coco_runs())
    extra = trials.iloc[[0]].assign(key="none", seed=9, fe=0.0)
    hits = m.time_to_target(pd.concat([trials, extra], ignore_index=True), trace)
    row = hits[hits["key"] == "none"].iloc[0]
    assert not row["hit"] and row["spent_fe"] == 0.0


def test_success_rate() -> None:
    trials, trace = make_frames(coco_runs())
    sr = m.success_rate(m.time_to_target(trials, trace))
    assert sr.loc[0, "success_rate"] == pytest.approx(2 / 3)


def test_target_ladder_is_log_spaced_to_the_target() -> None:
    trials, _ = make_frames(coco_runs())
    lad = m.target_ladder(trials, n_targets=4)
    t = lad[lad["key"] == trials["key"][0]]["target"].to_numpy()
    np.testing.assert_allclose(t, [10**-0.25, 10**-0.5, 10**-0.75, 0.1])
    lad = m.target_ladder(trials, factors=[10, 1])
    np.testing.assert_allclose(lad["target"].to_numpy()[:2], [1.0, 0.1])
    with pytest.raises(ValueError, match="factors"):
        m.target_ladder(trials, factors=[-1])
    bad = trials.assign(target_loss=2.0)
    with pytest.raises(ValueError, match="target_loss < baseline_loss"):
        m.target_ladder(bad)


# ----------------------------------------------------------------------- paired tests


def paired_runs(factor: float, n: int = 6, fail_seed: int | None = None) -> list[dict]:
    runs = []
    for s in range(n):
        t_ref = 10.0 * (s + 1)
        for opt, t in (("ref", t_ref), ("x", factor * t_ref)):
            loss = [1.0, 0.05] if not (opt == "x" and s == fail_seed) else [1.0, 0.5]
            runs.append({"problem": "P", "optimizer": opt, "seed": s, "fe": [1.0, t], "loss": loss})
    return runs


def test_paired_comparison_time_ratio_test_and_effect() -> None:
    trials, trace = make_frames(paired_runs(2.0))
    hits = m.time_to_target(trials, trace)
    out = m.paired_comparison(trials, "ref", hits=hits, n_boot=300, rng=np.random.default_rng(0))
    row = out.iloc[0]
    assert row["optimizer"] == "x" and row["n_pairs"] == 6
    assert row["ratio"] == pytest.approx(2.0)
    assert row["ratio_low"] == pytest.approx(2.0) and row["ratio_high"] == pytest.approx(2.0)
    assert row["gmean_ratio"] == pytest.approx(2.0)
    assert row["effect"] == -1.0 and row["n_worse"] == 6
    assert row["p"] == pytest.approx(2 / 2**6)
    assert row["p_holm"] == pytest.approx(row["p"])  # one comparison: nothing to adjust


def test_paired_comparison_failure_counts_as_infinite_time() -> None:
    trials, trace = make_frames(paired_runs(0.5, n=5, fail_seed=4))
    hits = m.time_to_target(trials, trace)
    row = m.paired_comparison(trials, "ref", hits=hits, n_boot=200).iloc[0]
    assert row["ratio"] == pytest.approx(0.5)  # 4 of 5 pairs at 0.5, one at inf
    assert row["n_better"] == 4 and row["n_worse"] == 1
    expected = stats.wilcoxon(np.r_[np.full(4, np.log(0.5)), np.inf]).pvalue
    assert row["p"] == pytest.approx(expected)
    assert row["ratio_high"] == np.inf or row["ratio_high"] >= 0.5


def test_paired_comparison_both_failed_pairs_are_dropped() -> None:
    trials, trace = make_frames(paired_runs(1.0, n=3))
    trials["target_loss"] = 1e-9  # nobody succeeds
    hits = m.time_to_target(trials, trace)
    row = m.paired_comparison(trials, "ref", hits=hits, n_boot=50).iloc[0]
    assert row["n_both_inf"] == 3 and np.isnan(row["ratio"]) and np.isnan(row["p"])


def test_paired_comparison_final_loss_and_holm_over_problems() -> None:
    runs = []
    for prob, factor in (("P1", 0.5), ("P2", 1.1)):
        for s in range(6):
            base = 0.1 * (s + 1)
            runs.append({"problem": prob, "optimizer": "ref", "seed": s, "fe": [1], "loss": [base]})
            runs.append(
                {"problem": prob, "optimizer": "x", "seed": s, "fe": [1], "loss": [factor * base]}
            )
    trials, _ = make_frames(runs)
    out = m.paired_comparison(trials, "ref", metric="final_train_loss", n_boot=100)
    out = out.set_index("problem")
    assert out.loc["P1", "ratio"] == pytest.approx(0.5) and out.loc["P1", "effect"] == 1.0
    assert out.loc["P2", "ratio"] == pytest.approx(1.1) and out.loc["P2", "effect"] == -1.0
    np.testing.assert_allclose(out["p_holm"], holm(out["p"].to_numpy()))
    assert (out["p_holm"] >= out["p"]).all() and (out["p_holm"] > out["p"]).any()


def test_paired_comparison_rejects_bad_input() -> None:
    trials, trace = make_frames(paired_runs(2.0))
    hits = m.time_to_target(trials, trace)
    with pytest.raises(ValueError, match="reference 'nope'"):
        m.paired_comparison(trials, "nope", hits=hits)
    with pytest.raises(ValueError, match="metric must be"):
        m.paired_comparison(trials, "ref", metric="speed")
    with pytest.raises(ValueError, match="needs the hits"):
        m.paired_comparison(trials, "ref")
    with pytest.raises(ValueError, match="clock must be"):
        m.paired_comparison(trials, "ref", hits=hits, clock="cpu")
    with pytest.raises(ValueError, match="one target per run"):
        m.paired_comparison(trials, "ref", hits=m.time_to_target(trials, trace, targets=[0.5, 0.1]))


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match=r"trace lacks columns \['fe', 'seconds'"):
        m.best_so_far(pd.DataFrame({"key": [], "problem": [], "optimizer": [], "seed": []}))
    with pytest.raises(ValueError, match="clock must be"):
        profiles.runtime_ecdf(pd.DataFrame(), clock="minutes")


def test_time_to_target_is_fast_for_thousands_of_runs() -> None:
    import time

    rng = np.random.default_rng(0)
    n_runs, n_ck = 3000, 60
    fe = np.tile(10 ** np.linspace(0, 6, n_ck), n_runs)
    keys = np.repeat([f"k{i}" for i in range(n_runs)], n_ck)
    loss = np.exp(-fe / 1e4 * rng.lognormal(0, 1, n_runs * n_ck))
    trace = pd.DataFrame(
        {
            "key": keys,
            "problem": "P",
            "optimizer": np.repeat(np.arange(n_runs) % 4, n_ck).astype(str),
            "seed": np.repeat(np.arange(n_runs), n_ck),
            "fe": fe,
            "seconds": fe / 1e4,
            "train_loss": loss,
            "test_loss": loss,
        }
    )
    trials = trace.drop_duplicates("key")[["key", "problem", "optimizer", "seed"]].assign(
        target_loss=0.01, baseline_loss=1.0, fe=1e6, wall=1.0
    )
    t0 = time.perf_counter()
    hits = m.time_to_target(trials, trace, m.target_ladder(trials, 20))
    profiles.runtime_ecdf(hits)
    profiles.loss_curves(trace)
    assert time.perf_counter() - t0 < 10.0
    assert len(hits) == n_runs * 20
