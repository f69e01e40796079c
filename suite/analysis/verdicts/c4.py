"""C4 "recurrent feedback makes the error surface chaotic" (``landscape`` experiment)."""

from __future__ import annotations

import math

import pandas as pd

from suite.analysis.stats import Effect
from suite.analysis.verdicts.common import COLUMNS, row

C4_RHO = 0.3
"""C4: a Spearman correlation at or above this (interval above 0) supports C4."""

RULES: dict[str, str] = {
    "C4": (
        f"supported: Spearman correlation of roughness with sequence length and with spectral "
        f"radius both >= {C4_RHO:g} with 95% intervals above 0; refuted: both intervals reach "
        "below 0 with point values <= 0; mixed: otherwise."
    ),
}

LIMITS: dict[str, str] = {
    "C4": (
        "roughness along random filter-normalised lines depends on the grid (101 points on "
        "[-1, 1]); small nets (H = 4) and two tasks; Spearman intervals are Fisher-z intervals "
        "over pooled seeds and the other grid axis."
    ),
}


C4_METRIC = "minima_per_unit"


def _c4_rule(t: Effect, r: Effect) -> str:
    if math.isnan(t.value) or math.isnan(r.value):
        return "no data"
    if all(e.value >= C4_RHO and e.low > 0 for e in (t, r)):
        return "supported"
    if all(e.value <= 0 for e in (t, r)):
        return "refuted"
    return "mixed"


def verdict_c4(trends: pd.DataFrame, evidence: str = "") -> pd.DataFrame:
    """C4 per task from :func:`suite.analysis.landscape.trend_table` (slices at the start).

    Effect 1: Spearman rho of local minima per unit length of the slice with sequence length;
    effect 2: with the initial spectral radius (Elman). The TDNN twin's rho with sequence
    length is the control (in the detail).
    """
    rows = []
    if trends.empty:
        return pd.DataFrame(columns=COLUMNS)
    t = trends[(trends["where"] == "init") & (trends["metric"] == C4_METRIC)]
    for task, g in t.groupby("task", sort=False):

        def eff(model: str, against: str, g: pd.DataFrame = g) -> tuple[Effect, int]:
            r = g[(g["model"] == model) & (g["against"] == against)]
            if r.empty:
                return Effect(math.nan, math.nan, math.nan), 0
            r = r.iloc[0]
            return Effect(float(r["rho"]), float(r["rho_low"]), float(r["rho_high"])), int(r["n"])

        (by_t, n), (by_r, _) = eff("elman", "seq_len"), eff("elman", "spectral_radius")
        twin, _ = eff("tdnn", "seq_len")
        tv = trends[
            (trends["task"] == task)
            & (trends["where"] == "init")
            & (trends["metric"] == "tv_norm")
            & (trends["model"] == "elman")
        ].set_index("against")["rho"]
        detail = (
            f"TDNN twin: rho with T = {twin.value:.2f} [{twin.low:.2f}, {twin.high:.2f}]; "
            + ", ".join(f"total-variation rho with {k} = {v:.2f}" for k, v in tv.items())
        )
        rows.append(
            row(
                "C4",
                str(task),
                _c4_rule(by_t, by_r),
                "Spearman rho, minima per unit length vs sequence length",
                by_t,
                "Spearman rho vs spectral radius",
                by_r,
                n,
                detail,
                evidence,
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)
