"""Local-optimum statistics: what the end points of many training runs are, and how many.

Statements C2 and C3 of ``SCIENCE.md`` are about the *end points* of gradient training from many
random starts. This module turns stored end points (records of kind ``"start"`` written by
:mod:`suite.multistart`) into those statistics, in four steps.

1. **Curvature.** The Hessian's extreme eigenvalues at every end point. For small models the dense
   Hessian comes from central differences of the exact (BPTT) gradient,
   ``H[:, j] = (g(theta + eps e_j) - g(theta - eps e_j)) / (2 eps)``, symmetrised, with all
   ``2P`` perturbations of many end points in one batched gradient call
   (:func:`hessian_fd`). For larger models, Lanczos (``scipy.sparse.linalg.eigsh``) on
   Hessian-vector products ``Hv = (g(theta + eps v) - g(theta - eps v)) / (2 eps)``
   (:func:`extreme_eigenvalues_lanczos`).

2. **Classification** (:func:`classify_end_points`), with thresholds relative to a loss scale
   ``s`` (the task's trivial-predictor loss, ``baseline_loss``):

   * ``"diverged"``: non-finite loss or parameters;
   * ``"minimum"`` at once if ``L <= zero_loss_rel * s`` (default ``1e-12``): the losses are
     non-negative, so this is a global minimum at float64 resolution (on the cliff the gradient
     of such a point can stay large: it sits at the foot of a cliff);
   * ``"plateau"``: ``lambda_max <= flat_rel * s`` and ``||g|| <= plateau_grad_rel * s``
     (default ``1e-2``): no curvature in any direction and a small gradient, converged or not --
     a flat region (the saturated plateaus of the cliff) that the second-order test cannot call
     a minimum and that gradient descent leaves only slowly;
   * ``"not converged"``: gradient norm ``||g|| > gtol_rel * s`` (the training's tolerance);
   * ``"saddle"``: ``lambda_min < -max(flat_rel * s, noise_rel * |lambda_max|)``: clearly
     negative curvature, i.e. below the level ``flat_rel * s`` (default ``flat_rel = 1e-5``)
     that counts as flat and below the finite-difference noise of the eigenvalues, which is
     about ``||H||`` times the relative accuracy of the differences (``noise_rel = 1e-6``);
   * ``"minimum"``: everything else (tiny gradient, no clearly negative curvature);
   * ``"unchecked"``: converged, but the curvature was not computed.

   The rules are applied in this order of precedence: diverged, zero loss, plateau, not
   converged, then the curvature test of a converged point.

3. **Symmetries and clustering.** A tanh network with ``H`` hidden units computes the same
   function in ``2^H H!`` parameter copies (flip the signs of a unit's incoming and outgoing
   weights; permute units). :func:`canonicalize` maps every copy to one representative: flip each
   unit so that the sum of its outgoing weights is non-negative (ties: its bias, then its input
   weights), then sort units by (outgoing-weight sum, bias). Canonical end points are clustered
   (:func:`cluster_end_points`, complete linkage): two end points are the same optimum when
   their RMS parameter difference ``||a - b|| / sqrt(P)`` is at most ``param_tol`` (default 0.05)
   *and* their losses differ by at most ``loss_tol_rel * s`` (default 1e-3). Complete linkage
   makes this hold for every pair in a cluster. The count of optima that the statistics use
   (:func:`analyse_records`, ``metric="function"``) compares end points by the function they
   compute instead (:func:`function_features`: RMS difference of the outputs on the scored
   training steps at most ``func_tol_rel * sqrt(s)``, default 1 % of the target's RMS scale),
   which is blind to every weight-space symmetry and also to the flat directions of a
   degenerate minimum (a valley of minima, e.g. a unit whose output weight is zero), which
   parameter distance splits into many "optima". Both counts are reported.

4. **Study statistics** (:func:`summarize_study`). The best loss ``L*`` is the lowest train
   loss of any end point that did not diverge (converged or not: on tasks whose good solutions
   lie at infinity, such as the adding problem, the best runs keep descending and never meet a
   gradient tolerance). A minimum *stalls* when
   ``L > L* + stall_rel * (s - L*)``: it gives up more than ``stall_rel`` (default 10 %) of the
   improvement the best solution makes over the trivial predictor. The *stall gap* of an end
   point is ``(L - L*) / (s - L*)`` (0 at the best, 1 at the trivial predictor's loss).
   Rates are per converged start; unconverged and diverged starts are counted separately.
   Distinct optima are the clusters of minima; the count per converged start is compared
   between the RNN and its TDNN twin with paired percentile-bootstrap intervals
   (:func:`compare_studies`, resampling seed indices, seeded).

References: Pascanu, Mikolov & Bengio (2013); Dauphin et al. (2014), "Identifying and attacking
the saddle point problem in high-dimensional non-convex optimization" (classification by
Hessian spectrum); Chen, Lu & Hecht-Nielsen (1993), "On the geometry of feedforward neural
network error surfaces" (the ``2^H H!`` symmetry group); Sussmann (1992) for its uniqueness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist

from suite import seeding
from suite.curvature import as_rows
from suite.problem import problem_from_spec

__all__ = [
    "CLASSES",
    "OptimaAnalysis",
    "analyse_records",
    "SYMMETRY_LAYOUTS",
    "Thresholds",
    "analyse_study",
    "canonicalize",
    "canonicalize_arrays",
    "classify_end_points",
    "cluster_end_points",
    "compare_studies",
    "function_features",
    "optima_table",
    "start_frame",
    "study_label",
    "summarize_study",
]

CLASSES: tuple[str, ...] = (
    "minimum",
    "saddle",
    "plateau",
    "unchecked",
    "not converged",
    "diverged",
)
"""End-point classes, in the order tables list them."""


# ----------------------------------------------------------------------- classification
@dataclass(frozen=True)
class Thresholds:
    """Thresholds of :func:`classify_end_points`, relative to a loss scale ``s``.

    ``gtol_rel``: converged when ``||g|| <= gtol_rel * s`` (or ``L <= zero_loss_rel * s``). A
    saddle needs ``lambda_min < -max(flat_rel * s, noise_rel * |lambda_max|)``; a plateau has
    ``lambda_max <= flat_rel * s`` and ``||g|| <= plateau_grad_rel * s``. ``stall_rel``: a
    minimum stalls when its loss exceeds the best by more than ``stall_rel * (s - best)``.
    ``loss_tol_rel`` / ``param_tol`` / ``func_tol_rel``: clustering tolerances (losses within
    ``loss_tol_rel * s``; RMS canonical-parameter difference ``param_tol``; RMS output
    difference ``func_tol_rel * sqrt(s)``, see :func:`cluster_end_points`).
    """

    gtol_rel: float = 1e-5
    flat_rel: float = 1e-5
    noise_rel: float = 1e-6
    zero_loss_rel: float = 1e-12
    plateau_grad_rel: float = 1e-2
    func_tol_rel: float = 0.01
    stall_rel: float = 0.1
    loss_tol_rel: float = 1e-3
    param_tol: float = 0.05

    def __post_init__(self) -> None:
        for name in (
            "gtol_rel",
            "flat_rel",
            "noise_rel",
            "zero_loss_rel",
            "plateau_grad_rel",
            "stall_rel",
            "loss_tol_rel",
            "param_tol",
            "func_tol_rel",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"Thresholds.{name} must be a positive number, got {value!r}")


def classify_end_points(
    loss: np.ndarray,
    grad_norm: np.ndarray,
    eigs: np.ndarray,
    loss_scale: float,
    thresholds: Thresholds | None = None,
) -> np.ndarray:
    """The class of each end point: one of :data:`CLASSES` (rules in the module docstring).

    ``loss[N]``, ``grad_norm[N]``, ``eigs[N, 2]`` (``lambda_min``, ``lambda_max``; NaN where not
    computed), ``loss_scale`` > 0 (the task's baseline loss). A converged point whose
    eigenvalues are NaN (curvature not computed) is ``"unchecked"``: without the second-order
    test it is not counted as a minimum.
    """
    t = thresholds or Thresholds()
    if not (math.isfinite(loss_scale) and loss_scale > 0):
        raise ValueError(f"loss_scale must be a positive finite number, got {loss_scale!r}")
    loss = np.asarray(loss, dtype=np.float64).ravel()
    gn = np.asarray(grad_norm, dtype=np.float64).ravel()
    eigs = np.asarray(eigs, dtype=np.float64).reshape(-1, 2)
    if not (loss.shape == gn.shape and eigs.shape[0] == loss.shape[0]):
        raise ValueError(
            f"loss {loss.shape}, grad_norm {gn.shape} and eigs {eigs.shape} must agree in N"
        )
    lmin, lmax = eigs[:, 0], eigs[:, 1]
    out = np.full(loss.shape, "minimum", dtype=object)
    flat = t.flat_rel * loss_scale
    neg = -np.maximum(flat, t.noise_rel * np.abs(lmax))
    diverged = ~np.isfinite(loss) | ~np.isfinite(gn)
    zero = ~diverged & (loss <= t.zero_loss_rel * loss_scale)
    converged = zero | (~diverged & (gn <= t.gtol_rel * loss_scale))
    curv_known = np.isfinite(lmin) & np.isfinite(lmax)
    saddle = curv_known & (lmin < neg)
    plateau = curv_known & (lmax <= flat) & (gn <= t.plateau_grad_rel * loss_scale)
    out[saddle] = "saddle"
    out[~curv_known] = "unchecked"
    out[~converged] = "not converged"
    out[plateau] = "plateau"
    out[zero] = "minimum"  # a zero loss is a global minimum whatever the curvature says
    out[diverged] = "diverged"
    return out


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


# ------------------------------------------------------------------------------ frames
START_COLUMNS = (
    "key, study, task, task_params, model, model_params, method, seed, status, loss, test_loss, "
    "grad_norm, steps, fe, lambda_min, lambda_max, baseline_loss"
).split(", ")


def study_label(record: dict) -> str:
    """A readable study label ``task(params) / model(options) / method``."""
    spec = record["spec"]
    task = dict(spec["task"])
    model = dict(spec["model"])
    tname, mname = task.pop("task"), model.pop("model")
    method = spec["method"]
    mlabel = method.get("label") or method["name"]

    def lab(name: str, params: dict) -> str:
        inner = ",".join(f"{k}={v}" for k, v in params.items())
        return f"{name}({inner})" if inner else name

    return f"{lab(tname, task)} / {lab(mname, model)} / {mlabel}"


def start_frame(records: Sequence[dict]) -> pd.DataFrame:
    """One row per start record (kind ``"start"``), columns :data:`START_COLUMNS` + ``theta``.

    ``study`` groups the starts of one study (same task, model and method); ``theta`` holds
    the end point as an array.
    """
    rows = []
    for r in records:
        spec = r["spec"]
        task, model = dict(spec["task"]), dict(spec["model"])
        rows.append(
            {
                "key": r["key"],
                "study": r.get("study") or study_label(r),
                "task": task.pop("task"),
                "task_params": task,
                "model": model.pop("model"),
                "model_params": model,
                "method": spec["method"].get("label") or spec["method"]["name"],
                "seed": int(spec["seed"]),
                "status": r["status"],
                "loss": _f(r.get("final_train_loss")),
                "test_loss": _f(r.get("final_test_loss")),
                "grad_norm": _f(r.get("grad_norm")),
                "steps": int(r.get("steps", 0)),
                "fe": _f((r.get("counters") or {}).get("fe")),
                "lambda_min": _f(r.get("lambda_min")),
                "lambda_max": _f(r.get("lambda_max")),
                "baseline_loss": _f(r.get("baseline_loss")),
                "theta": np.asarray(r.get("theta") or [], dtype=np.float64),
            }
        )
    frame = pd.DataFrame(rows, columns=[*START_COLUMNS, "theta"])
    if rows:
        frame = frame.sort_values(["study", "seed"], kind="stable").reset_index(drop=True)
    return frame


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def analyse_study(
    starts: pd.DataFrame,
    model: Any,
    thresholds: Thresholds | None = None,
    features: np.ndarray | None = None,
) -> pd.DataFrame:
    """Classify and cluster the end points of one study; returns ``starts`` with the columns
    ``class`` (:data:`CLASSES`), ``canonical`` (the canonical end point), ``cluster_param``
    (label of its optimum among minima by canonical parameters, tolerance ``param_tol``),
    ``cluster`` (the label used for counting optima: by ``features`` when given, tolerance
    ``func_tol_rel * sqrt(s)``, else ``cluster_param``; -1 for non-minima), ``stall_gap`` and
    ``stalled``.

    ``model`` gives the symmetry layout (:func:`canonicalize`); ``features`` (optional,
    ``[N, D]`` in the row order of ``starts``) are the outputs of each end point on the training
    inputs (:func:`function_features`), so that points on one flat valley of minima -- which
    parameter distance splits into many -- count as one optimum. The loss scale ``s`` is the
    study's ``baseline_loss``.
    """
    t = thresholds or Thresholds()
    df = starts.copy().reset_index(drop=True)
    if df.empty:
        for col in ("class", "cluster", "stall_gap", "stalled"):
            df[col] = []
        return df
    scale = float(np.nanmedian(df["baseline_loss"]))
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"the study's baseline_loss must be positive, got {scale!r}")
    eigs = df[["lambda_min", "lambda_max"]].to_numpy(dtype=np.float64)
    cls = classify_end_points(df["loss"], df["grad_norm"], eigs, scale, t)
    cls[(df["status"] == "diverged").to_numpy()] = "diverged"
    df["class"] = cls
    p = max((len(x) for x in df["theta"]), default=0)
    thetas = np.full((len(df), p), np.nan)
    for i, x in enumerate(df["theta"]):
        if len(x) == p:
            thetas[i] = x
    ok = np.isfinite(thetas).all(axis=1)
    canon = np.full_like(thetas, np.nan)
    if ok.any() and p > 0:
        canon[ok] = canonicalize(model, thetas[ok])
    df["canonical"] = list(canon)
    is_min = (df["class"] == "minimum").to_numpy()
    losses = df["loss"].to_numpy(dtype=np.float64)
    labels = np.full(len(df), -1, dtype=np.int64)
    if is_min.any():
        labels[is_min] = cluster_end_points(
            canon[is_min], losses[is_min], t.param_tol, t.loss_tol_rel * scale
        )
    df["cluster_param"] = labels
    if features is not None:
        feats = np.asarray(features, dtype=np.float64)
        if feats.shape[0] != len(df):
            raise ValueError(f"features must have {len(df)} rows, got {feats.shape[0]}")
        labels = np.full(len(df), -1, dtype=np.int64)
        if is_min.any():
            labels[is_min] = cluster_end_points(
                feats[is_min],
                losses[is_min],
                t.func_tol_rel * math.sqrt(scale),
                t.loss_tol_rel * scale,
            )
    df["cluster"] = labels
    finite = np.isfinite(df["loss"].to_numpy()) & (df["class"] != "diverged").to_numpy()
    best = float(df.loc[finite, "loss"].min()) if finite.any() else math.nan
    span = max(scale - best, t.loss_tol_rel * scale) if math.isfinite(best) else math.nan
    df["stall_gap"] = (df["loss"] - best) / span
    df["stalled"] = is_min & (df["stall_gap"].to_numpy() > t.stall_rel)
    return df


def summarize_study(df: pd.DataFrame, thresholds: Thresholds | None = None) -> dict:
    """Summary of one analysed study (the output of :func:`analyse_study`).

    Keys: ``n_starts``, counts per class (``n_minimum``, ``n_saddle``, ``n_plateau``,
    ``n_not_converged``, ``n_diverged``), ``n_converged`` (minima + saddles + plateaus),
    ``n_distinct`` (clusters of minima: the ``cluster`` column), ``n_distinct_param`` (clusters
    by canonical parameters), ``distinct_per_start`` (``n_distinct / n_converged``),
    ``best_loss`` (over all end points that did not diverge), ``best_minimum_loss``,
    ``baseline_loss``, ``n_stalled``, ``stall_rate`` (stalled minima per converged start),
    ``stall_rate_all`` (stalled minima per start), ``stall_gap_median`` (median stall gap of
    the stalled), ``largest_basin_share`` (fraction of converged starts in the most popular
    optimum), ``best_basin_share`` (fraction of converged starts at a minimum within the stall
    margin of the best), ``n_unconverged_good`` (not converged, but within the stall margin of
    the best: still descending near the best level).
    """
    t = thresholds or Thresholds()
    counts = df["class"].value_counts() if len(df) else pd.Series(dtype=int)
    n_conv = int(sum(counts.get(c, 0) for c in ("minimum", "saddle", "plateau")))
    minima = df[df["class"] == "minimum"] if len(df) else df
    n_distinct = int(minima["cluster"].nunique()) if len(minima) else 0
    stalled = df[df["stalled"]] if len(df) else df
    shares = minima["cluster"].value_counts() / n_conv if n_conv else pd.Series(dtype=float)
    good = minima[minima["stall_gap"] <= t.stall_rel] if len(minima) else minima
    return {
        "n_starts": int(len(df)),
        **{f"n_{c.replace(' ', '_')}": int(counts.get(c, 0)) for c in CLASSES},
        "n_converged": n_conv,
        "n_distinct": n_distinct,
        "n_distinct_param": int(minima["cluster_param"].nunique())
        if len(minima) and "cluster_param" in minima
        else 0,
        "distinct_per_start": n_distinct / n_conv if n_conv else math.nan,
        "best_loss": float(df.loc[df["class"] != "diverged", "loss"].min())
        if len(df)
        else math.nan,
        "best_minimum_loss": float(minima["loss"].min()) if len(minima) else math.nan,
        "baseline_loss": float(np.nanmedian(df["baseline_loss"])) if len(df) else math.nan,
        "n_stalled": int(len(stalled)),
        "stall_rate": len(stalled) / n_conv if n_conv else math.nan,
        "stall_rate_all": len(stalled) / len(df) if len(df) else math.nan,
        "stall_gap_median": float(stalled["stall_gap"].median()) if len(stalled) else math.nan,
        "largest_basin_share": float(shares.max()) if len(shares) else math.nan,
        "best_basin_share": len(good) / n_conv if n_conv else math.nan,
        "n_unconverged_good": int(
            ((df["class"] == "not converged") & (df["stall_gap"] <= t.stall_rel)).sum()
        )
        if len(df)
        else 0,
    }


def optima_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct optimum of an analysed study: ``cluster``, ``loss`` (best and
    median in the cluster), ``test_loss`` (median), ``starts``, ``share`` (of converged starts),
    ``stall_gap`` (of the best member), ``lambda_min``/``lambda_max`` (medians)."""
    conv = df["class"].isin(["minimum", "saddle", "plateau"]).sum()
    minima = df[df["class"] == "minimum"]
    if minima.empty:
        return pd.DataFrame(
            columns=["cluster", "loss", "loss_median", "test_loss", "starts", "share", "stall_gap"]
        )
    g = minima.groupby("cluster")
    cols = {
        "loss": g["loss"].min(),
        "loss_median": g["loss"].median(),
        "starts": g.size(),
        "stall_gap": g["stall_gap"].min(),
    }
    for col in ("test_loss", "lambda_min", "lambda_max"):
        if col in minima:
            cols[col] = g[col].median()
    out = pd.DataFrame(cols).reset_index()
    out["share"] = out["starts"] / max(int(conv), 1)
    return out.sort_values("loss", kind="stable").reset_index(drop=True)


# -------------------------------------------------------------------------- comparison
def _distinct_rate(labels: np.ndarray, converged: np.ndarray, axis: int = -1) -> np.ndarray:
    """Distinct non-negative labels per converged start, along ``axis`` (vectorised)."""
    labels = np.asarray(labels)
    conv = np.asarray(converged, dtype=bool)
    # count distinct labels >= 0 per row by sorting
    lab = np.where(labels >= 0, labels, -1)
    s = np.sort(lab, axis=axis)
    first = np.ones_like(s, dtype=bool)
    sl_a = [slice(None)] * s.ndim
    sl_b = [slice(None)] * s.ndim
    sl_a[axis] = slice(1, None)
    sl_b[axis] = slice(None, -1)
    first[tuple(sl_a)] = s[tuple(sl_a)] != s[tuple(sl_b)]
    distinct = (first & (s >= 0)).sum(axis=axis)
    n = conv.sum(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, distinct / np.maximum(n, 1), np.nan)


def compare_studies(
    rnn: pd.DataFrame,
    tdnn: pd.DataFrame,
    rng: np.random.Generator | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """RNN versus TDNN statistics of two analysed studies on the same data and seeds (C3).

    Starts are paired by seed index (only seeds present in both count). For each statistic
    (``distinct_per_start``, ``stall_rate``, ``unconverged_rate``) the table gives both values
    (``rnn``, ``tdnn``) and, in rows with ``measure`` = ``"difference"`` (RNN - TDNN) or
    ``"ratio"`` (RNN / TDNN), the ``value`` with ``value_low``/``value_high``: a paired
    percentile bootstrap interval, resampling seed indices with replacement (the same resample
    for both models; a resampled start's optimum counts once in the distinct count). The
    bootstrap is done with numpy rather than ``scipy.stats.bootstrap`` because a resample may
    have no converged start (an undefined rate): those resamples are dropped, their share is
    reported as ``1 - resamples_defined``, and no interval is given if more than half are
    undefined. ``rng`` seeds the bootstrap (default ``default_rng(0)``).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    a = rnn.set_index("seed")
    b = tdnn.set_index("seed")
    seeds = np.intersect1d(a.index.to_numpy(), b.index.to_numpy())
    if seeds.size < 2:
        raise ValueError("the two studies share fewer than 2 seed indices; nothing to compare")
    a, b = a.loc[seeds], b.loc[seeds]
    conv_classes = ["minimum", "saddle", "plateau"]
    data = (
        a["cluster"].to_numpy(),
        a["class"].isin(conv_classes).to_numpy().astype(float),
        a["stalled"].to_numpy().astype(float),
        b["cluster"].to_numpy(),
        b["class"].isin(conv_classes).to_numpy().astype(float),
        b["stalled"].to_numpy().astype(float),
    )

    def per_model(lab: np.ndarray, conv: np.ndarray, stall: np.ndarray, axis: int) -> tuple:
        n = conv.sum(axis=axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            distinct = _distinct_rate(lab, conv > 0, axis=axis)
            stall_rate = np.where(n > 0, stall.sum(axis=axis) / np.maximum(n, 1), np.nan)
        unconv = 1.0 - conv.mean(axis=axis)
        return distinct, stall_rate, unconv

    names = ("distinct_per_start", "stall_rate", "unconverged_rate")
    point_a = per_model(*data[:3], axis=-1)
    point_b = per_model(*data[3:], axis=-1)
    idx = rng.integers(0, seeds.size, size=(n_resamples, seeds.size))  # paired resamples
    lab_a, conv_a, stall_a, lab_b, conv_b, stall_b = (x[idx] for x in data)
    boot_a = per_model(lab_a, conv_a, stall_a, axis=-1)
    boot_b = per_model(lab_b, conv_b, stall_b, axis=-1)
    alpha = 100 * (1 - confidence) / 2
    rows = []
    for i, name in enumerate(names):
        for what in ("difference", "ratio"):
            with np.errstate(divide="ignore", invalid="ignore"):
                if what == "difference":
                    point = float(point_a[i] - point_b[i])
                    boot = boot_a[i] - boot_b[i]
                else:
                    point = float(point_a[i] / point_b[i]) if point_b[i] != 0 else math.nan
                    boot = np.where(boot_b[i] != 0, boot_a[i] / boot_b[i], np.nan)
            finite = np.isfinite(boot)
            lo = hi = math.nan
            if math.isfinite(point) and finite.mean() >= 0.5:
                lo, hi = (float(v) for v in np.percentile(boot[finite], [alpha, 100 - alpha]))
            rows.append(
                {
                    "statistic": name,
                    "measure": what,
                    "rnn": float(point_a[i]),
                    "tdnn": float(point_b[i]),
                    "value": point,
                    "value_low": lo,
                    "value_high": hi,
                    "n_seeds": int(seeds.size),
                    "resamples_defined": float(finite.mean()),
                }
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ pipeline
def _model_of(row: pd.Series) -> Any:
    import tasks
    from suite.models import make_model

    task = tasks.get(row["task"], **row["task_params"])
    return make_model(row["model"], task.n_in, task.n_out, **row["model_params"])


@dataclass
class OptimaAnalysis:
    """Everything :func:`analyse_records` derives from ``"start"`` records.

    ``starts``: one row per start with class, cluster, stall gap (:func:`analyse_study`);
    ``summary``: one row per study (:func:`summarize_study` plus the study's task/model
    columns); ``optima``: one row per distinct optimum (:func:`optima_table`) with ``study``;
    ``comparison``: RNN versus TDNN-twin statistics (:func:`compare_studies`) per pair of
    studies on the same task spec with the same method.
    """

    starts: pd.DataFrame
    summary: pd.DataFrame
    optima: pd.DataFrame
    comparison: pd.DataFrame


def analyse_records(
    records: Sequence[dict],
    thresholds: Thresholds | None = None,
    rng: np.random.Generator | None = None,
    n_resamples: int = 2000,
    metric: str = "function",
) -> OptimaAnalysis:
    """Classify, cluster and summarise the start records of a results folder, study by study,
    and compare every Elman study with its TDNN twin (same task spec, same method label).

    ``metric = "function"`` (default) counts distinct optima by the function they compute on
    the study's training inputs (:func:`function_features`; the data are regenerated from the
    record's data stream); ``"parameters"`` by canonical parameters. Both counts are in the
    summary (``n_distinct`` follows ``metric``, ``n_distinct_param`` is always by parameters).
    Records with status ``"error"`` are left out (counted in the summary as ``n_error``).
    ``rng`` seeds the bootstraps (default ``default_rng(0)``).
    """
    if metric not in ("function", "parameters"):
        raise ValueError(f"metric must be 'function' or 'parameters', got {metric!r}")
    t = thresholds or Thresholds()
    rng = np.random.default_rng(0) if rng is None else rng
    ok = [r for r in records if r.get("status") != "error"]
    errors = pd.Series([r.get("study", "") for r in records if r.get("status") == "error"])
    starts = start_frame(ok)
    parts, summaries, optima = [], [], []
    spec_of = {r["key"]: r["spec"] for r in ok}
    for study, df in starts.groupby("study", sort=False):
        model = _model_of(df.iloc[0])
        feats = None
        if metric == "function":
            feats = _study_features(model, df, spec_of[df.iloc[0]["key"]])
        a = analyse_study(df, model, t, feats)
        parts.append(a)
        first = df.iloc[0]
        s = {
            "study": study,
            "task": first["task"],
            "seq_len": first["task_params"].get("seq_len", first["task_params"].get("steps")),
            "model": first["model"],
            "hidden": first["model_params"].get("hidden"),
            "spectral_radius": first["model_params"].get("spectral_radius"),
            "params": int(model.dim),
            "method": first["method"],
            **summarize_study(a, t),
            "n_error": int((errors == study).sum()),
            "median_fe": float(df["fe"].median()),
        }
        summaries.append(s)
        o = optima_table(a)
        o.insert(0, "study", study)
        optima.append(o)
    all_starts = pd.concat(parts, ignore_index=True) if parts else starts
    summary = pd.DataFrame(summaries)
    optima_df = pd.concat(optima, ignore_index=True) if optima else pd.DataFrame()
    comparison = _twin_comparisons(all_starts, rng, n_resamples)
    return OptimaAnalysis(all_starts, summary, optima_df, comparison)


def _study_features(model: Any, df: pd.DataFrame, spec: dict) -> np.ndarray:
    """Function features of every end point of a study (NaN rows where theta is not finite)."""
    stream = seeding.data_stream(
        int(spec.get("experiment_seed", 0)), spec["task"], int(spec.get("data_seed", 0))
    )
    problem = problem_from_spec(spec["task"], spec["model"], stream)
    split = problem.dataset.train
    thetas = np.stack(
        [x if len(x) == model.dim else np.full(model.dim, np.nan) for x in df["theta"].tolist()]
    )
    ok = np.isfinite(thetas).all(axis=1)
    n_out = int(np.count_nonzero(np.asarray(split.M) > 0)) * model.n_out
    out = np.full((len(df), n_out), np.nan)
    if ok.any():
        out[ok] = function_features(model, thetas[ok], split)
    return out


def _twin_comparisons(starts: pd.DataFrame, rng: np.random.Generator, n: int) -> pd.DataFrame:
    if starts.empty:
        return pd.DataFrame()
    from suite.seeding import canonical_json

    starts = starts.assign(_task=[canonical_json(p) for p in starts["task_params"]])
    rows = []
    for (task, _tparams, method), g in starts.groupby(["task", "_task", "method"], sort=False):
        rnn = {s: d for s, d in g[g["model"] == "elman"].groupby("study", sort=False)}
        tdnn = {s: d for s, d in g[g["model"] == "tdnn"].groupby("study", sort=False)}
        for r_study, r_df in rnn.items():
            for t_study, t_df in tdnn.items():
                try:
                    c = compare_studies(r_df, t_df, rng, n)
                except ValueError:
                    continue
                c.insert(0, "tdnn_study", t_study)
                c.insert(0, "rnn_study", r_study)
                c.insert(0, "method", method)
                c.insert(0, "task", task)
                rows.append(c)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
