"""Backtracking line search as an update rule, and the ``lbfgs`` and ``newton`` rules built on it.

As in optax (``optax.lbfgs = chain(scale_by_lbfgs(), scale_by_zoom_linesearch())``), a
second-order rule is a direction transform followed by a line search transform. The line search
needs more than the gradient: the loss and gradient at the current points and a function that
evaluates trial points. They are passed as keyword arguments of ``update`` (optax's "extra
args")::

    tx = lbfgs(memory=10)
    state = tx.init(theta)                                   # theta[N, P]: N independent rows
    u, state = tx.update(G, state, theta, value=L, value_and_grad=f)
    theta = theta + u                                        # rows not accepted: u = 0
    L, G = state.search.value, state.search.grad              # at the accepted points

``f(rows, points) -> (L[k], G[k, P])`` evaluates the points ``points[k, P]`` of the batch rows
``rows`` (positions in ``theta``), so a caller can charge every row its own cost. Every row
searches on its own: row ``i`` accepts the first ``t_i = 1, 1/2, 1/4, ...`` that satisfies
Armijo's sufficient-decrease condition; rows that find none keep ``u_i = 0`` and
``accepted_i = False`` (the trainer retires them: no decrease at round-off level).

Reference: Nocedal & Wright (2006), Numerical Optimization, Algorithm 3.1 (backtracking) and
Algorithm 7.4 (L-BFGS two-loop recursion); Liu & Nocedal (1989); the optax API
(``optax/_src/linesearch.py``, ``alias.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from suite.optimizers.updates import (
    Array,
    LbfgsState,
    NewtonState,
    Transform,
    row_norm,
    scale_by_lbfgs,
    scale_by_newton,
)

ValueAndGrad = Callable[[Array, Array], tuple[Array, Array]]
"""``f(rows, points) -> (L[k], G[k, P])``: loss and gradient of trial points of batch rows."""


class LineSearchState(NamedTuple):
    """Outcome of the last search, per row: ``step`` the last step size tried (the accepted one
    where ``accepted``), ``value``/``grad`` the loss and gradient at the accepted point
    (``inf`` and 0 elsewhere)."""

    step: Array
    accepted: Array
    value: Array
    grad: Array


def backtracking_linesearch(
    c1: float = 1e-4,
    max_backtracks: int = 40,
    *,
    skip_nonfinite: bool = False,
    shrink_grad: bool = False,
) -> Transform:
    """Per-row Armijo backtracking along the incoming directions ``d[N, P]``.

    ``update(d, state, theta, *, value, grad, value_and_grad)``: row ``i`` tries
    ``t = 1, 1/2, 1/4, ...`` (at most ``max_backtracks`` tries) and accepts the first step whose
    loss and gradient are finite and that satisfies ``L(theta + t d) <= L + c1 t g'd``
    (Nocedal & Wright 2006, eq. 3.4) and, with ``shrink_grad``, also decreases the gradient
    norm. With ``skip_nonfinite`` a trial point with a non-finite entry is rejected without being
    evaluated (so a row with direction NaN is never evaluated). Returns ``u = t d`` on accepted
    rows and 0 elsewhere, and a :class:`LineSearchState`.

    >>> import numpy as np
    >>> f = lambda rows, x: ((x**2).sum(axis=1), 2 * x)
    >>> ls = backtracking_linesearch()
    >>> x = np.array([[1.0, 1.0]]); L, G = f(None, x)
    >>> u, s = ls.update(-G, ls.init(x), x, value=L, grad=G, value_and_grad=f)
    >>> s.step.tolist(), (x + u).tolist()
    ([0.5], [[0.0, 0.0]])
    """

    def init(params: Array) -> LineSearchState:
        n, p = np.shape(params)
        return LineSearchState(np.ones(n), np.zeros(n, bool), np.full(n, np.inf), np.zeros((n, p)))

    def update(
        d: Array,
        state: LineSearchState,
        params: Array | None = None,
        *,
        value: Array,
        grad: Array,
        value_and_grad: ValueAndGrad,
    ) -> tuple[Array, Any]:
        theta = np.asarray(params, dtype=np.float64)
        n = theta.shape[0]
        gd = np.einsum("np,np->n", grad, d)
        t = np.ones(n)
        pending = np.arange(n)
        new_L = np.full(n, np.inf)
        new_G = np.zeros_like(grad)
        accepted = np.zeros(n, dtype=bool)
        for _ in range(max_backtracks):
            if pending.size == 0:
                break
            trial = theta[pending] + t[pending, None] * d[pending]
            if skip_nonfinite:
                ok_rows = np.isfinite(trial).all(axis=1)
                Lt = np.full(pending.size, np.inf)
                Gt = np.zeros((pending.size, theta.shape[1]))
                if ok_rows.any():
                    Lt[ok_rows], Gt[ok_rows] = value_and_grad(pending[ok_rows], trial[ok_rows])
            else:
                Lt, Gt = value_and_grad(pending, trial)
            good = np.isfinite(Lt) & (Lt <= value[pending] + c1 * t[pending] * gd[pending])
            good &= np.isfinite(Gt).all(axis=1)
            if shrink_grad:
                good &= row_norm(Gt) < row_norm(grad[pending])
            acc = pending[good]
            new_L[acc], new_G[acc] = Lt[good], Gt[good]
            accepted[acc] = True
            pending = pending[~good]
            t[pending] *= 0.5
        u = np.zeros_like(theta)
        u[accepted] = t[accepted, None] * d[accepted]
        return u, LineSearchState(t, accepted, new_L, new_G)

    return Transform(init, update)


class LbfgsRuleState(NamedTuple):
    """State of :func:`lbfgs`: the direction's memory and the last search's outcome."""

    direction: LbfgsState
    search: LineSearchState


def lbfgs(memory: int = 10, c1: float = 1e-4, max_backtracks: int = 40) -> Transform:
    """L-BFGS: :func:`~suite.optimizers.updates.scale_by_lbfgs` then
    :func:`backtracking_linesearch` (trial points with a non-finite entry are skipped).

    The accepted steps are handed back to the direction's memory (``LbfgsState.step``), which
    stores the pair ``(s, y)`` at the next call, where ``y`` is known. ``update(G, state,
    theta, *, value, value_and_grad)``.
    """
    direction = scale_by_lbfgs(memory)
    search = backtracking_linesearch(c1, max_backtracks, skip_nonfinite=True)

    def init(params: Array) -> LbfgsRuleState:
        return LbfgsRuleState(direction.init(params), search.init(params))

    def update(
        G: Array,
        state: LbfgsRuleState,
        params: Array | None = None,
        *,
        value: Array,
        value_and_grad: ValueAndGrad,
    ) -> tuple[Array, Any]:
        d, dstate = direction.update(G, state.direction, params)
        u, sstate = search.update(
            d, state.search, params, value=value, grad=G, value_and_grad=value_and_grad
        )
        dstate = dstate._replace(step=u, stepped=sstate.accepted.copy())
        return u, LbfgsRuleState(dstate, sstate)

    return Transform(init, update)


class NewtonRuleState(NamedTuple):
    """State of :func:`newton`: which rows had a usable direction, and the search's outcome."""

    direction: NewtonState
    search: LineSearchState


