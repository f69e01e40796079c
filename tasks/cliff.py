"""The single-unit "cliff" of Pascanu, Mikolov & Bengio (2013).

Reference: R. Pascanu, T. Mikolov and Y. Bengio, "On the difficulty of training recurrent
neural networks", ICML 2013, section 2.3 and figure 6 (after K. Doya, "Bifurcations in the
learning of recurrent neural networks", ISCAS 1992).

The model (``Task.model = "cliff"``, implemented in ``suite/models/cliff.py``) is one recurrent unit
with parameters ``theta = (w, b)``:

    x_0 = 0.5,   x_t = w sigmoid(x_{t-1}) + b   (t = 1..steps),   z_t = sigmoid(x_t),

and the loss is ``E = (sigmoid(x_steps) - 0.7)^2``. The data only carry that loss through the
common contract: one sequence (``B = 1``) of ``T = steps`` steps (default 50), input ``I = 1``
all zeros (the unit has no input), target ``Y = 0.7`` at every step and mask ``M = 1`` at the
last step only, so the contract's "mse" loss of the model output is exactly ``E``. Train and
test are the same split and the data are fixed (``rng`` is unused).

Trivial baseline: the output 0.5 (``sigmoid(0)``, a unit that says nothing), loss
``(0.5 - 0.7)^2 = 0.04``. Target: ``1e-4``, i.e. ``|sigmoid(x_steps) - 0.7| < 0.01``; it is
reachable, e.g. by ``w = 1, b = logit(0.7) - 0.7 = 0.147`` (a contracting map whose fixed
point gives the output 0.7 exactly; loss about 1e-30 at 50 steps).

The surface has cliffs: :func:`cliff_loss_grid` evaluates ``E`` and its exact gradient on a
grid. Over ``w`` in [-2, 10] (241 points) by ``b`` in [-8, 2] (201 points), 50 steps, the
gradient norm has median 0.0077 and maximum 26.0 (SCIENCE.md quotes about 0.008 and 26) and
minimum 5.2e-6: it spans almost 7 orders of magnitude (4.1 between the 1st and 99th
percentiles, 2.3e-5 and 0.29), measured. The cliffs sit where the map
``x -> w sigmoid(x) + b`` bifurcates: :func:`cliff_fixed_points` finds its stable fixed points;
at ``w = 5`` there are two for ``b`` in (-2.6556, -2.3444) (Doya's bifurcation; the ends are
``b = x - 5 sigmoid(x)`` at ``x = logit((1 +- sqrt(1 - 4/5)) / 2)``), one outside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logit

from tasks.base import Dataset, Split, Task, check_rng, param, register

X0 = 0.5
TARGET_OUTPUT = 0.7
BASELINE_OUTPUT = 0.5
TARGET_LOSS = 1e-4


class CliffGrid(NamedTuple):
    """Loss and exact gradient of the cliff unit on a broadcast grid of ``(w, b)``."""

    E: np.ndarray
    dE_dw: np.ndarray
    dE_db: np.ndarray


def cliff_loss_grid(
    w: np.ndarray | float, b: np.ndarray | float, steps: int = 50, target: float = TARGET_OUTPUT
) -> CliffGrid:
    """Exact loss ``E = (sigmoid(x_steps) - target)^2`` and its gradient, broadcast over w, b.

    Forward-mode derivatives of ``x_t = w s_{t-1} + b`` with ``s = sigmoid(x)``, ``x_0 = 0.5``:

        dx_t/dw = s_{t-1} + w s'_{t-1} dx_{t-1}/dw,    dx_t/db = 1 + w s'_{t-1} dx_{t-1}/db,

    ``s' = s (1 - s)``, both starting at 0; then ``dE/dtheta = 2 (s_T - target) s'_T dx_T/dtheta``.
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    w, b = np.broadcast_arrays(np.asarray(w, np.float64), np.asarray(b, np.float64))
    x = np.full(w.shape, X0)
    dx_dw = np.zeros(w.shape)
    dx_db = np.zeros(w.shape)
    for _ in range(int(steps)):
        s = expit(x)
        gain = w * s * (1.0 - s)
        dx_dw = s + gain * dx_dw
        dx_db = 1.0 + gain * dx_db
        x = w * s + b
    s = expit(x)
    err = s - target
    outer = 2.0 * err * s * (1.0 - s)
    return CliffGrid(err**2, outer * dx_dw, outer * dx_db)


def cliff_fixed_points(w: float, b: float) -> np.ndarray:
    """The stable fixed points of ``x -> w sigmoid(x) + b``, sorted (an array of 0-2 values).

    A fixed point solves ``g(x) = w sigmoid(x) + b - x = 0`` and is stable when
    ``|w sigmoid'(x)| < 1``. All roots lie in ``[b + min(w, 0), b + max(w, 0)]``; ``g`` is
    monotone between its critical points ``x = logit((1 +- sqrt(1 - 4/w)) / 2)`` (real only
    for ``w >= 4``), so each monotone piece holds at most one root, found by Brent's method.
    """
    w, b = float(w), float(b)
    if not (np.isfinite(w) and np.isfinite(b)):
        raise ValueError(f"w and b must be finite, got {w}, {b}")

    def g(x: float) -> float:
        return w * expit(x) + b - x

    lo, hi = b + min(w, 0.0) - 1.0, b + max(w, 0.0) + 1.0  # g(lo) >= 1 > 0 > -1 >= g(hi)
    edges = [lo, hi]
    if w > 4.0:
        root = np.sqrt(1.0 - 4.0 / w)
        edges += [float(np.clip(logit((1.0 + sign * root) / 2.0), lo, hi)) for sign in (-1, 1)]
    edges.sort()
    roots = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        g_lo, g_hi = g(lo), g(hi)
        if g_lo == 0.0:
            roots.append(lo)
        elif g_lo * g_hi < 0.0:
            roots.append(brentq(g, lo, hi, xtol=1e-14, rtol=1e-14))
    if g(edges[-1]) == 0.0:
        roots.append(edges[-1])
    stable = [x for x in roots if abs(w * expit(x) * (1.0 - expit(x))) < 1.0]
    return np.array(sorted(set(stable)), dtype=np.float64)


@register("cliff")
@dataclass(frozen=True, kw_only=True)
class Cliff(Task):
    """Pascanu et al.'s one-unit cliff: reach sigmoid(x_steps) = 0.7 with theta = (w, b)."""

    n_in = 1
    n_out = 1
    loss = "mse"
    model = "cliff"
    fixed_data = True

    steps: int = param(50, low=1, doc="steps of the unit's recursion")

    def generate(self, rng: np.random.Generator) -> Dataset:
        check_rng(rng)  # the data are fixed; rng is accepted for the common interface
        T = self.steps
        M = np.zeros((1, T))
        M[0, -1] = 1.0
        split = Split(np.zeros((1, T, 1)), np.full((1, T, 1), TARGET_OUTPUT), M)
        return self._dataset(split, split, TARGET_LOSS)

    def trivial_prediction(self, train: Split) -> np.ndarray:
        """The output 0.5 (``sigmoid(0)``): loss ``(0.5 - 0.7)^2 = 0.04``."""
        return np.full(train.Y.shape[2], BASELINE_OUTPUT)
