"""C2 "BPTT has trouble with local optima" and C3 "local optima matter more for RNNs than for
feed-forward nets" (``optima`` experiment)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from suite.analysis.optima import Thresholds
from suite.analysis.stats import Effect
from suite.analysis.verdicts.common import COLUMNS, paired_bootstrap, row

C2_STALL = 0.2
"""C2: a stall rate at or above this (with its interval above ``C2_STALL_LOW``) supports C2."""
C2_STALL_LOW = 0.05
C2_REFUTE = 0.05
"""C2: a stall-rate interval entirely below this refutes C2."""

C2_MIN_CONVERGED = 20
"""C2: a stall rate among converged starts counts only with at least this many of them."""

C3_DIFF = 0.1
"""C3: RNN stall rate minus TDNN stall rate at or above this (interval above 0) supports C3."""

RULES: dict[str, str] = {
    "C2": (
        "A start stalls when its end loss exceeds the best loss any start of the same study found "
        "by more than 10% of the gap between that best and the trivial baseline (the stall "
        "margin); the stall rate counts stalled minima (gradient below tolerance, no clearly "
        "negative Hessian eigenvalue) among converged starts. "
        f"supported: at least {C2_MIN_CONVERGED} converged starts, a stall rate >= {C2_STALL:g} "
        f"with its 95% interval above {C2_STALL_LOW:g}, and at least 2 distinct optima; "
        f"refuted: the share of all starts ending above the stall margin has its interval below "
        f"{C2_REFUTE:g} (nearly all starts reach the best level), or, with at least "
        f"{C2_MIN_CONVERGED} converged starts, the stall rate's interval lies below "
        f"{C2_REFUTE:g}; mixed: otherwise."
    ),
    "C3": (
        "supported: the share of starts that end above their model's stall margin (whatever "
        f"their class), RNN minus matched TDNN twin, is >= {C3_DIFF:g} with its 95% interval "
        f"above 0; refuted: the difference is <= 0 with its interval below {C3_DIFF:g}; "
        "mixed: otherwise."
    ),
}

LIMITS: dict[str, str] = {
    "C2": (
        "tiny models (Elman H = 4, about 30 parameters), one dataset per task, full-batch Adam "
        "followed by L-BFGS/Newton polishing; end points that never meet the gradient tolerance "
        "(common for RNNs, whose good solutions often lie at growing weights) are reported as "
        "not converged and are not counted as optima."
    ),
    "C3": (
        "matched parameter counts, not matched function classes: the TDNN sees a window as long "
        "as the sequence; a stall rate is only defined over converged starts, and RNN starts "
        "converge far less often."
    ),
}


CONVERGED = ("minimum", "saddle", "plateau")


def _share(
    flags: np.ndarray, weights: np.ndarray | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """Statistic: share of ``flags`` among ``weights`` (all when None) on resampled indices."""
    w = np.ones_like(flags, dtype=float) if weights is None else weights.astype(float)
    f = flags.astype(float) * w

    def stat(idx: np.ndarray) -> np.ndarray:
        n = w[idx].sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, f[idx].sum(axis=-1) / np.maximum(n, 1), np.nan)

    return stat


def _short(study: str) -> str:
    """A study label without its method part: ``task(...) / model(...)``."""
    return " / ".join(study.split(" / ")[:2])


def _c2_rule(stall: Effect, above: Effect, n_conv: int, n_distinct: int) -> str:
    if math.isnan(above.value):
        return "no data"
    if (
        n_conv >= C2_MIN_CONVERGED
        and stall.value >= C2_STALL
        and stall.low > C2_STALL_LOW
        and n_distinct >= 2
    ):
        return "supported"
    if above.high < C2_REFUTE or (n_conv >= C2_MIN_CONVERGED and stall.high < C2_REFUTE):
        return "refuted"
    return "mixed"


def verdict_c2(starts: pd.DataFrame, summary: pd.DataFrame, evidence: str = "") -> pd.DataFrame:
    """C2 per Elman study from :func:`suite.analysis.optima.analyse_records` frames.

    Effect 1: stall rate (stalled minima / converged starts). Effect 2: share of all starts
    (diverged aside) whose end loss lies above the stall margin, whatever their class.
    """
    rel = Thresholds().stall_rel
    rows = []
    elman = summary[summary["model"] == "elman"]
    for _, s in elman.iterrows():
        g = starts[(starts["study"] == s["study"]) & (starts["class"] != "diverged")]
        if g.empty:
            rows.append(
                row("C2", _short(s["study"]), "no data", detail="no end points", ev=evidence)
            )
            continue
        conv = g["class"].isin(CONVERGED).to_numpy()
        stalled = g["stalled"].to_numpy(dtype=bool)
        above = g["stall_gap"].to_numpy(dtype=float) > rel
        n = len(g)
        stall = paired_bootstrap(n, _share(stalled, conv))
        anyclass = paired_bootstrap(n, _share(above))
        n_distinct = int(s["n_distinct"])
        counts = g["class"].value_counts()
        detail = (
            f"{n} starts: {int(conv.sum())} converged (minima {counts.get('minimum', 0)}, "
            f"saddles {counts.get('saddle', 0)}, plateaus {counts.get('plateau', 0)}), "
            f"{counts.get('not converged', 0)} not converged; {n_distinct} distinct optima; "
            f"best loss {s['best_loss']:.3g}, baseline {s['baseline_loss']:.3g}"
        )
        rows.append(
            row(
                "C2",
                _short(s["study"]),
                _c2_rule(stall, anyclass, int(conv.sum()), n_distinct),
                "stall rate (stalled minima / converged starts)",
                stall,
                "share of starts ending above the stall margin (any class)",
                anyclass,
                n,
                detail,
                evidence,
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _c3_rule(diff: Effect) -> str:
    if math.isnan(diff.value) or math.isnan(diff.low):
        return "no data"
    if diff.value >= C3_DIFF and diff.low > 0:
        return "supported"
    if diff.value <= 0 and diff.high < C3_DIFF:
        return "refuted"
    return "mixed"


def _above_margin(starts: pd.DataFrame, study: str) -> pd.Series:
    """Per seed: does the start end above its study's stall margin (diverged count as above)?"""
    g = starts[starts["study"] == study]
    above = (g["stall_gap"].to_numpy(dtype=float) > Thresholds().stall_rel) | (
        g["class"].to_numpy() == "diverged"
    )
    return pd.Series(above, index=g["seed"].to_numpy())


