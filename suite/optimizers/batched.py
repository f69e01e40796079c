"""Batched training: many starts ``theta[N, P]`` of one update rule on one Problem, as one batch.

All rows are trained together through ``problem.loss_and_grad``: one vectorised call per step,
whatever ``N`` is (one start is a batch of one row). The update rules are those of
:mod:`suite.optimizers.updates` and :mod:`suite.optimizers.linesearch`; this module adds the
per-row bookkeeping: rows stop individually, stopped rows are dropped from the rule's state
(:func:`~suite.optimizers.updates.take_rows`) and from later calls, and every call's cost is
charged to the rows it was made for. What to run is a :class:`~suite.optimizers.batched_method.
Method`.

Training, per row:

1. *Method phase*: the update rule of a registered gradient optimizer (``sgd``, ``momentum``,
   ``adam``: :meth:`GradientDescent.transform`, clipping included), on the full training set or
   on minibatches of ``batch_size`` sequences (one minibatch per step, shared by all rows). A row
   stops when its full-batch gradient norm is at most ``gtol = gtol_rel * baseline_loss``
   (checked every step on full batches, every ``check_every`` steps on minibatches), when its
   loss or parameters turn non-finite (``diverged``), or after ``max_steps`` steps.
2. *Polishing phase* (``polish = "lbfgs"``): rows not yet converged continue with
   :func:`~suite.optimizers.linesearch.lbfgs` (memory ``memory``) on the full training set for
   up to ``polish_steps`` iterations, stopping at the same tolerance; a row whose line search
   finds no decrease stops where it is.
3. *Newton phase* (with L-BFGS polishing, for models of at most ``newton_max_params``
   parameters): rows still not converged take up to ``newton_steps`` steps of
   :func:`~suite.optimizers.linesearch.newton` on the dense finite-difference Hessian; rows
   with clearly negative curvature leave the phase (Newton is never drawn to a saddle).

Status of a row: ``converged`` (``||g|| <= gtol``, or a loss below :data:`ZERO_LOSS_REL` of the
baseline), ``max_steps`` or ``diverged``.

Cost. A call on ``n`` rows costs ``n`` times a row, and each row is charged its share, so
``fe[i]`` is exactly the work done for row ``i``.

References: Liu & Nocedal (1989); Nocedal & Wright (2006); the ``SCIENCE.md`` pitfall on
unconverged end points (the rule picks the basin, L-BFGS and Newton find its bottom).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from suite.curvature import hessian_fd
from suite.optimizers.batched_method import Method
from suite.optimizers.linesearch import lbfgs, newton
from suite.optimizers.updates import Transform, apply_updates, row_norm, take_rows

STATUSES: tuple[str, ...] = ("converged", "max_steps", "diverged")

ZERO_LOSS_REL = 1e-12
"""A loss below this fraction of the baseline counts as converged (a global minimum at float64
resolution: the losses are non-negative, and at a cliff edge the gradient of a zero loss can
stay large, see the cliff task)."""


@dataclass
class BatchResult:
    """End points of a batch of starts (row ``i`` is start ``i``).

    ``theta[N, P]`` end points; ``loss[N]`` full train loss; ``grad_norm[N]`` full-batch gradient
    norm; ``status[N]`` (:data:`STATUSES`); ``steps[N]`` method steps; ``polish_steps[N]``
    L-BFGS iterations; ``newton_steps[N]`` Newton iterations; ``fe[N]`` cost charged to each
    start; ``trace_steps[N, K]`` and ``trace_loss[N, K]`` a log-spaced trace of the full-batch
    loss (slot ``k``: the first loss seen after ``u`` updates with ``u + 1`` in
    ``[2^k, 2^(k+1))``, NaN if none); ``total_fe``; ``seconds`` wall time; ``gtol`` the absolute
    gradient tolerance used.
    """

    theta: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    polish_steps: np.ndarray
    newton_steps: np.ndarray
    fe: np.ndarray
    trace_steps: np.ndarray
    trace_loss: np.ndarray
    total_fe: float = 0.0
    seconds: float = 0.0
    gtol: float = 0.0


class Charger:
    """Calls the problem in row blocks, charges each call's cost equally to its rows and keeps
    a log-spaced loss trace per row.

    Blocks hold at most ``max(1, block_steps // forward_steps_per_row)`` rows: per-row cost of a
    batched call grows once a block's working set leaves the CPU caches, so a 256-row batch is
    evaluated as a few vectorised calls rather than one.
    """

    def __init__(self, problem: Any, n: int, n_slots: int, block_steps: int = 1 << 16) -> None:
        self.problem = problem
        self.fe = np.zeros(n)
        self.block_steps = block_steps
        self.trace_steps = np.full((n, n_slots), np.nan)
        self.trace_loss = np.full((n, n_slots), np.nan)
        self._rows_per_call: dict[int | None, int] = {}

    def rows_per_call(self, batch: np.ndarray | None = None) -> int:
        """Rows per call on the full training set (``batch`` None) or on a minibatch."""
        key = None if batch is None else int(len(batch))
        if key not in self._rows_per_call:
            split = self.problem.dataset.train
            if batch is not None:
                split = type(split)(X=split.X[batch], Y=split.Y[batch], M=split.M[batch])
            per_row = max(int(self.problem.model.forward_steps(split)), 1)
            self._rows_per_call[key] = max(1, self.block_steps // per_row)
        return self._rows_per_call[key]

    def loss_and_grad(
        self, idx: np.ndarray, theta: np.ndarray, batch: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Loss and gradient of the points ``theta[k, P]`` of rows ``idx[k]``, charged to them."""
        block = self.rows_per_call(batch)
        losses, grads = [], []
        for b0 in range(0, len(idx), block):
            before = self.problem.counters.fe
            loss, grad = self.problem.loss_and_grad(theta[b0 : b0 + block], batch=batch)
            rows = idx[b0 : b0 + block]
            self.fe[rows] += (self.problem.counters.fe - before) / max(len(rows), 1)
            losses.append(np.atleast_1d(np.asarray(loss, dtype=np.float64)))
            grads.append(np.asarray(grad, dtype=np.float64).reshape(len(rows), -1))
        if not losses:
            return np.zeros(0), np.zeros((0, theta.shape[1]))
        return np.concatenate(losses), np.concatenate(grads)

    def record(self, idx: np.ndarray, updates_done: np.ndarray, loss: np.ndarray) -> None:
        """Trace: the first full-batch loss seen with ``u`` updates done, ``u + 1`` in
        ``[2^k, 2^(k+1))``, goes to slot ``k``."""
        slot = np.floor(np.log2(updates_done + 1.0)).astype(np.int64)
        slot = np.minimum(slot, self.trace_steps.shape[1] - 1)
        empty = np.isnan(self.trace_steps[idx, slot])
        rows, slots = idx[empty], slot[empty]
        self.trace_steps[rows, slots] = updates_done[empty]
        self.trace_loss[rows, slots] = loss[empty]


class _Tol(NamedTuple):
    grad: float
    loss: float

    def ok(self, loss: np.ndarray, gnorm: np.ndarray) -> np.ndarray:
        return (np.asarray(gnorm) <= self.grad) | (np.asarray(loss) <= self.loss)


class _Rows:
    """The per-row outputs filled in by the phases (row ``i`` of every array is start ``i``)."""

    def __init__(self, n: int) -> None:
        self.loss = np.full(n, np.inf)
        self.gnorm = np.full(n, np.inf)
        self.status = np.full(n, "max_steps", dtype=object)
        self.steps = np.zeros(n, dtype=np.int64)
        self.polish_steps = np.zeros(n, dtype=np.int64)
        self.newton_steps = np.zeros(n, dtype=np.int64)


def train_batch(
    problem: Any,
    theta0: np.ndarray,
    method: Method,
    rng: np.random.Generator | None = None,
) -> BatchResult:
    """Train the starts ``theta0[N, P]`` on ``problem`` with ``method`` as one batch.

    See the module docstring for the three phases and the stopping rules. ``rng`` draws the
    minibatches (required when ``method.batch_size`` is set; every row gets the same minibatch
    at a step). The problem's counters keep running (call ``problem.start()`` first to reset
    them); no budget is needed -- the step caps bound the work.
    """
    t0 = time.perf_counter()
    theta = np.array(theta0, dtype=np.float64, copy=True)
    if theta.ndim != 2 or theta.shape[1] != problem.dim:
        raise ValueError(f"theta0 must have shape (N, {problem.dim}), got {theta.shape}")
    if method.batch_size is not None and rng is None:
        raise ValueError("a minibatch method needs an rng (numpy.random.Generator)")
    if method.batch_size is not None and method.batch_size > problem.n_train:
        raise ValueError(
            f"batch_size {method.batch_size} exceeds the {problem.n_train} training sequences"
        )
    n = theta.shape[0]
    baseline = float(problem.baseline_loss)
    gtol = _Tol(method.gtol_rel * baseline, ZERO_LOSS_REL * baseline)
    n_slots = int(math.floor(math.log2(method.max_steps + method.polish_steps + 2))) + 1
    charger = Charger(problem, n, n_slots)
    fe0 = problem.counters.fe
    out = _Rows(n)
    finite0 = np.isfinite(theta).all(axis=1)
    out.status[~finite0] = "diverged"
    active = np.flatnonzero(finite0)
    active = _method_phase(charger, theta, active, method, gtol, rng, out)
    if method.polish == "lbfgs" and active.size:
        active = _lbfgs_phase(charger, theta, active, method, gtol, out)
    if (
        method.polish == "lbfgs"
        and method.newton_steps > 0
        and problem.dim <= method.newton_max_params
    ):
        pending = np.flatnonzero(out.status == "max_steps")
        if pending.size:
            _newton_phase(charger, theta, pending, method, gtol, out)
    # Without polishing, the last loss and gradient of the rows still active came from before
    # their last update (or from a minibatch): evaluate the end points once more.
    stale = active if method.polish == "none" else active[:0]
    if stale.size:
        L, G = charger.loss_and_grad(stale, theta[stale])
        out.loss[stale], out.gnorm[stale] = L, row_norm(G)
        charger.record(stale, out.steps[stale], L)
        conv = np.isfinite(L) & gtol.ok(L, out.gnorm[stale])
        out.status[stale[conv]] = "converged"
        out.status[stale[~np.isfinite(L)]] = "diverged"
    return BatchResult(
        theta=theta,
        loss=out.loss,
        grad_norm=out.gnorm,
        status=out.status.astype(str),
        steps=out.steps,
        polish_steps=out.polish_steps,
        newton_steps=out.newton_steps,
        fe=charger.fe,
        trace_steps=charger.trace_steps,
        trace_loss=charger.trace_loss,
        total_fe=float(problem.counters.fe - fe0),
        seconds=time.perf_counter() - t0,
        gtol=gtol.grad,
    )


def _retire(
    active: np.ndarray, state: Any, done: np.ndarray, bad: np.ndarray, status: np.ndarray
) -> tuple[np.ndarray, Any]:
    """Mark rows ``done`` converged and ``bad`` diverged; drop both from ``active``, state."""
    status[active[done]] = "converged"
    status[active[bad]] = "diverged"
    keep = ~(done | bad)
    return active[keep], take_rows(state, keep, active.size)


def _method_phase(
    charger: Charger,
    theta: np.ndarray,
    active: np.ndarray,
    method: Method,
    gtol: _Tol,
    rng: np.random.Generator | None,
    out: _Rows,
) -> np.ndarray:
    """The update-rule phase; returns the rows still active (not converged, not diverged)."""
    problem = charger.problem
    rule = method.rule()
    state = rule.init(theta[active])
    mini = method.batch_size is not None
    loss, gnorm, status, steps = out.loss, out.gnorm, out.status, out.steps
    for step in range(method.max_steps):
        if active.size == 0:
            break
        check = not mini or step % method.check_every == 0
        if mini and check:
            L, G = charger.loss_and_grad(active, theta[active])
            gn = row_norm(G)
            loss[active], gnorm[active] = L, gn
            charger.record(active, steps[active], L)
            done = np.isfinite(L) & gtol.ok(L, gn)
            bad = ~np.isfinite(L)
            active, state = _retire(active, state, done, bad, status)
            if active.size == 0:
                break
        if mini:
            batch = problem.minibatch(rng, method.batch_size)
            L, G = charger.loss_and_grad(active, theta[active], batch=batch)
            bad = ~np.isfinite(L) | ~np.isfinite(G).all(axis=1)
            done = np.zeros(active.size, dtype=bool)
        else:
            L, G = charger.loss_and_grad(active, theta[active])
            gn = row_norm(G)
            loss[active], gnorm[active] = L, gn
            charger.record(active, steps[active], L)
            bad = ~np.isfinite(L)
            done = ~bad & gtol.ok(L, gn)
        if done.any() or bad.any():
            keep = ~(done | bad)
            G = G[keep]
            active, state = _retire(active, state, done, bad, status)
            if active.size == 0:
                break
        updates, state = rule.update(G, state, theta[active])
        new = apply_updates(theta[active], updates)
        steps[active] += 1
        finite = np.isfinite(new).all(axis=1)
        theta[active[finite]] = new[finite]
        if not finite.all():
            active, state = _retire(active, state, np.zeros_like(finite), ~finite, status)
    return active


def _rule_step(
    charger: Charger,
    rule: Transform,
    state: Any,
    active: np.ndarray,
    theta: np.ndarray,
    L: np.ndarray,
    G: np.ndarray,
    **extra: Any,
) -> tuple[np.ndarray, Any]:
    """One step of a line-search ``rule`` (lbfgs, newton) on the rows ``active`` at ``theta``
    with losses ``L`` and gradients ``G``; the line search's trial points of row positions
    ``pos`` are evaluated on (and charged to) the rows ``active[pos]``. Returns (step, state)."""
    return rule.update(
        G,
        state,
        theta[active],
        value=L,
        value_and_grad=lambda pos, x: charger.loss_and_grad(active[pos], x),
        **extra,
    )


def _lbfgs_phase(
    charger: Charger,
    theta: np.ndarray,
    active: np.ndarray,
    method: Method,
    gtol: _Tol,
    out: _Rows,
) -> np.ndarray:
    """Batched L-BFGS (:func:`~suite.optimizers.linesearch.lbfgs`); returns the rows still not
    converged. A row whose line search finds no decrease stops where it is."""
    loss, gnorm, status = out.loss, out.gnorm, out.status
    L, G = charger.loss_and_grad(active, theta[active])
    gn = row_norm(G)
    loss[active], gnorm[active] = L, gn
    charger.record(active, out.steps[active], L)
    done = np.isfinite(L) & gtol.ok(L, gn)
    bad = ~np.isfinite(L)
    status[active[done]] = "converged"
    status[active[bad]] = "diverged"
    keep = ~(done | bad)
    active, L, G = active[keep], L[keep], G[keep]
    rule = lbfgs(method.memory)
    state = rule.init(theta[active])
    for _ in range(method.polish_steps):
        if active.size == 0:
            break
        u, state = _rule_step(charger, rule, state, active, theta, L, G)
        accepted = state.search.accepted
        out.polish_steps[active] += 1
        acc = np.flatnonzero(accepted)
        theta[active[acc]] += u[acc]
        L[acc], G[acc] = state.search.value[acc], state.search.grad[acc]
        gn = row_norm(G)
        loss[active], gnorm[active] = L, gn
        charger.record(active, out.steps[active] + out.polish_steps[active], L)
        done = accepted & gtol.ok(L, gn)
        stuck = ~accepted  # no decrease found: stop, keep the point
        status[active[done]] = "converged"
        keep = ~(done | stuck)
        n_rows = active.size
        active, L, G = active[keep], L[keep], G[keep]
        state = take_rows(state, keep, n_rows)
    return active


def _newton_phase(
    charger: Charger,
    theta: np.ndarray,
    active: np.ndarray,
    method: Method,
    gtol: _Tol,
    out: _Rows,
) -> None:
    """Batched pseudo-inverse Newton (:func:`~suite.optimizers.linesearch.newton`) on the dense
    finite-difference Hessian (:func:`suite.curvature.hessian_fd`), whose cost is charged to the
    rows. Rows stop when converged, when they have no usable direction or no accepted step, or
    after ``method.newton_steps`` iterations."""
    p = theta.shape[1]
    rule = newton()
    state = rule.init(theta[active])
    for _ in range(method.newton_steps):
        if active.size == 0:
            return
        L, G = charger.loss_and_grad(active, theta[active])
        before = charger.problem.counters.fe
        H = hessian_fd(
            lambda x: charger.problem.loss_and_grad(x),
            theta[active],
            max_rows=max(charger.rows_per_call(None), 2 * p),
        )
        charger.fe[active] += (charger.problem.counters.fe - before) / active.size
        u, state = _rule_step(charger, rule, state, active, theta, L, G, hessian=H)
        acc = np.flatnonzero(state.search.accepted)
        rows = active[acc]
        theta[rows] += u[acc]
        out.newton_steps[rows] += 1
        out.loss[rows] = state.search.value[acc]
        out.gnorm[rows] = row_norm(state.search.grad[acc])
        done = gtol.ok(out.loss[rows], out.gnorm[rows])
        out.status[rows[done]] = "converged"
        keep = np.zeros(active.size, dtype=bool)
        keep[acc[~done]] = True
        state = take_rows(state, keep, active.size)
        active = rows[~done]


def rule_path(
    problem: Any,
    rule: Any,
    theta0: np.ndarray,
    steps: int,
    checkpoints: Sequence[int],
    max_rows: int = 1 << 30,
) -> np.ndarray:
    """Full-batch training of every row of ``theta0[S, P]`` with the update ``rule`` (an
    :mod:`suite.optimizers.updates` transform) for ``steps`` steps: ``theta[C, S, P]`` at the
    step counts ``checkpoints`` (0 = the start). Non-finite gradients count as 0 and a
    non-finite update freezes its row. Gradients are taken ``max_rows`` rows per call."""
    theta = np.array(theta0, dtype=np.float64, copy=True)
    state = rule.init(theta)
    marks = sorted(set(int(c) for c in checkpoints))
    out = {}
    for t in range(steps + 1):
        if t in marks:
            out[t] = theta.copy()
        if t == steps:
            break
        parts = [
            np.asarray(problem.loss_and_grad(theta[i : i + max_rows])[1], dtype=np.float64)
            for i in range(0, theta.shape[0], max_rows)
        ]
        g = np.concatenate(parts)
        g = np.where(np.isfinite(g), g, 0.0)
        upd, state = rule.update(g, state, theta)
        new = apply_updates(theta, upd)
        ok = np.isfinite(new).all(axis=1)
        theta[ok] = new[ok]
    return np.stack([out[c] for c in marks])
