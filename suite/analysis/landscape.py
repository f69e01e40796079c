"""Error-surface diagnostics: slices, roughness, gradient spread, Lyapunov exponents, the cliff,
and the bias of truncated BPTT (statement C4 of ``SCIENCE.md``).

Slices. The loss along a line ``theta + alpha d`` (1-D) or a plane ``theta + alpha d1 + beta d2``
(2-D), every point of a slice evaluated in one batched loss call (split in row blocks only when
the batch would not fit in memory, see ``block_steps``).

* *Filter-normalised directions* (Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the
  loss landscape of neural nets"): draw ``d ~ N(0, I)`` and rescale each *filter* of ``d`` to
  the norm of the same filter of ``theta``. A filter of the Elman network is one hidden unit's
  incoming weights, the row ``[W_h[j, :], W_x[j, :]]``; of the TDNN the row ``W_x[j, :]``; of
  the read-out one output's row ``W_o[o, :]``. Biases (``b``, ``c``) get a zero direction by
  default (``bias="zero"``, as Li et al. do for biases), or ``bias="normalize"``: each bias
  entry of ``d`` rescaled to the magnitude of the same entry of ``theta``. The cliff unit has no
  filters; its direction is scaled to ``||theta||`` as a whole. Because every filter of
  ``theta`` is moved by the same relative amount, ``alpha = 1`` is a step as large as the weights
  themselves, whatever their scale -- so slices of different networks are comparable.
* *Linear interpolation* (Goodfellow, Vinyals & Saxe 2015): ``theta(a) = (1 - a) theta_0 +
  a theta_1`` from the start to the trained point, ``a`` in ``[-0.25, 1.25]`` by default.

Roughness of a 1-D slice ``L(alpha_i)`` sampled on a uniform grid (:func:`roughness`):

* ``n_minima``: interior sample minima (``L_i < L_{i-1}`` and ``L_i <= L_{i+1}``, by more than
  ``1e-9`` of the slice's range, so round-off does not count); ``minima_per_unit`` divides by the
  length of the alpha interval (local minima per unit of filter-normalised distance). It
  depends on the grid, so every record uses the same grid (101 points on [-1, 1] by default).
* ``tv_norm``: total variation over range, ``sum_i |L_{i+1} - L_i| / (max L - min L)``: 1 for a
  monotone slice, at most 2 for a single valley or hill, larger the more the slice goes up and
  down. Scale-free, so slices of different tasks and lengths are comparable.
* Non-finite losses are counted (``nonfinite``) and left out.

Gradient-norm spread (:func:`gradient_spread`): ``log10(q95 / q5)`` of ``||grad L||`` over
``n_points`` random points ``theta + radius d_k`` (independent filter-normalised ``d_k``): how
many decades the gradient spans in a region; cliffs make it large.

Lyapunov exponents (:func:`lyapunov_exponents`): of the map ``h_{t+1} = tanh(W h_t + u_t)`` by
the QR method of Benettin, Galgani, Giorgilli & Strelcyn (1980): propagate ``k`` tangent vectors
with the Jacobians ``J_t = diag(1 - h_{t+1}^2) W``, re-orthonormalise them by a QR
factorisation every step and average ``log |diag R|``. Vectorised over a stack of networks.
For a trained Elman network the drive is ``u_t = W_x x_t + b`` with inputs ``x_t`` drawn
i.i.d. from the training inputs (:func:`rnn_lyapunov`; the conditional exponent of the driven
system). Reference check (:func:`sompolinsky_reference`): ``W ~ N(0, g^2 / N)``, ``N = 200``,
no drive; Sompolinsky, Crisanti & Sommers (1988) predict the sign change at ``g = 1``.

The cliff (:func:`cliff_surface`, :func:`bistable_interval`): Pascanu, Mikolov & Bengio's unit
``x_t = w sigmoid(x_{t-1}) + b``; for ``w > 4`` the map has two stable fixed points exactly when
``b`` lies between the two tangency values ``b_pm = x_pm - w sigmoid(x_pm)``,
``x_pm = logit((1 pm sqrt(1 - 4 / w)) / 2)`` (where ``w sigmoid'(x) = 1``), which at ``w = 5``
gives Doya's interval ``(-2.6554, -2.3446)``.

Truncated BPTT (:func:`truncation_cosines`): the cosine between the window-``k`` gradient
``loss_and_grad(theta, truncate=k)`` and the full gradient, at checkpoints of an Adam run;
Williams & Peng (1990) BPTT(k; k) bias.

Work units of the ``"landscape"`` kind compute all of this over a grid of problems and seeds
(see :func:`expand`) and return records of kinds ``"landscape"``, ``"lyapunov"``,
``"truncation"``, ``"lyapunov_reference"`` and ``"cliff_summary"``.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from suite import seeding
from suite.problem import problem_from_spec

__all__ = [
    "CliffUnit",
    "LandscapeAnalysis",
    "RECORD_KINDS",
    "landscape_records",
    "aggregate_slices",
    "analyse_landscape",
    "cliff_end_points",
    "trend_table",
    "LandscapeUnit",
    "LyapunovReferenceUnit",
    "Roughness",
    "SETTINGS",
    "bistable_interval",
    "cliff_surface",
    "expand",
    "filter_normalized_direction",
    "gradient_spread",
    "interpolation",
    "lyapunov_exponents",
    "rnn_lyapunov",
    "roughness",
    "slice_1d",
    "slice_2d",
    "sompolinsky_reference",
    "spectral_radius",
    "truncation_cosines",
]

LossFn = Callable[[np.ndarray], np.ndarray]
GradFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


# ----------------------------------------------------------------------------- directions
FILTERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "elman": (("W_h", "W_x"), ("W_o",)),
    "tdnn": (("W_x",), ("W_o",)),
}
"""Per model: groups of weight blocks whose rows together form a filter (one per unit)."""

BIASES: dict[str, tuple[str, ...]] = {"elman": ("b", "c"), "tdnn": ("b", "c")}


def filter_normalized_direction(
    model: Any, theta: np.ndarray, rng: np.random.Generator, bias: str = "zero"
) -> np.ndarray:
    """A random filter-normalised direction for each row of ``theta[N, P]`` (or ``theta[P]``).

    ``d ~ N(0, I)``; then for each filter (see the module docstring) ``d_f <- d_f ||theta_f|| /
    ||d_f||``; biases zero (``bias="zero"``) or ``|d_i| = |theta_i|`` (``bias="normalize"``).
    Models without a filter layout get ``d ||theta|| / ||d||``.
    """
    if bias not in ("zero", "normalize"):
        raise ValueError(f"bias must be 'zero' or 'normalize', got {bias!r}")
    single = np.ndim(theta) == 1
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    d = rng.standard_normal(theta.shape)
    name = getattr(model, "name", "")
    if name not in FILTERS:
        scale = np.linalg.norm(theta, axis=1) / np.maximum(np.linalg.norm(d, axis=1), 1e-300)
        out = d * scale[:, None]
        return out[0] if single else out
    tb = model.unpack(theta)
    db = {k: np.array(v, copy=True) for k, v in model.unpack(d).items()}
    for group in FILTERS[name]:
        t_rows = np.concatenate([tb[k] for k in group], axis=2)  # [N, units, fan-in]
        d_rows = np.concatenate([db[k] for k in group], axis=2)
        scale = np.linalg.norm(t_rows, axis=2) / np.maximum(np.linalg.norm(d_rows, axis=2), 1e-300)
        for k in group:
            db[k] = db[k] * scale[:, :, None]
    for k in BIASES[name]:
        if bias == "zero":
            db[k] = np.zeros_like(db[k])
        else:
            db[k] = np.sign(db[k]) * np.abs(tb[k])
    out = np.asarray(model.pack(db))
    return out[0] if single else out


# --------------------------------------------------------------------------------- slices
def _blocked(fn: LossFn, rows: np.ndarray, max_rows: int) -> np.ndarray:
    """``fn`` on ``rows`` in blocks of at most ``max_rows`` rows (one call if they fit)."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    out = [
        np.atleast_1d(np.asarray(fn(rows[i : i + max_rows]), dtype=np.float64))
        for i in range(0, rows.shape[0], max_rows)
    ]
    return np.concatenate(out) if out else np.zeros(0)


