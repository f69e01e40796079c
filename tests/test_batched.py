"""Tests of the batched trainers: the L-BFGS and Newton rules, the line search and train_batch.

The trainer is run on plain functions wrapped as a Problem (:class:`Fake`), so every row's loss
and gradient are computed independently of the other rows and batched results can be compared
with single runs exactly.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.optimize

from suite.optimizers import get_optimizer
from suite.optimizers.batched import train_batch
from suite.optimizers.batched_method import Method
from suite.optimizers.linesearch import backtracking_linesearch, lbfgs, newton
from suite.optimizers.updates import newton_direction, take_rows


class Fake:
    """A Problem-like wrapper of ``f(X[N, P]) -> (L[N], G[N, P])`` (one or a batch of points).

    ``baseline_loss`` is tiny so the trainer's zero-loss rule (``1e-12 * baseline``) never
    fires before the gradient tolerance ``gtol_rel * baseline``.
    """

    def __init__(self, f, dim: int, baseline: float = 1e-12) -> None:
        self.f, self.dim, self.baseline_loss, self.n_train = f, dim, baseline, 4
        self.counters = SimpleNamespace(fe=0.0)
        z = np.zeros((4, 1, 1))
        self.dataset = SimpleNamespace(train=SimpleNamespace(X=z, Y=z, M=z[..., 0]))
        self.model = SimpleNamespace(forward_steps=lambda split: 1)

    def loss_and_grad(self, theta, truncate=None, batch=None):
        t = np.asarray(theta, dtype=np.float64)
        X = np.atleast_2d(t)
        L, G = self.f(X)
        self.counters.fe += len(X)
        return (L, G) if t.ndim == 2 else (L[0], G[0])


def quadratic(P: int = 10, cond: float = 100.0, seed: int = 0):
    """``f(x) = (x - x*)' A (x - x*) / 2`` with eigenvalues log-spaced in ``[1, cond]``."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(P, P)))
    A = Q @ np.diag(np.logspace(0, np.log10(cond), P)) @ Q.T
    xs = rng.normal(size=P)

    def f(X):
        R = (X - xs) @ A
        return 0.5 * np.einsum("np,np->n", R, X - xs), R

    return f, A, xs


def rosenbrock(X):
    """Rosenbrock's banana, minimum 0 at (1, 1)."""
    x, y = X[:, 0], X[:, 1]
    L = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    G = np.stack([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)], axis=1)
    return L, G


POLISH_ONLY = {"max_steps": 0, "polish_steps": 500, "gtol_rel": 100.0, "newton_steps": 0}
"""L-BFGS only, to ``||g|| <= 1e-10`` (with the Fake's baseline 1e-12)."""


def _scipy(f, x0):
    return scipy.optimize.minimize(
        lambda x: f(x[None])[0][0],
        x0,
        jac=lambda x: f(x[None])[1][0],
        method="L-BFGS-B",
        options={"maxcor": 10, "gtol": 1e-10, "ftol": 0.0},
    )


@pytest.mark.parametrize(
    "case",
    [
        # 10-D quadratic, condition 100: scipy 56 iterations, ours 64 (measured)
        ("quadratic", 10, np.random.default_rng(1).normal(size=10)),
        # Rosenbrock from (-1.2, 1): scipy 39 iterations, ours 46 (measured)
        ("rosenbrock", 2, np.array([-1.2, 1.0])),
    ],
    ids=["quadratic", "rosenbrock"],
)
def test_lbfgs_polishing_matches_scipy_lbfgsb(case):
    name, dim, x0 = case
    if name == "quadratic":
        f, _, xs = quadratic(dim)
    else:
        f, xs = rosenbrock, np.ones(2)
    ref = _scipy(f, x0)
    assert np.abs(ref.x - xs).max() < 1e-7
    res = train_batch(Fake(f, dim), x0[None], Method.make("adam", **POLISH_ONLY))
    assert res.status[0] == "converged" and res.grad_norm[0] <= 1e-10
    np.testing.assert_allclose(res.theta[0], xs, atol=1e-8)
    np.testing.assert_allclose(res.theta[0], ref.x, atol=1e-7)
    # comparable work: within 1.5 times scipy's iterations (plus a few)
    assert res.polish_steps[0] <= 1.5 * ref.nit + 5, (res.polish_steps[0], ref.nit)
    assert res.steps[0] == 0 and res.newton_steps[0] == 0


