"""Verdicts are derived from the data by the stated rules: change the data, the verdict changes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from suite.analysis import verdicts as V
from suite.analysis.metrics import time_to_target


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


def _c1(v: pd.DataFrame, claim: str = "C1", group: str = "first-order") -> pd.Series:
    """The first row of ``claim`` for the gradient group ``group``."""
    label = V.c1.GROUPS[group]
    return v[(v["claim"] == claim) & v["problem"].str.endswith(label)].iloc[0]


def test_c1_supported_then_refuted_when_the_records_change():
    seeds = 8
    trials, trace = _frames({"adam": [1e3] * seeds, "cmaes": [3e4] * seeds})
    v = V.verdict_c1(trials, trace)
    assert v[v["claim"] == "C1"]["verdict"].tolist() == ["supported"]
    assert _c1(v)["effect"] == pytest.approx(30, rel=0.3)
    assert _c1(v)["ci_low"] >= 3
    # the black-box method now reaches the target first on every seed
    trials, trace = _frames({"adam": [1e3] * seeds, "cmaes": [2e2] * seeds})
    v = V.verdict_c1(trials, trace)
    assert v[v["claim"] == "C1"]["verdict"].tolist() == ["refuted"]
    assert _c1(v)["effect"] < 1


def test_c1_judges_first_order_and_quasi_newton_separately():
    seeds = 8
    trials, trace = _frames(
        {
            "adam": [4e3] * seeds,
            "lbfgs": [1e3] * seeds,
            "cmaes": [6e3] * seeds,
            "rs": [np.inf] * seeds,
        }
    )
    v = V.verdict_c1(trials, trace)
    fo, qn = _c1(v, group="first-order"), _c1(v, group="quasi-newton")
    assert "first-order BPTT: adam" in fo["detail"] and "best black-box: cmaes" in fo["detail"]
    assert "quasi-Newton/CG BPTT: lbfgs" in qn["detail"]
    assert fo["verdict"] == "mixed"  # 1.5x: faster, but not "much" faster
    assert qn["verdict"] == "supported"  # 6x
    assert fo["effect"] == pytest.approx(1.5, rel=0.3)  # checkpoint grid: 10 per decade


def test_c1_takes_gradient_methods_from_the_recorded_tags_not_the_registry():
    from suite.optimizers import optimizer_names

    assert "my-plugin-bptt" not in optimizer_names()  # the plugin is not loaded
    seeds = 8
    trials, trace = _frames({"plugin": [1e3] * seeds, "cmaes": [3e4] * seeds})
    assert V.gradient_names(trials) == {"my-plugin-bptt"}
    v = V.verdict_c1(trials, trace)
    assert "first-order BPTT: plugin" in _c1(v)["detail"]
    assert _c1(v)["verdict"] == "supported"
    # without the gradient tag it is a black-box method: no BPTT family left to compare
    trials["tags"] = trials["tags"].replace("gradient", "deterministic")
    assert V.gradient_names(trials) == set()
    assert V.verdict_c1(trials, trace)["verdict"].tolist() == ["no data"]
    with pytest.raises(ValueError, match="tags"):
        V.gradient_names(trials.drop(columns="tags"))


def test_c1_never_falls_back_to_final_losses_the_fixed_budget_view_is_c1q():
    trials, trace = _frames({"adam": [np.inf] * 6, "cmaes": [np.inf] * 6})
    trials.loc[trials["optimizer"] == "adam", "final_train_loss"] = 0.01
    v = V.verdict_c1(trials, trace)
    c1 = _c1(v)
    assert c1["measure"].startswith("ERT ratio")
    assert c1["verdict"] == "mixed"  # no success on either side: ratio in [0, inf)
    assert (c1["ci_low"], c1["ci_high"]) == (0.0, math.inf)
    q = _c1(v, "C1q")
    assert q["measure"].startswith("final-loss ratio")
    assert q["effect"] == pytest.approx(50)
    assert q["verdict"] == "supported"
    trials.loc[trials["optimizer"] == "cmaes", "final_train_loss"] = 0.005
    assert _c1(V.verdict_c1(trials, trace), "C1q")["verdict"] == "refuted"


def test_no_success_in_20_runs_gets_the_clopper_pearson_bound():
    p_up = V.c1.success_upper(0, 20)
    assert p_up == pytest.approx(1 - 0.025 ** (1 / 20))
    assert p_up == pytest.approx(0.168, abs=5e-4)
    budget = 1e7
    bound = V.c1.ert_bound(np.full(20, budget), np.zeros(20, bool))
    assert bound == pytest.approx(budget * (1 - p_up) / p_up)
    e = V.c1.ert_interval(np.full(20, budget), np.zeros(20, bool))
    assert (e.value, e.low, e.high) == (bound, bound, math.inf)
    # in the verdict: the ratio is a lower bound, bound / (BPTT ERT's upper limit), never inf
    trials, trace = _frames({"adam": [1e3] * 20, "cmaes": [np.inf] * 20}, budget=budget)
    c1 = _c1(V.verdict_c1(trials, trace))
    hits = time_to_target(trials, trace)
    adam_fe = hits[hits["optimizer"] == "adam"]["fe"].to_numpy()  # on the checkpoint grid
    ert_high = V.c1.ert_interval(adam_fe, np.ones(20, bool)).high
    assert c1["ci_low"] == pytest.approx(bound / ert_high, rel=0.02)
    assert c1["effect"] == c1["ci_low"] and c1["ci_high"] == math.inf
    assert math.isfinite(c1["effect"]) and c1["verdict"] == "supported"


def test_a_ratio_whose_lower_bound_is_under_3_does_not_support():
    # 0/6 black-box successes at a budget only 2x BPTT's hitting cost: the point ratio was
    # "infinite", the bound is at most 2e4 * (1 - 0.46) / 0.46 / 1e4 = 2.35
    trials, trace = _frames({"adam": [1e4] * 6, "cmaes": [np.inf] * 6}, budget=2e4)
    c1 = _c1(V.verdict_c1(trials, trace))
    assert c1["ci_low"] < 3
    assert c1["verdict"] != "supported"
    # a finite ratio with point >= 3 but lower bound < 3 does not support either
    fast = [1e3] * 4 + [2e4] * 4
    trials, trace = _frames({"adam": fast, "cmaes": [2e4] * 8})
    c1 = _c1(V.verdict_c1(trials, trace))
    assert c1["effect"] >= 1.8 and c1["ci_low"] < 3 and c1["verdict"] != "supported"
    e = V.c1.Effect(5.0, 2.9, 9.0)
    assert V.c1.c1_rule(e, V.c1.Effect(5.0, 3.1, 9.0)) == "mixed"
    assert V.c1.c1_rule(V.c1.Effect(5.0, 3.0, 9.0), V.c1.Effect(5.0, 3.1, 9.0)) == "supported"


def _tuning_record(problem: str, entry: str, success: float, fe: float) -> dict:
    cand = dict(success=success, median_fe_to_target=fe, median_final_loss=0.1, fe=1e5)
    return dict(problem=problem, entry=entry, candidates=[{**cand, "seconds": 1.0, "chosen": True}])


def test_the_family_winner_comes_from_tuning_records_only():
    seeds = 8
    trials, trace = _frames({"adam": [4e3] * seeds, "plugin": [1e3] * seeds, "cmaes": [3e4] * 8})
    tuning = [
        _tuning_record("p", "adam", 1.0, 2e3),  # adam was better on the tuning seeds
        _tuning_record("p", "plugin", 1.0, 5e3),
        _tuning_record("p", "cmaes", 1.0, 1e4),
    ]
    v = V.verdict_c1(trials, trace, tuning=tuning)
    assert "first-order BPTT: adam" in _c1(v)["detail"]
    assert "chosen on tuning seeds" in _c1(v)["detail"]
    # change the evaluation records: adam far worse; the choice does not move
    trials2, trace2 = _frames({"adam": [5e4] * seeds, "plugin": [1e2] * seeds, "cmaes": [3e4] * 8})
    v2 = V.verdict_c1(trials2, trace2, tuning=tuning)
    assert "first-order BPTT: adam" in _c1(v2)["detail"]
    # change the tuning records: the choice moves
    tuning[0] = _tuning_record("p", "adam", 0.5, 2e3)
    assert "first-order BPTT: plugin" in _c1(V.verdict_c1(trials, trace, tuning=tuning))["detail"]
    # the tuning cost is charged in its own view
    t = _c1(v, "C1+tuning")
    assert t["effect"] < _c1(v)["effect"]


def test_black_box_methods_of_another_folder_compete_for_best_black_box():
    seeds = 8
    trials, trace = _frames({"adam": [1e3] * seeds, "cmaes": [3e4] * seeds})
    ng, ng_trace = _frames({"rs": [2e3] * seeds, "lbfgs": [10.0] * seeds})
    for frame in (ng, ng_trace):  # a nevergrad method and a gradient method in that folder
        frame["optimizer"] = frame["optimizer"].replace({"rs": "ng-TwoPointsDE"})
        frame["key"] = "ng-" + frame["key"]
    ng["optimizer_name"] = ng["optimizer_name"].replace({"random-search": "ng-TwoPointsDE"})
    t, tr = V.c1.add_black_box(trials, trace, ng, ng_trace)
    assert "lbfgs" not in set(t["optimizer"])  # only its black-box methods are added
    v = V.verdict_c1(t, tr)
    assert "best black-box: ng-TwoPointsDE" in _c1(v)["detail"]
    assert _c1(v)["verdict"] == "mixed"  # 2x
    assert _c1(V.verdict_c1(trials, trace))["verdict"] == "supported"  # without it: 30x


def test_heldout_table_shows_overfitting():
    trials, _ = _frames({"adam": [1e3] * 4, "cmaes": [3e4] * 4})
    trials["final_test_loss"] = np.where(trials["optimizer"] == "adam", 0.05, 0.001)
    h = V.c1.heldout_table(trials).set_index("group")
    assert h.at["first-order", "optimizer"] == "adam"
    assert h.at["first-order", "test_over_train"] == pytest.approx(50)
    assert h.at["first-order", "success_train"] == 1.0
    assert h.at["first-order", "success_heldout"] == 0.0
    assert h.at["black-box", "success_heldout"] == 1.0


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


def _c4b_trends(rho_t: float, rho_r: float, stall: float, half: float = 0.2) -> pd.DataFrame:
    rows = []
    for metric, where, against, rho in (
        ("minima_fixed", "init", "seq_len", rho_t),
        ("minima_fixed", "init", "spectral_radius", rho_r),
        ("stall_gap", "trained", "seq_len", stall),
        ("stall_gap", "trained", "spectral_radius", stall),
    ):
        rows.append(
            dict(
                task="adding",
                model="elman",
                where=where,
                metric=metric,
                against=against,
                stratum="mean",
                rho=rho,
                rho_low=rho - half,
                rho_high=rho + half,
                n=64,
            )
        )
    return pd.DataFrame(rows)


def test_c4b_follows_the_trend_table():
    assert V.verdict_c4b(_c4b_trends(0.6, 0.7, 0.5))["verdict"].iloc[0] == "supported"
    # rough but the traps are not worse: not the whole statement
    assert V.verdict_c4b(_c4b_trends(0.6, 0.7, 0.0))["verdict"].iloc[0] == "mixed"
    assert V.verdict_c4b(_c4b_trends(0.6, -0.1, 0.5))["verdict"].iloc[0] == "mixed"
    # trends whose intervals exclude 0.3 and no stall trend: refuted
    assert V.verdict_c4b(_c4b_trends(0.0, 0.05, 0.0, half=0.1))["verdict"].iloc[0] == "refuted"
    # a wide interval around 0 cannot refute
    assert V.verdict_c4b(_c4b_trends(0.0, 0.0, 0.0, half=0.5))["verdict"].iloc[0] == "mixed"


def _slices(slope: float, stall_slope: float, seed: int = 0) -> pd.DataFrame:
    """Constructed landscape measurements: minima per line grow with T and radius by
    ``slope`` (plus noise), stall gaps by ``stall_slope``."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in (0.5, 1.0, 2.0):
        for T in (5, 10, 20, 40):
            for s in range(12):
                for where in ("init", "trained"):
                    rows.append(
                        dict(
                            task="adding",
                            model="elman",
                            where=where,
                            seq_len=T,
                            spectral_radius=r,
                            seed=s,
                            minima_fixed=slope * (np.log2(T) + r) + rng.normal(),
                            stall_gap=stall_slope * (np.log2(T) + r) + rng.normal()
                            if where == "trained"
                            else np.nan,
                        )
                    )
    return pd.DataFrame(rows)