def slice_1d(
    loss_fn: LossFn,
    theta: np.ndarray,
    direction: np.ndarray,
    alphas: np.ndarray,
    max_rows: int = 1 << 30,
) -> np.ndarray:
    """``L(theta + alpha d)`` for every ``alpha`` in one batched ``loss_fn`` call (rows
    ``theta + alpha_i d``; split into blocks of ``max_rows`` only if needed)."""
    theta = np.asarray(theta, dtype=np.float64)
    alphas = np.asarray(alphas, dtype=np.float64)
    rows = theta[None, :] + alphas[:, None] * np.asarray(direction, dtype=np.float64)[None, :]
    return _blocked(loss_fn, rows, max_rows)


def slice_2d(
    loss_fn: LossFn,
    theta: np.ndarray,
    d1: np.ndarray,
    d2: np.ndarray,
    alphas: np.ndarray,
    betas: np.ndarray,
    max_rows: int = 1 << 30,
) -> np.ndarray:
    """``L[i, j] = L(theta + alpha_i d1 + beta_j d2)`` as one batched call (``len(alphas) *
    len(betas)`` rows; blocks of ``max_rows`` only if needed)."""
    theta = np.asarray(theta, dtype=np.float64)
    a = np.asarray(alphas, dtype=np.float64)
    b = np.asarray(betas, dtype=np.float64)
    rows = (
        theta[None, None, :]
        + a[:, None, None] * np.asarray(d1, dtype=np.float64)
        + b[None, :, None] * np.asarray(d2, dtype=np.float64)
    ).reshape(-1, theta.size)
    return _blocked(loss_fn, rows, max_rows).reshape(a.size, b.size)


def interpolation(
    loss_fn: LossFn,
    theta0: np.ndarray,
    theta1: np.ndarray,
    alphas: np.ndarray | None = None,
    max_rows: int = 1 << 30,
) -> tuple[np.ndarray, np.ndarray]:
    """Goodfellow et al.'s line ``(1 - a) theta0 + a theta1``: returns ``(alphas, L)``;
    default ``alphas``: 61 points on ``[-0.25, 1.25]``."""
    a = np.linspace(-0.25, 1.25, 61) if alphas is None else np.asarray(alphas, dtype=np.float64)
    theta0 = np.asarray(theta0, dtype=np.float64)
    return a, slice_1d(loss_fn, theta0, np.asarray(theta1) - theta0, a, max_rows)


@dataclass(frozen=True)
class Roughness:
    """Roughness of a sampled 1-D slice (definitions in the module docstring)."""

    n_minima: int
    minima_per_unit: float
    tv: float
    tv_norm: float
    loss_range: float
    nonfinite: int

    def as_dict(self) -> dict[str, float]:
        """Plain-data view."""
        return {
            "n_minima": self.n_minima,
            "minima_per_unit": self.minima_per_unit,
            "tv": self.tv,
            "tv_norm": self.tv_norm,
            "loss_range": self.loss_range,
            "nonfinite": self.nonfinite,
        }


def roughness(alphas: np.ndarray, losses: np.ndarray, rel_tol: float = 1e-9) -> Roughness:
    """Local minima per unit length and normalised total variation of ``L(alpha)``.

    ``alphas`` must be increasing. Non-finite losses are dropped (and counted). With fewer than
    3 finite points, or a constant slice, the measures are 0 (``tv_norm`` NaN if constant).
    """
    a = np.asarray(alphas, dtype=np.float64).ravel()
    y = np.asarray(losses, dtype=np.float64).ravel()
    if a.shape != y.shape:
        raise ValueError(f"alphas {a.shape} and losses {y.shape} must have the same length")
    if a.size >= 2 and not np.all(np.diff(a) > 0):
        raise ValueError("alphas must be strictly increasing")
    finite = np.isfinite(y)
    nonfinite = int((~finite).sum())
    a, y = a[finite], y[finite]
    if y.size < 3:
        return Roughness(0, 0.0, 0.0, math.nan, 0.0, nonfinite)
    span = float(y.max() - y.min())
    length = float(a[-1] - a[0])
    tv = float(np.abs(np.diff(y)).sum())
    if span <= 0:
        return Roughness(0, 0.0, 0.0, math.nan, 0.0, nonfinite)
    tol = rel_tol * span
    mid = y[1:-1]
    is_min = (mid < y[:-2] - tol) & (mid <= y[2:] + tol) & (mid < y[2:] + tol)
    n_min = int(is_min.sum())
    return Roughness(n_min, n_min / length, tv, tv / span, span, nonfinite)


