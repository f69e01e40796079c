"""Verdicts are derived from the data by the stated rules: change the data, the verdict changes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from suite.analysis import verdicts as V


def _frames(
    hit_fe: dict[str, list[float]], budget: float = 1e5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trials and trace frames of one problem: each optimizer's per-seed hitting cost (inf = miss).

    The best-so-far loss is 1.0 until the hitting cost, then 0.001 (target 0.01).
    """
    trials, trace = [], []
    names = {"adam": "adam", "lbfgs": "scipy-lbfgsb", "cmaes": "cmaes", "rs": "random-search"}
    names.update(plugin="my-plugin-bptt")  # not registered: its tags come from its records
    family = {"adam": "gradient", "lbfgs": "scipy", "cmaes": "cmaes", "rs": "random"}
    family.update(plugin="my-plugin")
    tags = {
        "adam": "gradient,stochastic",
        "lbfgs": "deterministic,gradient",
        "cmaes": "population,stochastic",
        "rs": "population,stochastic",
        "plugin": "gradient",
    }
    for opt, costs in hit_fe.items():
        for seed, hit in enumerate(costs):
            key = f"{opt}-{seed}"
            final = 0.001 if math.isfinite(hit) else 0.5
            trials.append(
                dict(
                    key=key,
                    problem="p",
                    optimizer=opt,
                    optimizer_name=names[opt],
                    family=family[opt],
                    tags=tags[opt],
                    seed=seed,
                    final_train_loss=final,
                    target_loss=0.01,
                    fe=budget,
                    wall=budget / 1e6,
                    status="budget",
                )
            )
            grid = np.geomspace(10, budget, 41)
            for fe in grid:
                loss = 0.001 if fe >= hit else 1.0
                trace.append(
                    dict(
                        key=key,
                        problem="p",
                        optimizer=opt,
                        seed=seed,
                        fe=fe,
                        seconds=fe / 1e6,
                        evaluations=int(fe),
                        train_loss=loss,
                        test_loss=loss,
                    )
                )
    return pd.DataFrame(trials), pd.DataFrame(trace)


def test_c1_supported_then_refuted_when_the_records_change():
    seeds = 8
    trials, trace = _frames({"adam": [1e3] * seeds, "cmaes": [3e4] * seeds})
    v = V.verdict_c1(trials, trace)
    assert v["verdict"].tolist() == ["supported"]
    assert v["effect"].iloc[0] == pytest.approx(30, rel=0.3)
    assert v["ci_low"].iloc[0] > 1
    # the black-box method now reaches the target first on every seed
    trials, trace = _frames({"adam": [1e3] * seeds, "cmaes": [2e2] * seeds})
    v = V.verdict_c1(trials, trace)
    assert v["verdict"].tolist() == ["refuted"]
    assert v["effect"].iloc[0] < 1


def test_c1_picks_the_best_of_each_family_and_is_mixed_in_between():
    seeds = 8
    trials, trace = _frames(
        {
            "adam": [4e3] * seeds,
            "lbfgs": [2e3] * seeds,
            "cmaes": [4e3] * seeds,
            "rs": [np.inf] * seeds,
        }
    )
    v = V.verdict_c1(trials, trace)
    assert "best BPTT: lbfgs" in v["detail"].iloc[0]
    assert "best black-box: cmaes" in v["detail"].iloc[0]
    assert v["verdict"].iloc[0] == "mixed"  # 2x: faster, but not "much" faster


def test_c1_takes_gradient_methods_from_the_recorded_tags_not_the_registry():
    from suite.optimizers import optimizer_names

    assert "my-plugin-bptt" not in optimizer_names()  # the plugin is not loaded
    seeds = 8
    trials, trace = _frames({"plugin": [1e3] * seeds, "cmaes": [3e4] * seeds})
    assert V.gradient_names(trials) == {"my-plugin-bptt"}
    v = V.verdict_c1(trials, trace)
    assert "best BPTT: plugin" in v["detail"].iloc[0]
    assert v["verdict"].tolist() == ["supported"]
    # without the gradient tag it is a black-box method: no BPTT family left to compare
    trials["tags"] = trials["tags"].replace("gradient", "deterministic")
    assert V.gradient_names(trials) == set()
    assert V.verdict_c1(trials, trace)["verdict"].tolist() == ["no data"]
    with pytest.raises(ValueError, match="tags"):
        V.gradient_names(trials.drop(columns="tags"))


