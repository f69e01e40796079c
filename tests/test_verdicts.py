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


def _starts(study: str, model: str, losses: list[float], escaped=False, cls="minimum", draws=1):
    """Analysed starts of one model on task ``p`` (baseline 1, best 0 per draw), ``draws``
    data seeds with the same end losses."""
    rows = []
    for d in range(draws):
        for i, L in enumerate(losses):
            rows.append(
                {
                    "study": f"{study} / data {d}",
                    "model": model,
                    "seed": i,
                    "data_seed": d,
                    "class": cls,
                    "loss": L,
                    "baseline_loss": 1.0,
                    "stall_gap": L,
                    "trap_candidate": (not escaped) and cls not in ("diverging", "diverged"),
                }
            )
    df = pd.DataFrame(rows)
    df["stalled"] = df["trap_candidate"] & (df["stall_gap"] > 0.1)
    return df


def _summary(study: str, model: str, draws=1, n_distinct=3, n_reached=5, **extra):
    return pd.DataFrame(
        [
            dict(
                study=f"{study} / data {d}",
                model=model,
                n_distinct=n_distinct,
                data_seed=d,
                params=13,
                hidden=2,
                window=extra.get("window"),
                n_reached=n_reached,
            )
            for d in range(draws)
        ]
    )


def test_c2_counts_traps_over_all_starts_and_refutes_escapable_stalls():
    n = 40
    losses = [0.5] * 20 + [0.0] * 20
    summary = _summary("p / elman", "elman")
    v = V.verdict_c2(_starts("p / elman", "elman", losses), summary)
    assert v["verdict"].iloc[0] == "supported"
    assert v["effect"].iloc[0] == pytest.approx(0.5)
    assert v["problem"].iloc[0] == "p / elman"
    assert "5%: 0.500" in v["detail"].iloc[0] and "classes: minimum 1.00" in v["detail"].iloc[0]
    # the same end losses, but every stalled start escaped (a plateau): no traps at all
    esc = V.verdict_c2(_starts("p / elman", "elman", losses, escaped=True), summary)
    assert esc["verdict"].iloc[0] == "refuted" and esc["effect"].iloc[0] == 0.0
    # diverging valleys are not optima either
    div = V.verdict_c2(_starts("p / elman", "elman", losses, cls="diverging"), summary)
    assert div["verdict"].iloc[0] == "refuted"
    # everyone reaches the best level
    level = V.verdict_c2(_starts("p / elman", "elman", [0.0] * n), summary)
    assert level["verdict"].iloc[0] == "refuted"
    # traps, but one optimum only: not "local optima"
    one = V.verdict_c2(
        _starts("p / elman", "elman", losses), _summary("p / elman", "elman", n_distinct=1)
    )
    assert one["verdict"].iloc[0] == "mixed"
    # the gated section uses the same rule on the gated studies only
    gated = V.verdict_c2(
        _starts("p / gru", "gru", losses), _summary("p / gru", "gru"), models=("gru", "lstm")
    )
    assert list(gated["problem"]) == ["p / gru"]


def test_c3_design_uses_a_common_reference_and_needs_capacity_on_both_sides():
    rnn_losses = [0.5] * 30 + [0.0] * 10
    rnn = _starts("p / elman(hidden=2)", "elman", rnn_losses, draws=3)
    tdnn = _starts("p / tdnn(hidden=2, window=2)", "tdnn", [0.0] * 40, draws=3)
    summary = pd.concat(
        [
            _summary("p / elman(hidden=2)", "elman", draws=3),
            _summary("p / tdnn(hidden=2, window=2)", "tdnn", draws=3, window=2),
        ]
    )
    v = V.verdict_c3(pd.concat([rnn, tdnn]), summary)
    assert v["verdict"].iloc[0] == "supported"
    assert v["effect"].iloc[0] == pytest.approx(0.75)
    assert v["problem"].iloc[0] == "p"
    assert "elman H=2 (13 p) vs tdnn H=2 w=2 (13 p)" in v["detail"].iloc[0]
    # swapped: the TDNN traps, the RNN does not
    v = V.verdict_c3(
        pd.concat([rnn.assign(loss=0.0, stall_gap=0.0), tdnn.assign(loss=0.5, stall_gap=0.5)]),
        summary,
    )
    assert v["verdict"].iloc[0] == "refuted"
    # a TDNN stuck at 0.5 everywhere has no stalls against its own best, but it has against
    # the common reference (the RNN's 0.0)
    stuck = tdnn.assign(loss=0.5, stall_gap=0.0)
    v = V.verdict_c3(pd.concat([rnn.assign(loss=0.0, stall_gap=0.0), stuck]), summary)
    assert v["effect"].iloc[0] == pytest.approx(-1.0) and v["effect_2"].iloc[0] == 0.0
    # a TDNN that never reaches the success target cannot enter the verdict
    no_cap = summary.assign(n_reached=np.where(summary["model"] == "tdnn", 0, 5))
    v = V.verdict_c3(pd.concat([rnn, tdnn]), no_cap)
    assert v["verdict"].iloc[0] == "no data"


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
