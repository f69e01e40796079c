"""Verdicts on the four statements of SCIENCE.md, computed from stored results by stated rules.

Every verdict is per task (one task never speaks for all), carries an effect size with a 95%
bootstrap confidence interval, and is one of ``supported``, ``refuted``, ``mixed`` or
``no data``. The rules are constants in this module and are printed in the claims report; no
verdict is typed by hand. Bootstraps resample seeds (or starts) with replacement from a fixed
``numpy.random.default_rng(0)`` so a report is reproducible.

C1 "BPTT trains RNNs much faster than general-purpose optimizers" (``speed`` experiment):
    per problem, the best BPTT-based optimizer (its record tagged ``gradient``) and the best
    black-box optimizer (no ``gradient`` tag) by ERT in fe (COCO: cost summed over all runs /
    successful runs). Effect: ERT(black-box) / ERT(BPTT) in fe and in seconds, paired bootstrap
    over seeds. When neither family reaches the target, the effect is the ratio of median final
    train losses at the end of the budget (the fixed-budget view).
C2 "BPTT has trouble with local optima" (``optima`` experiment, RNN studies):
    effect: the stall rate, the share of converged starts that end at a minimum clearly above the
    best loss found, with its bootstrap interval; plus the number of distinct optima.
C3 "local optima matter more for RNNs than for feed-forward nets" (``optima``, RNN vs TDNN twin):
    effect: stall rate of the RNN minus that of its matched TDNN twin, with its interval.
C4 "recurrent feedback makes the error surface chaotic" (``landscape`` experiment):
    effect: Spearman rank correlation of slice roughness with sequence length and with the
    spectral radius of the recurrent matrix, with bootstrap intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from suite.analysis import stats
from suite.analysis.metrics import ert, time_to_target
from suite.analysis.optima import Thresholds
from suite.analysis.stats import Effect

N_BOOT = 2000
CONFIDENCE = 0.95

C1_MUCH = 3.0
"""C1: "much faster" means a point ratio of at least this, in both clocks."""

C2_STALL = 0.2
"""C2: a stall rate at or above this (with its interval above ``C2_STALL_LOW``) supports C2."""
C2_STALL_LOW = 0.05
C2_REFUTE = 0.05
"""C2: a stall-rate interval entirely below this refutes C2."""

C2_MIN_CONVERGED = 20
"""C2: a stall rate among converged starts counts only with at least this many of them."""

C3_DIFF = 0.1
"""C3: RNN stall rate minus TDNN stall rate at or above this (interval above 0) supports C3."""

C4_RHO = 0.3
"""C4: a Spearman correlation at or above this (interval above 0) supports C4."""

RULES: dict[str, str] = {
    "C1": (
        f"supported: ERT(best black-box) / ERT(best BPTT) >= {C1_MUCH:g} in both fe and seconds, "
        "with both 95% intervals above 1; refuted: the ratio is <= 1 in both clocks (a black-box "
        "method matches or beats BPTT); mixed: otherwise. If neither family reaches the target, "
        "the same rule on the ratio of median final train losses at the budget (one clock)."
    ),
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
    "C4": (
        f"supported: Spearman correlation of roughness with sequence length and with spectral "
        f"radius both >= {C4_RHO:g} with 95% intervals above 0; refuted: both intervals reach "
        "below 0 with point values <= 0; mixed: otherwise."
    ),
}

COLUMNS = [
    "claim",
    "problem",
    "verdict",
    "measure",
    "effect",
    "ci_low",
    "ci_high",
    "measure_2",
    "effect_2",
    "ci_low_2",
    "ci_high_2",
    "n",
    "detail",
    "evidence",
]


def paired_bootstrap(n: int, stat: Callable[[np.ndarray], np.ndarray]) -> Effect:
    """:func:`suite.analysis.stats.paired_bootstrap` with this module's ``N_BOOT``,
    ``CONFIDENCE`` and a fresh ``default_rng(0)`` (each verdict reproducible on its own)."""
    return stats.paired_bootstrap(
        n, stat, n_boot=N_BOOT, confidence=CONFIDENCE, rng=np.random.default_rng(0)
    )


def gradient_names(trials: pd.DataFrame) -> set[str]:
    """Registered names (``optimizer_name``) of the optimizers tagged ``gradient`` in the
    trials frame's ``tags`` column (sorted, comma-joined tags stored with each record), so a
    plugin's gradient method counts as BPTT whether or not the plugin is loaded when reporting."""
    if "tags" not in trials:
        raise ValueError(
            "the trials frame lacks the column 'tags' (optimizer tags, one comma-joined string "
            "per trial, from suite.store.load_results)"
        )
    tagged = trials["tags"].fillna("").astype(str).str.split(",").map(lambda t: "gradient" in t)
    return set(trials.loc[tagged.to_numpy(dtype=bool), "optimizer_name"])


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a == np.inf) & (b == np.inf), np.nan, a / b)


def _c1_rule(fe: Effect, sec: Effect | None) -> str:
    effects = [fe] if sec is None else [fe, sec]
    if any(math.isnan(e.value) for e in effects):
        return "no data"
    if all(e.value >= C1_MUCH and e.low > 1 for e in effects):
        return "supported"
    if all(e.value <= 1 for e in effects):
        return "refuted"
    return "mixed"


def _best(per: dict[str, dict], names: list[str]) -> str:
    """The optimizer with the lowest ERT in fe (ties: lowest median final loss)."""
    return min(
        names, key=lambda o: (float(ert(per[o]["fe"], per[o]["hit"])), np.median(per[o]["loss"]))
    )


