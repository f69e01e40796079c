"""Verdicts on the four statements of SCIENCE.md, computed from stored results by stated rules.

Every verdict is per task (one task never speaks for all), carries an effect size with a 95%
bootstrap confidence interval, and is one of ``supported``, ``refuted``, ``mixed`` or
``no data``. The rules are constants in this module and are printed in the claims report; no
verdict is typed by hand. Bootstraps resample seeds (or starts) with replacement from a fixed
``numpy.random.default_rng(0)`` so a report is reproducible.

C1 "BPTT trains RNNs much faster than general-purpose optimizers" (``speed`` experiment):
    per problem, the best BPTT-based optimizer (registered with the ``gradient`` tag) and the best
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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from suite.analysis.metrics import ert, time_to_target

N_BOOT = 2000
CONFIDENCE = 0.95

C1_MUCH = 3.0
"""C1: "much faster" means a point ratio of at least this, in both clocks."""

C2_STALL = 0.2
"""C2: a stall rate at or above this (with its interval above ``C2_STALL_LOW``) supports C2."""
C2_STALL_LOW = 0.05
C2_REFUTE = 0.05
"""C2: a stall-rate interval entirely below this refutes C2."""

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
        f"supported: stall rate >= {C2_STALL:g} with its 95% interval above {C2_STALL_LOW:g} and "
        f"at least 2 distinct optima; refuted: the interval of the stall rate lies below "
        f"{C2_REFUTE:g} (nearly all converged starts reach the best level); mixed: otherwise."
    ),
    "C3": (
        f"supported: stall rate(RNN) - stall rate(TDNN twin) >= {C3_DIFF:g} with its 95% "
        "interval above 0; refuted: the interval lies below or straddles 0 with a point "
        "difference <= 0; mixed: otherwise."
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


@dataclass(frozen=True)
class Effect:
    """A point estimate with its bootstrap interval."""

    value: float
    low: float
    high: float


def paired_bootstrap(
    n: int, stat: Callable[[np.ndarray], np.ndarray], n_boot: int = N_BOOT, seed: int = 0
) -> Effect:
    """Point value ``stat(arange(n))`` and the percentile interval over index resamples.

    ``stat`` maps an index array ``[..., n]`` to values ``[...]`` (vectorised). Resamples whose
    statistic is NaN (undefined, e.g. no success on either side) are dropped.
    """
    rng = np.random.default_rng(seed)
    point = float(stat(np.arange(n)[None, :])[0])
    idx = rng.integers(0, n, size=(n_boot, n))
    values = np.asarray(stat(idx), dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Effect(point, math.nan, math.nan)
    alpha = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha], method="inverted_cdf")
    return Effect(point, float(lo), float(hi))


def _gradient_names(names: list[str]) -> set[str]:
    from suite.optimizers import optimizer_info

    out = set()
    for name in names:
        try:
            if "gradient" in optimizer_info(name)["tags"]:
                out.add(name)
        except (KeyError, ValueError):
            continue
    return out


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
    gradient = _gradient_names(sorted(trials["optimizer_name"].unique()))
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
