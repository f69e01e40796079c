"""Weight-space symmetries of tanh networks, and clustering end points into distinct optima.

A tanh network with ``H`` hidden units computes the same function in ``2^H H!`` parameter
copies (flip the signs of a unit's incoming and outgoing weights; permute units).
:func:`canonicalize` maps every copy to one representative: flip each unit so that the sum of its
outgoing weights is non-negative (ties: its bias, then its input weights), then sort units by
(outgoing-weight sum, bias). Canonical end points are clustered (:func:`cluster_end_points`,
complete linkage): two end points are the same optimum when their RMS parameter difference
``||a - b|| / sqrt(P)`` is at most a tolerance *and* their losses differ by at most a loss
tolerance; complete linkage makes this hold for every pair in a cluster.
:func:`function_features` compares end points by the function they compute instead (their
outputs on the scored training steps), which is blind to every weight-space symmetry and also
to the flat directions of a degenerate minimum (a valley of minima, e.g. a unit whose output
weight is zero), which parameter distance splits into many "optima".

References: Chen, Lu & Hecht-Nielsen (1993), "On the geometry of feedforward neural network
error surfaces" (the ``2^H H!`` symmetry group); Sussmann (1992) for its uniqueness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist

from suite.curvature import as_rows

__all__ = [
    "SYMMETRY_LAYOUTS",
    "SymmetryLayout",
    "canonicalize",
    "canonicalize_arrays",
    "cluster_end_points",
    "function_features",
]


# -------------------------------------------------------------------------- symmetries
@dataclass(frozen=True)
class SymmetryLayout:
    """Which axes of which parameter arrays index the hidden units of a model.

    ``hidden_axes[name]`` lists the axes (after the leading N axis, so 1-based in the arrays
    ``model.unpack`` returns) along which array ``name`` is indexed by hidden unit. A sign flip
    of unit ``j`` multiplies every such slice by ``-1`` (twice for the diagonal of a recurrent
    matrix, so it is unchanged); a permutation reorders them. ``out`` names the outgoing-weight
    array ``W_o[N, O, H]`` and ``bias`` the hidden bias ``b[N, H]``; ``inputs`` the incoming
    weights used as a last tie-break.
    """

    hidden_axes: dict[str, tuple[int, ...]]
    out: str
    bias: str
    inputs: str


SYMMETRY_LAYOUTS: dict[str, SymmetryLayout] = {
    "elman": SymmetryLayout(
        hidden_axes={"W_x": (1,), "W_h": (1, 2), "b": (1,), "W_o": (2,)},
        out="W_o",
        bias="b",
        inputs="W_x",
    ),
    "tdnn": SymmetryLayout(
        hidden_axes={"W_x": (1,), "b": (1,), "W_o": (2,)},
        out="W_o",
        bias="b",
        inputs="W_x",
    ),
}
"""Symmetry layouts of the models with tanh hidden units (the cliff unit has none)."""


def canonicalize_arrays(params: dict[str, np.ndarray], layout: SymmetryLayout) -> dict:
    """Canonical copies of unpacked parameter arrays (see :func:`canonicalize`).

    Sign: ``s_j = sign(sum_o W_o[o, j])``, ties broken by ``sign(b_j)`` then by the sign of
    the first non-zero incoming weight; ``s_j = 1`` if all are zero. Order: units sorted by
    ``(sum_o W_o[o, j] * s_j, b_j * s_j)`` ascending (``numpy.lexsort``, stable).
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    for name in layout.hidden_axes:
        if name not in arrays:
            raise ValueError(f"parameter arrays lack {name!r}; got {sorted(arrays)}")
    out_sum = arrays[layout.out].sum(axis=1)  # [N, H]
    bias = arrays[layout.bias]  # [N, H]
    w_in = arrays[layout.inputs]
    first_in = _first_nonzero(w_in.reshape(w_in.shape[0], w_in.shape[1], -1))
    sign = np.sign(out_sum)
    sign = np.where(sign == 0, np.sign(bias), sign)
    sign = np.where(sign == 0, np.sign(first_in), sign)
    sign = np.where(sign == 0, 1.0, sign)
    flipped = {}
    for name, arr in arrays.items():
        axes = layout.hidden_axes.get(name, ())
        for ax in axes:
            shape = [1] * arr.ndim
            shape[0], shape[ax] = arr.shape[0], arr.shape[ax]
            arr = arr * sign.reshape(shape)
        flipped[name] = arr
    key1 = flipped[layout.out].sum(axis=1)
    key2 = flipped[layout.bias]
    order = np.lexsort((key2, key1), axis=-1)  # [N, H], primary key last
    result = {}
    for name, arr in flipped.items():
        for ax in layout.hidden_axes.get(name, ()):
            shape = [1] * arr.ndim
            shape[0], shape[ax] = arr.shape[0], arr.shape[ax]
            idx = np.broadcast_to(order.reshape(shape), arr.shape)
            arr = np.take_along_axis(arr, idx, axis=ax)
        result[name] = arr
    return result


