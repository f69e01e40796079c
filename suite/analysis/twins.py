"""The RNN against its feed-forward twin: paired statistics of two multi-start studies (C3).

An Elman study and the study of its matched TDNN twin (same task, same data, same seed indices,
a parameter count as close as possible) are compared start by start: distinct optima per
converged start, stall rate and unconverged rate, each as a difference and a ratio with a paired
percentile-bootstrap interval (:mod:`suite.analysis.stats`). The analysed starts come from
:func:`suite.analysis.optima.analyse_study`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from suite import seeding
from suite.analysis.stats import as_generator, percentile_interval, resample_indices

__all__ = ["compare_studies", "distinct_weights", "twin_comparisons"]


def distinct_weights(labels: np.ndarray) -> np.ndarray:
    """Per start: ``1 / m`` if it ended in an optimum (label ``>= 0``) that ``m`` starts of the
    sample share, else 0; the weights of an optimum's starts add up to 1, so ``sum(w)`` is the
    number of distinct optima, and a resample that draws a start twice counts its share twice.

    >>> distinct_weights(np.array([0, 0, 1, -1])).tolist()
    [0.5, 0.5, 1.0, 0.0]
    """
    labels = np.asarray(labels)
    w = np.zeros(labels.shape, dtype=np.float64)
    found = labels >= 0
    _, inverse, counts = np.unique(labels[found], return_inverse=True, return_counts=True)
    w[found] = 1.0 / counts[inverse]
    return w


def _rates(w: np.ndarray, conv: np.ndarray, stall: np.ndarray) -> tuple[np.ndarray, ...]:
    """``distinct_per_start``, ``stall_rate``, ``unconverged_rate`` along the last axis."""
    n = conv.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        distinct = np.where(n > 0, w.sum(axis=-1) / np.maximum(n, 1), np.nan)
        stall_rate = np.where(n > 0, stall.sum(axis=-1) / np.maximum(n, 1), np.nan)
    return distinct, stall_rate, 1.0 - conv.mean(axis=-1)


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
    percentile bootstrap interval (:mod:`suite.analysis.stats`), resampling seed indices with
    replacement (the same resample for both models). Every statistic is a ratio of sums over
    starts, so a start drawn twice counts twice: ``distinct_per_start = sum_i w_i / sum_i c_i``
    with ``c_i`` = 1 for a converged start and ``w_i`` its share of its optimum
    (:func:`distinct_weights`); counting the distinct labels of a resample instead would count a
    start drawn twice once and bias the resampled values below the point estimate. The shares
    are those of the observed clustering, so the interval says how the estimate varies with
    which starts were drawn, not how many optima a new set of starts would discover. A resample
    may have no converged start (an undefined rate): those resamples are dropped, their share is
    reported as ``1 - resamples_defined``, and no interval is given if more than half are
    undefined. ``rng`` seeds the bootstrap (default ``default_rng(0)``).
    """
    rng = as_generator(rng)
    a = rnn.set_index("seed")
    b = tdnn.set_index("seed")
    seeds = np.intersect1d(a.index.to_numpy(), b.index.to_numpy())
    if seeds.size < 2:
        raise ValueError("the two studies share fewer than 2 seed indices; nothing to compare")
    a, b = a.loc[seeds], b.loc[seeds]
    conv_classes = ["minimum", "saddle", "plateau"]
    data = [
        (
            distinct_weights(m["cluster"].to_numpy()),
            m["class"].isin(conv_classes).to_numpy().astype(float),
            m["stalled"].to_numpy().astype(float),
        )
        for m in (a, b)
    ]
    point_a, point_b = (_rates(*d) for d in data)
    idx = resample_indices(seeds.size, n_resamples, rng)  # paired resamples
    boot_a, boot_b = (_rates(*(x[idx] for x in d)) for d in data)
    names = ("distinct_per_start", "stall_rate", "unconverged_rate")
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
                lo, hi = percentile_interval(boot[finite], confidence)
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


def twin_comparisons(
    starts: pd.DataFrame, rng: np.random.Generator | None = None, n_resamples: int = 2000
) -> pd.DataFrame:
    """:func:`compare_studies` of every Elman study with every TDNN study of the same task spec,
    method and data seed, in the analysed ``starts`` of
    :func:`suite.analysis.optima.analyse_records`; columns ``task, method, rnn_study,
    tdnn_study`` then those of :func:`compare_studies`."""
    rng = as_generator(rng)
    if starts.empty:
        return pd.DataFrame()
    starts = starts.assign(_task=[seeding.canonical_json(p) for p in starts["task_params"]])
    if "data_seed" not in starts:
        starts = starts.assign(data_seed=0)
    rows = []
    keys = ["task", "_task", "method", "data_seed"]
    for (task, _tparams, method, _data), g in starts.groupby(keys, sort=False):
        rnn = {s: d for s, d in g[g["model"] == "elman"].groupby("study", sort=False)}
        tdnn = {s: d for s, d in g[g["model"] == "tdnn"].groupby("study", sort=False)}
        for r_study, r_df in rnn.items():
            for t_study, t_df in tdnn.items():
                try:
                    c = compare_studies(r_df, t_df, rng, n_resamples)
                except ValueError:
                    continue
                c.insert(0, "tdnn_study", t_study)
                c.insert(0, "rnn_study", r_study)
                c.insert(0, "method", method)
                c.insert(0, "task", task)
                rows.append(c)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
