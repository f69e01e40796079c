"""Resolving end points: second-order polish, the diverging-valley test and the escape test.

A multi-start study (:mod:`suite.kinds.multistart`) ends with end points of a first-order
method. Before they are classified (:func:`suite.analysis.optima.classify_end_points`) this
module asks three questions of them, all through a batched exact-gradient function
``grad_fn(theta[N, P]) -> (L[N], G[N, P])``:

1. **Polish** (:func:`polish_trust`): rows whose gradient is still above the tolerance get up
   to ``maxiter`` iterations of a trust-region Newton method with exact Hessian-vector
   products (``scipy.optimize.minimize(method="trust-krylov")``, Gould et al. 1999 / Lenders et
   al. 2018; ``Hv`` by central differences of the exact BPTT gradient,
   :func:`suite.curvature.hessian_vector_products`). A polish that ends worse than it started
   is discarded (the row keeps its end point).
2. **Diverging valley** (:func:`valley_test`): ``segments`` successive segments of ``iters``
   batched L-BFGS iterations with no gradient tolerance; a row is a *diverging valley* when
   its loss falls and its weight norm grows in every segment, by at least ``growth`` (relative)
   over all of them. On such a path the loss keeps decreasing as ``||theta|| -> infinity``
   (the logistic loss on separable data; RNN solutions that sharpen saturating units), so the
   end point is not a local optimum whatever its gradient norm and curvature say. A minimum
   stops L-BFGS at once (no decrease), a true plateau moves without steadily growing norm.
3. **Escape test** (:func:`escape_test`): ``k`` perturbations of each end point, Gaussian with
   RMS ``radius * max(1, rms(theta))`` per coordinate, each re-optimised by ``iters`` batched
   L-BFGS iterations; the best loss reached is returned. A *trap* (decided in the analysis) is an
   end point from which no perturbation reaches a lower level.

Each function returns the work it did in gradient evaluations (one row = 1) so the study can
record it as analysis cost, separate from the start's own training cost.

References: Nocedal & Wright (2006), ch. 4 and 7; Dauphin et al. (2014) on saddles vs minima;
Soudry et al. (2018), "The implicit bias of gradient descent on separable data" (diverging
solutions of the logistic loss).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from suite.curvature import GradFn, as_rows, hessian_fd, hessian_vector_products
from suite.optimizers.linesearch import lbfgs
from suite.optimizers.updates import row_norm, take_rows

__all__ = [
    "Counted",
    "ResolveConfig",
    "escape_test",
    "lbfgs_rows",
    "polish_trust",
    "valley_test",
]


@dataclass(frozen=True)
class ResolveConfig:
    """Budgets of the end-point resolution (stored in a study's spec; see the module doc).

    ``polish_iters`` trust-region Newton iterations per unconverged row; ``valley_segments`` x
    ``valley_iters`` L-BFGS iterations and the relative norm ``valley_growth`` of the valley
    test; ``escape_k`` perturbations of RMS ``escape_radius`` (relative, see
    :func:`escape_test`) each re-optimised by ``escape_iters`` L-BFGS iterations.
    """

    polish_iters: int = 30
    valley_segments: int = 3
    valley_iters: int = 20
    valley_growth: float = 0.02
    escape_k: int = 4
    escape_radius: float = 0.3
    escape_iters: int = 100

    def __post_init__(self) -> None:
        for name in ("polish_iters", "valley_segments", "valley_iters", "escape_k", "escape_iters"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"resolve.{name} must be an integer >= 0, got {v!r}")
        for name in ("valley_growth", "escape_radius"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"resolve.{name} must be a positive number, got {v!r}")

    @classmethod
    def from_dict(cls, d: dict) -> ResolveConfig:
        """From a TOML table; unknown keys raise a ValueError naming the allowed ones."""
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ValueError(
                f"unknown resolve key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        return cls(**d)

    def spec(self) -> dict:
        """Plain-data form (all fields)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Counted:
    """``grad_fn`` wrapped to count evaluated rows (``.rows``)."""

    def __init__(self, grad_fn: GradFn) -> None:
        self.grad_fn = grad_fn
        self.rows = 0

    def __call__(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = as_rows(theta)
        self.rows += theta.shape[0]
        L, G = self.grad_fn(theta)
        return np.atleast_1d(np.asarray(L, dtype=np.float64)), np.asarray(G, dtype=np.float64)


def polish_trust(
    grad_fn: GradFn,
    theta: np.ndarray,
    gtol: float,
    maxiter: int = 30,
    eps: float = 1e-5,
    dense_max: int = 128,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trust-region Newton polish per row, from exact Hessian-vector products.

    Up to ``dense_max`` parameters the Hessian is assembled from the ``P`` products with the
    unit vectors in one batched gradient call (:func:`suite.curvature.hessian_fd`) and the
    subproblem solved exactly (``method="trust-exact"``, Moré & Sorensen 1983); above it, the
    Krylov solver takes the products one at a time (``method="trust-krylov"``). Returns
    ``(theta[N, P], loss[N], grad_norm[N], iterations[N])``. Rows already at
    ``||g|| <= gtol`` or non-finite are left alone; a polish whose end loss is not finite or
    higher than the start's is discarded.
    """
    theta = as_rows(theta).copy()
    L, G = grad_fn(theta)
    L = np.atleast_1d(np.asarray(L, dtype=np.float64)).copy()
    gn = row_norm(np.asarray(G, dtype=np.float64))
    iters = np.zeros(theta.shape[0], dtype=np.int64)
    todo = np.flatnonzero(np.isfinite(L) & np.isfinite(gn) & (gn > gtol))
    for i in todo if maxiter > 0 else []:

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            lv, gv = grad_fn(x[None])
            loss = float(np.atleast_1d(lv)[0])
            g = np.asarray(gv, dtype=np.float64).reshape(-1)
            if not math.isfinite(loss) or not np.isfinite(g).all():
                return math.inf, np.zeros_like(x)
            return loss, g

        def hessp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
            hv = hessian_vector_products(grad_fn, x[None], v[None], eps)[0]
            return np.where(np.isfinite(hv), hv, 0.0)

        def hess(x: np.ndarray) -> np.ndarray:
            h = hessian_fd(grad_fn, x[None], eps)[0]
            return np.where(np.isfinite(h), h, 0.0)

        second = {"hess": hess} if theta.shape[1] <= dense_max else {"hessp": hessp}
        try:
            res = minimize(
                fun,
                theta[i],
                jac=True,
                method="trust-exact" if "hess" in second else "trust-krylov",
                options={"gtol": gtol, "maxiter": maxiter},
                **second,
            )
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue
        if np.isfinite(res.fun) and res.fun <= L[i] and np.isfinite(res.x).all():
            theta[i] = res.x
            L[i] = float(res.fun)
            gn[i] = float(np.linalg.norm(res.jac))
            iters[i] = int(res.nit)
    return theta, L, gn, iters


def lbfgs_rows(
    grad_fn: GradFn, theta: np.ndarray, iters: int, gtol: float = 0.0, memory: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Batched L-BFGS (:func:`suite.optimizers.linesearch.lbfgs`) on every row for up to
    ``iters`` iterations; a row stops when its line search finds no decrease or its gradient
    norm is at most ``gtol``. Returns ``(theta[N, P], loss[N])``; non-finite rows stay."""
    theta = as_rows(theta).copy()
    L, G = grad_fn(theta)
    L = np.atleast_1d(np.asarray(L, dtype=np.float64)).copy()
    G = np.asarray(G, dtype=np.float64)
    out_L = L.copy()
    active = np.flatnonzero(np.isfinite(L) & np.isfinite(G).all(axis=1) & (row_norm(G) > gtol))
    L, G = L[active], G[active]
    rule = lbfgs(memory)
    state = rule.init(theta[active])
    vg: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    for _ in range(iters):
        if active.size == 0:
            break

        def vg(pos: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            lv, gv = grad_fn(x)
            return np.atleast_1d(np.asarray(lv, dtype=np.float64)), np.asarray(gv, float)

        u, state = rule.update(G, state, theta[active], value=L, value_and_grad=vg)
        acc = np.flatnonzero(state.search.accepted)
        theta[active[acc]] += u[acc]
        L[acc], G[acc] = state.search.value[acc], state.search.grad[acc]
        out_L[active] = L
        keep = state.search.accepted & (row_norm(G) > gtol)
        n_rows = active.size
        active, L, G = active[keep], L[keep], G[keep]
        state = take_rows(state, keep, n_rows)
    return theta, out_L


def valley_test(
    grad_fn: GradFn,
    theta: np.ndarray,
    segments: int = 3,
    iters: int = 20,
    growth: float = 0.02,
    zero_loss: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Is each row on a diverging valley? Returns ``(diverging[N], norms[N, S+1],
    losses[N, S+1])`` along ``S = segments`` continuation segments of ``iters`` L-BFGS
    iterations (no gradient tolerance). Diverging: in every segment the loss falls and the
    norm grows, and ``norm_S >= (1 + growth) norm_0``. Segments that start at a loss at most
    ``zero_loss`` (float resolution: nothing left to fall) are not asked to fall or grow."""
    theta = as_rows(theta)
    n = theta.shape[0]
    norms = np.full((n, segments + 1), np.nan)
    losses = np.full((n, segments + 1), np.nan)
    L, _ = grad_fn(theta)
    norms[:, 0] = np.linalg.norm(theta, axis=1)
    losses[:, 0] = np.atleast_1d(L)
    x = theta.copy()
    for s in range(segments):
        x, L = lbfgs_rows(grad_fn, x, iters)
        norms[:, s + 1] = np.linalg.norm(x, axis=1)
        losses[:, s + 1] = L
    with np.errstate(invalid="ignore"):
        live = losses[:, :-1] > zero_loss
        falls = ((np.diff(losses, axis=1) < 0) | ~live).all(axis=1) & live[:, 0]
        grows = ((np.diff(norms, axis=1) > 0) | ~live).all(axis=1)
        enough = norms[:, -1] >= (1.0 + growth) * norms[:, 0]
    diverging = falls & grows & enough & np.isfinite(losses).all(axis=1)
    return diverging, norms, losses


def escape_test(
    grad_fn: GradFn,
    theta: np.ndarray,
    k: int = 4,
    radius: float = 0.3,
    iters: int = 100,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Best loss reached from ``k`` perturbations of each row, re-optimised (``[N]``).

    Perturbation of row ``n``: ``theta_n + r_n z``, ``z ~ N(0, I)``, ``r_n = radius *
    max(1, rms(theta_n))`` (RMS per coordinate); each of the ``k N`` perturbed points is
    re-optimised by :func:`lbfgs_rows` for ``iters`` iterations in one batch. ``rng`` seeds the
    perturbations (default ``default_rng(0)``).
    """
    theta = as_rows(theta)
    rng = np.random.default_rng(0) if rng is None else rng
    n, p = theta.shape
    if n == 0 or k == 0:
        return np.full(n, np.nan)
    rms = np.sqrt(np.mean(theta**2, axis=1))
    r = radius * np.maximum(1.0, rms)
    z = rng.standard_normal((k, n, p))
    x = (theta[None] + r[None, :, None] * z).reshape(k * n, p)
    _, L = lbfgs_rows(grad_fn, x, iters)
    L = np.where(np.isfinite(L), L, np.inf).reshape(k, n)
    return L.min(axis=0)
