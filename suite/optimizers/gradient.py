"""Gradient descent on the full BPTT gradient: ``sgd``, ``momentum`` and ``adam``.

Each step computes ``(L, g) = problem.loss_and_grad(theta, truncate, batch)`` (exact BPTT, or
the gradient truncated to ``truncate`` steps back, on the full training set or on a random
minibatch of ``batch_size`` sequences), optionally clips ``g`` to norm ``clip`` (Pascanu,
Mikolov & Bengio 2013) and applies the update rule of :mod:`suite.optimizers.updates`:

* ``sgd``:       ``theta <- theta - lr g``
* ``momentum``:  ``m <- g + beta m``, ``theta <- theta - lr m`` (Polyak; Nesterov optional)
* ``adam``:      Kingma & Ba (2015), ``theta <- theta - lr m_hat / (sqrt(v_hat) + eps)``

It stops when the budget is spent, after ``max_steps`` steps, or (full-batch only) when the
largest absolute gradient entry is at most ``gtol`` (the convergence test of scipy's BFGS and
L-BFGS-B, so that end points of all gradient methods are comparable); the last two are recorded
with ``problem.set_stop_reason``.

Reference: Rumelhart, Hinton & Williams (1986); Werbos (1990) for BPTT.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import suite.optimizers.updates as updates
from suite.optimizers.base import (
    Optimizer,
    ProblemLike,
    at_least,
    between,
    check_batch_size,
    greater_than,
    set_stop_reason,
)
from suite.optimizers.registry import register_optimizer
from suite.optimizers.updates import Transform, apply_updates

_COMMON = {
    "lr": greater_than(0),
    "batch_size": at_least(1),
    "clip": greater_than(0),
    "truncate": at_least(1),
    "max_steps": at_least(1),
    "gtol": at_least(0),
}


@dataclass(frozen=True)
class GradientDescent(Optimizer):
    """Shared loop of the gradient-descent family (not registered itself)."""

    lr: float = 0.1
    batch_size: int | None = None
    clip: float | None = None
    truncate: int | None = None
    max_steps: int | None = None
    gtol: float | None = 1e-6

    tags: ClassVar[frozenset[str]] = frozenset({"gradient", "stochastic"})
    constraints: ClassVar[dict] = _COMMON

    def transform(self) -> Transform:
        """The update rule (clipping included)."""
        raise NotImplementedError

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Take gradient steps until the budget, ``max_steps`` or ``gtol`` stops them."""
        check_batch_size(self.batch_size, problem)
        tx = self.transform()
        theta = np.array(x0, dtype=np.float64, copy=True)
        state = tx.init(theta)
        steps = itertools.count() if self.max_steps is None else range(self.max_steps)
        for _ in steps:
            batch = None if self.batch_size is None else problem.minibatch(rng, self.batch_size)
            _, g = problem.loss_and_grad(theta, truncate=self.truncate, batch=batch)
            if self.gtol is not None and batch is None and np.max(np.abs(g)) <= self.gtol:
                set_stop_reason(problem, f"gradient max-norm <= gtol={self.gtol:g}")
                return theta
            step, state = tx.update(g, state, theta)
            theta = apply_updates(theta, step)
        set_stop_reason(problem, f"max_steps={self.max_steps} reached")
        return theta


@register_optimizer("sgd", family="gradient")
@dataclass(frozen=True)
class SGD(GradientDescent):
    """Gradient descent ``theta <- theta - lr g`` on the (minibatch) BPTT gradient."""

    def transform(self) -> Transform:
        return updates.sgd(self.lr, self.clip)


@register_optimizer("momentum", family="gradient")
@dataclass(frozen=True)
class Momentum(GradientDescent):
    """Gradient descent with heavy-ball momentum (Polyak 1964) or Nesterov's variant."""

    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False

    constraints: ClassVar[dict] = {**_COMMON, "momentum": between(0, 1, high_open=True)}

    def transform(self) -> Transform:
        return updates.momentum(self.lr, self.momentum, self.nesterov, self.clip)


@register_optimizer("adam", family="gradient")
@dataclass(frozen=True)
class Adam(GradientDescent):
    """Adam (Kingma & Ba 2015) on the (minibatch) BPTT gradient."""

    lr: float = 0.01
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    constraints: ClassVar[dict] = {
        **_COMMON,
        "b1": between(0, 1, high_open=True),
        "b2": between(0, 1, high_open=True),
        "eps": greater_than(0),
    }

    def transform(self) -> Transform:
        return updates.adam(self.lr, self.b1, self.b2, self.eps, self.clip)
