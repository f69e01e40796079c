"""End-point resolution on constructed problems with known answers (issue 11, "Done when"):
minima and a saddle classified exactly, a diverging valley recognised, the escape test finds
the trap and not the plateau, symmetric copies cluster together and different functions not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from suite.analysis import optima
from suite.analysis.symmetry import canonicalize, cluster_end_points
from suite.curvature import curvature_checked, hessian_vector_products
from suite.optimizers.resolve import (
    ResolveConfig,
    escape_test,
    lbfgs_rows,
    polish_trust,
    valley_test,
)


def double_well(theta):
    """f(x, y) = (x^2 - 1)^2 + 0.3 x + y^2 + 1: minima near x = -1.036 (lower) and x = 0.960,
    a saddle near x = 0.075 (y = 0 throughout)."""
    x, y = theta[:, 0], theta[:, 1]
    L = (x**2 - 1) ** 2 + 0.3 * x + y**2 + 1.0
    G = np.stack([4 * x * (x**2 - 1) + 0.3, 2 * y], axis=1)
    return L, G


def _critical_points():
    roots = np.sort(np.roots([4.0, 0.0, -4.0, 0.3]).real)  # 4x^3 - 4x + 0.3 = 0
    return np.array([[r, 0.0] for r in roots])  # minimum, saddle, minimum


X_SEP = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, -1.5], [-2.0, -0.5]])
Y_SEP = np.array([1.0, 1.0, -1.0, -1.0])


def logistic(theta):
    """Mean logistic loss on linearly separable data: infimum 0, reached only at infinity."""
    m = Y_SEP[None] * (theta @ X_SEP.T)
    L = np.logaddexp(0.0, -m).mean(axis=1)
    G = (-Y_SEP[None] / (1.0 + np.exp(m))) @ X_SEP / len(Y_SEP)
    return L, G


def plateau(theta):
    """f = 1 - 0.9 exp(-(x - 2)^4) + 0.01 y^2: at x = 0 a plateau (gradient ~1e-6, curvature
    ~1e-5) with a lower level (0.1) at x = 2, outside the plateau."""
    x, y = theta[:, 0], theta[:, 1]
    e = np.exp(-((x - 2.0) ** 4))
    L = 1.0 - 0.9 * e + 0.01 * y**2
    G = np.stack([3.6 * (x - 2.0) ** 3 * e, 0.02 * y], axis=1)
    return L, G


def test_two_minima_and_a_saddle_are_classified_exactly():
    pts = _critical_points()
    L, G = double_well(pts)
    eigs, ok = curvature_checked(double_well, pts)
    assert ok.all()
    np.testing.assert_allclose(eigs[:, 0], np.minimum(12 * pts[:, 0] ** 2 - 4, 2), rtol=1e-5)
    cls = optima.classify_end_points(L, np.linalg.norm(G, axis=1), eigs, 1.0)
    assert list(cls) == ["minimum", "saddle", "minimum"]
    # the valley test leaves them alone: no descent at a critical point of a coercive function
    div, _, _ = valley_test(double_well, pts)
    assert not div.any()


def test_trust_region_polish_reaches_a_minimum_and_hvp_is_exact():
    v = np.array([[1.0, -2.0]])
    x = np.array([[0.7, 0.3]])
    hv = hessian_vector_products(double_well, x, v)
    exact = np.array([[12 * 0.7**2 - 4, 0.0], [0.0, 2.0]]) @ v[0]
    np.testing.assert_allclose(hv[0], exact, rtol=1e-6)
    th, L, gn, it = polish_trust(double_well, np.array([[0.7, 0.3]]), gtol=1e-7, maxiter=50)
    assert gn[0] <= 1e-7 and it[0] > 0
    assert th[0, 0] == pytest.approx(_critical_points()[2, 0], abs=1e-6)


def test_a_diverging_valley_is_not_a_minimum():
    w, _ = lbfgs_rows(logistic, np.array([[3.0, 3.0]]), 200, gtol=1e-5 * np.log(2))
    L, G = logistic(w)
    gn = np.linalg.norm(G, axis=1)
    assert gn[0] <= 1e-5 * np.log(2)  # below the tolerance: a first-order test says "minimum"
    eigs, ok = curvature_checked(logistic, w)
    assert eigs[0, 0] > 0  # and so does the second-order test
    assert optima.classify_end_points(L, gn, eigs, np.log(2))[0] == "minimum"
    div, norms, losses = valley_test(logistic, w, zero_loss=1e-12 * np.log(2))
    assert div[0] and norms[0, -1] > 1.5 * norms[0, 0]
    cls = optima.classify_end_points(L, gn, eigs, np.log(2), diverging=div, curvature_ok=ok)
    assert cls[0] == "diverging"


def test_escape_test_finds_the_trap_and_not_the_plateau():
    trap = _critical_points()[2:3]  # the higher minimum; the barrier is ~0.7 away
    rng = np.random.default_rng(3)
    esc_trap = escape_test(double_well, trap, k=8, radius=0.1, iters=100, rng=rng)
    L_trap = double_well(trap)[0]
    assert esc_trap[0] >= L_trap[0] - 1e-9
    flat = np.array([[0.0, 0.0]])
    L_flat, G_flat = plateau(flat)
    assert np.linalg.norm(G_flat) < 1e-5
    esc_flat = escape_test(plateau, flat, k=8, radius=1.0, iters=100, rng=rng)
    assert esc_flat[0] < L_flat[0] - 0.5
    # the analysis: the trap stays a trap candidate, the plateau does not
    df = pd.DataFrame(
        {
            "class": ["minimum", "plateau"],
            "loss": [L_trap[0], L_flat[0]],
            "escape_loss": [esc_trap[0], esc_flat[0]],
        }
    )
    assert list(optima.trap_candidates(df, 1.0, optima.Thresholds())) == [True, False]


def test_curvature_check_flags_a_cliff():
    def cliff(theta):  # f = softplus(1e7 x) / 1e7: the gradient steps from 0 to 1 at x = 0
        z = 1e7 * theta[:, 0]
        return np.logaddexp(0.0, z) / 1e7, (0.5 * (1.0 + np.tanh(z / 2)))[:, None]

    eigs, ok = curvature_checked(cliff, np.array([[5e-5], [1.0]]))
    assert not ok[0]  # the step crosses the cliff: the two differences disagree
    assert ok[1]  # far from it the function is flat and both steps agree


def test_symmetric_copies_cluster_together_and_different_functions_do_not():
    from suite import seeding
    from suite.analysis.symmetry import function_features
    from suite.problem import problem_from_spec

    task = {"task": "adding", "seq_len": 6, "n_train": 16}
    model_spec = {"model": "elman", "hidden": 3}
    problem = problem_from_spec(task, model_spec, seeding.data_stream(0, task, 0))
    model = problem.model
    rng = np.random.default_rng(0)
    a = rng.normal(size=model.dim)
    b = {k: np.array(v, copy=True) for k, v in model.unpack(a[None]).items()}
    perm, s = np.array([2, 0, 1]), np.array([1.0, -1.0, -1.0])
    c = {
        "W_h": (s[:, None] * b["W_h"][0] * s[None, :])[np.ix_(perm, perm)][None],
        "W_x": (s[:, None] * b["W_x"][0])[perm][None],
        "b": (s * b["b"][0])[perm][None],
        "W_o": (b["W_o"][0] * s[None, :])[:, perm][None],
        "c": b["c"],
    }
    a2 = model.pack(c)[0]
    other = rng.normal(size=model.dim)
    thetas = np.stack([a, a2, other])
    assert not np.allclose(a, a2)
    np.testing.assert_allclose(canonicalize(model, thetas)[0], canonicalize(model, thetas)[1])
    feats = function_features(model, thetas, problem.dataset.train)
    loss = problem.loss_and_grad(thetas)[0]
    labels = cluster_end_points(feats, loss, tol=0.01, loss_tol=1e-3)
    assert labels[0] == labels[1] and labels[2] != labels[0]


def test_resolve_config_validates():
    assert ResolveConfig.from_dict({"escape_k": 2}).escape_k == 2
    with pytest.raises(ValueError, match="unknown resolve key"):
        ResolveConfig.from_dict({"escape": 2})
    with pytest.raises(ValueError, match="escape_radius"):
        ResolveConfig(escape_radius=0.0)
