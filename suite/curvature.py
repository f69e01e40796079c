"""Curvature of the loss from its exact (BPTT) gradient: Hessians, Hessian-vector products and
extreme eigenvalues, batched over many points.

For small models the dense Hessian comes from central differences of the exact gradient,
``H[:, j] = (g(theta + eps e_j) - g(theta - eps e_j)) / (2 eps)``, symmetrised, with all ``2P``
perturbations of many points in one batched gradient call (:func:`hessian_fd`). For larger
models, Lanczos (``scipy.sparse.linalg.eigsh``) on Hessian-vector products
``Hv = (g(theta + eps v) - g(theta - eps v)) / (2 eps)`` (:func:`extreme_eigenvalues_lanczos`).
:func:`curvature` picks one by the model size.

This module sits below both the multi-start study and the analysis of its records.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

__all__ = [
    "GradFn",
    "as_rows",
    "curvature",
    "curvature_checked",
    "extreme_eigenvalues",
    "extreme_eigenvalues_lanczos",
    "hessian_fd",
    "hessian_vector_products",
]

GradFn = Callable[[np.ndarray], tuple[Any, np.ndarray]]
"""``grad_fn(theta[N, P]) -> (L[N], G[N, P])``, e.g. ``problem.loss_and_grad``."""


def hessian_fd(
    grad_fn: GradFn, theta: np.ndarray, eps: float = 1e-5, max_rows: int = 1024
) -> np.ndarray:
    """Dense Hessians ``H[N, P, P]`` by central differences of the exact gradient.

    ``H[n, :, j] = (g(theta_n + eps e_j) - g(theta_n - eps e_j)) / (2 eps)``, then
    ``(H + H^T) / 2``. All ``2P`` perturbations of as many end points as fit in ``max_rows``
    rows go into one ``grad_fn`` call (so ``ceil(2 N P / max_rows)`` calls in all). The error is
    ``O(eps^2)`` from truncation plus ``O(u / eps)`` from rounding of the gradient (``u`` the
    unit round-off times the gradient's magnitude).
    """
    theta = as_rows(theta)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if max_rows < 2:
        raise ValueError(f"max_rows must be >= 2, got {max_rows}")
    n, p = theta.shape
    per_start = 2 * p
    out = np.empty((n, p, p))
    eye = eps * np.eye(p)
    # Group starts so a call holds at most max_rows rows; a start with 2P > max_rows is split
    # by directions instead.
    starts_per_call = max(1, max_rows // per_start)
    dir_chunk = p if per_start <= max_rows else max(1, max_rows // 2)
    for s0 in range(0, n, starts_per_call):
        block = theta[s0 : s0 + starts_per_call]
        m = block.shape[0]
        for d0 in range(0, p, dir_chunk):
            d = eye[d0 : d0 + dir_chunk]
            k = d.shape[0]
            plus = block[:, None, :] + d[None]
            minus = block[:, None, :] - d[None]
            rows = np.concatenate([plus, minus], axis=1).reshape(m * 2 * k, p)
            _, g = grad_fn(rows)
            g = np.asarray(g, dtype=np.float64).reshape(m, 2, k, p)
            # column j of H = dg/dtheta_j ; store as H[n, j, :] then symmetrise
            out[s0 : s0 + m, d0 : d0 + k, :] = (g[:, 0] - g[:, 1]) / (2.0 * eps)
    return 0.5 * (out + np.swapaxes(out, 1, 2))


def extreme_eigenvalues_lanczos(
    grad_fn: GradFn,
    theta: np.ndarray,
    eps: float = 1e-5,
    tol: float = 1e-8,
    maxiter: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """``[lambda_min, lambda_max]`` of the Hessian at each row of ``theta[N, P]`` by Lanczos.

    ``scipy.sparse.linalg.eigsh`` (implicitly restarted Lanczos, ARPACK) on a
    :class:`~scipy.sparse.linalg.LinearOperator` whose product is the central difference
    ``Hv ~ ||v|| (g(theta + eps u) - g(theta - eps u)) / (2 eps)``, ``u = v / ||v||`` (both
    gradients in one ``grad_fn`` call of 2 rows). ``which="SA"`` and ``"LA"`` give the
    smallest and largest algebraic eigenvalue. Rows where ARPACK does not converge get its
    best Ritz value. ``rng`` seeds the start vector (default ``default_rng(0)``).
    """
    theta = as_rows(theta)
    rng = np.random.default_rng(0) if rng is None else rng
    n, p = theta.shape
    if p < 3:
        return extreme_eigenvalues(hessian_fd(grad_fn, theta, eps))
    out = np.empty((n, 2))
    for i in range(n):
        x = theta[i]

        def matvec(v: np.ndarray, x: np.ndarray = x) -> np.ndarray:
            v = np.asarray(v, dtype=np.float64).ravel()
            norm = float(np.linalg.norm(v))
            if norm == 0.0:
                return np.zeros(p)
            u = v / norm
            _, g = grad_fn(np.stack([x + eps * u, x - eps * u]))
            g = np.asarray(g, dtype=np.float64)
            return norm * (g[0] - g[1]) / (2.0 * eps)

        op = LinearOperator((p, p), matvec=matvec, dtype=np.float64)
        v0 = rng.standard_normal(p)
        for j, which in enumerate(("SA", "LA")):
            try:
                vals = eigsh(
                    op,
                    k=1,
                    which=which,
                    tol=tol,
                    maxiter=maxiter or 50 * p,
                    ncv=min(p, 40),
                    v0=v0,
                )[0]
                out[i, j] = float(vals[0])
            except ArpackNoConvergence as exc:
                vals = exc.eigenvalues
                out[i, j] = float(vals[0]) if len(vals) else math.nan
    return out


def extreme_eigenvalues(hessians: np.ndarray) -> np.ndarray:
    """``[lambda_min, lambda_max]`` per Hessian of a stack ``H[N, P, P]`` (``eigvalsh``).

    Hessians with non-finite entries give NaN.
    """
    h = np.asarray(hessians, dtype=np.float64)
    if h.ndim != 3 or h.shape[1] != h.shape[2]:
        raise ValueError(f"hessians must have shape (N, P, P), got {h.shape}")
    out = np.full((h.shape[0], 2), np.nan)
    ok = np.isfinite(h).all(axis=(1, 2))
    if ok.any():
        vals = np.linalg.eigvalsh(h[ok])
        out[ok, 0] = vals[:, 0]
        out[ok, 1] = vals[:, -1]
    return out


def curvature(
    grad_fn: GradFn,
    theta: np.ndarray,
    eps: float = 1e-5,
    dense_max: int = 300,
    max_rows: int = 1024,
) -> np.ndarray:
    """``[lambda_min, lambda_max]`` per row: dense when ``P <= dense_max``, else Lanczos.

    Rows with non-finite entries give NaN (they are never evaluated).
    """
    theta = as_rows(theta)
    out = np.full((theta.shape[0], 2), np.nan)
    ok = np.isfinite(theta).all(axis=1)
    if not ok.any():
        return out
    if theta.shape[1] <= dense_max:
        out[ok] = extreme_eigenvalues(hessian_fd(grad_fn, theta[ok], eps, max_rows))
    else:
        out[ok] = extreme_eigenvalues_lanczos(grad_fn, theta[ok], eps)
    return out


def hessian_vector_products(
    grad_fn: GradFn, theta: np.ndarray, v: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    """``H(theta_n) v_n`` per row by a central difference of the exact gradient along the unit
    direction: ``||v|| (g(theta + eps u) - g(theta - eps u)) / (2 eps)``, ``u = v / ||v||``
    (all ``2N`` gradients in one ``grad_fn`` call). Zero rows of ``v`` give zero."""
    theta, v = as_rows(theta), as_rows(v)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    u = np.where(norm > 0, v / np.where(norm > 0, norm, 1.0), 0.0)
    _, g = grad_fn(np.concatenate([theta + eps * u, theta - eps * u]))
    g = np.asarray(g, dtype=np.float64).reshape(2, theta.shape[0], -1)
    return norm * (g[0] - g[1]) / (2.0 * eps)


def curvature_checked(
    grad_fn: GradFn,
    theta: np.ndarray,
    eps: float = 1e-5,
    ratio: float = 10.0,
    rtol: float = 0.05,
    atol: float = 1e-8,
    dense_max: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Extreme Hessian eigenvalues with a step-size consistency check.

    :func:`curvature` at step ``eps`` and at ``eps * ratio``; returns ``(eigs[N, 2], ok[N])``
    with the eigenvalues of the smaller step and ``ok`` true where both steps agree,
    ``|lambda(eps) - lambda(eps ratio)| <= rtol * max(|lambda(eps)|, |lambda(eps ratio)|) +
    atol`` for both extremes. Where the gradient is smooth, both central differences are
    ``O(eps^2)`` accurate and agree; across a saturation cliff (a unit switching within the
    step) the difference quotient scales like ``1 / eps`` and the two disagree by about the
    factor ``ratio``, which is how the +-1e8..1e10 "eigenvalues" of saturated end points are
    recognised instead of believed. Rows with non-finite entries get NaN and ``ok`` false.
    """
    a = curvature(grad_fn, theta, eps, dense_max)
    b = curvature(grad_fn, theta, eps * ratio, dense_max)
    with np.errstate(invalid="ignore"):
        scale = np.maximum(np.abs(a), np.abs(b))
        ok = (np.abs(a - b) <= rtol * scale + atol).all(axis=1)
    ok &= np.isfinite(a).all(axis=1)
    return a, ok


def as_rows(theta: np.ndarray) -> np.ndarray:
    """``theta`` as a float64 ``[N, P]`` array (a single ``theta[P]`` becomes one row)."""
    arr = np.asarray(theta, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"theta must have shape (P,) or (N, P), got {arr.shape}")
    return arr
