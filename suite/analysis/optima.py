"""Local-optimum statistics: what the end points of many training runs are, and how many.

Statements C2 and C3 of ``SCIENCE.md`` are about the *end points* of gradient training from many
random starts. This module turns stored end points (records of kind ``"start"`` written by
:mod:`suite.kinds.multistart`) into those statistics, in four steps.

1. **Curvature.** The Hessian's extreme eigenvalues at every end point. For small models the dense
   Hessian comes from central differences of the exact (BPTT) gradient,
   ``H[:, j] = (g(theta + eps e_j) - g(theta - eps e_j)) / (2 eps)``, symmetrised, with all
   ``2P`` perturbations of many end points in one batched gradient call
   (:func:`hessian_fd`). For larger models, Lanczos (``scipy.sparse.linalg.eigsh``) on
   Hessian-vector products ``Hv = (g(theta + eps v) - g(theta - eps v)) / (2 eps)``
   (:func:`extreme_eigenvalues_lanczos`).

2. **Classification** (:func:`classify_end_points`), with thresholds relative to a loss scale
   ``s`` (the task's trivial-predictor loss, ``baseline_loss``). Studies run with a
   ``resolve`` table first polish unconverged end points by a trust-region Newton method with
   exact Hessian-vector products, measure the extreme eigenvalues at two finite-difference
   steps (:func:`suite.curvature.curvature_checked`) and run the valley and escape tests
   (:mod:`suite.optimizers.resolve`). Classes, in order of precedence:

   * ``"diverged"``: non-finite loss or parameters;
   * ``"minimum"`` at once if ``L <= zero_loss_rel * s`` (a global minimum at float64
     resolution: the losses are non-negative);
   * ``"diverging"``: the valley test saw the loss fall and the weight norm grow in every
     continuation segment (the good RNN solutions at infinity; not a local optimum);
   * ``"plateau"``: ``lambda_max <= flat_rel * s`` and ``||g|| <= plateau_grad_rel * s``;
   * ``"unresolved"``: gradient above ``gtol_rel * s`` after the polish budget, or curvature
     unknown or inconsistent between the two step sizes (a saturation cliff);
   * ``"saddle"``: ``lambda_min < -max(flat_rel * s, noise_rel * |lambda_max|)``;
   * ``"minimum"``: everything else (tiny gradient, no clearly negative curvature).

   A *trap* (:func:`trap_candidates`) is a non-diverged, non-diverging end point from which the
   escape test reached no lower level (records without an escape test: a minimum).

3. **Symmetries and clustering** (:mod:`suite.analysis.symmetry`). End points are mapped to a
   canonical copy of their ``2^H H!`` weight-space symmetry class and clustered (complete
   linkage) into optima: by canonical parameters (RMS difference at most ``param_tol``, default
   0.05, and losses within ``loss_tol_rel * s``, default 1e-3), and -- the count the
   statistics use (:func:`analyse_records`, ``metric="function"``) -- by the function they
   compute (RMS output difference on the scored training steps at most ``func_tol_rel *
   sqrt(s)``, default 1 % of the target's RMS scale), blind to every symmetry and to the flat
   directions of a degenerate minimum. Both counts are reported.

4. **Study statistics** (:func:`summarize_study`). The best loss ``L*`` is the lowest train
   loss of any end point that did not diverge (converged or not: on tasks whose good solutions
   lie at infinity, such as the adding problem, the best runs keep descending and never meet a
   gradient tolerance). A minimum *stalls* when
   ``L > L* + stall_rel * (s - L*)``: it gives up more than ``stall_rel`` (default 10 %) of the
   improvement the best solution makes over the trivial predictor. The *stall gap* of an end
   point is ``(L - L*) / (s - L*)`` (0 at the best, 1 at the trivial predictor's loss).
   The headline rates are over *all* starts: traps above the margin per start
   (:func:`trap_rate`), for the margins :data:`STALL_MARGINS`; ``stall_rate`` (per converged
   start) is kept for comparison with earlier reports.
   Distinct optima are the clusters of minima; the count per converged start is compared
   between the RNN and its TDNN twin with paired percentile-bootstrap intervals
   (:func:`suite.analysis.twins.compare_studies`, resampling seed indices, seeded).

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

import tasks
from suite import seeding
from suite.analysis.symmetry import canonicalize, cluster_end_points, function_features
from suite.analysis.twins import twin_comparisons
from suite.models import make_model
from suite.problem import problem_from_spec

__all__ = [
    "CLASSES",
    "RESOLVED_COLUMNS",
    "STALL_MARGINS",
    "OptimaAnalysis",
    "Thresholds",
    "analyse_records",
    "analyse_study",
    "classify_end_points",
    "optima_table",
    "saturation_curve",
    "start_frame",
    "study_label",
    "summarize_study",
    "trap_candidates",
    "trap_rate",
]

CLASSES: tuple[str, ...] = (
    "minimum",
    "saddle",
    "plateau",
    "diverging",
    "unresolved",
    "diverged",
)
"""End-point classes, in the order tables list them."""


STALL_MARGINS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2)
"""Stall margins of the sensitivity curve (fractions of the gap to the baseline)."""


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
    diverging: np.ndarray | None = None,
    curvature_ok: np.ndarray | None = None,
) -> np.ndarray:
    """The class of each end point: one of :data:`CLASSES` (rules in the module docstring).

    ``loss[N]``, ``grad_norm[N]``, ``eigs[N, 2]`` (``lambda_min``, ``lambda_max``; NaN where not
    computed), ``loss_scale`` > 0 (the task's baseline loss); ``diverging[N]`` the result of
    the valley test (:func:`suite.optimizers.resolve.valley_test`; default all false) and
    ``curvature_ok[N]`` the step-size consistency of the eigenvalues
    (:func:`suite.curvature.curvature_checked`; default all true). A point whose curvature is
    unknown or inconsistent, or whose gradient is above the tolerance after the polish, is
    ``"unresolved"``: without the second-order test it is not counted as a minimum.
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
    div = np.zeros(loss.shape, bool) if diverging is None else np.asarray(diverging, bool)
    cok = np.ones(loss.shape, bool) if curvature_ok is None else np.asarray(curvature_ok, bool)
    curv_known = np.isfinite(lmin) & np.isfinite(lmax) & cok
    saddle = curv_known & (lmin < neg)
    plateau = curv_known & (lmax <= flat) & (gn <= t.plateau_grad_rel * loss_scale)
    out[saddle] = "saddle"
    out[~curv_known] = "unresolved"
    out[~converged] = "unresolved"
    out[plateau] = "plateau"
    out[div] = "diverging"  # loss still falling as the norm grows: not a local optimum
    out[zero] = "minimum"  # a zero loss is a global minimum whatever the curvature says
    out[diverged] = "diverged"
    return out


# ------------------------------------------------------------------------------ frames
START_COLUMNS = (
    "key, study, task, task_params, model, model_params, method, seed, status, loss, test_loss, "
    "grad_norm, steps, fe, lambda_min, lambda_max, baseline_loss"
).split(", ")


RESOLVED_COLUMNS = ["target_loss", "data_seed", "diverging", "curvature_ok", "escape_loss"]
"""Columns from the end-point resolution (defaults for records written without it)."""


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
                "target_loss": _f(r.get("target_loss")),
                "data_seed": int(spec.get("data_seed", 0)),
                "diverging": bool((r.get("resolved") or {}).get("diverging", False)),
                "curvature_ok": bool((r.get("resolved") or {}).get("curvature_ok", True)),
                "escape_loss": _f((r.get("resolved") or {}).get("escape_loss")),
                "theta": np.asarray(r.get("theta") or [], dtype=np.float64),
            }
        )
    frame = pd.DataFrame(rows, columns=[*START_COLUMNS, *RESOLVED_COLUMNS, "theta"])
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
    cls = classify_end_points(
        df["loss"],
        df["grad_norm"],
        eigs,
        scale,
        t,
        df["diverging"].to_numpy(bool) if "diverging" in df else None,
        df["curvature_ok"].to_numpy(bool) if "curvature_ok" in df else None,
    )
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
    df["trap_candidate"] = trap_candidates(df, scale, t)
    df["stalled"] = df["trap_candidate"].to_numpy(bool) & (df["stall_gap"].to_numpy() > t.stall_rel)
    return df


