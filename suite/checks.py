"""Conformance checks that every registered optimizer (built-in or plugin) must pass.

The checks follow scikit-learn's ``estimator_checks``: one shared suite, each check selected by
the optimizer's declared capability tags, never by its name. Every run goes through the real
:class:`suite.problem.Problem` (real budget, counters and incumbent) on a tiny convex toy: a
linear read-out ``z_t = W x_t + c`` of random sequences fitted by least squares (``P = 4``
parameters, 8 sequences of 6 steps; see :func:`toy_problem`). It implements the full model
contract, online truncated-BPTT chunks included, so every family runs on it in milliseconds.

=========================  ==================  =============================================
check                      runs when           asserts
=========================  ==================  =============================================
returns_finite_point       always              result is a finite float array of shape (P,)
respects_budget            always              ``counters.fe <= budget.fe``; stops in time
leaves_x0_unmodified       always              the ``x0`` array handed in is unchanged
seeded_determinism         always              same seed -> bit-identical result and cost
no_global_random_state     always              ``np.random``/``random`` state untouched, and
                                               the result unchanged when it is perturbed
writes_no_files            always              the working directory stays empty
improves_on_convex_toy     always              final loss <= half the loss at ``x0``
survives_nan_region        always              loss NaN on part of a bounded space: no
                                               crash, no divergence, a finite result
no_gradient_requests       no "gradient"       never calls ``loss_and_grad``/``online``
uses_gradients             "gradient"          does call them (the tag is honest)
evaluates_populations      "population"        some call evaluates several points at once
seed_independent           "deterministic"     two different seeds give the same result
=========================  ==================  =============================================

Use::

    from suite.checks import check_optimizer, iter_checks
    check_optimizer("my-plugin")            # raises AssertionError naming the first failure
    results = check_optimizer(opt, raise_on_failure=False)   # list[CheckResult]

    @pytest.mark.parametrize("check", [n for n, _ in iter_checks("my-plugin")])
    def test_conformance(check):
        dict(iter_checks("my-plugin"))[check]()
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from suite.optimizers import Optimizer, display_name, get_optimizer, registered_name
from suite.problem import Budget, Diverged, GradientNotAllowed, Problem
from suite.trial import RunResult, run
from tasks.base import Dataset, Split

# --------------------------------------------------------------------------- the toy problem

TOY_THETA_STAR = np.array([-0.8, 0.5, 0.25, 0.1])
"""Least-squares solution (up to the noise) of the toy: ``w = (-0.8, 0.5, 0.25)``, ``c = 0.1``."""

NAN_THRESHOLD = 0.5
"""In the NaN variant the loss is NaN wherever ``theta[0] > NAN_THRESHOLD`` (x0 = 0 is not)."""


@dataclass(frozen=True)
class _ToyTask:
    name: str = "toy-linear"
    loss: str = "mse"
    n_in: int = 3
    n_out: int = 1
    model: None = None

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def spec(self) -> dict[str, Any]:
        return {"task": self.name}


@dataclass(frozen=True)
class _ToyOnlineState:
    t: int = 0
    done: bool = False
    last_fwd_steps: int = 0
    last_bwd_steps: int = 0


class ToyLinearModel:
    """``z_t = W x_t + c`` with theta = (W row-major, c): a convex least-squares model.

    It follows the model contract of ``docs/architecture.md`` (batched ``theta[N, P]``,
    forward/backward step counts, online chunks), without recurrence, so truncation changes
    nothing. With ``nan_above`` the loss (and gradient) is NaN for rows with
    ``theta[0] > nan_above``.
    """

    name = "toy-linear"
    dtype = np.dtype(np.float64)

    def __init__(
        self,
        n_in: int,
        n_out: int,
        nan_above: float | None = None,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.n_in, self.n_out = n_in, n_out
        self.dim = n_out * (n_in + 1)
        self.nan_above = nan_above
        self.bounds = bounds

    def spec(self) -> dict[str, Any]:
        return {"model": self.name, "nan_above": self.nan_above}

    def init(self, rng: np.random.Generator) -> np.ndarray:
        return 0.1 * rng.standard_normal(self.dim)

    def _unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.atleast_2d(theta)
        W = theta[:, : self.n_out * self.n_in].reshape(-1, self.n_out, self.n_in)
        return W, theta[:, self.n_out * self.n_in :]

    def forward(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        W, c = self._unpack(theta)
        return np.einsum("noi,bti->nbto", W, X) + c[:, None, None, :]

    def _poison(self, theta: np.ndarray, values: np.ndarray) -> np.ndarray:
        if self.nan_above is None:
            return values
        bad = np.atleast_2d(theta)[:, 0] > self.nan_above
        values = np.array(values, dtype=np.float64)
        values[bad] = np.nan
        return values

    def _terms(self, theta: np.ndarray, split: Split, steps: slice) -> tuple[Any, ...]:
        X, Y, M = split.X[:, steps], split.Y[:, steps], split.M[:, steps]
        R = self.forward(theta, X) - Y[None]  # residuals [N, B, t, O]
        return X, M, R, self.n_out * M.sum()

    def _loss_grad(self, theta: np.ndarray, split: Split, steps: slice) -> tuple[Any, ...]:
        X, M, R, norm = self._terms(theta, split, steps)
        if norm == 0:
            n = np.atleast_2d(theta).shape[0]
            return np.zeros(n), np.zeros((n, self.dim)), 0.0
        loss = np.einsum("bt,nbto->n", M, R**2) / norm
        gW = 2 * np.einsum("bt,nbto,bti->noi", M, R, X) / norm
        gc = 2 * np.einsum("bt,nbto->no", M, R) / norm
        grad = np.concatenate([gW.reshape(gW.shape[0], -1), gc], axis=1)
        return self._poison(theta, loss), self._poison(theta, grad), float(M.sum())

    def loss(self, theta: np.ndarray, split: Split, kind: str) -> np.ndarray:
        return self._loss_grad(theta, split, slice(None))[0]

    def loss_and_grad(
        self, theta: np.ndarray, split: Split, kind: str, truncate: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        loss, grad, _ = self._loss_grad(theta, split, slice(None))
        return loss, grad

    def forward_steps(self, split: Split) -> int:
        return int(split.X.shape[0] * split.X.shape[1])

    def backward_steps(self, split: Split, truncate: int | None = None) -> int:
        return self.forward_steps(split)

    def online_init(self, split: Split) -> _ToyOnlineState:
        return _ToyOnlineState()

    def online_chunk(
        self,
        theta: np.ndarray,
        split: Split,
        kind: str,
        state: _ToyOnlineState,
        h: int,
        h_prime: int,
    ) -> tuple[float, float, np.ndarray, _ToyOnlineState]:
        B, T = split.X.shape[:2]
        stop = min(state.t + h_prime, T)
        loss, grad, weight = self._loss_grad(theta, split, slice(state.t, stop))
        # as suite.models: the chunk's loss is its own mean, its gradient is normalised by the
        # whole split's weight (so the chunk gradients of a pass add up to the full gradient)
        grad = grad * weight / split.M.sum()
        steps = B * (stop - state.t)
        new = _ToyOnlineState(stop, stop >= T, steps, steps)
        return float(loss[0]), weight, grad[0], new


def toy_problem(nan_region: bool = False, seed: int = 12345) -> Problem:
    """The checks' convex toy: least-squares fit of a linear read-out, as a real Problem.

    ``X ~ N(0, 1)`` of shape ``[8, 6, 3]``, ``Y = X w + c + 0.01 noise`` with
    ``(w, c) = TOY_THETA_STAR``; x0 = 0 has loss about 1. With ``nan_region`` the problem has
    bounds ``[-3, 3]^4`` and its loss is NaN wherever ``theta[0] > NAN_THRESHOLD``.
    """
    rng = np.random.default_rng(seed)
    task = _ToyTask()

    def split(n: int) -> Split:
        X = rng.standard_normal((n, 6, task.n_in))
        Y = X @ TOY_THETA_STAR[:3, None] + TOY_THETA_STAR[3] + 0.01 * rng.standard_normal((n, 6, 1))
        return Split(X=X, Y=Y, M=np.ones((n, 6)))

    train, test = split(8), split(8)
    baseline = float(np.mean((train.Y - train.Y.mean()) ** 2))
    dataset = Dataset(train=train, test=test, baseline_loss=baseline, target_loss=1e-3)
    bounds = (np.full(4, -3.0), np.full(4, 3.0)) if nan_region else None
    model = ToyLinearModel(task.n_in, task.n_out, NAN_THRESHOLD if nan_region else None, bounds)
    return Problem(task, model, dataset)


# --------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: its name, whether it passed, why not, and how long it took."""

    name: str
    passed: bool
    message: str
    seconds: float


