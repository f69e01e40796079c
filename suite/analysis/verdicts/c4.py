"""C4 "recurrent feedback makes the error surface chaotic, so local optima are frequent and badly
placed" (``landscape`` experiment), judged as two statements.

**C4a, chaotic.** Chaos is a positive largest Lyapunov exponent of the hidden dynamics, nothing
else. Measure: the share of Elman networks whose exponent (:func:`suite.probes.rnn_lyapunov`,
driven by i.i.d. draws of the task's inputs) exceeds :data:`LYAP_EPS` per step, after training
(effect 1) and the same share without input (autonomous, effect 2); at the start over the gain
sweep of the experiment (the initial spectral radius) in the detail. Calibration: the
Sompolinsky random networks (``tanh(W h)``, ``W ~ N(0, g^2/N)``) must show the transition the
theory predicts -- no positive exponent at ``g = 0.5``, a majority at ``g = 2`` -- otherwise the
measure cannot see chaos and the verdict is "no data (calibration failed)".

**C4b, rough, with frequent and badly placed optima.** Measure: Spearman rho of the number of
*prominent* minima per line (dips at least :data:`suite.analysis.landscape.DEFAULT_PROMINENCE`
decades deep) along lines of a *fixed absolute radius* (so the probe does not grow with the
weights) at the start, with the sequence length T within each spectral radius (effect 1) and
with the spectral radius within each T (effect 2), each the mean over strata of the
within-stratum rho with a stratified bootstrap interval
(:func:`suite.analysis.landscape.trend_table`). "Badly placed": the stall gap of the trained
starts (end loss above the best of the same configuration, as a share of the gap to the trivial
baseline) must grow with T or with the radius (the link to C2).

Shares carry percentile bootstrap intervals over networks; when every network is on one side
the bootstrap interval degenerates to a point, so its open end is replaced by the exact
Clopper-Pearson bound (``1 - (alpha/2)^(1/n)``): "never" is a bound, not a certainty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from suite.analysis import stats
from suite.analysis.landscape import DEFAULT_PROMINENCE, PROMINENCES, stratified_spearman
from suite.analysis.stats import Effect
from suite.analysis.verdicts.common import COLUMNS, CONFIDENCE, N_BOOT, row

LYAP_EPS = 0.01
"""A largest Lyapunov exponent above this (per step, natural log) counts as positive: a
finite-time estimate of an edge-of-chaos network scatters around 0 by a few 1e-3."""
LYAP_EPS_SENSITIVITY: tuple[float, ...] = (0.0, 0.01, 0.05)
C4A_SHARE = 0.5
"""C4a: at least this share of trained networks chaotic (and the interval above
``C4A_SHARE_LOW``) supports "chaotic"; an interval entirely below ``C4A_SHARE_LOW`` refutes it."""
C4A_SHARE_LOW = 0.2
C4B_RHO = 0.3
"""C4b: roughness trends at or above this (intervals above 0) support C4b; trends whose
intervals stay below it refute it."""
C4B_METRIC = "minima_fixed"
C4B_STALL = "stall_gap"

RULES: dict[str, str] = {
    "C4a": (
        f"chaos = largest Lyapunov exponent > {LYAP_EPS:g} per step (hidden dynamics driven by "
        "the task inputs). Calibration first: Sompolinsky's random networks must give no positive "
        "exponent at gain 0.5 and a majority at gain 2, else 'no data (calibration failed)'. "
        f"supported: share of trained networks chaotic >= {C4A_SHARE:g} with its 95% interval "
        f"above {C4A_SHARE_LOW:g}; refuted: the whole interval below {C4A_SHARE_LOW:g} (chaos "
        "rare); mixed: otherwise."
    ),
    "C4b": (
        "roughness = prominent minima per line (dips >= "
        f"{DEFAULT_PROMINENCE:g} decades of the loss) along lines of a fixed absolute radius "
        "at the start; trends = Spearman rho within each spectral radius (vs T) and within each T "
        "(vs radius), averaged over strata, stratified bootstrap 95% intervals. supported: both "
        f"roughness trends >= {C4B_RHO:g} with intervals above 0, and the stall gap (how bad the "
        "trained end points are) grows with T or radius (interval above 0); refuted: both "
        f"roughness intervals below {C4B_RHO:g} and no stall trend above 0; mixed: otherwise."
    ),
}

LIMITS: dict[str, str] = {
    "C4a": (
        "finite-time exponents (lyapunov_steps after a transient) of small networks (H = 4); "
        "the drive is i.i.d. draws of the training inputs, not the task's sequences; the share "
        "depends on the gain sweep of the experiment (reported per gain) and on the threshold "
        "(sensitivity at 0, 0.01, 0.05). Intervals: percentile bootstrap over networks; a share "
        "of 0 (or 1) gets the exact Clopper-Pearson bound as its open end, so fewer than 17 "
        "networks cannot refute. Refutable: a contractive network gives share 0."
    ),
    "C4b": (
        "minima along random lines (a few per network, 101 points on [-1, 1]) are a 1-D view of a "
        "high-dimensional surface; the count depends on the prominence threshold (sensitivity "
        "table) and on the line length (fixed radius vs filter-normalised, both reported); "
        "stall gaps are measured on short Adam runs (the landscape study's own starts), not on "
        "resolved end points (C2's optima study does that). Refutable: slices without a trend "
        "give intervals around 0."
    ),
}


# ----------------------------------------------------------------------------------- shares
def share_effect(flags: np.ndarray, n_boot: int = N_BOOT, confidence: float = CONFIDENCE) -> Effect:
    """Share of true ``flags`` with its percentile bootstrap interval (``default_rng(0)``); an
    all-false (all-true) sample gets the Clopper-Pearson upper (lower) bound as its open end."""
    f = np.asarray(flags, dtype=float)
    n = f.size
    if n == 0:
        return Effect(math.nan, math.nan, math.nan)
    p = float(f.mean())
    lo, hi = stats.bootstrap_ci(
        f,
        lambda s: s.mean(axis=1),
        n_boot=n_boot,
        confidence=confidence,
        rng=np.random.default_rng(0),
    )
    bound = 1.0 - ((1.0 - confidence) / 2.0) ** (1.0 / n)
    if p == 0.0:
        hi = max(hi, bound)
    if p == 1.0:
        lo = min(lo, 1.0 - bound)
    return Effect(p, lo, hi)


def chaos_shares(chaos: pd.DataFrame, eps: float = LYAP_EPS) -> pd.DataFrame:
    """Share of networks with ``lam > eps`` per task, ``where``, ``drive`` and initial gain
    (``spectral_radius``; ``"all"`` pools the sweep): columns ``task, where, drive, gain,
    share, low, high, n, eps``."""
    if chaos.empty:
        return pd.DataFrame()
    rows = []
    c = chaos[chaos["model"] == "elman"]
    for (task, where, drive), g in c.groupby(["task", "where", "drive"], sort=False):
        parts = [("all", g)] + [
            (f"{float(k):g}", gg) for k, gg in g.groupby(g["spectral_radius"].astype(float))
        ]
        for gain, gg in parts:
            e = share_effect(gg["lam"].to_numpy(dtype=float) > eps)
            rows.append(
                dict(
                    task=task,
                    where=where,
                    drive=drive,
                    gain=gain,
                    share=e.value,
                    low=e.low,
                    high=e.high,
                    n=len(gg),
                    eps=eps,
                    hidden="/".join(str(h) for h in sorted(set(gg["hidden"].dropna()))),
                )
            )
    return pd.DataFrame(rows)


def reference_shares(reference: pd.DataFrame, eps: float = LYAP_EPS) -> pd.DataFrame:
    """Share of Sompolinsky networks with ``lambda > eps`` per gain (``gain, share, low, high,
    n``); empty if the records do not hold the exponents."""
    if reference.empty or "lambdas" not in reference:
        return pd.DataFrame()
    rows = []
    for r in reference.itertuples():
        lam = r.lambdas
        if not isinstance(lam, list | tuple) or not lam:
            continue
        e = share_effect(np.asarray(lam, dtype=float) > eps)
        rows.append(dict(gain=float(r.gain), share=e.value, low=e.low, high=e.high, n=len(lam)))
    return pd.DataFrame(rows)


def calibration(reference: pd.DataFrame, eps: float = LYAP_EPS) -> str:
    """ "ok", "failed" or "absent": does the Lyapunov measure see Sompolinsky's transition (no
    chaotic network at the smallest gain <= 0.5, a majority at the largest gain >= 2)?"""
    ref = reference_shares(reference, eps)
    if ref.empty:
        return "absent"
    low, high = ref[ref["gain"] <= 0.5], ref[ref["gain"] >= 2.0]
    if low.empty or high.empty:
        return "absent"
    ok = low["share"].iloc[0] == 0.0 and high["share"].iloc[-1] > 0.5
    return "ok" if ok else "failed"


def _c4a_rule(e: Effect, calib: str) -> str:
    if calib == "failed":
        return "no data (calibration failed)"
    if math.isnan(e.value):
        return "no data"
    if e.value >= C4A_SHARE and e.low > C4A_SHARE_LOW:
        return "supported"
    if e.high < C4A_SHARE_LOW:
        return "refuted"
    return "mixed"


def verdict_c4a(chaos: pd.DataFrame, reference: pd.DataFrame, evidence: str = "") -> pd.DataFrame:
    """C4a per task from :attr:`suite.analysis.landscape.LandscapeAnalysis.chaos` (and the
    Sompolinsky reference for the calibration); see the module docstring."""
    shares = chaos_shares(chaos)
    if shares.empty:
        return pd.DataFrame(columns=COLUMNS)
    calib = calibration(reference)
    rows = []
    for task, g in shares.groupby("task", sort=False):

        def eff(
            where: str, drive: str, gain: str = "all", g: pd.DataFrame = g
        ) -> tuple[Effect, int]:
            r = g[(g["where"] == where) & (g["drive"] == drive) & (g["gain"] == gain)]
            if r.empty:
                return Effect(math.nan, math.nan, math.nan), 0
            r = r.iloc[0]
            return Effect(float(r["share"]), float(r["low"]), float(r["high"])), int(r["n"])

        trained, n = eff("trained", "driven")
        auto, _ = eff("trained", "autonomous")
        gains = [x for x in g["gain"].unique() if x != "all"]
        init = "; ".join(
            f"g={x}: {eff('init', 'driven', x)[0].value:.2f} driven, "
            f"{eff('init', 'autonomous', x)[0].value:.2f} autonomous"
            for x in gains
        )
        sens = ", ".join(
            f"eps={eps:g}: {_share(chaos, task, eps):.2f}" for eps in LYAP_EPS_SENSITIVITY
        )
        detail = (
            f"share chaotic at the start per initial gain: {init}; trained share (driven) at "
            f"other thresholds: {sens}; Sompolinsky calibration: {calib}"
        )
        rows.append(
            row(
                "C4a",
                str(task),
                _c4a_rule(trained, calib),
                f"share of trained networks with lambda_max > {LYAP_EPS:g} (driven)",
                trained,
                "same, autonomous (no input)",
                auto,
                n,
                detail,
                evidence,
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _share(chaos: pd.DataFrame, task: str, eps: float) -> float:
    c = chaos[
        (chaos["task"] == task)
        & (chaos["model"] == "elman")
        & (chaos["where"] == "trained")
        & (chaos["drive"] == "driven")
    ]
    return float((c["lam"] > eps).mean()) if len(c) else math.nan


# ---------------------------------------------------------------------------------- C4b
def _trend(
    trends: pd.DataFrame, task: str, metric: str, against: str, where: str
) -> tuple[Effect, int]:
    t = trends[
        (trends["task"] == task)
        & (trends["model"] == "elman")
        & (trends["where"] == where)
        & (trends["metric"] == metric)
        & (trends["against"] == against)
        & (trends["stratum"] == "mean")
    ]
    if t.empty:
        return Effect(math.nan, math.nan, math.nan), 0
    r = t.iloc[0]
    return Effect(float(r["rho"]), float(r["rho_low"]), float(r["rho_high"])), int(r["n"])


def _c4b_rule(by_t: Effect, by_r: Effect, stalls: Sequence[Effect]) -> str:
    if math.isnan(by_t.value) or math.isnan(by_r.value):
        return "no data"
    stall_up = any(s.low > 0 for s in stalls if not math.isnan(s.low))
    if all(e.value >= C4B_RHO and e.low > 0 for e in (by_t, by_r)) and stall_up:
        return "supported"
    if all(e.high < C4B_RHO for e in (by_t, by_r)) and not stall_up:
        return "refuted"
    return "mixed"


def _fmt(e: Effect) -> str:
    return f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"


def verdict_c4b(trends: pd.DataFrame, evidence: str = "") -> pd.DataFrame:
    """C4b per task from :func:`suite.analysis.landscape.trend_table` (module docstring)."""
    if trends.empty or "stratum" not in trends:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for task in dict.fromkeys(trends["task"]):
        by_t, n = _trend(trends, task, C4B_METRIC, "seq_len", "init")
        by_r, _ = _trend(trends, task, C4B_METRIC, "spectral_radius", "init")
        st_t, _ = _trend(trends, task, C4B_STALL, "seq_len", "trained")
        st_r, _ = _trend(trends, task, C4B_STALL, "spectral_radius", "trained")
        fn_t, _ = _trend(trends, task, "minima", "seq_len", "init")
        fn_r, _ = _trend(trends, task, "minima", "spectral_radius", "init")
        twin = trends[
            (trends["task"] == task)
            & (trends["model"] == "tdnn")
            & (trends["where"] == "init")
            & (trends["metric"] == C4B_METRIC)
            & (trends["against"] == "seq_len")
            & (trends["stratum"] == "mean")
        ]
        detail = (
            f"stall gap vs T: {_fmt(st_t)}, vs radius: {_fmt(st_r)}; filter-normalised lines: "
            f"vs T {_fmt(fn_t)}, vs radius {_fmt(fn_r)}"
        )
        if not twin.empty:
            tw = twin.iloc[0]
            detail += (
                f"; TDNN twin vs T: {tw['rho']:.2f} [{tw['rho_low']:.2f}, {tw['rho_high']:.2f}]"
            )
        rows.append(
            row(
                "C4b",
                str(task),
                _c4b_rule(by_t, by_r, (st_t, st_r)),
                "Spearman rho, prominent minima per fixed-radius line vs T (within radius)",
                by_t,
                "vs spectral radius (within T)",
                by_r,
                n,
                detail,
                evidence,
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def c4b_sensitivity(
    minima: pd.DataFrame, prominences: Sequence[float] = PROMINENCES, n_boot: int = N_BOOT
) -> pd.DataFrame:
    """The C4b roughness trends (Elman, at the start) at every prominence threshold and for both
    kinds of line: columns ``task, line, prominence, against, rho, low, high, n``."""
    if minima.empty:
        return pd.DataFrame()
    m = minima[(minima["model"] == "elman") & (minima["where"] == "init")]
    rows = []
    for (task, line, prom), g in m.groupby(["task", "line", "prominence"], sort=False):
        if float(prom) not in [float(p) for p in prominences]:
            continue
        for against, other in (("seq_len", "spectral_radius"), ("spectral_radius", "seq_len")):
            e, per = stratified_spearman(
                pd.to_numeric(g[against], errors="coerce").to_numpy(dtype=float),
                g["minima"].to_numpy(dtype=float),
                g[other].map(str).to_numpy(dtype=object),
                n_boot=n_boot,
                rng=np.random.default_rng(0),
            )
            rows.append(
                dict(
                    task=task,
                    line=line,
                    prominence=float(prom),
                    against=against,
                    rho=e.value,
                    low=e.low,
                    high=e.high,
                    n=sum(k for _, _, k in per),
                )
            )
    return pd.DataFrame(rows)