def newton(noise_rel: float = 1e-9, c1: float = 1e-4, max_backtracks: int = 20) -> Transform:
    """Pseudo-inverse Newton: :func:`~suite.optimizers.updates.scale_by_newton` then
    :func:`backtracking_linesearch` that also asks for a smaller gradient norm (so a step never
    leaves a row with a larger gradient, e.g. after leaving the quadratic region).

    ``update(G, state, theta, *, value, value_and_grad, hessian)``. Rows without a usable
    direction (indefinite Hessian: a saddle is near; non-finite values) are not searched:
    ``u = 0``, ``direction.usable`` and ``search.accepted`` False.
    """
    direction = scale_by_newton(noise_rel)
    search = backtracking_linesearch(c1, max_backtracks, shrink_grad=True)

    def init(params: Array) -> NewtonRuleState:
        return NewtonRuleState(direction.init(params), search.init(params))

    def update(
        G: Array,
        state: NewtonRuleState,
        params: Array | None = None,
        *,
        value: Array,
        value_and_grad: ValueAndGrad,
        hessian: Array,
    ) -> tuple[Array, Any]:
        d, dstate = direction.update(G, state.direction, params, hessian=hessian)
        usable = dstate.usable & np.isfinite(value)
        rows = np.flatnonzero(usable)
        theta = np.asarray(params, dtype=np.float64)
        sub, sstate = search.update(
            d[rows],
            search.init(theta[rows]),
            theta[rows],
            value=value[rows],
            grad=G[rows],
            value_and_grad=lambda pos, x: value_and_grad(rows[pos], x),
        )
        n = theta.shape[0]
        u = np.zeros_like(theta)
        u[rows] = sub
        step, accepted = np.ones(n), np.zeros(n, dtype=bool)
        value_new, grad_new = np.full(n, np.inf), np.zeros_like(theta)
        step[rows], accepted[rows] = sstate.step, sstate.accepted
        value_new[rows], grad_new[rows] = sstate.value, sstate.grad
        return u, NewtonRuleState(
            NewtonState(usable), LineSearchState(step, accepted, value_new, grad_new)
        )

    return Transform(init, update)