@dataclass(frozen=True)
class _Settings:
    budget_fe: float
    max_seconds: float


def _settings(quick: bool) -> _Settings:
    return _Settings(budget_fe=2e4 if quick else 2e5, max_seconds=30.0 if quick else 120.0)


@dataclass(frozen=True)
class _Run:
    problem: Problem
    result: RunResult

    @property
    def theta(self) -> np.ndarray | None:
        return self.result.best


def _label(opt: Optimizer) -> str:
    return display_name(opt) if registered_name(type(opt)) else repr(opt)


class _Timeout(BaseException):
    """Raised by the alarm of :func:`_deadline` (a BaseException: ``except Exception`` in an
    optimizer does not swallow it)."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_Timeout` after ``seconds`` of wall time.

    Only in the main thread on POSIX, and only when no other alarm is pending (pytest-timeout's,
    say), which is left alone.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run(opt: Optimizer, s: _Settings, seed: int = 0, nan_region: bool = False) -> _Run:
    """One run as a trial does it (:func:`suite.trial.run`), from ``x0 = 0`` on the toy.

    The budget also has ``max_seconds`` of wall time; an optimizer still running 50% later
    (one that catches BudgetExhausted and goes on) is stopped by an alarm and fails. A
    divergence is raised as :class:`~suite.problem.Diverged`.
    """
    problem = toy_problem(nan_region=nan_region)
    overdue = AssertionError(
        f"{_label(opt)} did not stop within {s.max_seconds:g} s on the toy problem with a "
        f"budget of {s.budget_fe:g} fe (does it catch BudgetExhausted and go on?)"
    )
    budget = Budget(fe=s.budget_fe, seconds=s.max_seconds)
    try:
        with _deadline(1.5 * s.max_seconds):
            result = run(problem, opt, budget, seed, x0=np.zeros(problem.dim))
    except _Timeout:
        raise overdue from None
    except GradientNotAllowed as exc:
        raise AssertionError(
            f"{_label(opt)} has no 'gradient' tag but asked the problem for a gradient ({exc}); "
            "add the tag or use only problem.loss()"
        ) from None
    if result.status == "diverged":
        raise Diverged(result.error)
    if result.seconds >= s.max_seconds:
        raise overdue
    return _Run(problem, result)


def _result(run: _Run) -> np.ndarray:
    assert run.theta is not None, "no point was evaluated on the full training set"
    return np.asarray(run.theta)


# ------------------------------------------------------------------------------- the checks


@dataclass(frozen=True)
class _Check:
    name: str
    applies: Callable[[frozenset[str]], bool]
    run: Callable[[Optimizer, _Settings], None]


_CHECKS: list[_Check] = []


def _check(applies: Callable[[frozenset[str]], bool] = lambda tags: True):
    def decorate(fn: Callable[[Optimizer, _Settings], None]) -> Callable:
        _CHECKS.append(_Check(fn.__name__.removeprefix("check_"), applies, fn))
        return fn

    return decorate


@_check()
def check_returns_finite_point(opt: Optimizer, s: _Settings) -> None:
    """The result is a finite float array of shape (P,)."""
    run = _run(opt, s)
    theta = _result(run)
    dim = run.problem.dim
    assert isinstance(theta, np.ndarray), f"minimize returned {type(theta).__name__}, not ndarray"
    assert theta.shape == (dim,), f"minimize returned shape {theta.shape}, expected ({dim},)"
    assert np.issubdtype(theta.dtype, np.floating), f"minimize returned dtype {theta.dtype}"
    assert np.isfinite(theta).all(), f"minimize returned non-finite entries: {theta}"


@_check()
def check_respects_budget(opt: Optimizer, s: _Settings) -> None:
    """The cost counted by the Problem never exceeds the budget."""
    run = _run(opt, s)
    fe = run.problem.counters.fe
    assert fe <= s.budget_fe, f"spent {fe:g} fe of a budget of {s.budget_fe:g}"
    assert fe > 0, "never evaluated the problem"


@_check()
def check_leaves_x0_unmodified(opt: Optimizer, s: _Settings) -> None:
    """The start vector handed to minimize is not modified in place."""
    run = _run(opt, s)
    x0, after = run.result.x0, run.result.x0_after
    assert np.array_equal(x0, after), (
        f"minimize modified x0 in place: {x0} became {after}; copy it first"
    )


@_check()
def check_seeded_determinism(opt: Optimizer, s: _Settings) -> None:
    """The same rng seed gives a bit-identical result at the same cost."""
    a, b = _run(opt, s, seed=7), _run(opt, s, seed=7)
    ta, tb = _result(a), _result(b)
    assert np.array_equal(ta, tb), (
        f"two runs with the same seed differ: {ta} vs {tb}; draw all randomness from the rng "
        "argument (no np.random.*, random.*, clocks or unseeded generators)"
    )
    assert a.problem.counters.fe == b.problem.counters.fe, "same seed, different cost"


def _np_state_equal(a: Any, b: Any) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


@_check()
def check_no_global_random_state(opt: Optimizer, s: _Settings) -> None:
    """Neither reads nor advances numpy's or Python's global random state."""
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        reference = _result(_run(opt, s, seed=3))
        assert _np_state_equal(np.random.get_state(), np_state), (  # noqa: NPY002
            "the global numpy random state changed (np.random.* used, or pycma's 'seed' option)"
        )
        assert random.getstate() == py_state, "the global state of the random module changed"
        np.random.seed(2024)  # noqa: NPY002 - deliberately perturbing the global state
        random.seed(2024)
        perturbed = _result(_run(opt, s, seed=3))
        assert np.array_equal(reference, perturbed), (
            "the result depends on the global random state; use only the rng argument"
        )
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)


@_check()
def check_writes_no_files(opt: Optimizer, s: _Settings) -> None:
    """Nothing is written to the working directory (e.g. pycma's outcmaes/ logs)."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="rnnbench-check-") as tmp:
        os.chdir(tmp)
        try:
            _run(opt, s)
            left = sorted(os.listdir(tmp))
        finally:
            os.chdir(cwd)
    assert not left, f"files written to the working directory: {left}"


@_check()
def check_improves_on_convex_toy(opt: Optimizer, s: _Settings) -> None:
    """On the convex toy the final loss is at most half the loss at x0."""
    run = _run(opt, s)
    start = run.problem.evaluate(run.result.x0)
    final = run.problem.evaluate(_result(run))
    assert final <= 0.5 * start, (
        f"loss went from {start:.4g} at x0 to only {final:.4g} with {s.budget_fe:g} fe on a "
        "4-parameter least-squares problem (expected at most half)"
    )


@_check()
def check_survives_nan_region(opt: Optimizer, s: _Settings) -> None:
    """Loss NaN on part of a bounded space: no exception, no divergence, a finite result."""
    try:
        run = _run(opt, s, nan_region=True)
    except Diverged as exc:
        raise AssertionError(f"diverged on the toy with a NaN region: {exc}") from None
    theta = _result(run)
    assert np.isfinite(theta).all(), f"non-finite result {theta}"
    assert np.isfinite(run.problem.evaluate(theta)), f"result {theta} lies in the NaN region"


@_check(lambda tags: "gradient" not in tags)
def check_no_gradient_requests(opt: Optimizer, s: _Settings) -> None:
    """Without the "gradient" tag no gradient is ever requested."""
    run = _run(opt, s)  # a request raises GradientNotAllowed, turned into a failure
    assert run.problem.counters.grad_calls == 0, "gradient calls were counted"


@_check(lambda tags: "gradient" in tags)
def check_uses_gradients(opt: Optimizer, s: _Settings) -> None:
    """With the "gradient" tag gradients are used (else drop the tag)."""
    run = _run(opt, s)
    assert run.problem.counters.grad_calls > 0, "tagged 'gradient' but never asked for one"


@_check(lambda tags: "population" in tags)
def check_evaluates_populations(opt: Optimizer, s: _Settings) -> None:
    """With the "population" tag at least one call evaluates several points (theta[N, P])."""
    c = _run(opt, s).problem.counters
    calls = c.loss_calls + c.grad_calls
    assert c.evaluations > calls, (
        f"tagged 'population' but every one of {calls} calls evaluated a single point; "
        "evaluate the population with one problem.loss(X[N, P]) call"
    )


@_check(lambda tags: "deterministic" in tags)
def check_seed_independent(opt: Optimizer, s: _Settings) -> None:
    """With the "deterministic" tag the result does not depend on the seed."""
    a, b = _result(_run(opt, s, seed=1)), _result(_run(opt, s, seed=2))
    assert np.array_equal(a, b), (
        f"tagged 'deterministic' but seeds 1 and 2 give {a} and {b}; tag it 'stochastic'"
    )


# ------------------------------------------------------------------------------------ API


def _resolve(optimizer: str | Optimizer) -> Optimizer:
    if isinstance(optimizer, str):
        return get_optimizer(optimizer)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"expected an optimizer name or an Optimizer instance, got {type(optimizer).__name__}"
        )
    return optimizer