def _ert_ratio(A: dict, B: dict, clock: str) -> Callable[[np.ndarray], np.ndarray]:
    """Statistic: ERT(B) / ERT(A) on resampled seed indices."""
    return lambda idx: _ratio(ert(B[clock][idx], B["hit"][idx]), ert(A[clock][idx], A["hit"][idx]))


def _loss_ratio(A: dict, B: dict) -> Callable[[np.ndarray], np.ndarray]:
    """Statistic: median final loss of B / of A on resampled seed indices."""
    return lambda idx: _ratio(
        np.median(B["loss"][idx], axis=-1), np.median(A["loss"][idx], axis=-1)
    )


def verdict_c1(trials: pd.DataFrame, trace: pd.DataFrame, evidence: str = "") -> pd.DataFrame:
    """C1 per problem from a ``speed``-like experiment's frames (see the module docstring)."""
    rows = []
    if trials.empty:
        return pd.DataFrame(columns=COLUMNS)
    hits = time_to_target(trials, trace)
    hits = hits.merge(trials[["key", "optimizer_name", "final_train_loss"]], on="key", how="left")
    gradient = gradient_names(trials)
    for problem, g in hits.groupby("problem", sort=False):
        seeds = np.array(sorted(g["seed"].unique()))
        per: dict[str, dict[str, np.ndarray]] = {}
        for opt, o in g.groupby("optimizer", sort=False):
            o = o.set_index("seed").reindex(seeds)
            if o["hit"].isna().any():  # an optimizer missing seeds cannot be paired
                continue
            hit = o["hit"].to_numpy(dtype=bool)
            per[opt] = {
                "hit": hit,
                "fe": np.where(hit, o["fe"], o["spent_fe"]).astype(float),
                "s": np.where(hit, o["seconds"], o["spent_seconds"]).astype(float),
                "loss": o["final_train_loss"].to_numpy(dtype=float),
                "grad": o["optimizer_name"].iloc[0] in gradient,
            }
        fam = {k: [o for o, v in per.items() if v["grad"] == k] for k in (True, False)}
        if not fam[True] or not fam[False]:
            rows.append(_row("C1", problem, "no data", detail="needs both families", ev=evidence))
            continue

        a, b = _best(per, fam[True]), _best(per, fam[False])
        A, B = per[a], per[b]
        n = len(seeds)
        if A["hit"].any() or B["hit"].any():
            fe = paired_bootstrap(n, _ert_ratio(A, B, "fe"))
            sec = paired_bootstrap(n, _ert_ratio(A, B, "s"))
            verdict = _c1_rule(fe, sec)
            bound = ""
            if not B["hit"].any():
                # COCO's ERT is infinite; the cost spent by all its runs bounds it from below
                low = B["fe"].sum() / ert(A["fe"], A["hit"])
                bound = f"; {b} never reached the target: ratio > {low:.3g} in fe"
            rows.append(
                _row(
                    "C1",
                    problem,
                    verdict,
                    "ERT ratio black-box / BPTT (fe)",
                    fe,
                    "ERT ratio (seconds)",
                    sec,
                    n,
                    f"best BPTT: {a} (success {A['hit'].mean():.0%}); best black-box: {b} "
                    f"(success {B['hit'].mean():.0%}){bound}",
                    evidence,
                )
            )
        else:
            eff = paired_bootstrap(n, _loss_ratio(A, B))
            rows.append(
                _row(
                    "C1",
                    problem,
                    _c1_rule(eff, None),
                    "final-loss ratio black-box / BPTT (no target reached)",
                    eff,
                    n=n,
                    detail=f"neither family reached the target; best BPTT: {a}; "
                    f"best black-box: {b}",
                    ev=evidence,
                )
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(
    claim: str,
    problem: str,
    verdict: str,
    measure: str = "",
    e1: Effect | None = None,
    measure_2: str = "",
    e2: Effect | None = None,
    n: int = 0,
    detail: str = "",
    ev: str = "",
) -> dict:
    nan = Effect(math.nan, math.nan, math.nan)
    e1, e2 = e1 or nan, e2 or nan
    return dict(
        claim=claim,
        problem=problem,
        verdict=verdict,
        measure=measure,
        effect=e1.value,
        ci_low=e1.low,
        ci_high=e1.high,
        measure_2=measure_2,
        effect_2=e2.value,
        ci_low_2=e2.low,
        ci_high_2=e2.high,
        n=n,
        detail=detail,
        evidence=ev,
    )


# ----------------------------------------------------------------------------- C2 and C3

LIMITS: dict[str, str] = {
    "C1": (
        "small models (Elman H = 8, about 90 parameters) and budgets of 1e7 fe; the best "
        "optimizer of each family is chosen on the same seeds it is judged on; each optimizer's "
        "main hyper-parameter was tuned on one separate seed over a small grid "
        "(see the tuning cost below). CMA-ES's cost per generation grows with the dimension "
        "squared (bench/bench_cmaes.py), so larger nets would widen the gap in seconds."
    ),
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
    "C4": (
        "roughness along random filter-normalised lines depends on the grid (101 points on "
        "[-1, 1]); small nets (H = 4) and two tasks; Spearman intervals are Fisher-z intervals "
        "over pooled seeds and the other grid axis."
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
                _row("C2", _short(s["study"]), "no data", detail="no end points", ev=evidence)
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
            _row(
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
            _row(
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


# ------------------------------------------------------------------------------------ C4
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
            _row(
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