def trap_candidates(df: pd.DataFrame, scale: float, t: Thresholds) -> np.ndarray:
    """End points that can be traps whatever the margin: not diverged, not on a diverging
    valley, and not escaped -- the escape test (:func:`suite.optimizers.resolve.escape_test`)
    found no perturbation reaching a loss lower by more than ``loss_tol_rel * s``. Records
    without an escape test (NaN ``escape_loss``; written before it existed, or at or below 1%
    of the chunk's gap) count only if they are minima, as before."""
    cls = df["class"].to_numpy()
    esc = df["escape_loss"].to_numpy(float) if "escape_loss" in df else np.full(len(df), np.nan)
    loss = df["loss"].to_numpy(float)
    tested = np.isfinite(esc)
    escaped = tested & (esc < loss - t.loss_tol_rel * scale)
    live = ~np.isin(cls, ["diverged", "diverging"])
    return live & np.where(tested, ~escaped, cls == "minimum")


def trap_rate(df: pd.DataFrame, margin: float) -> float:
    """Share of all starts of an analysed study that are traps above ``margin`` (a fraction of
    the gap between the best loss and the baseline): ``trap_candidate & stall_gap > margin``."""
    if df.empty:
        return math.nan
    return float((df["trap_candidate"] & (df["stall_gap"] > margin)).mean())