def test_c1_falls_back_to_final_losses_when_nobody_reaches_the_target():
    trials, trace = _frames({"adam": [np.inf] * 6, "cmaes": [np.inf] * 6})
    trials.loc[trials["optimizer"] == "adam", "final_train_loss"] = 0.01
    v = V.verdict_c1(trials, trace)
    assert v["measure"].iloc[0].startswith("final-loss ratio")
    assert v["effect"].iloc[0] == pytest.approx(50)
    assert v["verdict"].iloc[0] == "supported"
    trials.loc[trials["optimizer"] == "cmaes", "final_train_loss"] = 0.005
    assert V.verdict_c1(trials, trace)["verdict"].iloc[0] == "refuted"


def _starts(study: str, model: str, classes: list[str], gaps: list[float]) -> pd.DataFrame:
    n = len(classes)
    return pd.DataFrame(
        dict(
            study=study,
            model=model,
            seed=np.arange(n),
            **{"class": classes},
            stall_gap=gaps,
            stalled=[c == "minimum" and g > 0.1 for c, g in zip(classes, gaps, strict=True)],
        )
    )


def test_c2_needs_real_minima_and_refutes_when_all_reach_the_best():
    n = 40
    stalled = _starts("s / elman", "elman", ["minimum"] * n, [0.5] * 20 + [0.0] * 20)
    summary = pd.DataFrame(
        [dict(study="s / elman", model="elman", n_distinct=3, best_loss=0.0, baseline_loss=1.0)]
    )
    assert V.verdict_c2(stalled, summary)["verdict"].iloc[0] == "supported"
    # the same end losses, but nothing converged: the stalls cannot be called minima
    unconverged = _starts("s / elman", "elman", ["not converged"] * n, [0.5] * 20 + [0.0] * 20)
    assert V.verdict_c2(unconverged, summary)["verdict"].iloc[0] == "mixed"
    # everyone reaches the best level
    level = _starts("s / elman", "elman", ["minimum"] * n, [0.0] * n)
    assert V.verdict_c2(level, summary)["verdict"].iloc[0] == "refuted"


def test_c3_compares_the_twins_paired_by_seed():
    n = 40
    rnn = _starts("p / elman / adam", "elman", ["not converged"] * n, [0.5] * 30 + [0.0] * 10)
    tdnn = _starts("p / tdnn / adam", "tdnn", ["minimum"] * n, [0.0] * n)
    comparison = pd.DataFrame(
        [
            dict(
                rnn_study="p / elman / adam",
                tdnn_study="p / tdnn / adam",
                statistic=s,
                measure="difference",
                rnn=0.5,
                tdnn=0.1,
                value=0.4,
                value_low=0.1,
                value_high=0.6,
                n_seeds=n,
            )
            for s in ("stall_rate", "unconverged_rate", "distinct_per_start")
        ]
    )
    starts = pd.concat([rnn, tdnn])
    v = V.verdict_c3(starts, comparison)
    assert v["verdict"].iloc[0] == "supported"
    assert v["effect"].iloc[0] == pytest.approx(0.75)
    assert v["problem"].iloc[0] == "p / elman"
    swapped = pd.concat([rnn.assign(stall_gap=0.0), tdnn.assign(stall_gap=0.5)])
    assert V.verdict_c3(swapped, comparison)["verdict"].iloc[0] == "refuted"


def test_c4_follows_the_trend_table():
    def trends(rho_t: float, rho_r: float) -> pd.DataFrame:
        rows = []
        for model, against, rho in (
            ("elman", "seq_len", rho_t),
            ("elman", "spectral_radius", rho_r),
            ("tdnn", "seq_len", 0.0),
        ):
            rows.append(
                dict(
                    task="adding",
                    model=model,
                    where="init",
                    metric="minima_per_unit",
                    against=against,
                    rho=rho,
                    rho_low=rho - 0.2,
                    rho_high=rho + 0.2,
                    n=64,
                )
            )
        return pd.DataFrame(rows)

    assert V.verdict_c4(trends(0.6, 0.7))["verdict"].iloc[0] == "supported"
    assert V.verdict_c4(trends(0.6, -0.1))["verdict"].iloc[0] == "mixed"
    assert V.verdict_c4(trends(-0.2, -0.1))["verdict"].iloc[0] == "refuted"


def test_every_claim_has_a_rule_and_limits():
    assert set(V.RULES) == set(V.LIMITS) == {"C1", "C2", "C3", "C4"}