def gradient_spread(
    grad_fn: GradFn,
    model: Any,
    theta: np.ndarray,
    rng: np.random.Generator,
    radius: float = 0.5,
    n_points: int = 64,
    max_rows: int = 1 << 30,
) -> dict[str, float]:
    """Spread of ``||grad L||`` over ``theta + radius d_k``, ``k = 1..n_points`` (independent
    filter-normalised ``d_k``): ``log10_q95_q5 = log10(q95 / q5)``, plus ``q05``, ``median``,
    ``q95`` and ``nonfinite`` (points whose gradient is not finite, left out)."""
    theta = np.asarray(theta, dtype=np.float64)
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    dirs = filter_normalized_direction(model, np.repeat(theta[None], n_points, 0), rng)
    rows = theta[None] + radius * dirs
    norms = []
    for i in range(0, n_points, max_rows):
        _, g = grad_fn(rows[i : i + max_rows])
        norms.append(np.linalg.norm(np.asarray(g, dtype=np.float64), axis=1))
    gn = np.concatenate(norms)
    ok = np.isfinite(gn) & (gn > 0)
    if ok.sum() < 2:
        return {
            "log10_q95_q5": math.nan,
            "q05": math.nan,
            "median": math.nan,
            "q95": math.nan,
            "nonfinite": int((~ok).sum()),
        }
    q05, med, q95 = np.quantile(gn[ok], [0.05, 0.5, 0.95])
    return {
        "log10_q95_q5": float(np.log10(q95 / q05)),
        "q05": float(q05),
        "median": float(med),
        "q95": float(q95),
        "nonfinite": int((~ok).sum()),
    }


# ------------------------------------------------------------------------------- Lyapunov
def lyapunov_exponents(
    W: np.ndarray,
    rng: np.random.Generator,
    steps: int = 1000,
    transient: int = 200,
    k: int = 1,
    drive: np.ndarray | None = None,
    h0: np.ndarray | None = None,
) -> np.ndarray:
    """The ``k`` largest Lyapunov exponents (per step, natural log) of ``h <- tanh(W h + u_t)``
    for a stack ``W[N, H, H]``; returns ``lambda[N, k]`` (descending).

    Benettin's QR method: ``Q <- J_t Q`` with ``J_t = diag(1 - h_{t+1}^2) W``, ``Q R = qr(Q)``,
    ``lambda = mean_t log |diag R_t|`` over ``steps`` steps after ``transient`` steps that
    settle ``h``. ``drive`` (optional, ``[N, transient + steps, H]`` or broadcastable) is the
    additive input ``u_t``; ``h0`` (default ``N(0, 1)`` from ``rng``) the initial state; the
    initial tangent vectors are random orthonormal (from ``rng``).
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 3 or W.shape[1] != W.shape[2]:
        raise ValueError(f"W must have shape (N, H, H), got {W.shape}")
    n, H, _ = W.shape
    if not 1 <= k <= H:
        raise ValueError(f"k must be in 1..{H}, got {k}")
    if steps < 1 or transient < 0:
        raise ValueError(f"steps must be >= 1 and transient >= 0, got {steps}, {transient}")
    total = transient + steps
    if drive is not None:
        drive = np.broadcast_to(np.asarray(drive, dtype=np.float64), (n, total, H))
    h = rng.standard_normal((n, H)) if h0 is None else np.array(h0, dtype=np.float64)
    Wt = np.swapaxes(W, 1, 2)

    def step(h: np.ndarray, t: int) -> np.ndarray:
        a = np.matmul(h[:, None, :], Wt)[:, 0]
        if drive is not None:
            a = a + drive[:, t]
        return np.tanh(a)

    for t in range(transient):
        h = step(h, t)
    Q = np.linalg.qr(rng.standard_normal((n, H, k)))[0]
    acc = np.zeros((n, k))
    for t in range(transient, total):
        h = step(h, t)
        Q = (1.0 - h * h)[:, :, None] * np.matmul(W, Q)
        if k == 1:
            r = np.linalg.norm(Q[:, :, 0], axis=1)
            Q = Q / np.maximum(r, 1e-300)[:, None, None]
            acc[:, 0] += np.log(np.maximum(r, 1e-300))
        else:
            Q, R = np.linalg.qr(Q)
            acc += np.log(np.maximum(np.abs(np.diagonal(R, axis1=1, axis2=2)), 1e-300))
    return np.sort(acc / steps, axis=1)[:, ::-1]


def spectral_radius(W: np.ndarray) -> np.ndarray:
    """Largest ``|eigenvalue|`` of each matrix of a stack ``W[N, H, H]``."""
    return np.abs(np.linalg.eigvals(np.asarray(W, dtype=np.float64))).max(axis=-1)


def rnn_lyapunov(
    model: Any,
    theta: np.ndarray,
    X: np.ndarray | None,
    rng: np.random.Generator,
    steps: int = 1000,
    transient: int = 200,
) -> np.ndarray:
    """Largest Lyapunov exponent of the hidden dynamics of Elman networks ``theta[N, P]``.

    ``h_t = tanh(W_h h_{t-1} + W_x x_t + b)`` with inputs ``x_t`` drawn i.i.d. (from ``rng``)
    from the time steps of ``X[B, T, I]`` (``X = None``: no input, bias only).
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    if getattr(model, "name", "") != "elman":
        raise ValueError(
            f"rnn_lyapunov needs an elman model, got {getattr(model, 'name', model)!r}"
        )
    blocks = model.unpack(theta)
    Wh, Wx, b = blocks["W_h"], blocks["W_x"], blocks["b"]
    total = transient + steps
    if X is None:
        drive = b[:, None, :]
    else:
        pool = np.asarray(X, dtype=np.float64).reshape(-1, Wx.shape[2])
        idx = rng.integers(0, pool.shape[0], size=total)
        xs = pool[idx]  # [total, I], the same input sequence for every network
        drive = np.einsum("nhi,ti->nth", Wx, xs) + b[:, None, :]
    return lyapunov_exponents(Wh, rng, steps, transient, 1, drive)[:, 0]