def test_c4b_measure_can_support_and_refute():
    from suite.analysis.landscape import trend_table

    metrics = ("minima_fixed", "stall_gap")
    rough = trend_table(_slices(2.0, 2.0), metrics=metrics, n_boot=300)
    assert V.verdict_c4b(rough)["verdict"].iloc[0] == "supported"
    flat = trend_table(_slices(0.0, 0.0), metrics=metrics, n_boot=300)
    v = V.verdict_c4b(flat)
    assert v["verdict"].iloc[0] == "refuted", v.iloc[0].to_dict()
    assert v["ci_low"].iloc[0] <= v["effect"].iloc[0] <= v["ci_high"].iloc[0]


def _chaos(W: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Chaos rows (the LandscapeAnalysis.chaos layout) of the autonomous networks ``W``."""
    from suite.probes import lyapunov_exponents

    lam = lyapunov_exponents(W, rng, steps=300, transient=100)[:, 0]
    rows = []
    for where in ("init", "trained"):
        for drive in ("driven", "autonomous"):
            for i, v in enumerate(lam):
                rows.append(
                    dict(
                        task="constructed",
                        model="elman",
                        hidden=W.shape[1],
                        seed=i,
                        spectral_radius=1.0,
                        where=where,
                        drive=drive,
                        lam=float(v),
                    )
                )
    return pd.DataFrame(rows)


def test_c4a_contractive_networks_refute_and_gain_two_supports():
    from suite.probes import sompolinsky_reference

    rng = np.random.default_rng(0)
    reference = sompolinsky_reference((0.5, 2.0), n=100, networks=4, steps=300, transient=100)
    H, n = 40, 24  # >= 17 networks: the bound on "never chaotic" can fall below 0.2
    Q = np.linalg.qr(rng.normal(size=(n, H, H)))[0]
    contractive = V.verdict_c4a(_chaos(0.5 * Q, rng), reference)
    assert contractive["verdict"].iloc[0] == "refuted"
    assert contractive["effect"].iloc[0] == 0.0
    # never chaotic is a bound, not a certainty: the upper end is the Clopper-Pearson bound
    assert contractive["ci_high"].iloc[0] == pytest.approx(1 - 0.025 ** (1 / n))
    chaotic = V.verdict_c4a(_chaos(rng.normal(size=(n, H, H)) * 2.0 / np.sqrt(H), rng), reference)
    assert chaotic["verdict"].iloc[0] == "supported"
    assert chaotic["effect"].iloc[0] > 0.5  # small random networks: most, not all, chaotic
    assert "calibration: ok" in chaotic["detail"].iloc[0]


def test_c4a_calibration_failure_gives_no_verdict():
    rng = np.random.default_rng(1)
    H, n = 30, 6
    W = rng.normal(size=(n, H, H)) * 2.0 / np.sqrt(H)
    blind = pd.DataFrame(
        {"gain": [0.5, 2.0], "lambdas": [[-0.6] * 4, [-0.2] * 4]}  # a measure that sees no chaos
    )
    v = V.verdict_c4a(_chaos(W, rng), blind)
    assert v["verdict"].iloc[0] == "no data (calibration failed)"


def test_every_claim_has_a_rule_and_limits():
    assert (
        set(V.RULES)
        == set(V.LIMITS)
        == {
            "C1",
            "C1q",
            "C1+tuning",
            "C2",
            "C3",
            "C4a",
            "C4b",
        }
    )
