"""C1 "BPTT trains RNNs much faster than general-purpose optimizers" (``speed`` experiment)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from suite.analysis.metrics import ert, time_to_target
from suite.analysis.stats import Effect
from suite.analysis.verdicts.common import COLUMNS, paired_bootstrap, row

C1_MUCH = 3.0
"""C1: "much faster" means a point ratio of at least this, in both clocks."""

RULES: dict[str, str] = {
    "C1": (
        f"supported: ERT(best black-box) / ERT(best BPTT) >= {C1_MUCH:g} in both fe and seconds, "
        "with both 95% intervals above 1; refuted: the ratio is <= 1 in both clocks (a black-box "
        "method matches or beats BPTT); mixed: otherwise. If neither family reaches the target, "
        "the same rule on the ratio of median final train losses at the budget (one clock)."
    ),
}

LIMITS: dict[str, str] = {
    "C1": (
        "small models (Elman H = 8, about 90 parameters) and budgets of 1e7 fe; the best "
        "optimizer of each family is chosen on the same seeds it is judged on; each optimizer's "
        "main hyper-parameter was tuned on one separate seed over a small grid "
        "(see the tuning cost below). CMA-ES's cost per generation grows with the dimension "
        "squared (bench/bench_cmaes.py), so larger nets would widen the gap in seconds."
    ),
}


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
            rows.append(row("C1", problem, "no data", detail="needs both families", ev=evidence))
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
                row(
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
                row(
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
