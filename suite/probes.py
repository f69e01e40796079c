"""Numerical probes of the error surface: slices, roughness, gradient spread, Lyapunov exponents,
the cliff, and the bias of truncated BPTT (statement C4 of ``SCIENCE.md``).

Plain functions of a loss or gradient callable, a model and parameters (no records, no
experiment): the ``landscape`` experiment kind (:mod:`suite.kinds.landscape`) runs them over a
grid of problems and seeds, and :mod:`suite.analysis.landscape` turns its records into frames.

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

Prominent minima (:func:`prominent_minima`): a dip counts only if it is deep. The minima of
``L(alpha)`` are the peaks of ``-log10 L`` (``scipy.signal.find_peaks``) whose *prominence*
(the height of the peak above the higher of the two lowest points separating it from higher
peaks; Llamas' topographic prominence, scipy's definition) is at least ``prominence`` decades:
0.05 decades is a dip of about 12% of the loss, on both sides. On the log scale the threshold
does not depend on the loss level of the slice, so short and long sequences are judged alike.

Fixed-radius directions (:func:`fixed_radius_direction`): every filter of ``d`` rescaled to the
same absolute norm ``radius`` (biases zero), whatever the weights. A filter-normalised line
``alpha`` in ``[-1, 1]`` reaches ``W_h (1 +- 1)`` in scale, so its length grows with the spectral
radius of ``W_h``, and part of any correlation of roughness with the radius is built into the
probe; lines of a fixed absolute length remove that.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import find_peaks
from scipy.special import expit, logit

from suite.curvature import GradFn
from tasks.cliff import cliff_fixed_points, cliff_loss_grid

__all__ = [
    "FILTERS",
    "Roughness",
    "bistable_interval",
    "cliff_summary",
    "cliff_surface",
    "filter_normalized_direction",
    "fixed_radius_direction",
    "gradient_spread",
    "interpolation",
    "lyapunov_exponents",
    "prominent_minima",
    "rnn_lyapunov",
    "roughness",
    "slice_1d",
    "slice_2d",
    "sompolinsky_reference",
    "spectral_radius",
    "truncation_cosines",
]

LossFn = Callable[[np.ndarray], np.ndarray]


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


def fixed_radius_direction(
    model: Any, theta: np.ndarray, rng: np.random.Generator, radius: float = 1.0
) -> np.ndarray:
    """A random direction for each row of ``theta[N, P]`` (or ``theta[P]``) whose every filter
    (see the module docstring) has the absolute norm ``radius``; biases zero. Models without a
    filter layout get ``d radius / ||d||``. Unlike :func:`filter_normalized_direction` the
    length of the line does not follow the weights."""
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    single = np.ndim(theta) == 1
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    d = rng.standard_normal(theta.shape)
    name = getattr(model, "name", "")
    if name not in FILTERS:
        out = d * (radius / np.maximum(np.linalg.norm(d, axis=1), 1e-300))[:, None]
        return out[0] if single else out
    db = {k: np.array(v, copy=True) for k, v in model.unpack(d).items()}
    for group in FILTERS[name]:
        d_rows = np.concatenate([db[k] for k in group], axis=2)
        scale = radius / np.maximum(np.linalg.norm(d_rows, axis=2), 1e-300)
        for k in group:
            db[k] = db[k] * scale[:, :, None]
    for k in BIASES[name]:
        db[k] = np.zeros_like(db[k])
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


def prominent_minima(losses: np.ndarray, prominence: float = 0.05) -> int:
    """Number of interior local minima of a sampled slice ``L(alpha_i)`` whose prominence on
    ``log10 L`` is at least ``prominence`` decades (``scipy.signal.find_peaks`` on ``-log10 L``;
    module docstring). ``prominence = 0`` counts every strict dip. Non-finite or non-positive
    losses split the slice: each finite positive run is counted on its own."""
    if prominence < 0:
        raise ValueError(f"prominence must be >= 0, got {prominence!r}")
    y = np.asarray(losses, dtype=np.float64).ravel()
    ok = np.isfinite(y) & (y > 0)
    count = 0
    # runs of consecutive usable points
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < 3:
            continue
        z = -np.log10(y[start:stop])
        peaks, _ = find_peaks(z, prominence=prominence if prominence > 0 else (1e-12, None))
        count += int(peaks.size)
    return count


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
    ``lambda_max`` over ``networks`` random matrices, ``radius_mean`` (their spectral
    radius) and ``lambdas`` (the list of the exponents, one per network). ``rng`` default
    ``default_rng(0)``.
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
                "lambdas": [float(v) for v in lam],
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