def check_names() -> list[str]:
    """Names of all checks (each optimizer runs those its tags select)."""
    return [c.name for c in _CHECKS]


def iter_checks(
    optimizer: str | Optimizer, *, quick: bool = True
) -> Iterator[tuple[str, Callable[[], None]]]:
    """Yield ``(check name, callable)`` for the checks ``optimizer``'s tags select.

    Calling the callable runs the check and raises an AssertionError on failure (for pytest
    parametrisation). Listing the names does not run anything.
    """
    opt = _resolve(optimizer)
    settings = _settings(quick)
    for check in _CHECKS:
        if check.applies(frozenset(opt.tags)):

            def call(check: _Check = check) -> None:
                check.run(opt, settings)

            yield check.name, call


def check_optimizer(
    optimizer: str | Optimizer, *, quick: bool = True, raise_on_failure: bool = True
) -> list[CheckResult]:
    """Run the conformance checks selected by the tags of ``optimizer`` (a name or instance).

    With ``raise_on_failure`` (the default) the first failure raises an AssertionError naming
    the optimizer and the check; otherwise every check runs and the results are returned.
    ``quick=False`` gives each run ten times the budget.
    """
    opt = _resolve(optimizer)
    results = []
    for name, call in iter_checks(opt, quick=quick):
        t0 = time.perf_counter()
        try:
            call()
            passed, message = True, ""
        except AssertionError as exc:
            passed, message = False, str(exc) or "assertion failed"
        except Exception as exc:  # a crash is a failed check, reported with its traceback
            passed = False
            message = f"raised {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        results.append(CheckResult(name, passed, message, time.perf_counter() - t0))
        if not passed and raise_on_failure:
            raise AssertionError(f"optimizer {_label(opt)} failed check {name!r}: {message}")
    return results


__all__ = [
    "CheckResult",
    "NAN_THRESHOLD",
    "TOY_THETA_STAR",
    "ToyLinearModel",
    "check_names",
    "check_optimizer",
    "iter_checks",
    "toy_problem",
]