def sompolinsky_reference(
    gains: Sequence[float] = (0.5, 0.9, 1.0, 1.5, 2.0),
    n: int = 200,
    networks: int = 8,
    rng: np.random.Generator | None = None,
    steps: int = 2000,
    transient: int = 500,
) -> pd.DataFrame:
    """Largest Lyapunov exponent of ``h <- tanh(W h)``, ``W ~ N(0, g^2 / n)``, per gain.

    Returns one row per gain: ``gain``, ``lambda_mean``, ``lambda_std``, ``lambda_min``,
    ``lambda_max`` over ``networks`` random matrices, and ``radius_mean`` (their spectral
    radius). ``rng`` default ``default_rng(0)``.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    rows = []
    for g in gains:
        W = rng.standard_normal((networks, n, n)) * (g / math.sqrt(n))
        lam = lyapunov_exponents(W, rng, steps, transient)[:, 0]
        rows.append(
            {
                "gain": float(g),
                "lambda_mean": float(lam.mean()),
                "lambda_std": float(lam.std(ddof=1)) if networks > 1 else 0.0,
                "lambda_min": float(lam.min()),
                "lambda_max": float(lam.max()),
                "radius_mean": float(spectral_radius(W).mean()),
                "n": int(n),
                "networks": int(networks),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- cliff
def cliff_surface(
    w: np.ndarray | None = None, b: np.ndarray | None = None, steps: int = 50
) -> dict[str, np.ndarray]:
    """``E_steps`` and its gradient norm on the grid ``w x b`` (default: Pascanu et al.'s
    ``w`` in [-2, 10], 241 points, by ``b`` in [-8, 2], 201 points); arrays ``[len(b), len(w)]``
    (rows = b) for ``imshow``/``pcolormesh``."""
    from tasks.cliff import cliff_loss_grid

    w = np.linspace(-2.0, 10.0, 241) if w is None else np.asarray(w, dtype=np.float64)
    b = np.linspace(-8.0, 2.0, 201) if b is None else np.asarray(b, dtype=np.float64)
    grid = cliff_loss_grid(w[None, :], b[:, None], steps)
    return {
        "w": w,
        "b": b,
        "E": np.asarray(grid.E),
        "grad_norm": np.hypot(grid.dE_dw, grid.dE_db),
    }


def bistable_interval(w: float) -> tuple[float, float]:
    """The open interval of ``b`` where ``x -> w sigmoid(x) + b`` has two stable fixed points.

    For ``w > 4`` it is ``(x_+ - w s(x_+), x_- - w s(x_-))`` with ``s`` the logistic
    function and ``x_pm = logit((1 pm sqrt(1 - 4 / w)) / 2)`` the points where
    ``w s'(x) = 1`` (saddle-node bifurcations). ``w <= 4``: no such interval (ValueError).
    """
    from scipy.special import expit, logit

    w = float(w)
    if not w > 4.0:
        raise ValueError(f"the map is bistable only for w > 4, got w={w}")
    root = math.sqrt(1.0 - 4.0 / w)
    xp, xm = float(logit((1 + root) / 2)), float(logit((1 - root) / 2))
    lo, hi = xp - w * float(expit(xp)), xm - w * float(expit(xm))
    return (min(lo, hi), max(lo, hi))


def cliff_summary(steps: int = 50) -> dict[str, Any]:
    """Statistics of the default cliff grid and Doya's interval at ``w = 5`` (analytic and by
    counting stable fixed points with ``tasks.cliff.cliff_fixed_points`` on a fine ``b`` grid)."""
    from tasks.cliff import cliff_fixed_points

    surf = cliff_surface(steps=steps)
    gn = surf["grad_norm"]
    fine = np.linspace(-3.0, -2.0, 2001)
    two = np.array([len(cliff_fixed_points(5.0, bb)) == 2 for bb in fine])
    lo, hi = bistable_interval(5.0)
    return {
        "steps": int(steps),
        "grid": {"w": [-2.0, 10.0, 241], "b": [-8.0, 2.0, 201]},
        "grad_norm_median": float(np.median(gn)),
        "grad_norm_max": float(gn.max()),
        "grad_norm_q01": float(np.quantile(gn, 0.01)),
        "grad_norm_q99": float(np.quantile(gn, 0.99)),
        "grad_norm_decades": float(np.log10(gn.max() / max(gn[gn > 0].min(), 1e-300))),
        "loss_min": float(surf["E"].min()),
        "loss_max": float(surf["E"].max()),
        "doya_interval": [lo, hi],
        "doya_interval_numeric": [float(fine[two].min()), float(fine[two].max())]
        if two.any()
        else [math.nan, math.nan],
    }


# ------------------------------------------------------------------------------ truncation
def truncation_cosines(
    grad_fn: Callable[..., Any], theta: np.ndarray, ks: Sequence[int]
) -> np.ndarray:
    """``cos[C, len(ks)]``: cosine between ``grad_fn(theta, truncate=k)`` and the full gradient
    ``grad_fn(theta)`` for each row of ``theta[C, P]`` (one batched call per ``k``).

    ``grad_fn`` is e.g. ``problem.loss_and_grad``. A zero or non-finite gradient gives NaN.
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    _, full = grad_fn(theta)
    full = np.asarray(full, dtype=np.float64)
    nf = np.linalg.norm(full, axis=1)
    out = np.full((theta.shape[0], len(ks)), np.nan)
    for j, k in enumerate(ks):
        _, g = grad_fn(theta, truncate=int(k))
        g = np.asarray(g, dtype=np.float64)
        ng = np.linalg.norm(g, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.einsum("np,np->n", g, full) / (ng * nf)
        out[:, j] = np.where(np.isfinite(c) & (ng > 0) & (nf > 0), c, np.nan)
    return out


# ------------------------------------------------------------------------------- the units
SETTINGS: dict[str, Any] = {
    "data_seed": 0,
    "n_directions": 4,
    "n_alphas": 101,
    "alpha_max": 1.0,
    "bias": "zero",
    "n_interp": 61,
    "n_2d": 41,
    "seeds_2d": 1,
    "spread_points": 64,
    "spread_radius": 0.5,
    "train_lr": 0.01,
    "train_steps": 1000,
    "checkpoints": 5,
    "truncate": [1, 2, 5, 10, 20, 50, 100],
    "lyapunov_steps": 1000,
    "lyapunov_transient": 200,
    "block_steps": 1 << 20,
}
"""Default settings of a landscape unit (override in the experiment's ``[settings]`` table)."""

MEASUREMENTS: tuple[str, ...] = ("slices", "lyapunov", "truncation")
RECORD_KINDS: tuple[str, ...] = (
    "landscape",
    "lyapunov",
    "truncation",
    "lyapunov_reference",
    "cliff_summary",
)
"""Kinds of the records that landscape units write (what :func:`analyse_landscape` reads)."""


def landscape_records(results: Any) -> list[dict]:
    """Every landscape record of a :class:`suite.store.Results` (all of :data:`RECORD_KINDS`)."""
    return [r for kind in RECORD_KINDS for r in results.records(kind)]


REFERENCES: tuple[str, ...] = ("sompolinsky", "cliff")


def _checkpoint_steps(total: int, n: int) -> list[int]:
    """``n`` checkpoint step counts from 0 to ``total``, log-spaced in between."""
    if n <= 1 or total <= 0:
        return [int(total)]
    inner = np.unique(np.round(np.geomspace(1, total, n - 1)).astype(int))
    return sorted({0, *inner.tolist(), int(total)})


def adam_path(
    problem: Any,
    theta0: np.ndarray,
    lr: float,
    steps: int,
    checkpoints: Sequence[int],
    max_rows: int = 1 << 30,
) -> np.ndarray:
    """Full-batch Adam from every row of ``theta0[S, P]`` (batched): ``theta[C, S, P]`` at the
    step counts ``checkpoints`` (0 = the start). Non-finite updates freeze a row."""
    from suite.optimizers.updates import adam, apply_updates

    theta = np.array(theta0, dtype=np.float64, copy=True)
    rule = adam(lr)
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


def _rows_per_call(problem: Any, block_steps: int) -> int:
    return max(
        1, int(block_steps) // max(int(problem.model.forward_steps(problem.dataset.train)), 1)
    )


@dataclass(frozen=True)
class LandscapeUnit:
    """Landscape measurements of one problem for a set of seed indices (one batch).

    Seed index ``i`` gives the start of a compare trial's seed ``i`` (init stream); every seed
    uses the data of seed index ``settings["data_seed"]``. ``measurements`` is a subset of
    :data:`MEASUREMENTS`. One record per (measurement, seed); kinds ``"landscape"`` (one record
    per seed holding both the start and the trained point), ``"lyapunov"`` and
    ``"truncation"`` (Elman only).
    """

    experiment: str
    task: dict
    model: dict
    seeds: tuple[int, ...]
    measurements: tuple[str, ...]
    settings: dict
    experiment_seed: int = 0
    labels: dict = field(default_factory=dict, compare=False)

    def _kinds(self) -> list[str]:
        kinds = []
        if "slices" in self.measurements:
            kinds.append("landscape")
        if self.model["model"] == "elman":
            kinds += [k for k in ("lyapunov", "truncation") if k in self.measurements]
        return kinds

    def key(self, kind: str, seed: int) -> str:
        """Record key: hash of (kind, task, model, settings, seed, experiment seed)."""
        return seeding.content_hash(
            {
                "kind": kind,
                "task": self.task,
                "model": self.model,
                "settings": self.settings,
                "seed": int(seed),
                "experiment_seed": self.experiment_seed,
            }
        )

    @property
    def group(self) -> str:
        """Status label: the problem."""
        return str(self.labels.get("problem") or self.model["model"])

    def keys(self) -> list[str]:
        """One key per (kind, seed)."""
        return [self.key(k, s) for k in self._kinds() for s in self.seeds]

    def run(self) -> list[dict]:
        """Measure; failures become records with status ``"error"``."""
        try:
            return _run_landscape(self)
        except Exception:  # noqa: BLE001 -- a unit's failure becomes error records
            err = traceback.format_exc()
            return [
                {**self._base(k, s), "status": "error", "error": err}
                for k in self._kinds()
                for s in self.seeds
            ]

    def _base(self, kind: str, seed: int) -> dict:
        model = self.model
        return {
            "key": self.key(kind, seed),
            "kind": kind,
            "experiment": self.experiment,
            "problem": self.labels.get("problem", ""),
            "spec": {
                "task": self.task,
                "model": model,
                "seed": int(seed),
                "experiment_seed": self.experiment_seed,
                "settings": self.settings,
            },
            "task": self.task["task"],
            "model": model["model"],
            "seq_len": self.task.get("seq_len", self.task.get("steps")),
            "spectral_radius": model.get("spectral_radius"),
            "hidden": model.get("hidden"),
            "seed": int(seed),
        }


def _run_landscape(unit: LandscapeUnit) -> list[dict]:
    s = unit.settings
    t_start = time.perf_counter()
    stream = seeding.data_stream(unit.experiment_seed, unit.task, int(s["data_seed"]))
    problem = problem_from_spec(unit.task, unit.model, stream)
    model = problem.model
    seeds = list(unit.seeds)
    theta0 = seeding.initial_points(unit.experiment_seed, unit.task, model, seeds)
    rows = _rows_per_call(problem, s["block_steps"])
    marks = _checkpoint_steps(int(s["train_steps"]), int(s["checkpoints"]))
    path = adam_path(problem, theta0, float(s["train_lr"]), int(s["train_steps"]), marks, rows)
    trained = path[-1]
    rng = np.random.default_rng(
        seeding.optimizer_stream(
            unit.experiment_seed, {"landscape": [unit.task, unit.model, unit.settings]}
        )
    )
    evaluate = problem.evaluate  # free of charge: measurements, not optimisation
    records: list[dict] = []
    if "slices" in unit.measurements:
        alphas = np.linspace(-s["alpha_max"], s["alpha_max"], int(s["n_alphas"]))
        interp_a = np.linspace(-0.25, 1.25, int(s["n_interp"]))
        for i, seed in enumerate(seeds):
            rec = unit._base("landscape", seed)
            rec.update(status="ok", error=None, alphas=alphas.tolist())
            for where, theta in (("init", theta0[i]), ("trained", trained[i])):
                dirs = filter_normalized_direction(
                    model, np.repeat(theta[None], int(s["n_directions"]), 0), rng, s["bias"]
                )
                slices = np.stack([slice_1d(evaluate, theta, d, alphas, rows) for d in dirs])
                rough = [roughness(alphas, sl).as_dict() for sl in slices]
                spread = gradient_spread(
                    problem.loss_and_grad,
                    model,
                    theta,
                    rng,
                    float(s["spread_radius"]),
                    int(s["spread_points"]),
                    rows,
                )
                block = {
                    "loss": float(evaluate(theta)),
                    "slices": slices.tolist(),
                    "roughness": rough,
                    "n_minima": float(np.mean([r["n_minima"] for r in rough])),
                    "minima_per_unit": float(np.mean([r["minima_per_unit"] for r in rough])),
                    "tv_norm": float(np.nanmean([r["tv_norm"] for r in rough]))
                    if any(np.isfinite(r["tv_norm"]) for r in rough)
                    else math.nan,
                    "grad_spread": spread,
                }
                if i < int(s["seeds_2d"]):
                    d1, d2 = filter_normalized_direction(
                        model, np.repeat(theta[None], 2, 0), rng, s["bias"]
                    )
                    a2 = np.linspace(-s["alpha_max"], s["alpha_max"], int(s["n_2d"]))
                    block["slice2d"] = {
                        "alphas": a2.tolist(),
                        "loss": slice_2d(evaluate, theta, d1, d2, a2, a2, rows).tolist(),
                    }
                if model.name == "elman":
                    block["radius"] = float(spectral_radius(model.unpack(theta[None])["W_h"])[0])
                rec[where] = block
            ia, il = interpolation(evaluate, theta0[i], trained[i], interp_a, rows)
            rec["interpolation"] = {
                "alphas": ia.tolist(),
                "loss": il.tolist(),
                **roughness(ia, il).as_dict(),
            }
            records.append(rec)
    if model.name == "elman" and "lyapunov" in unit.measurements:
        X = problem.dataset.train.X
        steps, transient = int(s["lyapunov_steps"]), int(s["lyapunov_transient"])
        lam0 = rnn_lyapunov(model, theta0, X, rng, steps, transient)
        lam1 = rnn_lyapunov(model, trained, X, rng, steps, transient)
        lamfree = rnn_lyapunov(model, theta0, None, rng, steps, transient)
        r0 = spectral_radius(model.unpack(theta0)["W_h"])
        r1 = spectral_radius(model.unpack(trained)["W_h"])
        for i, seed in enumerate(seeds):
            rec = unit._base("lyapunov", seed)
            rec.update(
                status="ok",
                error=None,
                lambda_init=float(lam0[i]),
                lambda_trained=float(lam1[i]),
                lambda_init_autonomous=float(lamfree[i]),
                radius_init=float(r0[i]),
                radius_trained=float(r1[i]),
                loss_init=float(evaluate(theta0[i])),
                loss_trained=float(evaluate(trained[i])),
            )
            records.append(rec)
    if model.name == "elman" and "truncation" in unit.measurements:
        T = int(problem.dataset.train.X.shape[1])
        ks = sorted({min(int(k), T) for k in s["truncate"]})
        C = path.shape[0]
        flat = path.reshape(-1, path.shape[-1])  # [C * S, P], checkpoint-major
        cos = truncation_cosines(problem.loss_and_grad, flat, ks).reshape(C, len(seeds), -1)
        for i, seed in enumerate(seeds):
            rec = unit._base("truncation", seed)
            rec.update(
                status="ok",
                error=None,
                ks=ks,
                checkpoints=marks,
                cosine=cos[:, i, :].tolist(),
                loss=[float(v) for v in evaluate(path[:, i, :])],
            )
            records.append(rec)
    wall = (time.perf_counter() - t_start) / max(len(records), 1)
    for r in records:
        r["time"] = {"wall": wall}
    return records


@dataclass(frozen=True)
class LyapunovReferenceUnit:
    """The Sompolinsky check: one ``"lyapunov_reference"`` record per gain."""

    experiment: str
    gains: tuple[float, ...] = (0.5, 0.9, 1.0, 1.5, 2.0)
    n: int = 200
    networks: int = 8
    steps: int = 2000
    transient: int = 500
    experiment_seed: int = 0

    def key(self, gain: float) -> str:
        """Record key of one gain."""
        return seeding.content_hash(
            {
                "kind": "lyapunov_reference",
                "gain": float(gain),
                "n": self.n,
                "networks": self.networks,
                "steps": self.steps,
                "transient": self.transient,
                "experiment_seed": self.experiment_seed,
            }
        )

    group = "reference"

    def keys(self) -> list[str]:
        """One key per gain."""
        return [self.key(g) for g in self.gains]

    def run(self) -> list[dict]:
        """Measure every gain (each from its own stream)."""
        out = []
        for g in self.gains:
            rng = np.random.default_rng(
                seeding.optimizer_stream(self.experiment_seed, {"sompolinsky": float(g)})
            )
            row = sompolinsky_reference([g], self.n, self.networks, rng, self.steps, self.transient)
            out.append(
                {
                    "key": self.key(g),
                    "kind": "lyapunov_reference",
                    "experiment": self.experiment,
                    "status": "ok",
                    **row.iloc[0].to_dict(),
                }
            )
        return out


@dataclass(frozen=True)
class CliffUnit:
    """The cliff grid statistics and Doya's interval: one ``"cliff_summary"`` record."""

    experiment: str
    steps: int = 50
    group = "reference"

    def key(self) -> str:
        """Record key."""
        return seeding.content_hash({"kind": "cliff_summary", "steps": self.steps})

    def keys(self) -> list[str]:
        """The one key."""
        return [self.key()]

    def run(self) -> list[dict]:
        """Compute :func:`cliff_summary`."""
        return [
            {
                "key": self.key(),
                "kind": "cliff_summary",
                "experiment": self.experiment,
                "status": "ok",
                **cliff_summary(self.steps),
            }
        ]


LANDSCAPE_KEYS = (
    "seeds",
    "measurements",
    "reference",
    "settings",
    "tdnn_twin",
    "problems",
    "cliff",
)


def expand(d: dict, profile: str) -> list[Any]:
    """Units of a ``landscape`` experiment.

    Keys: ``seeds`` (int or array of seed indices), ``measurements`` (subset of
    :data:`MEASUREMENTS`, default all), ``reference`` (subset of :data:`REFERENCES`, default
    all), ``settings`` (table overriding :data:`SETTINGS`), ``tdnn_twin`` (add the matched TDNN
    of every Elman problem, default true), ``problems`` (as in compare; any task or model key
    may be an array: the grid is their Cartesian product), ``cliff`` (optional table
    ``{seeds, budget, optimizers}``: compare trials on the cliff task whose end points the
    report draws on the surface).
    """
    from suite.experiment import (
        COMMON_KEYS,
        ExperimentError,
        check_keys,
        parse_problems,
        parse_seeds,
    )
    from suite.kinds.compare import expand_compare
    from suite.kinds.multistart import expand_problem_grid, twin_spec

    check_keys(d, COMMON_KEYS + LANDSCAPE_KEYS, "")
    seeds = parse_seeds(d.get("seeds", 3), "seeds")
    meas = d.get("measurements", list(MEASUREMENTS))
    refs = d.get("reference", list(REFERENCES))
    for key, value, allowed in (
        ("measurements", meas, MEASUREMENTS),
        ("reference", refs, REFERENCES),
    ):
        if not isinstance(value, list) or any(v not in allowed for v in value):
            raise ExperimentError(f"{key}: must be an array of {', '.join(allowed)}; got {value!r}")
    settings = dict(SETTINGS)
    extra = d.get("settings", {})
    if not isinstance(extra, dict):
        raise ExperimentError("settings: must be a table")
    check_keys(extra, tuple(SETTINGS), "settings")
    for k, v in extra.items():
        default = SETTINGS[k]
        ok = (
            isinstance(v, list)
            if isinstance(default, list)
            else (
                isinstance(v, type(default)) or (isinstance(default, float) and isinstance(v, int))
            )
            and not isinstance(v, bool)
        )
        if not ok:
            raise ExperimentError(f"settings.{k}: must be like {default!r}, got {v!r}")
        settings[k] = v
    if settings["bias"] not in ("zero", "normalize"):
        raise ExperimentError(
            f"settings.bias: must be 'zero' or 'normalize', got {settings['bias']!r}"
        )
    units: list[Any] = []
    if "problems" in d:
        problems = parse_problems(expand_problem_grid(d["problems"]))
        if d.get("tdnn_twin", True):
            twins = [twin_spec(p) for p in problems if p.model["model"] == "elman"]
            seen = {canonical(p) for p in problems}
            for t in twins:
                if canonical(t) not in seen:
                    seen.add(canonical(t))
                    problems.append(t)
        for p in problems:
            units.append(
                LandscapeUnit(
                    experiment=d["name"],
                    task=p.task,
                    model=p.model,
                    seeds=tuple(seeds),
                    measurements=tuple(meas),
                    settings=settings,
                    experiment_seed=d["seed"],
                    labels={"problem": p.label},
                )
            )
    if "sompolinsky" in refs:
        units.append(LyapunovReferenceUnit(experiment=d["name"], experiment_seed=d["seed"]))
    if "cliff" in refs:
        units.append(CliffUnit(experiment=d["name"]))
    if "cliff" in d:
        table = d["cliff"]
        if not isinstance(table, dict):
            raise ExperimentError("cliff: must be a table {seeds, budget, optimizers}")
        check_keys(table, ("seeds", "budget", "optimizers", "steps"), "cliff")
        problem = {"task": "cliff", "label": "cliff"}
        if "steps" in table:
            problem["steps"] = table["steps"]
        compare = {
            "name": d["name"],
            "kind": "compare",
            "seed": d["seed"],
            "seeds": table.get("seeds", 25),
            "budget": table.get("budget", {"fe": 2e5}),
            "problems": [problem],
            "optimizers": table.get("optimizers", [{"name": "adam"}]),
        }
        try:
            units.extend(expand_compare(compare, profile))
        except ExperimentError as exc:
            raise ExperimentError(f"cliff: {exc}") from None
    return units


def canonical(p: Any) -> str:
    """Canonical JSON of a problem's task and model specs (to find duplicates)."""
    return seeding.canonical_json({"task": p.task, "model": p.model})


def _register() -> None:
    from suite.experiment import register_kind

    register_kind("landscape", expand)


_register()


# ------------------------------------------------------------------------------- frames
@dataclass
class LandscapeAnalysis:
    """Tidy frames derived from landscape records (:func:`analyse_landscape`).

    ``slices``: one row per (record, point) with ``where`` = ``"init"``/``"trained"`` and the
    mean roughness over the record's directions (``n_minima``, ``minima_per_unit``,
    ``tv_norm``), ``log10_grad_spread``, ``loss``, ``radius`` (spectral radius of ``W_h`` at that
    point, Elman only); ``interpolation``: one row per record (roughness of the start-to-trained
    line); ``lyapunov``: one row per Elman record; ``truncation``: one row per (record,
    checkpoint, k) with ``cosine``; ``reference``: the Sompolinsky check per gain; ``cliff``:
    the cliff summary (dict) or None; ``trends``: Spearman correlations of roughness measures
    with sequence length and spectral radius (:func:`trend_table`); ``examples``: raw 1-D and
    2-D slices (lists of dicts) for the figures.
    """

    slices: pd.DataFrame
    interpolation: pd.DataFrame
    lyapunov: pd.DataFrame
    truncation: pd.DataFrame
    reference: pd.DataFrame
    cliff: dict | None
    trends: pd.DataFrame
    examples: list[dict]


_ID = ("problem", "task", "model", "seq_len", "spectral_radius", "hidden", "seed")


def analyse_landscape(records: Sequence[dict]) -> LandscapeAnalysis:
    """Frames of the records of a landscape results folder (error records are left out)."""
    ok = [r for r in records if r.get("status", "ok") == "ok"]
    slices, interp, lyap, trunc, examples = [], [], [], [], []
    for r in ok:
        ident = {k: r.get(k) for k in _ID}
        if r["kind"] == "landscape":
            for where in ("init", "trained"):
                blk = r.get(where)
                if not blk:
                    continue
                slices.append(
                    {
                        **ident,
                        "where": where,
                        "loss": blk["loss"],
                        "n_minima": blk["n_minima"],
                        "minima_per_unit": blk["minima_per_unit"],
                        "tv_norm": blk["tv_norm"],
                        "log10_grad_spread": blk["grad_spread"]["log10_q95_q5"],
                        "grad_median": blk["grad_spread"]["median"],
                        "radius": blk.get("radius", math.nan),
                    }
                )
                examples.append(
                    {
                        **ident,
                        "where": where,
                        "alphas": r["alphas"],
                        "slices": blk["slices"],
                        "slice2d": blk.get("slice2d"),
                    }
                )
            it = r.get("interpolation")
            if it:
                interp.append(
                    {
                        **ident,
                        **{k: it[k] for k in ("n_minima", "minima_per_unit", "tv_norm")},
                        "alphas": it["alphas"],
                        "loss": it["loss"],
                    }
                )
        elif r["kind"] == "lyapunov":
            lyap.append(
                {
                    **ident,
                    **{
                        k: r[k]
                        for k in (
                            "lambda_init",
                            "lambda_trained",
                            "lambda_init_autonomous",
                            "radius_init",
                            "radius_trained",
                            "loss_init",
                            "loss_trained",
                        )
                    },
                }
            )
        elif r["kind"] == "truncation":
            for ci, step in enumerate(r["checkpoints"]):
                for kj, k in enumerate(r["ks"]):
                    trunc.append(
                        {
                            **ident,
                            "checkpoint": int(step),
                            "k": int(k),
                            "cosine": r["cosine"][ci][kj],
                            "loss": r["loss"][ci],
                        }
                    )
    reference = pd.DataFrame(
        [
            {
                k: r[k]
                for k in (
                    "gain",
                    "lambda_mean",
                    "lambda_std",
                    "lambda_min",
                    "lambda_max",
                    "radius_mean",
                    "n",
                    "networks",
                )
            }
            for r in ok
            if r["kind"] == "lyapunov_reference"
        ]
    )
    if not reference.empty:
        reference = reference.sort_values("gain").reset_index(drop=True)
    cliffs = [r for r in ok if r["kind"] == "cliff_summary"]
    sl = pd.DataFrame(slices)
    return LandscapeAnalysis(
        slices=sl,
        interpolation=pd.DataFrame(interp),
        lyapunov=pd.DataFrame(lyap),
        truncation=pd.DataFrame(trunc),
        reference=reference,
        cliff=cliffs[0] if cliffs else None,
        trends=trend_table(sl) if not sl.empty else pd.DataFrame(),
        examples=examples,
    )


TREND_METRICS: tuple[str, ...] = ("minima_per_unit", "tv_norm", "log10_grad_spread")


def trend_table(
    slices: pd.DataFrame,
    metrics: Sequence[str] = TREND_METRICS,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Spearman rank correlation of each roughness measure with ``seq_len`` and with
    ``spectral_radius`` (the initial radius of ``W_h``; Elman only), per task, model and
    ``where``, pooling the other grid axis and the seeds.

    Columns: ``task, model, where, metric, against, rho, rho_low, rho_high, p_value, n``. The
    interval is the Fisher-z interval with the Fieller, Hartley & Pearson (1957) standard error
    ``1.03 / sqrt(n - 3)`` for Spearman's rho; ``p_value`` is scipy's (two-sided). A positive
    rho means the measure grows along the axis (what C4 predicts).
    """
    from scipy import stats as st

    rows = []
    z = st.norm.ppf(0.5 + confidence / 2)
    for (task, model, where), g in slices.groupby(["task", "model", "where"], sort=False):
        for against in ("seq_len", "spectral_radius"):
            x = pd.to_numeric(g[against], errors="coerce")
            for metric in metrics:
                y = pd.to_numeric(g[metric], errors="coerce")
                ok = x.notna() & y.notna() & np.isfinite(y)
                n = int(ok.sum())
                if n < 4 or x[ok].nunique() < 2 or y[ok].nunique() < 2:
                    continue
                res = st.spearmanr(x[ok], y[ok])
                rho = float(res.statistic)
                se = 1.03 / math.sqrt(n - 3) if n > 3 else math.inf
                zr = math.atanh(max(min(rho, 0.999999), -0.999999))
                rows.append(
                    {
                        "task": task,
                        "model": model,
                        "where": where,
                        "metric": metric,
                        "against": against,
                        "rho": rho,
                        "rho_low": math.tanh(zr - z * se),
                        "rho_high": math.tanh(zr + z * se),
                        "p_value": float(res.pvalue),
                        "n": n,
                    }
                )
    return pd.DataFrame(rows)


def aggregate_slices(slices: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds of the roughness measures per problem and point (``where``), with the
    number of seeds: ``problem, task, model, seq_len, spectral_radius, where, n, loss,
    minima_per_unit, tv_norm, log10_grad_spread, radius``."""
    if slices.empty:
        return pd.DataFrame()
    keys = ["problem", "task", "model", "seq_len", "spectral_radius", "where"]
    frame = slices.copy()
    frame["spectral_radius"] = frame["spectral_radius"].astype(float)
    g = frame.groupby(keys, dropna=False, sort=False)
    out = g[["loss", "minima_per_unit", "tv_norm", "log10_grad_spread", "radius"]].mean()
    out.insert(0, "n", g.size())
    return out.reset_index()


def cliff_end_points(records: Sequence[dict]) -> pd.DataFrame:
    """End points of compare trials on the cliff task: one row per trial record with
    ``optimizer`` (label), ``name``, ``family`` (from the optimizer registry, else the name),
    ``seed``, ``status``, the start ``w0, b0`` (regenerated from the trial's init stream) and
    the end point ``w, b`` with its ``loss``."""
    from suite.models import make_model

    rows = []
    families: dict[str, str] = {}
    for r in records:
        spec = r.get("spec") or {}
        task = spec.get("task") or {}
        if r.get("kind") != "trial" or task.get("task") != "cliff":
            continue
        theta = r.get("theta") or []
        if len(theta) != 2:
            continue
        name = spec["optimizer"]["name"]
        if name not in families:
            try:
                from suite.optimizers import optimizer_info

                families[name] = str(optimizer_info(name)["family"])
            except Exception:  # noqa: BLE001 -- an unknown plugin: group by its own name
                families[name] = name
        model_spec = spec["model"]
        model = make_model("cliff", 1, 1, **{k: v for k, v in model_spec.items() if k != "model"})
        x0 = model.init(
            np.random.default_rng(
                seeding.init_stream(spec["experiment_seed"], task, model_spec, spec["seed"])
            )
        )
        rows.append(
            {
                "optimizer": (r.get("labels") or {}).get("optimizer") or name,
                "name": name,
                "family": families[name],
                "seed": int(spec["seed"]),
                "status": r.get("status"),
                "steps": int(task.get("steps", 50)),
                "w0": float(x0[0]),
                "b0": float(x0[1]),
                "w": float(theta[0]),
                "b": float(theta[1]),
                "loss": float(r.get("final_train_loss", math.nan)),
                "target_loss": float(r.get("target_loss", math.nan)),
            }
        )
    return pd.DataFrame(rows)