def _starts(n: int, dim: int, scale: float = 2.0) -> np.ndarray:
    return np.random.default_rng(7).normal(scale=scale, size=(n, dim))


@pytest.mark.parametrize("newton_steps", [0, 3])
def test_a_batch_of_starts_is_exactly_n_single_runs(newton_steps):
    theta0 = _starts(6, 2)
    method = Method.make(
        "adam", lr=0.05, max_steps=40, polish_steps=25, gtol_rel=100.0, newton_steps=newton_steps
    )
    batch = train_batch(Fake(rosenbrock, 2), theta0, method)
    # rows stop individually (some converge in L-BFGS, some hit the cap and go to Newton)
    assert len(set(batch.polish_steps.tolist())) > 1
    if newton_steps:
        assert batch.newton_steps.max() > 0
    for i in range(len(theta0)):
        one = train_batch(Fake(rosenbrock, 2), theta0[i : i + 1], method)
        np.testing.assert_array_equal(one.theta[0], batch.theta[i])
        np.testing.assert_array_equal(one.loss[0], batch.loss[i])
        assert one.status[0] == batch.status[i]
        assert (one.steps[0], one.polish_steps[0], one.newton_steps[0]) == (
            batch.steps[i],
            batch.polish_steps[i],
            batch.newton_steps[i],
        )
        assert one.fe[0] == batch.fe[i]


def _lbfgs_run(f, theta, iters: int, memory: int = 5):
    """Drive the lbfgs rule by hand; returns the loss history ``[iters + 1, N]``."""
    rule = lbfgs(memory)
    state = rule.init(theta)
    L, G = f(theta)
    history = [L.copy()]
    for _ in range(iters):
        u, state = rule.update(G, state, theta, value=L, value_and_grad=lambda rows, x: f(x))
        acc = state.search.accepted
        theta = theta + u
        L = np.where(acc, state.search.value, L)
        G = np.where(acc[:, None], state.search.grad, G)
        history.append(L.copy())
    return np.array(history), theta


def test_line_search_decreases_the_loss_monotonically():
    hist, theta = _lbfgs_run(rosenbrock, _starts(16, 2), 60)
    assert (np.diff(hist, axis=0) <= 0).all()
    # and strictly (Armijo) while a row moves: the first steps all decrease
    assert (np.diff(hist[:5], axis=0) < 0).all()
    assert np.median(hist[-1]) < 1e-6 * np.median(hist[0])


def test_armijo_rejects_steps_without_sufficient_decrease():
    f = lambda rows, x: ((x**2).sum(axis=1), 2 * x)  # noqa: E731
    ls = backtracking_linesearch(c1=0.5, max_backtracks=3)
    x = np.array([[1.0], [1.0]])
    L, G = f(None, x)
    # row 0: descent direction of the right length (t = 1 gives 0); row 1: an ascent direction
    d = np.array([[-1.0], [1.0]])
    u, s = ls.update(d, ls.init(x), x, value=L, grad=G, value_and_grad=f)
    assert s.accepted.tolist() == [True, False]
    assert u.tolist() == [[-1.0], [0.0]] and s.step.tolist() == [1.0, 0.125]
    assert s.value[0] == 0.0 and np.isinf(s.value[1])


def test_lbfgs_memory_rows_can_be_dropped():
    f, _, _ = quadratic(4)
    theta = _starts(3, 4)
    rule = lbfgs(3)
    state = rule.init(theta)
    L, G = f(theta)
    for _ in range(4):
        u, state = rule.update(G, state, theta, value=L, value_and_grad=lambda r, x: f(x))
        theta = theta + u
        L, G = state.search.value, state.search.grad
    keep = np.array([True, False, True])
    small = take_rows(state, keep, 3)
    assert small.direction.S.shape == (2, 3, 4) and small.search.value.shape == (2,)
    d_all, _ = rule.update(G, state, theta, value=L, value_and_grad=lambda r, x: f(x))
    d_two, _ = rule.update(
        G[keep], small, theta[keep], value=L[keep], value_and_grad=lambda r, x: f(x)
    )
    np.testing.assert_array_equal(d_all[keep], d_two)


