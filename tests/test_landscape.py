"""Tests of suite.probes (directions, slices, roughness, Lyapunov, cliff, truncation), the landscape
kind (suite.kinds.landscape) and its analysis (suite.analysis.landscape)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suite import probes
from suite.analysis import landscape as ls
from suite.experiment import ExperimentError
from suite.kinds.load import experiment_from_dict
from suite.models import make_model
from suite.problem import make_problem


def test_filter_normalized_direction_matches_filter_norms():
    rng = np.random.default_rng(0)
    model = make_model("elman", 2, 1, hidden=3)
    theta = rng.normal(size=model.dim)
    d = probes.filter_normalized_direction(model, theta, rng)
    tb, db = model.unpack(theta[None]), model.unpack(d[None])
    t_rows = np.concatenate([tb["W_h"], tb["W_x"]], axis=2)[0]
    d_rows = np.concatenate([db["W_h"], db["W_x"]], axis=2)[0]
    np.testing.assert_allclose(np.linalg.norm(d_rows, axis=1), np.linalg.norm(t_rows, axis=1))
    np.testing.assert_allclose(
        np.linalg.norm(db["W_o"][0], axis=1), np.linalg.norm(tb["W_o"][0], axis=1)
    )
    assert np.all(db["b"] == 0) and np.all(db["c"] == 0)
    # the direction is random: two draws differ
    assert not np.allclose(d, probes.filter_normalized_direction(model, theta, rng))
    dn = probes.filter_normalized_direction(model, theta, rng, bias="normalize")
    np.testing.assert_allclose(np.abs(model.unpack(dn[None])["b"]), np.abs(tb["b"]))
    with pytest.raises(ValueError, match="bias"):
        probes.filter_normalized_direction(model, theta, rng, bias="keep")


def test_slice_1d_is_one_call_and_matches_pointwise():
    calls = []

    def loss_fn(rows):
        calls.append(rows.shape[0])
        return (rows**2).sum(axis=1)

    theta, d = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    a = np.linspace(-1, 1, 11)
    out = probes.slice_1d(loss_fn, theta, d, a)
    assert calls == [11]
    np.testing.assert_allclose(out, 1.0 + a**2)
    grid = probes.slice_2d(loss_fn, theta, d, np.array([1.0, 0.0]), a, a[:3])
    assert grid.shape == (11, 3) and calls[-1] == 33
    np.testing.assert_allclose(grid[2, 1], 1 + a[2] ** 2 + 2 * a[1] + a[1] ** 2)


def test_roughness_of_known_curves():
    a = np.linspace(-1, 1, 201)
    mono = probes.roughness(a, np.exp(a))
    assert mono.n_minima == 0 and mono.tv_norm == pytest.approx(1.0)
    valley = probes.roughness(a, a**2)
    assert valley.n_minima == 1 and valley.tv_norm == pytest.approx(2.0)
    wiggly = probes.roughness(a, np.cos(4 * np.pi * a))  # 4 periods on [-1, 1]
    assert wiggly.n_minima == 4
    assert wiggly.minima_per_unit == pytest.approx(2.0)
    assert wiggly.tv_norm == pytest.approx(8.0, rel=1e-2)
    bad = probes.roughness(a, np.where(a > 0.5, np.inf, a**2))
    assert bad.nonfinite == int((a > 0.5).sum()) and bad.n_minima == 1
    with pytest.raises(ValueError, match="increasing"):
        probes.roughness(a[::-1], a)


def test_lyapunov_negative_for_contraction_positive_for_gain_two():
    rng = np.random.default_rng(0)
    H = 50
    Q = np.linalg.qr(rng.normal(size=(H, H)))[0]
    lam = probes.lyapunov_exponents((0.5 * Q)[None], rng, steps=300, transient=50)
    # an orthogonal matrix times 0.5 contracts every direction by exactly 1/2 at h = 0
    assert lam[0, 0] == pytest.approx(math.log(0.5), abs=0.02)
    W = rng.normal(size=(1, 200, 200)) * (2.0 / math.sqrt(200))
    lam2 = probes.lyapunov_exponents(W, rng, steps=400, transient=200, k=2)
    assert lam2[0, 0] > 0.05 and lam2[0, 0] >= lam2[0, 1]


def test_sompolinsky_reference_changes_sign_at_gain_one():
    ref = probes.sompolinsky_reference((0.5, 2.0), n=100, networks=2, steps=300, transient=100)
    assert ref.loc[0, "lambda_mean"] < -0.4 and ref.loc[1, "lambda_mean"] > 0.05


def test_cliff_bifurcation_interval_at_w5():
    from tasks.cliff import cliff_fixed_points

    lo, hi = probes.bistable_interval(5.0)
    assert (round(lo, 2), round(hi, 2)) == (-2.66, -2.34)
    assert lo == pytest.approx(-2.656, abs=5e-4) and hi == pytest.approx(-2.344, abs=5e-4)
    # independent check: count the stable fixed points on both sides of each edge
    for edge, inside in ((lo, lo + 1e-3), (hi, hi - 1e-3)):
        assert len(cliff_fixed_points(5.0, inside)) == 2
        outside = edge - 1e-3 if edge == lo else edge + 1e-3
        assert len(cliff_fixed_points(5.0, outside)) == 1
    with pytest.raises(ValueError, match="w > 4"):
        probes.bistable_interval(3.0)


def test_cliff_surface_has_cliffs():
    surf = probes.cliff_surface(np.linspace(-2, 10, 61), np.linspace(-8, 2, 51))
    assert surf["E"].shape == (51, 61)
    gn = surf["grad_norm"]
    assert np.log10(gn.max() / np.median(gn)) > 2  # the gradient spans orders of magnitude


def test_truncation_cosines_exact_at_full_window():
    p = make_problem("adding", model="elman", hidden=3, seq_len=8, n_train=16, seed=0)
    rng = np.random.default_rng(0)
    theta = np.stack([p.initial_point(rng) for _ in range(2)])
    cos = probes.truncation_cosines(p.loss_and_grad, theta, [1, 3, 8])
    assert cos.shape == (2, 3)
    np.testing.assert_allclose(cos[:, 2], 1.0, atol=1e-12)
    assert np.all(cos[:, 0] < 1 - 1e-6)


def test_rnn_lyapunov_runs_on_an_elman_model():
    model = make_model("elman", 2, 1, hidden=6, spectral_radius=0.5)
    rng = np.random.default_rng(1)
    theta = np.stack([model.init(rng) for _ in range(3)])
    lam = probes.rnn_lyapunov(model, theta, None, rng, steps=200, transient=50)
    assert lam.shape == (3,) and np.all(lam < 0)
    with pytest.raises(ValueError, match="elman"):
        probes.rnn_lyapunov(make_model("tdnn", 2, 1), theta, None, rng)


def _experiment(**over):
    d = {
        "name": "land",
        "kind": "landscape",
        "seeds": 2,
        "settings": {
            "n_directions": 2,
            "n_alphas": 21,
            "n_2d": 5,
            "spread_points": 8,
            "train_steps": 20,
            "checkpoints": 3,
            "lyapunov_steps": 50,
            "lyapunov_transient": 10,
        },
        "problems": [
            {
                "task": "adding",
                "seq_len": [6, 8],
                "n_train": 16,
                "hidden": 3,
                "spectral_radius": [0.5, 1.5],
            }
        ],
        "reference": ["cliff"],
    }
    d.update(over)
    return experiment_from_dict(d)


def test_landscape_experiment_expands_and_runs():
    exp = _experiment()
    kinds = [type(u).__name__ for u in exp.units]
    # 4 elman problems + 2 TDNN twins (one per seq_len) + the cliff summary
    assert kinds.count("LandscapeUnit") == 6 and kinds.count("CliffUnit") == 1
    unit = exp.units[0]
    records = unit.run()
    assert sorted(r["key"] for r in records) == sorted(unit.keys())
    assert all(r["status"] == "ok" for r in records)
    kinds = {r["kind"] for r in records}
    assert kinds == {"landscape", "lyapunov", "truncation"}
    land = next(r for r in records if r["kind"] == "landscape")
    assert len(land["init"]["slices"]) == 2 and len(land["alphas"]) == 21
    assert land["trained"]["loss"] < land["init"]["loss"]
    tdnn = next(u for u in exp.units if getattr(u, "model", {}).get("model") == "tdnn")
    assert {r["kind"] for r in tdnn.run()} == {"landscape"}
    frames = ls.analyse_landscape(records + exp.units[-1].run())
    assert len(frames.slices) == 4 and frames.cliff is not None
    assert set(frames.truncation["k"]) <= {1, 2, 5, 6}


def test_landscape_experiment_rejects_bad_keys():
    with pytest.raises(ExperimentError, match="measurements"):
        _experiment(measurements=["slices", "weather"])
    with pytest.raises(ExperimentError, match="settings"):
        _experiment(settings={"n_alpha": 3})


def test_landscape_is_a_registered_kind():
    from suite.kinds import get_kind

    kind = get_kind("landscape")
    assert kind.record_kinds == ls.RECORD_KINDS
    assert "settings" in kind.keys and kind.expand is not None


def test_cliff_end_points_take_the_family_from_the_trials_frame():
    import pandas as pd

    from suite import seeding

    spec = {
        "task": {"task": "cliff", "steps": 50},
        "model": {"model": "cliff"},
        "optimizer": {"name": "my-plugin-es", "params": {}},
        "seed": 3,
        "experiment_seed": 0,
    }
    record = {
        "key": "k3",
        "kind": "trial",
        "spec": spec,
        "status": "budget",
        "theta": [5.0, -2.5],
        "final_train_loss": 0.1,
        "target_loss": 0.01,
    }
    trials = pd.DataFrame({"key": ["k3"], "family": ["evolution"], "tags": ["population"]})
    ends = ls.cliff_end_points([record], trials)
    row = ends.iloc[0]
    assert row["family"] == "evolution" and row["name"] == "my-plugin-es"
    model = make_model("cliff", 1, 1)
    x0 = model.init(np.random.default_rng(seeding.init_stream(0, spec["task"], spec["model"], 3)))
    assert (row["w0"], row["b0"]) == (float(x0[0]), float(x0[1]))
    assert (row["w"], row["b"]) == (5.0, -2.5)
    with pytest.raises(ValueError, match="family"):
        ls.cliff_end_points([record], trials.drop(columns="family"))


# ------------------------------------------------------------------ C4: prominence, fixed radius
def test_prominent_minima_counts_deep_dips_not_ripples():
    a = np.linspace(-1, 1, 2001)
    deep = 1.0 + 0.5 * np.cos(4 * np.pi * a)  # 4 interior minima, each ~0.48 decades deep
    ripples = deep * (1 + 0.01 * np.cos(100 * np.pi * a))  # dips ~0.009 decades deep on top
    assert probes.prominent_minima(deep, 0.05) == 4
    assert probes.prominent_minima(ripples, 0.05) == 4
    assert probes.prominent_minima(ripples, 0.0) > 20  # every dip counts without a threshold
    assert probes.prominent_minima(deep, 1.0) == 0  # none is a full decade deep
    # the threshold is on log10 L: scaling the loss does not change the count
    assert probes.prominent_minima(1e-6 * ripples, 0.05) == 4
    # a non-finite point splits the slice; each finite run is counted on its own
    split = np.where(np.abs(a) < 0.01, np.nan, deep)
    assert probes.prominent_minima(split, 0.05) == 4
    assert probes.prominent_minima(np.exp(a), 0.0) == 0
    with pytest.raises(ValueError, match="prominence"):
        probes.prominent_minima(deep, -1.0)


def test_fixed_radius_direction_ignores_the_scale_of_the_weights():
    rng = np.random.default_rng(0)
    model = make_model("elman", 2, 1, hidden=3)
    theta = rng.normal(size=model.dim)
    for scale in (0.1, 10.0):
        d = probes.fixed_radius_direction(model, scale * theta, np.random.default_rng(1), 0.7)
        db = model.unpack(d[None])
        rows = np.concatenate([db["W_h"], db["W_x"]], axis=2)[0]
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 0.7)
        np.testing.assert_allclose(np.linalg.norm(db["W_o"][0], axis=1), 0.7)
        assert np.all(db["b"] == 0) and np.all(db["c"] == 0)
    # the filter-normalised direction, by contrast, scales with the weights
    f1 = probes.filter_normalized_direction(model, 0.1 * theta, np.random.default_rng(1))
    f2 = probes.filter_normalized_direction(model, 10 * theta, np.random.default_rng(1))
    assert np.linalg.norm(f2) == pytest.approx(100 * np.linalg.norm(f1))
    with pytest.raises(ValueError, match="radius"):
        probes.fixed_radius_direction(model, theta, rng, 0.0)


def test_stratified_spearman_known_answers():
    rng = np.random.default_rng(0)
    x = np.tile(np.arange(10.0), 3)
    strata = np.repeat(["a", "b", "c"], 10)
    # monotone within every stratum, with strata offsets that would spoil a pooled rho
    y = x + np.repeat([100.0, 0.0, -100.0], 10)
    e, per = ls.stratified_spearman(x, y, strata, rng=rng)
    assert e.value == pytest.approx(1.0) and (e.low, e.high) == (1.0, 1.0)
    assert [v for v, _, _ in per] == ["a", "b", "c"] and all(n == 10 for _, _, n in per)
    # reversed within strata: -1
    assert ls.stratified_spearman(x, -y, strata)[0].value == pytest.approx(-1.0)
    # no relation and many rows: the interval sits around 0 and excludes a moderate trend
    xn = np.tile(np.arange(8.0), 100)
    yn = rng.normal(size=xn.size)
    en, _ = ls.stratified_spearman(xn, yn, np.repeat(np.arange(4), 200))
    assert en.low < 0 < en.high and en.high < 0.3
    assert en.low <= en.value <= en.high


def test_spearman_rows_matches_scipy():
    from scipy import stats as st

    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(5, 12)).astype(float)  # ties
    y = rng.normal(size=(5, 12))
    got = ls.spearman_rows(x, y)
    want = [st.spearmanr(x[i], y[i]).statistic for i in range(5)]
    np.testing.assert_allclose(got, want)
    assert np.isnan(ls.spearman_rows(np.ones((1, 5)), y[:1, :5])[0])


def test_trend_table_is_per_stratum_with_bootstrap_intervals():
    import pandas as pd

    rows = []
    for r in (0.5, 2.0):
        for T in (5, 10, 20):
            for seed in range(4):
                rows.append(
                    dict(
                        task="t",
                        model="elman",
                        where="init",
                        seq_len=T,
                        spectral_radius=r,
                        minima_fixed=T / 5 + seed * 0.01,
                        stall_gap=np.nan,
                    )
                )
    t = ls.trend_table(pd.DataFrame(rows), metrics=("minima_fixed",), n_boot=200)
    by_t = t[t["against"] == "seq_len"]
    assert set(by_t["stratum"]) == {"spectral_radius=0.5", "spectral_radius=2.0", "mean"}
    assert by_t["rho"].min() > 0.9
    assert (t["rho_low"] <= t["rho"] + 1e-12).all() and (t["rho"] <= t["rho_high"] + 1e-12).all()
    # the radius does not matter here: within each T the trend with the radius is ~0
    mean_r = t[(t["against"] == "spectral_radius") & (t["stratum"] == "mean")].iloc[0]
    assert abs(mean_r["rho"]) < 0.5


def test_stall_gaps_are_relative_to_the_best_of_the_configuration():
    import pandas as pd

    base = dict(task="t", model="elman", seq_len=5, spectral_radius=0.5, baseline_loss=5.0)
    frame = pd.DataFrame(
        [{**base, "where": "trained", "loss": v} for v in (1.0, 2.0, 3.0)]
        + [{**base, "where": "init", "loss": 4.0}]
        + [{**base, "seq_len": 10, "where": "trained", "loss": v} for v in (4.0, 4.5)]
    )
    gaps = ls.stall_gaps(frame)
    np.testing.assert_allclose(gaps.iloc[:3], [0.0, 0.25, 0.5])
    assert np.isnan(gaps.iloc[3])  # initial points have no stall gap
    np.testing.assert_allclose(gaps.iloc[4:], [0.0, 0.5])  # its own configuration's best


def test_landscape_report_writes_report_md_with_resolving_links(tmp_path):
    import re
    import shutil

    from suite.report.landscape import write_landscape_report

    exp = _experiment(reference=["sompolinsky"])
    records = []
    for unit in exp.units:
        if type(unit).__name__ == "LyapunovReferenceUnit":
            unit = type(unit)(
                experiment="land", gains=(0.5, 2.0), n=40, networks=3, steps=100, transient=20
            )
        records += unit.run()
    from suite.store import Store

    store = Store(tmp_path / "land")
    for r in records:
        store.write(r)
    paths = write_landscape_report(tmp_path / "land")
    report = tmp_path / "land" / "REPORT.md"
    assert report in paths
    text = report.read_text()
    for claim in ("C4a", "C4b"):
        assert f"## {claim}" in text
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert any("landscape_c4a_chaos.png" in link for link in links)
    assert any("landscape_c4b_trends.png" in link for link in links)
    for link in links:
        assert (report.parent / link).exists(), link
    shutil.rmtree(tmp_path / "land")


def test_stale_landscape_records_are_left_out(tmp_path):
    """Records of an earlier version of the experiment (other keys) do not mix with the
    current ones: analyse() keeps only the keys the stored spec expands to, and says so."""
    import json

    from suite.kinds.landscape import analyse
    from suite.runner import run_experiment
    from suite.store import Store

    path = tmp_path / "land.toml"
    path.write_text(
        """name = "land"
kind = "landscape"
seeds = 1
reference = []
measurements = ["slices"]
tdnn_twin = false
[settings]
n_directions = 1
n_alphas = 11
n_2d = 3
n_interp = 5
spread_points = 4
train_steps = 5
checkpoints = 2
[[problems]]
task = "adding"
seq_len = 4
n_train = 8
hidden = 2
"""
    )
    run_experiment(path, out=tmp_path, jobs=1, progress=False)
    folder = tmp_path / "land"
    assert len(analyse(folder).slices) == 2  # one record: its start and its trained point
    store = Store(folder)
    old = json.loads(json.dumps(store.records()[0]))
    old["key"] = "stale0000000000"
    store.write(old)
    with pytest.warns(UserWarning, match="1 stale landscape records"):
        assert len(analyse(folder).slices) == 2
