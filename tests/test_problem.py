"""The Problem boundary: cost counters, budget, incumbent, trace, non-finite handling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suite.problem import (
    BWD_FE,
    Budget,
    BudgetExhausted,
    Diverged,
    GradientNotAllowed,
    make_problem,
)


@pytest.fixture
def problem():
    return make_problem("adding", model="elman", hidden=4, seq_len=8, n_train=16, n_test=8)


def test_make_problem_routes_options(problem):
    assert problem.model.name == "elman"
    assert problem.model.spec()["hidden"] == 4
    assert problem.task.params["seq_len"] == 8
    assert problem.dim == problem.model.dim
    tdnn = make_problem("adding", model="tdnn", hidden=5, window=3, seq_len=8)
    assert tdnn.model.name == "tdnn"
    assert tdnn.model.spec()["window"] == 3


def test_cliff_fixes_its_model_and_refuses_another():
    p = make_problem("cliff")
    assert p.model.name == "cliff" and p.dim == 2
    with pytest.raises(ValueError, match="requires model 'cliff'"):
        make_problem("cliff", model="elman")


def test_batched_call_costs_n_times_one(problem):
    rng = np.random.default_rng(1)
    theta = problem.initial_point(rng)
    problem.start()
    problem.loss(theta)
    one = problem.counters.fe
    assert one == problem.n_train * 8  # B * T forward steps
    problem.start()
    problem.loss(np.stack([theta] * 7))
    assert problem.counters.fe == 7 * one
    assert problem.counters.evaluations == 7 and problem.counters.loss_calls == 1
    problem.start()
    problem.loss_and_grad(theta)
    g_one = problem.counters.fe
    assert g_one == one + BWD_FE * problem.n_train * 8
    problem.start()
    problem.loss_and_grad(np.stack([theta] * 3))
    assert problem.counters.fe == 3 * g_one
    assert problem.counters.grad_calls == 1


def test_batched_and_single_losses_agree(problem):
    rng = np.random.default_rng(2)
    thetas = np.stack([problem.initial_point(rng) for _ in range(5)])
    batched, grads = problem.loss_and_grad(thetas)
    for i in range(5):
        li, gi = problem.loss_and_grad(thetas[i])
        assert abs(li - batched[i]) <= 1e-12 * max(1.0, abs(li))
        np.testing.assert_allclose(gi, grads[i], rtol=1e-10, atol=1e-13)


def test_budget_stops_at_the_call_that_would_pass_it(problem):
    theta = problem.initial_point(np.random.default_rng(0))
    per_call = problem.n_train * 8
    problem.start(Budget(fe=10.5 * per_call))
    calls = 0
    with pytest.raises(BudgetExhausted):
        while True:
            problem.loss(theta)
            calls += 1
    assert calls == 10
    assert problem.counters.fe == 10 * per_call <= problem.budget.fe


def test_seconds_budget():
    p = make_problem("cliff")
    p.start(Budget(seconds=0.05))
    theta = np.array([5.0, -2.5])
    with pytest.raises(BudgetExhausted):
        for _ in range(10**7):
            p.loss(theta)
    assert p.seconds >= 0.05


def test_trace_is_free_and_on_a_log_grid(problem):
    theta = problem.initial_point(np.random.default_rng(0))
    problem.start(Budget(fe=2e5), checkpoints_per_decade=5)
    rng = np.random.default_rng(3)
    with pytest.raises(BudgetExhausted):
        while True:
            problem.loss(theta + 0.1 * rng.standard_normal(problem.dim))
    per_call = problem.n_train * 8
    assert problem.counters.fe == per_call * problem.counters.loss_calls  # nothing else charged
    result = problem.finish()
    fe = np.array(result.trace["fe"])
    assert np.all(np.diff(fe) > 0)
    # at most cpd checkpoints per decade (+ the final one)
    decades = math.log10(fe[-1] / fe[0])
    assert len(fe) <= 5 * (decades + 1) + 2
    train = np.array(result.trace["train_loss"])
    assert np.all(np.diff(train) <= 0), "best-so-far train loss never increases"
    assert result.train_loss == train[-1] == problem.incumbent_loss
    assert result.test_loss == pytest.approx(problem.evaluate(result.theta, "test"))


def test_nonfinite_loss_is_inf_and_never_incumbent():
    p = make_problem("cliff")
    p.start()
    good = p.loss(np.array([5.0, -2.5]))
    huge = np.array([[1e308, 1e308], [5.0, -2.5]])
    with np.errstate(all="ignore"):
        losses = p.loss(huge)
    assert math.isfinite(good)
    assert losses[1] == pytest.approx(good)
    assert p.incumbent_loss == pytest.approx(good)


def test_nonfinite_theta_is_a_divergence(problem):
    theta = problem.initial_point(np.random.default_rng(0))
    theta[0] = np.nan
    with pytest.raises(Diverged):
        problem.loss(theta)


def test_gradient_free_cannot_ask_for_gradients(problem):
    theta = problem.initial_point(np.random.default_rng(0))
    problem.start(allow_gradients=False)
    with pytest.raises(GradientNotAllowed):
        problem.loss_and_grad(theta)
    with pytest.raises(GradientNotAllowed):
        problem.online().step(theta, 4, 4)


def test_minibatch_costs_its_size_and_checkpoints_consider_the_last_point(problem):
    rng = np.random.default_rng(0)
    theta = problem.initial_point(rng)
    problem.start()
    idx = problem.minibatch(rng, 4)
    assert len(idx) == 4 and np.all(np.diff(idx) > 0)
    problem.loss_and_grad(theta, batch=idx)
    assert problem.counters.fe == 4 * 8 * (1 + BWD_FE)
    # the first call is a checkpoint: the minibatch point's full loss was evaluated for free
    assert problem.incumbent_loss == pytest.approx(problem.evaluate(theta))
    with pytest.raises(ValueError, match="minibatch size"):
        problem.minibatch(rng, problem.n_train + 1)


def test_truncated_gradient_costs_fewer_backward_steps():
    p = make_problem("narma10", model="elman", hidden=4)
    theta = p.initial_point(np.random.default_rng(0))
    p.start()
    p.loss_and_grad(theta)
    full = p.counters.bwd_steps
    p.start()
    p.loss_and_grad(theta, truncate=1)
    assert 0 < p.counters.bwd_steps < full
    with pytest.raises(ValueError, match="truncate"):
        p.loss_and_grad(theta, truncate=0)


def test_online_session_charges_chunks(problem):
    theta = problem.initial_point(np.random.default_rng(0))
    problem.start()
    session = problem.online()
    steps = 0
    done = False
    while not done:
        loss, grad, done = session.step(theta, 4, 4)
        steps += 1
        assert grad.shape == (problem.dim,)
    assert steps == 2  # T = 8 in chunks of 4
    assert problem.counters.fwd_steps == problem.n_train * 8
    assert problem.counters.grad_calls == 2
    with pytest.raises(RuntimeError, match="finished"):
        session.step(theta, 4, 4)


def test_online_chunk_refuses_batches_and_non_finite_points_and_charges_nothing(problem):
    theta = problem.initial_point(np.random.default_rng(0))
    problem.start()
    session = problem.online()
    for bad in (theta[None, :], np.stack([theta, theta]), theta[:-1]):
        with pytest.raises(ValueError, match="one parameter vector of shape"):
            session.step(bad, 4, 4)
    nan = theta.copy()
    nan[-1] = np.nan
    with pytest.raises(Diverged, match="non-finite parameters"):
        session.step(nan, 4, 4)
    assert problem.counters.fe == 0 and problem.counters.grad_calls == 0
    _, grad, done = session.step(theta, 4, 4)  # the session is still usable
    assert grad.shape == (problem.dim,) and not done and problem.counters.grad_calls == 1


def test_bad_shapes_and_budgets(problem):
    with pytest.raises(ValueError, match="theta must have shape"):
        problem.loss(np.zeros(problem.dim + 1))
    with pytest.raises(ValueError, match="positive"):
        Budget(fe=-1)
