"""Tests of the conformance suite: the toy problem is right, broken optimizers fail the check
meant to catch them, and the example plugin passes."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from suite.checks import (
    NAN_THRESHOLD,
    TOY_THETA_STAR,
    CheckResult,
    check_names,
    check_optimizer,
    iter_checks,
    toy_problem,
)
from suite.optimizers import Optimizer, get_optimizer, load_plugins, optimizer_names
from suite.problem import Budget, BudgetExhausted

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "one_plus_one_es.py"


# ------------------------------------------------------------------------------ the toy


def test_toy_gradient_matches_finite_differences() -> None:
    p = toy_problem()
    theta = np.array([0.3, -0.2, 0.1, 0.05])
    _, g = p.loss_and_grad(theta)
    eps = 1e-6
    fd = [(p.loss(theta + eps * e) - p.loss(theta - eps * e)) / (2 * eps) for e in np.eye(4)]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_toy_is_least_squares_with_known_solution() -> None:
    p = toy_problem()
    assert p.loss(TOY_THETA_STAR) < 1e-3 < 0.5 < p.loss(np.zeros(4))
    L, G = p.loss_and_grad(np.stack([np.zeros(4), TOY_THETA_STAR]))
    assert L.shape == (2,) and G.shape == (2, 4)


def test_toy_online_chunks_add_up_to_the_full_gradient() -> None:
    p = toy_problem()
    theta = np.array([0.3, -0.2, 0.1, 0.05])
    session, total, done = p.online(), np.zeros(4), False
    while not done:
        _, g, done = session.step(theta, 2, 2)  # the toy has no recurrence: h is irrelevant
        total += g
    np.testing.assert_allclose(total, p.loss_and_grad(theta)[1], rtol=1e-12)


def test_toy_nan_region() -> None:
    p = toy_problem(nan_region=True)
    inside = np.array([NAN_THRESHOLD + 0.1, 0, 0, 0])
    assert p.loss(inside) == np.inf and np.isfinite(p.loss(np.zeros(4)))
    assert p.bounds is not None and np.all(p.bounds[0] < 0) and np.all(p.bounds[1] > 0)


# ------------------------------------------------------------------------ the example plugin


def test_example_plugin_passes_the_conformance_suite() -> None:
    load_plugins([str(EXAMPLE)])
    assert "one-plus-one-es" in optimizer_names()
    results = check_optimizer("one-plus-one-es")
    assert all(r.passed for r in results)
    assert {r.name for r in results} >= {"improves_on_convex_toy", "no_gradient_requests"}


def test_example_plugin_learns_adding() -> None:
    from suite.problem import make_problem

    load_plugins([str(EXAMPLE)])
    p = make_problem("adding", seq_len=10, hidden=4)
    p.start(Budget(fe=5e5), allow_gradients=False)
    x0 = p.initial_point(np.random.default_rng(0))
    with pytest.raises(BudgetExhausted):
        get_optimizer("one-plus-one-es").minimize(p, x0, np.random.default_rng(0))
    assert p.incumbent_loss < 0.9 * p.evaluate(x0)


# ------------------------------------------------------------ broken optimizers must fail


@dataclass(frozen=True)
class _Good(Optimizer):
    """Gradient descent on the toy, gradient-tagged; the broken ones derive from it."""

    tags: ClassVar[frozenset[str]] = frozenset({"gradient", "deterministic"})

    def minimize(self, problem, x0, rng):
        theta = np.array(x0, dtype=float)
        for _ in range(30):
            theta = theta - 0.2 * problem.loss_and_grad(theta)[1]
        return theta


@dataclass(frozen=True)
class _UsesGlobalRandom(_Good):
    tags: ClassVar[frozenset[str]] = frozenset({"gradient", "stochastic"})

    def minimize(self, problem, x0, rng):
        return super().minimize(problem, x0, rng) + 1e-9 * np.random.standard_normal(len(x0))  # noqa: NPY002


@dataclass(frozen=True)
class _UsesPythonRandom(_Good):
    tags: ClassVar[frozenset[str]] = frozenset({"gradient", "stochastic"})

    def minimize(self, problem, x0, rng):
        return super().minimize(problem, x0, rng) + 1e-9 * random.random()


@dataclass(frozen=True)
class _Unseeded(_Good):
    tags: ClassVar[frozenset[str]] = frozenset({"gradient", "stochastic"})

    def minimize(self, problem, x0, rng):
        noise = np.random.default_rng().standard_normal(len(x0))
        return super().minimize(problem, x0, rng) + 1e-9 * noise


@dataclass(frozen=True)
class _ModifiesX0(_Good):
    def minimize(self, problem, x0, rng):
        x0 -= 0.2 * problem.loss_and_grad(x0)[1]
        return super().minimize(problem, x0, rng)


@dataclass(frozen=True)
class _WritesFiles(_Good):
    def minimize(self, problem, x0, rng):
        Path("optimizer.log").write_text("step 1\n")
        return super().minimize(problem, x0, rng)


@dataclass(frozen=True)
class _ForgotGradientTag(_Good):
    tags: ClassVar[frozenset[str]] = frozenset({"deterministic"})


@dataclass(frozen=True)
class _DoesNothing(_Good):
    def minimize(self, problem, x0, rng):
        problem.loss_and_grad(x0)
        return np.array(x0, dtype=float)


@dataclass(frozen=True)
class _WrongShape(_Good):
    def minimize(self, problem, x0, rng):
        return super().minimize(problem, x0, rng)[:2]


@dataclass(frozen=True)
class _CrashesOnInf(_Good):
    tags: ClassVar[frozenset[str]] = frozenset({"stochastic"})

    def minimize(self, problem, x0, rng):
        x = np.array(x0, dtype=float)
        fx = problem.loss(x)
        while True:
            y = x + 0.5 * rng.standard_normal(x.shape)
            fy = problem.loss(y)
            if not np.isfinite(fy):
                raise FloatingPointError("loss is inf")
            if fy < fx:
                x, fx = y, fy


@dataclass(frozen=True)
class _NotReallyPopulation(_CrashesOnInf):
    tags: ClassVar[frozenset[str]] = frozenset({"stochastic", "population"})


@dataclass(frozen=True)
class _NotReallyDeterministic(_Good):
    def minimize(self, problem, x0, rng):
        return super().minimize(problem, x0, rng) + 1e-9 * rng.standard_normal(len(x0))


@dataclass(frozen=True)
class _NeverStops(_Good):
    def minimize(self, problem, x0, rng):
        while True:
            try:
                problem.loss(x0)
            except BudgetExhausted:
                pass


BROKEN = [
    (_UsesGlobalRandom, "no_global_random_state"),
    (_UsesPythonRandom, "no_global_random_state"),
    (_Unseeded, "seeded_determinism"),
    (_ModifiesX0, "leaves_x0_unmodified"),
    (_WritesFiles, "writes_no_files"),
    (_ForgotGradientTag, "returns_finite_point"),
    (_DoesNothing, "improves_on_convex_toy"),
    (_WrongShape, "returns_finite_point"),
    (_CrashesOnInf, "survives_nan_region"),
    (_NotReallyPopulation, "evaluates_populations"),
    (_NotReallyDeterministic, "seed_independent"),
]


def test_a_correct_optimizer_passes() -> None:
    results = check_optimizer(_Good(), raise_on_failure=False)
    assert all(isinstance(r, CheckResult) and r.passed for r in results), results


@pytest.mark.parametrize(("cls", "check"), BROKEN, ids=[c.__name__ for c, _ in BROKEN])
def test_broken_optimizers_fail_the_right_check(
    cls: type, check: str, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # what the broken ones write lands here, not in the checkout
    failed = {
        r.name: r.message for r in check_optimizer(cls(), raise_on_failure=False) if not r.passed
    }
    assert check in failed, f"{cls.__name__} should fail {check}; failures: {failed}"
    with pytest.raises(AssertionError, match=f"failed check '{check}'|failed check"):
        check_optimizer(cls())


def test_gradient_requests_without_the_tag_are_named() -> None:
    failed = {
        r.name: r.message for r in check_optimizer(_ForgotGradientTag(), raise_on_failure=False)
    }
    assert (
        "has no 'gradient' tag but asked the problem for a gradient"
        in failed["no_gradient_requests"]
    )


def test_an_optimizer_that_swallows_the_budget_is_stopped(monkeypatch) -> None:
    import suite.checks as checks

    monkeypatch.setattr(checks, "_settings", lambda quick: checks._Settings(2e3, 0.5))
    with pytest.raises(AssertionError, match="did not stop within 0.5 s"):
        dict(iter_checks(_NeverStops()))["respects_budget"]()


def test_checks_are_selected_by_tags() -> None:
    names = {n for n, _ in iter_checks(_Good())}
    assert "uses_gradients" in names and "seed_independent" in names
    assert "no_gradient_requests" not in names and "evaluates_populations" not in names
    names = {n for n, _ in iter_checks(_NotReallyPopulation())}
    assert "no_gradient_requests" in names and "evaluates_populations" in names
    assert "seed_independent" not in names and "uses_gradients" not in names
    assert names <= set(check_names())


def test_checks_leave_the_process_as_they_found_it() -> None:
    cwd = os.getcwd()
    np.random.seed(5)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    check_optimizer("random-search")
    assert os.getcwd() == cwd
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_check_optimizer_refuses_non_optimizers() -> None:
    with pytest.raises(TypeError, match="optimizer name or an Optimizer instance"):
        check_optimizer(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown optimizer"):
        check_optimizer("no-such-optimizer")