def _first_nonzero(a: np.ndarray) -> np.ndarray:
    """The first non-zero entry along the last axis of ``a[..., K]`` (0 if none)."""
    nz = a != 0
    idx = np.argmax(nz, axis=-1)
    return np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def canonicalize(model: Any, theta: np.ndarray) -> np.ndarray:
    """Map each row of ``theta[N, P]`` to the canonical copy of its symmetry class.

    ``model`` is a :mod:`suite.models` model (``model.name`` selects the layout in
    :data:`SYMMETRY_LAYOUTS`; models without hidden-unit symmetries, such as the cliff unit,
    are returned unchanged). Every one of the ``2^H H!`` sign-flipped and permuted copies of a
    network maps to the same vector, and the canonical copy computes the same function.
    """
    theta = as_rows(theta)
    layout = SYMMETRY_LAYOUTS.get(getattr(model, "name", ""))
    if layout is None:
        return theta.copy()
    return np.asarray(model.pack(canonicalize_arrays(model.unpack(theta), layout)))


def function_features(model: Any, theta: np.ndarray, split: Any, chunk: int = 64) -> np.ndarray:
    """Outputs on the scored steps of ``split`` as features: ``F[n] = Z_n[M > 0]`` (flattened)
    with ``Z = model.forward(theta, split.X)``, so that ``||F_a - F_b|| / sqrt(D)`` is the RMS
    output difference of two networks (as :func:`cluster_end_points` measures it). Blind to
    every weight-space symmetry. Rows are evaluated ``chunk`` at a time.
    """
    theta = as_rows(theta)
    keep = np.asarray(split.M) > 0
    out = []
    for i in range(0, theta.shape[0], chunk):
        z = np.asarray(model.forward(theta[i : i + chunk], split.X), dtype=np.float64)
        out.append(z[:, keep, :].reshape(z.shape[0], -1))
    return np.concatenate(out) if out else np.zeros((0, 0))


# --------------------------------------------------------------------------- clustering
def cluster_end_points(
    features: np.ndarray,
    loss: np.ndarray,
    tol: float,
    loss_tol: float,
    method: str = "complete",
) -> np.ndarray:
    """Cluster labels ``0..K-1`` (by ascending best loss of the cluster) of end points.

    Two points are within tolerance when ``||f_a - f_b|| / sqrt(D) <= tol`` (RMS difference of
    the ``D`` features) and ``|L_a - L_b| <= loss_tol``; the combined distance
    ``max(rms / tol, |dL| / loss_tol)`` is clustered by ``scipy.cluster.hierarchy.linkage``
    (``method``, default complete linkage: every pair of a cluster within tolerance) and cut at
    1 (``fcluster(..., criterion="distance")``). Rows with non-finite features or loss get -1.
    Pass canonical parameters (``D = P``) or :func:`function_features` scaled by
    ``sqrt(D)`` -- i.e. give ``tol`` on the RMS scale either way.
    """
    f = np.asarray(features, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64).ravel()
    if f.ndim != 2 or f.shape[0] != loss.shape[0]:
        raise ValueError(f"features must be (N, D) with N = len(loss); got {f.shape}, {loss.shape}")
    if not (tol > 0 and loss_tol > 0):
        raise ValueError(f"tol and loss_tol must be positive, got {tol!r}, {loss_tol!r}")
    if method not in ("single", "complete", "average"):
        raise ValueError(f"method must be 'single', 'complete' or 'average', got {method!r}")
    labels = np.full(loss.shape[0], -1, dtype=np.int64)
    ok = np.isfinite(f).all(axis=1) & np.isfinite(loss)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return labels
    if idx.size == 1:
        labels[idx] = 0
        return labels
    d_par = pdist(f[idx]) / (math.sqrt(f.shape[1]) * tol)
    d_loss = pdist(loss[idx, None], "cityblock") / loss_tol
    dist = np.maximum(d_par, d_loss)
    z = hierarchy.linkage(dist, method=method)
    raw = hierarchy.fcluster(z, t=1.0, criterion="distance")
    # relabel by ascending best loss of the cluster
    frame = pd.DataFrame({"c": raw, "loss": loss[idx]})
    order = frame.groupby("c")["loss"].min().sort_values(kind="stable").index
    remap = {c: i for i, c in enumerate(order)}
    labels[idx] = np.array([remap[c] for c in raw], dtype=np.int64)
    return labels
