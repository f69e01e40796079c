"""Frames of the records of a ``landscape`` experiment (statement C4 of ``SCIENCE.md``).

The experiment kind (:mod:`suite.kinds.landscape`) stores, per problem and seed, the probes of
:mod:`suite.probes` at the start and at the trained point: records of kinds ``"landscape"``
(slices, roughness, gradient spread, interpolation), ``"lyapunov"``, ``"truncation"``,
``"lyapunov_reference"`` and ``"cliff_summary"`` (:data:`RECORD_KINDS`). This module reads them
into tidy frames (:func:`analyse_landscape`), the Spearman trends of roughness with sequence
length and spectral radius (:func:`trend_table`), means per problem (:func:`aggregate_slices`)
and the end points of compare trials on the cliff task (:func:`cliff_end_points`). Nothing here
evaluates a model beyond regenerating a cliff trial's start from its seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from suite import seeding
from suite.models import make_model

__all__ = [
    "RECORD_KINDS",
    "TREND_METRICS",
    "LandscapeAnalysis",
    "aggregate_slices",
    "analyse_landscape",
    "cliff_end_points",
    "landscape_records",
    "trend_table",
]

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