def test_newton_reaches_the_minimum_of_a_quadratic_in_one_step():
    f, A, xs = quadratic(6, cond=1e3)
    theta = _starts(3, 6)
    L, G = f(theta)
    H = np.broadcast_to(A, (3, 6, 6)).copy()
    rule = newton()
    u, state = rule.update(
        G, rule.init(theta), theta, value=L, value_and_grad=lambda r, x: f(x), hessian=H
    )
    assert state.search.accepted.all() and (state.search.step == 1.0).all()
    np.testing.assert_allclose(theta + u, np.broadcast_to(xs, (3, 6)), atol=1e-10)


def test_newton_leaves_a_saddle_alone_and_ignores_flat_directions():
    # row 0: saddle of x^2 - y^2 (indefinite: not searched, not moved); row 1: x^2 + 0.3 y
    # (no curvature along y: the pseudo-inverse step solves x and leaves y, despite its slope)
    H = np.array([[[2.0, 0.0], [0.0, -2.0]], [[2.0, 0.0], [0.0, 0.0]]])
    b = np.array([[0.0, 0.0], [0.0, 0.3]])
    theta = np.array([[0.5, 0.5], [0.5, 0.5]])
    calls = []

    def f(rows, x):
        calls.append(np.asarray(rows).tolist())
        g = np.einsum("npk,nk->np", H[rows], x) + b[rows]
        return 0.5 * np.einsum("np,np->n", g + b[rows], x) + 1.0, g

    L, G = f(np.arange(2), theta)
    calls.clear()
    d, usable = newton_direction(G, H)
    assert usable.tolist() == [False, True] and np.isnan(d[0]).all()
    np.testing.assert_allclose(d[1], [-0.5, 0.0])
    rule = newton()
    u, state = rule.update(G, rule.init(theta), theta, value=L, value_and_grad=f, hessian=H)
    assert calls == [[1]]  # the saddle row was never evaluated
    assert state.search.accepted.tolist() == [False, True]
    assert u[0].tolist() == [0.0, 0.0] and u[1].tolist() == [-0.5, 0.0]


def test_newton_phase_of_the_trainer_skips_saddles():
    # f = x^2 - y^2 + 5 near the saddle: L-BFGS cannot converge in 0 steps, Newton must refuse
    def saddle(X):
        return X[:, 0] ** 2 - X[:, 1] ** 2 + 5.0, np.stack([2 * X[:, 0], -2 * X[:, 1]], axis=1)

    m = Method.make("adam", max_steps=0, polish_steps=0, newton_steps=5, gtol_rel=1e-2)
    res = train_batch(Fake(saddle, 2), np.array([[0.1, 0.01]]), m)
    assert res.status[0] == "max_steps" and res.newton_steps[0] == 0
    np.testing.assert_array_equal(res.theta[0], [0.1, 0.01])


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sgd", {"lr": 0.01, "clip": 5.0}),
        ("momentum", {"lr": 0.005, "momentum": 0.8, "nesterov": True}),
        ("adam", {"lr": 0.05, "b1": 0.8, "b2": 0.99, "clip": 1.0}),
    ],
)
def test_batched_rules_are_the_registered_optimizers_rules(name, params):
    """train_batch's rule phase steps exactly as the registered optimizer does on each start."""
    a = np.logspace(0, 1, 5)

    def shifted(X):  # separable (no BLAS: rows are exact), loss kept away from 0
        return 0.5 * (a * (X - 1.0) ** 2).sum(axis=1) + 1.0, a * (X - 1.0)

    theta0 = _starts(4, 5)
    k = 30
    m = Method.make(name, **params, max_steps=k, polish="none", gtol_rel=0.0)
    batch = train_batch(Fake(shifted, 5, baseline=1.0), theta0, m)
    assert (batch.steps == k).all()
    opt = get_optimizer(name, **params, max_steps=k, gtol=None)
    for i in range(len(theta0)):
        single = opt.minimize(Fake(shifted, 5, baseline=1.0), theta0[i], np.random.default_rng(0))
        np.testing.assert_array_equal(single, batch.theta[i])