def saturation_curve(df: pd.DataFrame, points: int = 8) -> pd.DataFrame:
    """Distinct optima (function-space clusters of minima) found among the first ``n`` starts
    (seed order) for ``n`` on a log grid up to all starts: columns ``n``, ``distinct``."""
    d = df.sort_values("seed", kind="stable")
    n_all = len(d)
    if n_all == 0:
        return pd.DataFrame(columns=["n", "distinct"])
    grid = sorted({int(round(x)) for x in np.geomspace(1, n_all, points)} | {n_all})
    lab = d["cluster"].to_numpy()
    rows = [{"n": n, "distinct": int(np.unique(lab[:n][lab[:n] >= 0]).size)} for n in grid]
    return pd.DataFrame(rows)


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
    margins = {f"trap_rate_{int(m * 100)}": trap_rate(df, m) for m in STALL_MARGINS}
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
        **margins,
        **{
            f"share_{c}": float((df["class"] == c).mean()) if len(df) else math.nan for c in CLASSES
        },
        "n_stalled": int(len(stalled)),
        "stall_rate": len(stalled) / n_conv if n_conv else math.nan,
        "stall_rate_all": len(stalled) / len(df) if len(df) else math.nan,
        "stall_gap_median": float(stalled["stall_gap"].median()) if len(stalled) else math.nan,
        "largest_basin_share": float(shares.max()) if len(shares) else math.nan,
        "best_basin_share": len(good) / n_conv if n_conv else math.nan,
        "n_unconverged_good": int(
            ((df["class"] == "unresolved") & (df["stall_gap"] <= t.stall_rel)).sum()
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


# ------------------------------------------------------------------------------ pipeline
def _model_of(row: pd.Series) -> Any:
    task = tasks.get(row["task"], **row["task_params"])
    return make_model(row["model"], task.n_in, task.n_out, **row["model_params"])


@dataclass
class OptimaAnalysis:
    """Everything :func:`analyse_records` derives from ``"start"`` records.

    ``starts``: one row per start with class, cluster, stall gap (:func:`analyse_study`);
    ``summary``: one row per study (:func:`summarize_study` plus the study's task/model
    columns); ``optima``: one row per distinct optimum (:func:`optima_table`) with ``study``;
    ``comparison``: RNN versus TDNN-twin statistics per pair of studies on the same task spec
    with the same method (:func:`suite.analysis.twins.twin_comparisons`).
    """

    starts: pd.DataFrame
    summary: pd.DataFrame
    optima: pd.DataFrame
    comparison: pd.DataFrame
    saturation: pd.DataFrame | None = None


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
    parts, summaries, optima, saturation = [], [], [], []
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
            "window": first["model_params"].get("window"),
            "data_seed": int(first["data_seed"]),
            "target_loss": float(np.nanmedian(df["target_loss"])),
            "n_reached": int((a["loss"] <= a["target_loss"]).sum()),
        }
        sat = saturation_curve(a)
        sat.insert(0, "study", study)
        saturation.append(sat)
        summaries.append(s)
        o = optima_table(a)
        o.insert(0, "study", study)
        optima.append(o)
    all_starts = pd.concat(parts, ignore_index=True) if parts else starts
    summary = pd.DataFrame(summaries)
    optima_df = pd.concat(optima, ignore_index=True) if optima else pd.DataFrame()
    comparison = twin_comparisons(all_starts, rng, n_resamples)
    sat_df = pd.concat(saturation, ignore_index=True) if saturation else pd.DataFrame()
    return OptimaAnalysis(all_starts, summary, optima_df, comparison, sat_df)


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
