"""Tests of suite.analysis.stats: the one bootstrap, Holm, the paired tests; and the
distinct-optima interval of the twin comparison, which must contain its own point estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from suite.analysis import stats as st
from suite.analysis.twins import compare_studies, distinct_weights


def test_holm_known_values() -> None:
    got = st.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    got = st.holm([0.5, np.nan, 0.01])
    np.testing.assert_allclose(got[[0, 2]], [0.5, 0.02])
    assert np.isnan(got[1])
    with pytest.raises(ValueError, match="p-values"):
        st.holm([1.5])


def test_rank_biserial_known_values() -> None:
    assert st.rank_biserial(np.array([-1.0, -2.0, -3.0, 4.0])) == pytest.approx(0.2)
    assert st.rank_biserial(np.array([0.0, -1.0, 2.0])) == pytest.approx(-1 / 3)
    assert st.rank_biserial(np.array([1.0, np.inf])) == -1.0
    rows = st.rank_biserial(np.array([[-1.0, -2.0, -3.0, 4.0], [0.0, 0.0, -1.0, 2.0]]))
    np.testing.assert_allclose(rows, [0.2, -1 / 3])


def test_bootstrap_is_seeded_and_covers_the_statistic() -> None:
    x = np.random.default_rng(5).normal(size=40)

    def med(s: np.ndarray) -> np.ndarray:
        return np.mean(s, axis=1)

    a = st.bootstrap_ci(x, med, n_boot=500, rng=np.random.default_rng(7))
    b = st.bootstrap_ci(x, med, n_boot=500, rng=np.random.default_rng(7))
    c = st.bootstrap_ci(x, med, n_boot=500, rng=np.random.default_rng(8))
    assert a == b and a != c
    assert a[0] < np.mean(x) < a[1]
    with pytest.raises(ValueError, match="confidence"):
        st.bootstrap_ci(x, med, confidence=1.5)
    with pytest.raises(ValueError, match="Generator"):
        st.bootstrap_ci(x, med, rng=3)  # type: ignore[arg-type]


def test_bootstrap_keeps_infinite_values_as_an_infinite_bound() -> None:
    # an ERT-like statistic: infinite when a resample holds no success
    success = np.array([1.0, 0.0, 0.0, 0.0])
    with np.errstate(divide="ignore"):
        lo, hi = st.bootstrap_ci(
            success, lambda s: 1.0 / s.mean(axis=1), n_boot=400, rng=np.random.default_rng(0)
        )
    assert np.isfinite(lo) and hi == np.inf
    assert st.bootstrap_ci(np.zeros(0), lambda s: s.mean(axis=1)) == (
        pytest.approx(np.nan, nan_ok=True),
        pytest.approx(np.nan, nan_ok=True),
    )


def test_paired_bootstrap_resamples_both_sides_with_the_same_indices() -> None:
    x = np.arange(1.0, 11.0)
    y = 2.0 * x
    e = st.paired_bootstrap(10, lambda idx: y[idx].mean(-1) / x[idx].mean(-1), n_boot=300)
    assert (e.value, e.low, e.high) == (2.0, 2.0, 2.0)  # one ratio whatever the resample
    # undefined resamples are dropped; all undefined gives no interval
    e = st.paired_bootstrap(3, lambda idx: np.full(idx.shape[:-1], np.nan), n_boot=10)
    assert np.isnan(e.value) and np.isnan(e.low) and np.isnan(e.high)


def test_log_ratio_and_signed_rank() -> None:
    d = st.log_ratio(
        np.array([1.0, 2.0, np.inf, np.inf, 0.0]), np.array([2.0, 2.0, np.inf, 1.0, 1.0])
    )
    np.testing.assert_allclose(d[:3], [np.log(0.5), 0.0, 0.0])
    assert d[3] == np.inf and d[4] == -np.inf
    assert st.signed_rank_p(np.zeros(5)) == 1.0
    d = np.r_[np.full(6, -1.0), 0.5]
    assert st.signed_rank_p(d) == pytest.approx(stats.wilcoxon(d).pvalue)


# ------------------------------------------------------------- distinct optima per start (C3)
def _study(labels: list[int], stalled: list[bool] | None = None) -> pd.DataFrame:
    """Analysed starts: every start a converged minimum in the optimum ``labels[i]``."""
    n = len(labels)
    return pd.DataFrame(
        {
            "seed": np.arange(n),
            "cluster": labels,
            "class": "minimum",
            "stalled": stalled if stalled is not None else [False] * n,
        }
    )


def _old_distinct_rate(labels: np.ndarray) -> np.ndarray:
    """The former statistic: distinct labels of the resample / converged starts, so a start
    drawn twice counted its optimum once."""
    s = np.sort(labels, axis=-1)
    distinct = 1 + (s[..., 1:] != s[..., :-1]).sum(axis=-1)
    return distinct / labels.shape[-1]


def test_distinct_weights_sum_to_the_number_of_optima() -> None:
    w = distinct_weights(np.array([3, 3, 3, 0, 1, 1, -1]))
    np.testing.assert_allclose(w, [1 / 3, 1 / 3, 1 / 3, 1, 0.5, 0.5, 0])
    assert w.sum() == pytest.approx(3)


@pytest.mark.parametrize(
    ("labels", "old_misses"),
    [
        (list(range(40)), True),  # every start its own optimum: 1.0
        (list(range(39)) + [0], True),  # 39 optima in 40 starts (like 0.997 in the optima study)
        ([i // 2 for i in range(40)], False),  # 20 optima of two starts each
    ],
)
def test_distinct_per_start_interval_contains_its_point_estimate(
    labels: list[int], old_misses: bool
) -> None:
    lab = np.array(labels)
    twin = _study([0] * len(lab))  # one optimum for every TDNN start
    c = compare_studies(_study(labels), twin, np.random.default_rng(0), 2000)
    row = c[(c["statistic"] == "distinct_per_start") & (c["measure"] == "difference")].iloc[0]
    point = len(set(labels)) / len(labels) - 1 / len(labels)
    assert row["value"] == pytest.approx(point)
    assert row["value_low"] <= row["value"] <= row["value_high"]
    # the former resampling (a start drawn twice counts its optimum once) misses the point
    idx = st.resample_indices(len(lab), 2000, np.random.default_rng(0))
    old = _old_distinct_rate(lab[idx]) - _old_distinct_rate(np.zeros_like(lab)[idx])
    lo, hi = st.percentile_interval(old)
    assert (not lo <= point <= hi) == old_misses
