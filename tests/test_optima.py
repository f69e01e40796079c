"""Tests of suite.analysis.optima: symmetries, curvature, classification, clustering, stats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from suite import curvature
from suite.analysis import optima, symmetry, twins
from suite.models import make_model


def _permute_and_flip(model, theta, perm, signs):
    """Apply a hidden-unit permutation and sign flips by hand (independent of canonicalize)."""
    b = {k: np.array(v, copy=True) for k, v in model.unpack(theta[None]).items()}
    s = signs
    out = {}
    if "W_h" in b:
        out["W_h"] = (s[:, None] * b["W_h"][0] * s[None, :])[np.ix_(perm, perm)][None]
    out["W_x"] = (s[:, None] * b["W_x"][0])[perm][None]
    out["b"] = (s * b["b"][0])[perm][None]
    out["W_o"] = (b["W_o"][0] * s[None, :])[:, perm][None]
    out["c"] = b["c"]
    return model.pack(out)[0]


@pytest.mark.parametrize(
    "name, options",
    [("elman", {"hidden": 5}), ("tdnn", {"hidden": 4, "window": 3})],
)
def test_canonicalize_maps_symmetric_copies_to_one_vector(name, options):
    rng = np.random.default_rng(1)
    model = make_model(name, 2, 2, **options)
    theta = rng.normal(size=model.dim)
    H = options["hidden"]
    X = rng.normal(size=(3, 7, 2))
    copies = []
    for _ in range(4):
        perm = rng.permutation(H)
        signs = rng.choice([-1.0, 1.0], size=H)
        copy = _permute_and_flip(model, theta, perm, signs)
        assert not np.allclose(copy, theta)  # a real change of parameters ...
        # ... that computes the identical function
        np.testing.assert_allclose(
            model.forward(copy[None], X), model.forward(theta[None], X), atol=1e-12
        )
        copies.append(copy)
    canon = symmetry.canonicalize(model, np.stack([theta, *copies]))
    np.testing.assert_allclose(canon, np.repeat(canon[:1], len(canon), 0), atol=1e-12)
    # the canonical copy computes the same function too
    np.testing.assert_allclose(
        model.forward(canon[:1], X), model.forward(theta[None], X), atol=1e-12
    )
    # canonical form: non-negative outgoing sums, sorted ascending
    w_o = model.unpack(canon[:1])["W_o"][0].sum(axis=0)
    assert np.all(w_o >= 0) and np.all(np.diff(w_o) >= 0)
    # a different network has a different canonical vector
    other = symmetry.canonicalize(model, rng.normal(size=(1, model.dim)))
    assert not np.allclose(other[0], canon[0])


def test_canonicalize_leaves_the_cliff_unit_alone():
    model = make_model("cliff", 1, 1)
    theta = np.array([[5.0, -2.5], [1.0, 0.1]])
    np.testing.assert_array_equal(symmetry.canonicalize(model, theta), theta)


def _quadratic(a: float, b: float):
    """f(x, y) = a x^2 + b y^2 + x^3 / 3 (batched), its gradient."""

    def grad_fn(theta):
        x, y = theta[:, 0], theta[:, 1]
        loss = a * x**2 + b * y**2 + x**3 / 3
        return loss, np.stack([2 * a * x + x**2, 2 * b * y], axis=1)

    return grad_fn


def test_hessian_fd_matches_the_exact_hessian():
    grad_fn = _quadratic(1.5, -0.5)
    pts = np.array([[0.0, 0.0], [0.3, -1.0], [-2.0, 0.5]])
    H = curvature.hessian_fd(grad_fn, pts, eps=1e-5, max_rows=3)  # forces split calls
    exact = np.zeros((3, 2, 2))
    exact[:, 0, 0] = 3.0 + 2 * pts[:, 0]
    exact[:, 1, 1] = -1.0
    np.testing.assert_allclose(H, exact, atol=1e-7)


def test_classification_of_a_known_saddle_minimum_plateau_and_moving_point():
    scale = 1.0
    saddle_fn = _quadratic(1.0, -1.0)
    min_fn = _quadratic(1.0, 2.0)
    flat_fn = _quadratic(1e-9, 1e-9)
    at0 = np.zeros((1, 2))
    eigs = np.concatenate(
        [
            curvature.curvature(saddle_fn, at0),
            curvature.curvature(min_fn, at0),
            curvature.curvature(flat_fn, at0),
            curvature.curvature(min_fn, np.array([[0.5, 0.5]])),
        ]
    )
    grad_norm = np.array([0.0, 0.0, 0.0, np.hypot(1.25, 2.0)])
    loss = np.array([0.0, 0.0, 0.0, 1.0]) + 0.3  # not zero: the curvature must decide
    cls = optima.classify_end_points(loss, grad_norm, eigs, scale)
    assert list(cls) == ["saddle", "minimum", "plateau", "unresolved"]
    # diverged, unresolved (no curvature) and a zero loss (a global minimum whatever H says)
    cls = optima.classify_end_points(
        np.array([np.inf, 0.3, 0.0]),
        np.array([1.0, 0.0, 5.0]),
        np.array([[np.nan, np.nan], [np.nan, np.nan], [-3.0, 1.0]]),
        scale,
    )
    assert list(cls) == ["diverged", "unresolved", "minimum"]
    with pytest.raises(ValueError, match="loss_scale"):
        optima.classify_end_points(loss, grad_norm, eigs, 0.0)


def test_lanczos_agrees_with_the_dense_hessian():
    rng = np.random.default_rng(0)
    P = 24
    A = rng.normal(size=(P, P))
    A = A + A.T

    def grad_fn(theta):
        return 0.5 * np.einsum("np,pq,nq->n", theta, A, theta), theta @ A

    theta = rng.normal(size=(2, P))
    dense = curvature.extreme_eigenvalues(curvature.hessian_fd(grad_fn, theta))
    lanczos = curvature.extreme_eigenvalues_lanczos(grad_fn, theta)
    exact = np.linalg.eigvalsh(A)[[0, -1]]
    np.testing.assert_allclose(dense, np.repeat(exact[None], 2, 0), rtol=1e-6)
    np.testing.assert_allclose(lanczos, dense, rtol=1e-5)


def test_clustering_counts_known_clusters_and_separates_by_loss():
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(4, 10)) * 3
    members = np.repeat(centers, 25, axis=0) + 1e-3 * rng.normal(size=(100, 10))
    loss = np.repeat([0.1, 0.2, 0.3, 0.4], 25) + 1e-7 * rng.normal(size=100)
    labels = symmetry.cluster_end_points(members, loss, tol=0.05, loss_tol=1e-4)
    assert len(set(labels)) == 4
    # labels follow ascending loss, and every group is one cluster
    for k in range(4):
        assert set(labels[k * 25 : (k + 1) * 25]) == {k}
    # same place, clearly different losses: two optima
    same = np.zeros((6, 3))
    two = symmetry.cluster_end_points(same, np.array([0, 0, 0, 1, 1, 1.0]), 0.05, 1e-3)
    assert len(set(two)) == 2
    # non-finite rows get -1
    lab = symmetry.cluster_end_points(np.array([[0.0], [np.nan]]), np.array([0.0, 0.0]), 0.1, 0.1)
    assert list(lab) == [0, -1]


def _fake_study(model_name: str, cluster_losses, n_per, not_conv=0, seed=0):
    rng = np.random.default_rng(seed)
    model = make_model(model_name, 1, 1, **({"hidden": 2} if model_name == "elman" else {}))
    rows = []
    seed_i = 0
    for k, L in enumerate(cluster_losses):
        center = np.full(model.dim, float(k + 1))
        for _ in range(n_per):
            rows.append(
                {
                    "seed": seed_i,
                    "status": "converged",
                    "loss": L,
                    "grad_norm": 0.0,
                    "lambda_min": 0.1,
                    "lambda_max": 1.0,
                    "baseline_loss": 1.0,
                    "theta": center + 1e-6 * rng.normal(size=model.dim),
                }
            )
            seed_i += 1
    for _ in range(not_conv):
        rows.append(
            {
                "seed": seed_i,
                "status": "max_steps",
                "loss": 0.5,
                "grad_norm": 1.0,
                "lambda_min": np.nan,
                "lambda_max": np.nan,
                "baseline_loss": 1.0,
                "theta": rng.normal(size=model.dim),
            }
        )
        seed_i += 1
    return model, pd.DataFrame(rows)


def test_analyse_and_summarize_a_study():
    model, df = _fake_study("elman", [0.01, 0.02, 0.5, 0.9], n_per=5, not_conv=3)
    a = optima.analyse_study(df, model)
    s = optima.summarize_study(a)
    assert s["n_starts"] == 23 and s["n_converged"] == 20 and s["n_unresolved"] == 3
    assert s["n_distinct"] == 4
    assert s["distinct_per_start"] == pytest.approx(4 / 20)
    # best 0.01; margin 0.1 * (1 - 0.01): the 0.5 and 0.9 optima stall, 0.02 does not
    assert s["n_stalled"] == 10 and s["stall_rate"] == pytest.approx(0.5)
    assert s["best_loss"] == pytest.approx(0.01)
    table = optima.optima_table(a)
    assert list(table["starts"]) == [5, 5, 5, 5]
    assert table["share"].sum() == pytest.approx(1.0)


def test_compare_studies_finds_more_optima_in_the_rnn():
    model, rnn = _fake_study("elman", [0.01, 0.2, 0.4, 0.6, 0.8], n_per=8)
    _, tdnn = _fake_study("elman", [0.01], n_per=40)
    a = optima.analyse_study(rnn, model)
    b = optima.analyse_study(tdnn, model)
    c = twins.compare_studies(a, b, rng=np.random.default_rng(0), n_resamples=300)
    d = c[(c["statistic"] == "stall_rate") & (c["measure"] == "difference")].iloc[0]
    assert d["rnn"] == pytest.approx(0.8) and d["tdnn"] == 0.0
    assert d["value_low"] > 0.5  # the interval excludes "no difference"
    dist = c[(c["statistic"] == "distinct_per_start") & (c["measure"] == "difference")].iloc[0]
    assert dist["value"] == pytest.approx(5 / 40 - 1 / 40)
    with pytest.raises(ValueError, match="seed"):
        twins.compare_studies(a.iloc[:1], b.iloc[:1])


def test_thresholds_validate():
    with pytest.raises(ValueError, match="gtol_rel"):
        optima.Thresholds(gtol_rel=-1.0)


def test_optima_report_from_a_tiny_study(tmp_path):
    from suite.kinds.load import experiment_from_dict
    from suite.report.optima import write_optima_report
    from suite.runner import run_experiment

    exp = experiment_from_dict(
        {
            "name": "tiny",
            "kind": "multistart",
            "starts": 6,
            "chunk": 3,
            "tdnn_twin": True,
            "problems": [{"task": "adding", "seq_len": 4, "n_train": 8, "hidden": 2}],
            "methods": [{"name": "adam", "lr": 0.05, "max_steps": 200, "polish_steps": 200}],
        }
    )
    summary = run_experiment(exp, out=tmp_path, jobs=1, progress=False)
    assert summary.pending == 0
    paths = write_optima_report(tmp_path / "tiny")
    names = {p.name for p in paths}
    assert {"optima_summary.csv", "optima_final_losses.png", "optima_classes.png"} <= names
    table = pd.read_csv(tmp_path / "tiny" / "tables" / "optima_summary.csv")
    assert len(table) == 2 and set(table["model"]) == {"elman", "tdnn"}
    assert (table["n_starts"] == 6).all()
    with pytest.raises(ValueError, match="no start records"):
        (tmp_path / "empty").mkdir()
        write_optima_report(tmp_path / "empty")