def verdict_c3(starts: pd.DataFrame, comparison: pd.DataFrame, evidence: str = "") -> pd.DataFrame:
    """C3 per RNN/TDNN pair: the share of starts that end above their model's stall margin
    (whatever their class), RNN minus TDNN, paired by seed index (effect 1); the stall rate of
    converged starts (:func:`suite.analysis.twins.compare_studies`) as effect 2."""
    rows = []
    if comparison.empty:
        return pd.DataFrame(columns=COLUMNS)
    for (rnn, tdnn), c in comparison.groupby(["rnn_study", "tdnn_study"], sort=False):
        c = c[c["measure"] == "difference"].set_index("statistic")
        a, b = _above_margin(starts, rnn), _above_margin(starts, tdnn)
        seeds = np.intersect1d(a.index, b.index)
        a, b = a.loc[seeds].to_numpy(float), b.loc[seeds].to_numpy(float)
        diff = paired_bootstrap(len(seeds), lambda idx, a=a, b=b: a[idx].mean(-1) - b[idx].mean(-1))
        r = c.loc["stall_rate"]
        stall = Effect(float(r["value"]), float(r["value_low"]), float(r["value_high"]))
        u = c.loc["unconverged_rate"]
        detail = (
            f"ending above the margin: RNN {a.mean():.3g} vs TDNN {b.mean():.3g}; stall rate "
            f"of converged starts RNN {r['rnn']:.3g} vs TDNN {r['tdnn']:.3g}; unconverged rate "
            f"RNN {u['rnn']:.3g} vs TDNN {u['tdnn']:.3g}; distinct optima per converged start "
            f"RNN {c.loc['distinct_per_start', 'rnn']:.3g} vs TDNN "
            f"{c.loc['distinct_per_start', 'tdnn']:.3g}"
        )
        rows.append(
            row(
                "C3",
                _short(str(rnn)),
                _c3_rule(diff),
                "share ending above the stall margin, RNN - TDNN",
                diff,
                "stall rate of converged starts, RNN - TDNN",
                stall,
                len(seeds),
                detail,
                evidence,
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)
