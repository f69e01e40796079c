"""Frames of the records of a ``landscape`` experiment (statement C4 of ``SCIENCE.md``).

The experiment kind (:mod:`suite.kinds.landscape`) stores, per problem and seed, the probes of
:mod:`suite.probes` at the start and at the trained point: records of kinds ``"landscape"``
(slices, roughness, gradient spread, interpolation), ``"lyapunov"``, ``"truncation"``,
``"lyapunov_reference"`` and ``"cliff_summary"`` (:data:`RECORD_KINDS`). This module reads them
into tidy frames (:func:`analyse_landscape`), the Spearman trends of roughness and of stall
losses with sequence length and spectral radius *per stratum* of the other axis, with bootstrap
intervals (:func:`trend_table`, :func:`stratified_spearman`), means per problem
(:func:`aggregate_slices`) and the end points of compare trials on the cliff task
(:func:`cliff_end_points`). Nothing here evaluates a model beyond regenerating a cliff trial's
start from its seed.

Measures of a slice row (one record, one point ``where``): ``minima`` (prominent minima per line
along filter-normalised lines, :func:`suite.probes.prominent_minima` at
:data:`DEFAULT_PROMINENCE` decades, mean over the record's lines), ``minima_fixed`` (the same
along lines of a fixed absolute radius), ``minima_per_unit`` (every dip, the old count),
``tv_norm``/``tv_norm_fixed`` and ``log10_grad_spread``. ``stall_gap`` (trained points only):
``(L_i - L_best) / (L_baseline - L_best)``, the end loss of a start above the best end loss of the
same configuration (task, model, T, radius), as a share of the gap between that best loss and the
trivial baseline: 0 for the best start, 1 for a start that learned nothing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from suite import seeding
from suite.analysis import stats
from suite.analysis.stats import Effect
from suite.models import make_model
from suite.probes import prominent_minima, roughness

__all__ = [
    "DEFAULT_PROMINENCE",
    "PROMINENCES",
    "RECORD_KINDS",
    "TREND_METRICS",
    "LandscapeAnalysis",
    "aggregate_slices",
    "analyse_landscape",
    "cliff_end_points",
    "landscape_records",
    "spearman_rows",
    "stratified_spearman",
    "trend_table",
]

DEFAULT_PROMINENCE = 0.05
"""Prominence (decades of ``log10 L``) a dip needs to count as a minimum (about 12%)."""
PROMINENCES: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.3)
"""Prominence thresholds of the sensitivity analysis (``LandscapeAnalysis.minima``)."""

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


@dataclass
class LandscapeAnalysis:
    """Tidy frames derived from landscape records (:func:`analyse_landscape`).

    ``slices``: one row per (record, point) with ``where`` = ``"init"``/``"trained"``, the
    measures of the module docstring, ``loss``, ``radius`` (spectral radius of ``W_h`` at that
    point, Elman only) and, at trained points, ``stall_gap``; ``minima``: prominent minima per
    line by record, point, ``line`` (``"filter"``/``"fixed"``) and ``prominence`` (every value
    of :data:`PROMINENCES`: the sensitivity analysis); ``interpolation``: one row per record
    (roughness of the start-to-trained line); ``lyapunov``: one row per Elman record;
    ``chaos``: one row per (network, ``where``, ``drive`` = ``"driven"``/``"autonomous"``)
    with its largest Lyapunov exponent ``lam``; ``truncation``: one row per (record,
    checkpoint, k) with ``cosine``; ``reference``: the Sompolinsky check per gain (with the
    list ``lambdas`` when stored); ``cliff``: the cliff summary (dict) or None; ``trends``:
    :func:`trend_table` of ``slices``; ``examples``: raw 1-D and 2-D slices for the figures.
    """

    slices: pd.DataFrame
    interpolation: pd.DataFrame
    lyapunov: pd.DataFrame
    truncation: pd.DataFrame
    reference: pd.DataFrame
    cliff: dict | None
    trends: pd.DataFrame
    examples: list[dict]
    minima: pd.DataFrame
    chaos: pd.DataFrame


_ID = ("problem", "task", "model", "seq_len", "spectral_radius", "hidden", "seed")
_CONFIG = ["task", "model", "seq_len", "spectral_radius"]


def _mean_minima(slices: Sequence[Sequence[float]], prominence: float) -> float:
    return float(
        np.mean([prominent_minima(np.asarray(sl, dtype=float), prominence) for sl in slices])
    )


def _slice_rows(r: dict, ident: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """Slice rows, minima rows (sensitivity) and examples of one landscape record."""
    rows, minima, examples = [], [], []
    for where in ("init", "trained"):
        blk = r.get(where)
        if not blk:
            continue
        lines = {"filter": blk["slices"]}
        if blk.get("fixed"):
            lines["fixed"] = blk["fixed"]["slices"]
        for line, sl in lines.items():
            for prom in PROMINENCES:
                minima.append(
                    {
                        **ident,
                        "where": where,
                        "line": line,
                        "prominence": prom,
                        "minima": _mean_minima(sl, prom),
                    }
                )
        fixed = lines.get("fixed")
        alphas = np.asarray(r["alphas"], dtype=float)
        tv_fixed = math.nan
        if fixed is not None:
            tvs = [roughness(alphas, np.asarray(x, dtype=float)).tv_norm for x in fixed]
            tv_fixed = float(np.nanmean(tvs)) if np.isfinite(tvs).any() else math.nan
        rows.append(
            {
                **ident,
                "where": where,
                "loss": blk["loss"],
                "baseline_loss": r.get("baseline_loss", math.nan),
                "minima": _mean_minima(blk["slices"], DEFAULT_PROMINENCE),
                "minima_fixed": _mean_minima(fixed, DEFAULT_PROMINENCE)
                if fixed is not None
                else math.nan,
                "n_minima": blk["n_minima"],
                "minima_per_unit": blk["minima_per_unit"],
                "tv_norm": blk["tv_norm"],
                "tv_norm_fixed": tv_fixed,
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
                "slices_fixed": fixed,
                "slice2d": blk.get("slice2d"),
            }
        )
    return rows, minima, examples


def stall_gaps(slices: pd.DataFrame) -> pd.Series:
    """``(L_i - L_best) / (L_baseline - L_best)`` of every trained row, ``L_best`` the best end
    loss of the same configuration (``task, model, seq_len, spectral_radius``); NaN at initial
    points, without a baseline, or when the best loss is not below the baseline."""
    out = pd.Series(np.nan, index=slices.index, dtype=float)
    tr = slices[slices["where"] == "trained"]
    if tr.empty:
        return out
    key = tr[_CONFIG].map(str).agg("|".join, axis=1)
    best = tr["loss"].groupby(key).transform("min")
    span = tr["baseline_loss"].astype(float) - best
    gap = (tr["loss"] - best) / span.where(span > 0)
    out.loc[tr.index] = gap.to_numpy(dtype=float)
    return out


def _chaos_rows(lyap: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in lyap.to_dict("records"):
        ident = {k: r.get(k) for k in _ID}
        for where in ("init", "trained"):
            for drive, col in (
                ("driven", f"lambda_{where}"),
                ("autonomous", f"lambda_{where}_autonomous"),
            ):
                lam = r.get(col, math.nan)
                if lam is None or (isinstance(lam, float) and math.isnan(lam)):
                    continue
                rows.append(
                    {
                        **ident,
                        "where": where,
                        "drive": drive,
                        "lam": float(lam),
                        "radius": r.get(f"radius_{where}", math.nan),
                    }
                )
    return pd.DataFrame(rows)


_LYAP_FIELDS = (
    "lambda_init",
    "lambda_trained",
    "lambda_init_autonomous",
    "lambda_trained_autonomous",
    "radius_init",
    "radius_trained",
    "loss_init",
    "loss_trained",
)


def analyse_landscape(records: Sequence[dict]) -> LandscapeAnalysis:
    """Frames of the records of a landscape results folder (error records are left out)."""
    ok = [r for r in records if r.get("status", "ok") == "ok"]
    slices, minima, interp, lyap, trunc, examples = [], [], [], [], [], []
    for r in ok:
        ident = {k: r.get(k) for k in _ID}
        if r["kind"] == "landscape":
            s_rows, m_rows, ex = _slice_rows(r, ident)
            slices += s_rows
            minima += m_rows
            examples += ex
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
            lyap.append({**ident, **{k: r.get(k, math.nan) for k in _LYAP_FIELDS}})
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
    ref_cols = ("gain", "lambda_mean", "lambda_std", "lambda_min", "lambda_max", "radius_mean")
    reference = pd.DataFrame(
        [
            {
                **{k: r[k] for k in (*ref_cols, "n", "networks")},
                "lambdas": r.get("lambdas"),
            }
            for r in ok
            if r["kind"] == "lyapunov_reference"
        ]
    )
    if not reference.empty:
        reference = reference.sort_values("gain").reset_index(drop=True)
    cliffs = [r for r in ok if r["kind"] == "cliff_summary"]
    sl = pd.DataFrame(slices)
    if not sl.empty:
        sl["stall_gap"] = stall_gaps(sl)
    ly = pd.DataFrame(lyap)
    return LandscapeAnalysis(
        slices=sl,
        interpolation=pd.DataFrame(interp),
        lyapunov=ly,
        truncation=pd.DataFrame(trunc),
        reference=reference,
        cliff=cliffs[0] if cliffs else None,
        trends=trend_table(sl) if not sl.empty else pd.DataFrame(),
        examples=examples,
        minima=pd.DataFrame(minima),
        chaos=_chaos_rows(ly) if not ly.empty else pd.DataFrame(),
    )


TREND_METRICS: tuple[str, ...] = (
    "minima_fixed",
    "minima",
    "minima_per_unit",
    "tv_norm_fixed",
    "tv_norm",
    "log10_grad_spread",
    "stall_gap",
)
"""The measures :func:`trend_table` correlates with ``seq_len`` and ``spectral_radius``."""

N_BOOT = 2000
"""Bootstrap resamples of the trend intervals (drawn from ``default_rng(0)``)."""


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of ``x[B, m]``, ``y[B, m]`` (average ranks for ties, then
    Pearson's r of the ranks); NaN where either row is constant."""
    rx = st.rankdata(np.asarray(x, dtype=float), axis=-1)
    ry = st.rankdata(np.asarray(y, dtype=float), axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def stratified_spearman(
    x: np.ndarray,
    y: np.ndarray,
    strata: np.ndarray | None = None,
    *,
    n_boot: int = N_BOOT,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[Effect, list[tuple[object, Effect, int]]]:
    """Spearman's rho of ``y`` with ``x`` within each stratum, and their mean.

    Returns the mean over strata of the within-stratum rho with its percentile bootstrap
    interval, and per stratum ``(value, Effect, n)``. The bootstrap resamples the rows of each
    stratum with replacement, separately (a stratified bootstrap: the design -- how many
    networks per stratum -- is kept), ``n_boot`` times, and takes the ``(1 -+ confidence)/2``
    quantiles (:func:`suite.analysis.stats.percentile_interval`); resamples where a stratum's
    ``x`` or ``y`` is constant give NaN and are left out of that stratum (and out of the mean
    only if every stratum is NaN). Strata with fewer than 3 rows or one ``x`` value are skipped.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    strata = np.zeros(x.size) if strata is None else np.asarray(strata, dtype=object)
    rng = stats.as_generator(rng)
    per: list[tuple[object, Effect, int]] = []
    boots, points = [], []
    for value in dict.fromkeys(strata.tolist()):
        m = (strata == value) & np.isfinite(x) & np.isfinite(y)
        xs, ys = x[m], y[m]
        if xs.size < 3 or np.unique(xs).size < 2:
            continue
        point = float(spearman_rows(xs[None], ys[None])[0])
        idx = stats.resample_indices(xs.size, n_boot, rng)
        b = spearman_rows(xs[idx], ys[idx])
        lo, hi = stats.percentile_interval(b, confidence)
        per.append((value, Effect(point, lo, hi), int(xs.size)))
        boots.append(b)
        points.append(point)
    if not per:
        return Effect(math.nan, math.nan, math.nan), per
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all strata NaN in a resample
        mean_b = np.nanmean(np.stack(boots), axis=0)
        mean_p = float(np.nanmean(points)) if np.isfinite(points).any() else math.nan
    lo, hi = stats.percentile_interval(mean_b, confidence)
    return Effect(mean_p, lo, hi), per


def trend_table(
    slices: pd.DataFrame,
    metrics: Sequence[str] = TREND_METRICS,
    confidence: float = 0.95,
    n_boot: int = N_BOOT,
) -> pd.DataFrame:
    """Spearman rho of each measure with ``seq_len`` within each value of ``spectral_radius``
    (the initial radius of ``W_h``) and with ``spectral_radius`` within each ``seq_len``, per
    task, model and ``where`` (:func:`stratified_spearman`); never pooled over the other axis.

    Columns: ``task, model, where, metric, against, stratum, rho, rho_low, rho_high, n``.
    ``stratum`` is e.g. ``"spectral_radius=0.5"``, or ``"mean"`` for the mean over strata (the
    row the verdicts use). Intervals: stratified percentile bootstrap, ``n_boot`` resamples
    from ``default_rng(0)`` per row. A positive rho means the measure grows along the axis
    (what C4 predicts). A model without a radius (the TDNN) has one stratum.
    """
    rows = []
    for (task, model, where), g in slices.groupby(["task", "model", "where"], sort=False):
        for against, other in (("seq_len", "spectral_radius"), ("spectral_radius", "seq_len")):
            x = pd.to_numeric(g[against], errors="coerce").to_numpy(dtype=float)
            strata = g[other].map(str).to_numpy(dtype=object)
            for metric in metrics:
                if metric not in g:
                    continue
                y = pd.to_numeric(g[metric], errors="coerce").to_numpy(dtype=float)
                mean, per = stratified_spearman(
                    x,
                    y,
                    strata,
                    n_boot=n_boot,
                    confidence=confidence,
                    rng=np.random.default_rng(0),
                )
                base = {
                    "task": task,
                    "model": model,
                    "where": where,
                    "metric": metric,
                    "against": against,
                }
                for value, e, n in per:
                    rows.append(
                        {
                            **base,
                            "stratum": f"{other}={value}",
                            "rho": e.value,
                            "rho_low": e.low,
                            "rho_high": e.high,
                            "n": n,
                        }
                    )
                if per:
                    rows.append(
                        {
                            **base,
                            "stratum": "mean",
                            "rho": mean.value,
                            "rho_low": mean.low,
                            "rho_high": mean.high,
                            "n": sum(n for _, _, n in per),
                        }
                    )
    return pd.DataFrame(rows)


def aggregate_slices(slices: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds of the roughness measures per problem and point (``where``), with the
    number of seeds: ``problem, task, model, seq_len, spectral_radius, where, n, loss``, the
    measures of :data:`TREND_METRICS` and ``radius``."""
    if slices.empty:
        return pd.DataFrame()
    keys = ["problem", "task", "model", "seq_len", "spectral_radius", "where"]
    frame = slices.copy()
    frame["spectral_radius"] = frame["spectral_radius"].astype(float)
    g = frame.groupby(keys, dropna=False, sort=False)
    cols = [c for c in ("loss", *TREND_METRICS, "radius") if c in frame]
    out = g[cols].mean()
    out.insert(0, "n", g.size())
    return out.reset_index()


def cliff_end_points(records: Sequence[dict], trials: pd.DataFrame) -> pd.DataFrame:
    """End points of compare trials on the cliff task: one row per trial record with
    ``optimizer`` (label), ``name``, ``family`` (the ``family`` column of the trials frame
    ``trials``, as recorded with each trial), ``seed``, ``status``, the start ``w0, b0``
    (regenerated from the trial's init stream) and the end point ``w, b`` with its ``loss``."""
    if len(trials) and "family" not in trials:
        raise ValueError(
            "the trials frame lacks the column 'family' (optimizer family, recorded with each "
            "trial; from suite.store.load_results)"
        )
    rows = []
    family = trials.set_index("key")["family"] if len(trials) else pd.Series(dtype=str)
    for r in records:
        spec = r.get("spec") or {}
        task = spec.get("task") or {}
        if r.get("kind") != "trial" or task.get("task") != "cliff":
            continue
        theta = r.get("theta") or []
        if len(theta) != 2:
            continue
        name = spec["optimizer"]["name"]
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
                "family": str(family[r["key"]]),
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
