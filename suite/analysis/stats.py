"""The statistics of the suite, written once: the bootstrap, Holm's correction, paired tests.

Every interval in a table or a verdict comes from :func:`bootstrap_interval` (resampling
``n`` units -- runs, seed pairs, starts -- with replacement) and every paired test from
:func:`signed_rank_p` / :func:`rank_biserial` on log ratios; p-values of a family of tests are
adjusted by :func:`holm`.

**Bootstrap.** Percentile intervals (Efron & Tibshirani 1993, ch. 13): draw ``n_boot``
resamples of the ``n`` indices with replacement, evaluate the statistic on all of them at once
(``stat(idx)`` with ``idx[n_boot, n]`` returns ``[n_boot]`` values), drop the resamples on
which it is undefined (NaN, e.g. an ERT ratio with no success on either side) and return the
``(1 - confidence)/2`` and ``(1 + confidence)/2`` order statistics, ``method="inverted_cdf"``
(no interpolation), so infinite resampled values (an ERT with no success in the resample) give a
well-defined ``inf`` bound. ``scipy.stats.bootstrap`` is not used for this reason: its
interpolated percentiles turn ``inf`` into NaN. A statistic must count a unit drawn twice
twice (it is a function of the resampled multiset); see
:func:`suite.analysis.twins.compare_studies` for a count of distinct optima written that way.
Every bootstrap takes an explicit :class:`numpy.random.Generator`; ``rng=None`` means
``default_rng(0)``, so tables are reproducible.

**Paired tests.** For paired positive values ``x_i`` (an optimizer) and ``y_i`` (the
reference), ``d_i = log(x_i / y_i)``; the two-sided Wilcoxon signed-rank test
(``scipy.stats.wilcoxon``, zero differences dropped) and the matched-pairs rank-biserial
correlation (Kerby 2014) are taken on ``d``.

References

* B. Efron, R. J. Tibshirani (1993). An Introduction to the Bootstrap. Chapman & Hall.
* S. Holm (1979). A simple sequentially rejective multiple test procedure. Scand. J. Stat. 6(2).
* F. Wilcoxon (1945). Individual comparisons by ranking methods. Biometrics Bull. 1(6).
* D. S. Kerby (2014). The simple difference formula: an approach to teaching nonparametric
  correlation. Compr. Psychol. 3. (matched-pairs rank-biserial correlation)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "Effect",
    "as_generator",
    "bootstrap_ci",
    "bootstrap_interval",
    "check_confidence",
    "holm",
    "log_ratio",
    "paired_bootstrap",
    "percentile_interval",
    "rank_biserial",
    "resample_indices",
    "signed_rank_p",
]

IndexStatistic = Callable[[np.ndarray], np.ndarray]
"""A vectorised statistic of resampled indices: ``idx[..., n] -> values[...]``."""


@dataclass(frozen=True)
class Effect:
    """A point estimate with its bootstrap interval ``[low, high]``."""

    value: float
    low: float
    high: float


def check_confidence(confidence: float) -> None:
    """ValueError unless ``0 < confidence < 1``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def as_generator(rng: np.random.Generator | None) -> np.random.Generator:
    """``rng``, or ``numpy.random.default_rng(0)`` when None (reproducible tables)."""
    if rng is None:
        return np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


def resample_indices(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``idx[n_boot, n]``: ``n_boot`` resamples of ``0..n-1`` with replacement."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    return rng.integers(0, n, size=(n_boot, n))


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The ``(1 -+ confidence)/2`` order statistics of the non-NaN ``values`` (inverted CDF, so
    ``inf`` values give an ``inf`` bound); ``(nan, nan)`` when no value is defined."""
    check_confidence(confidence)
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(v, [alpha, 1.0 - alpha], method="inverted_cdf")
    return (float(lo), float(hi))


def bootstrap_interval(
    n: int,
    stat: IndexStatistic,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over resamples of ``n`` units (module
    docstring); ``stat`` maps ``idx[n_boot, n]`` to ``[n_boot]``. ``n = 0`` gives NaNs."""
    check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if n == 0:
        return (math.nan, math.nan)
    idx = resample_indices(n, n_boot, as_generator(rng))
    return percentile_interval(np.asarray(stat(idx), dtype=float), confidence)


def bootstrap_ci(
    samples: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the rows of ``samples``.

    ``statistic`` receives the stacked resamples ``samples[idx]`` of shape ``[n_boot, n, ...]``,
    must reduce axis 1 and return ``[n_boot]`` (:func:`bootstrap_interval` on the row indices).
    Empty ``samples`` give ``(nan, nan)``.
    """
    samples = np.asarray(samples)
    return bootstrap_interval(
        samples.shape[0],
        lambda idx: statistic(samples[idx]),
        n_boot=n_boot,
        confidence=confidence,
        rng=rng,
    )


def paired_bootstrap(
    n: int,
    stat: IndexStatistic,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> Effect:
    """Point value ``stat(arange(n))`` and its interval over index resamples (the same resampled
    indices for both sides of a paired statistic, e.g. an ERT ratio of two optimizers on the
    same seeds)."""
    point = float(np.asarray(stat(np.arange(n)[None, :]), dtype=float)[0])
    lo, hi = bootstrap_interval(n, stat, n_boot=n_boot, confidence=confidence, rng=rng)
    return Effect(point, lo, hi)


# ------------------------------------------------------------------------------ paired tests
def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (controls the family-wise error rate).

    With the ``m`` non-NaN p-values sorted ascending, ``p~_(i) = max_{j <= i} min(1, (m - j + 1)
    p_(j))`` (Holm 1979); NaN entries stay NaN and do not count in ``m``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    adj = np.minimum(1.0, (m - np.arange(m)) * p[ok][order])
    adj = np.maximum.accumulate(adj)
    vals = np.empty(m)
    vals[order] = adj
    out[ok] = vals
    return out


def rank_biserial(d: np.ndarray) -> np.ndarray:
    """Matched-pairs rank-biserial correlation of differences ``d`` (along the last axis).

    Zero differences are dropped (Wilcoxon's convention); the absolute non-zero differences are
    ranked (ties averaged; ``inf`` ranks highest) and ``r = (R_- - R_+) / (R_- + R_+)``, where
    ``R_-`` sums the ranks of negative differences (Kerby 2014). With ``d = log(optimizer) -
    log(reference)``, ``r = +1`` means the optimizer was better (lower) on every pair. NaN if all
    differences are zero.
    """
    d = np.asarray(d, dtype=float)
    zero = d == 0
    ranks = stats.rankdata(np.abs(d), axis=-1)
    # zeros are the smallest |d| and tie: every non-zero rank is shifted by the number of zeros
    ranks = ranks - zero.sum(axis=-1, keepdims=True)
    neg = np.where(d < 0, ranks, 0.0).sum(axis=-1)
    pos = np.where(d > 0, ranks, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (neg - pos) / (neg + pos)


def log_ratio(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``log(x / y)`` (one rounding, so equal ratios tie exactly), 0 where ``x == y``
    (``inf / inf`` included); ``+-inf`` when exactly one side is infinite or zero."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = np.log(x / y)
    d[(x == y)] = 0.0
    return d


def signed_rank_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences ``d`` (``scipy.stats.wilcoxon``,
    zero differences dropped; ``+-inf`` rank as largest); 1 when every difference is zero."""
    d = np.asarray(d, dtype=float)
    if np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
