"""The adding problem (Hochreiter & Schmidhuber 1997, experiment 4).

Reference: S. Hochreiter and J. Schmidhuber, "Long short-term memory", Neural Computation 9(8),
1735-1780, 1997, section 5.4 (values in [-1, 1], target ``0.5 + (v1 + v2) / 4``; a sequence is
solved when its absolute error at the end is below 0.04). This module uses the common modern
variant with values in [0, 1] and the plain sum as target (as in Q. V. Le, N. Jaitly and
G. E. Hinton, "A simple way to initialize recurrent networks of rectified linear units", 2015):

* Each sequence has ``T = seq_len`` steps with ``I = 2`` inputs: a value ``v_t ~ U[0, 1)``
  and a marker ``m_t`` in {0, 1}.
* Exactly two steps are marked: ``t1`` uniform in ``{0, ..., T//2 - 1}`` (first half) and
  ``t2`` uniform in ``{T//2, ..., T - 1}`` (second half), independently per sequence.
* The target (``O = 1``) is ``y = v_t1 + v_t2`` in [0, 2], scored at the last step only:
  ``M[:, T-1] = 1``, 0 elsewhere (``Y`` holds ``y`` at every step; only the last counts).
* Loss "mse".

Trivial baseline: predicting the train mean of ``y`` (the best constant). Its MSE is the
variance of the sum of two U[0, 1] values, ``1/6 (1 - 1/n_train)`` in expectation; measured with
the defaults over 200 seeds: mean 0.165, range 0.12-0.21.

Target: ``target_loss = (0.04 / 2)^2 = 4e-4``, an RMS error of half the solve tolerance: with
normally distributed errors 95.4% of the sequences are then solved (``|error| < 0.04``);
measured at the first iterate below the target, 94.5-96.9% of the train sequences were solved
(4 runs). It is 0.24% of the baseline on average. Reachability (measured with a throw-away
Elman net, H = 8, tanh, full-batch BPTT and scipy's L-BFGS-B, defaults, 2 datasets x 4 random
starts): all 8 runs reached the target, after 534-1672 loss-and-gradient evaluations, and went
on to 3e-5 - 1.5e-4. At ``seq_len = 50`` it is harder (1 of 3 runs within 1500 evaluations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.base import Dataset, SampledTask, Split, param, register

SOLVE_TOLERANCE = 0.04
TARGET_MSE = (SOLVE_TOLERANCE / 2) ** 2


@register("adding")
@dataclass(frozen=True, kw_only=True)
class Adding(SampledTask):
    """Adding problem: output the sum of the two marked values at the last step."""

    n_in = 2
    n_out = 1
    loss = "mse"

    seq_len: int = param(20, low=2, doc="steps per sequence (one marker in each half)")

    def _split(self, rng: np.random.Generator, n: int) -> Split:
        T = self.seq_len
        half = T // 2
        values = rng.uniform(0.0, 1.0, size=(n, T))
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, T, size=n)
        rows = np.arange(n)
        markers = np.zeros((n, T))
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        total = values[rows, first] + values[rows, second]
        X = np.stack([values, markers], axis=2)
        Y = np.broadcast_to(total[:, None, None], (n, T, 1))
        M = np.zeros((n, T))
        M[:, -1] = 1.0
        return Split(X, Y, M)

    def generate(self, rng: np.random.Generator) -> Dataset:
        train, test = self._draw_splits(rng)
        return self._dataset(train, test, TARGET_MSE)
