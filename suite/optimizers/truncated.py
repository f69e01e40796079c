"""Online truncated BPTT(h; h') (Williams & Peng 1990): ``tbptt``.

The network runs along the training sequences (all of them in parallel, or a random minibatch
of ``batch_size`` per pass), carrying its hidden state from chunk to chunk. Every ``h'`` steps
it backpropagates the loss terms of those ``h'`` steps through at most the last ``h`` steps
and takes one update step (``sgd``, ``momentum`` or ``adam``, after optional clipping to norm
``clip``) before running the next chunk with the new weights:

    for each pass over the data:
        session = problem.online(batch)
        until the pass is done:
            L, g, done = session.step(theta, h, h')     # forward h' steps, backward h steps
            theta <- theta + rule(g)

BPTT(k; k) is what deep-learning frameworks do when they detach the hidden state every k
steps; BPTT(k; 1) is the sliding window of textbook pseudocode. With ``h >= T`` and
``h' = T`` one chunk is the whole sequence and this is full-batch BPTT gradient descent.
Passes repeat until the budget runs out (or ``max_passes``).

Reference: R. J. Williams and J. Peng (1990), "An efficient gradient-based algorithm for
on-line training of recurrent network trajectories", Neural Computation 2(4).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from suite.optimizers.base import (
    Optimizer,
    ProblemLike,
    at_least,
    between,
    check_batch_size,
    greater_than,
    one_of,
    set_stop_reason,
)
from suite.optimizers.registry import register_optimizer
from suite.optimizers.updates import RULES, apply_updates, make_rule


@register_optimizer("tbptt", family="truncated")
@dataclass(frozen=True)
class TBPTT(Optimizer):
    """Online truncated BPTT(h; h') of Williams & Peng (1990), one update per chunk."""

    h: int = 10
    h_prime: int | None = None
    rule: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    clip: float | None = None
    batch_size: int | None = None
    max_passes: int | None = None

    tags: ClassVar[frozenset[str]] = frozenset({"gradient", "truncation", "stochastic"})
    constraints: ClassVar[dict] = {
        "h": at_least(1),
        "h_prime": at_least(1),
        "rule": one_of(*RULES),
        "lr": greater_than(0),
        "momentum": between(0, 1, high_open=True),
        "b1": between(0, 1, high_open=True),
        "b2": between(0, 1, high_open=True),
        "eps": greater_than(0),
        "clip": greater_than(0),
        "batch_size": at_least(1),
        "max_passes": at_least(1),
    }

    def _check(self) -> None:
        if self.h_prime is not None and self.h_prime > self.h:
            raise ValueError(
                f"optimizer 'tbptt': h_prime={self.h_prime} must be <= h={self.h} "
                "(BPTT(h; h') backpropagates every h' steps through the last h >= h' steps)"
            )

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Run online passes over the training data, one update per chunk of ``h'`` steps."""
        check_batch_size(self.batch_size, problem)
        h_prime = self.h if self.h_prime is None else self.h_prime
        tx = make_rule(
            self.rule,
            self.lr,
            clip=self.clip,
            momentum=self.momentum,
            b1=self.b1,
            b2=self.b2,
            eps=self.eps,
        )
        theta = np.array(x0, dtype=np.float64, copy=True)
        state = tx.init(theta)
        passes = itertools.count() if self.max_passes is None else range(self.max_passes)
        for _ in passes:
            batch = None if self.batch_size is None else problem.minibatch(rng, self.batch_size)
            session = problem.online(batch)
            done = False
            while not done:
                _, g, done = session.step(theta, self.h, h_prime)
                step, state = tx.update(g, state, theta)
                theta = apply_updates(theta, step)
        set_stop_reason(problem, f"max_passes={self.max_passes} reached")
        return theta
