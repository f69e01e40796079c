"""C2 "BPTT has trouble with local optima", C3 "local optima matter more for RNNs than for
feed-forward nets", and the gated answer to C2 (``optima`` experiment).

All rates are over **all** starts of a model on a task, pooled over the dataset draws (data
seeds); a start's end point is resolved first (:mod:`suite.optimizers.resolve`,
:func:`suite.analysis.optima.classify_end_points`). A *trap* is a non-diverged end point not on
a diverging valley from which the escape test reached no lower level; it *stalls* at margin
``m`` when its loss lies above ``best + m (baseline - best)``. Bootstraps resample starts
(pairs ``(data seed, seed index)``), seeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from suite.analysis.optima import CLASSES, STALL_MARGINS, Thresholds
from suite.analysis.stats import Effect
from suite.analysis.verdicts.common import COLUMNS, paired_bootstrap, row

__all__ = [
    "C2_REFUTE",
    "C2_STALL",
    "C2_STALL_LOW",
    "C3_DIFF",
    "LIMITS",
    "RULES",
    "c3_pairs",
    "gating_table",
    "verdict_c2",
    "verdict_c3",
]

C2_STALL = 0.2
"""C2: a trap rate (all starts) at or above this with its interval above ``C2_STALL_LOW``."""
C2_STALL_LOW = 0.05
C2_REFUTE = 0.05
"""C2: a trap-rate interval entirely below this refutes C2."""

C3_DIFF = 0.1
"""C3: RNN trap rate minus TDNN trap rate at or above this (interval above 0) supports C3."""

RULES: dict[str, str] = {
    "C2": (
        "Every start is resolved (trust-region Newton polish with exact Hessian-vector products, "
        "Hessian eigenvalues checked at two finite-difference steps, a diverging-valley test and "
        "an escape test: k perturbations re-optimised) and classified minimum / saddle / plateau "
        "/ diverging valley / unresolved / diverged. A trap is an end point, not diverged and "
        "not on a diverging valley, from which no perturbation reached a lower level; it stalls "
        "when its loss exceeds the best loss of its study by more than 10% of the gap between "
        "that best and the trivial baseline. Effect: trap rate = stalled traps / ALL starts, "
        "pooled over the dataset draws, per task and Elman size. "
        f"supported: trap rate >= {C2_STALL:g} with its 95% interval above {C2_STALL_LOW:g} and "
        "at least 2 distinct optima (function-space clusters) among the minima; refuted: the "
        f"interval lies below {C2_REFUTE:g}; mixed: otherwise. The sensitivity column gives "
        "the trap rate at margins 1%, 5%, 10%, 20%. What would refute C2: nearly every start "
        "reaching the best level or escaping (trap-rate interval below 5%)."
    ),
    "C3": (
        "Designed comparison per task: Elman H in {2, 4, 8} against TDNNs with the same H and "
        "windows {2, T/2, T} and the parameter-matched TDNN, same data draws and seed indices. "
        "Stalls are measured against a common reference loss (the best loss any model reached "
        "on that draw) and against each model's own best. Only pairs where both models reach "
        "the task's success target at least once (over the draws) enter the verdict. Effect: the "
        "trap rate against the common reference, RNN minus TDNN, averaged over the eligible "
        "pairs, paired bootstrap over starts. "
        f"supported: >= {C3_DIFF:g} with its interval above 0; refuted: <= 0 with its interval "
        f"below {C3_DIFF:g}; mixed: otherwise; no data: no eligible pair. What would refute "
        "C3: TDNNs of capacity comparable to the RNN (reaching the target) trapping as often "
        "or more often."
    ),
}

LIMITS: dict[str, str] = {
    "C2": (
        "small models (Elman H = 2-8, 13-97 parameters) on three tasks with three dataset draws, "
        "full-batch Adam then L-BFGS/Newton and trust-region polishing with stated budgets; "
        "'diverging' and 'unresolved' are bounds of those budgets, not proofs; the escape test "
        "uses a few perturbations of one size, so a trap is 'not escaped at that size'; end "
        "points within 1% of their chunk's best are not escape-tested and count as traps only "
        "when they are minima."
    ),
    "C3": (
        "TDNN windows cover {2, T/2, T} only; pairs where either model never reaches the "
        "success target are left out (capacity, not optimisation, would decide them), so a task "
        "where no TDNN can do the task gives no verdict; the common reference is the best "
        "loss of any model on the draw, so a model that cannot reach it is counted as trapped "
        "above it."
    ),
}

LIVE = ("minimum", "saddle", "plateau", "unresolved")


def _share(flags: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    f = flags.astype(float)
    return lambda idx: f[idx].mean(axis=-1)


def _short(study: str) -> str:
    """A study label without method and data parts: ``task(...) / model(...)``."""
    return " / ".join(study.split(" / ")[:2])


def _group(starts: pd.DataFrame, summary: pd.DataFrame, models: tuple[str, ...]) -> dict:
    """Analysed starts per ``task / model`` label (pooled over data seeds) for ``models``."""
    sel = summary[summary["model"].isin(models)]
    out: dict[str, list[str]] = {}
    for study in sel["study"]:
        out.setdefault(_short(study), []).append(study)
    return {k: starts[starts["study"].isin(v)] for k, v in out.items()}


def _mean_diff(a: np.ndarray, b: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Statistic: ``mean(a) - mean(b)`` on resampled (paired) indices."""

    def stat(idx: np.ndarray) -> np.ndarray:
        return a[idx].mean(axis=-1) - b[idx].mean(axis=-1)

    return stat


def _c2_rule(trap: Effect, n_distinct: int) -> str:
    if math.isnan(trap.value):
        return "no data"
    if trap.value >= C2_STALL and trap.low > C2_STALL_LOW and n_distinct >= 2:
        return "supported"
    if trap.high < C2_REFUTE:
        return "refuted"
    return "mixed"


def _traps(g: pd.DataFrame, margin: float) -> np.ndarray:
    return (g["trap_candidate"].to_numpy(bool) & (g["stall_gap"].to_numpy(float) > margin)).astype(
        float
    )


def verdict_c2(
    starts: pd.DataFrame,
    summary: pd.DataFrame,
    evidence: str = "",
    models: tuple[str, ...] = ("elman",),
) -> pd.DataFrame:
    """C2 per ``task / model`` (Elman by default; ``models=("gru", "lstm")`` for the gated
    section) from :func:`suite.analysis.optima.analyse_records` frames, pooled over data seeds.

    Effect 1: trap rate over all starts at the 10% margin. Effect 2: share of all starts ending
    above the margin whatever their class. Detail: class shares, trap rate at each margin of
    :data:`~suite.analysis.optima.STALL_MARGINS`, distinct optima, parameter count.
    """
    rel = Thresholds().stall_rel
    rows = []
    for label, g in _group(starts, summary, models).items():
        n = len(g)
        trap = paired_bootstrap(n, _share(_traps(g, rel)))
        above = paired_bootstrap(n, _share(g["stall_gap"].to_numpy(float) > rel))
        studies = summary[summary["study"].isin(g["study"].unique())]
        n_distinct = int(studies["n_distinct"].min()) if len(studies) else 0
        shares = ", ".join(f"{c} {(g['class'] == c).mean():.2f}" for c in CLASSES)
        sens = ", ".join(f"{int(m * 100)}%: {_traps(g, m).mean():.3f}" for m in STALL_MARGINS)
        detail = (
            f"{n} starts over {studies['data_seed'].nunique()} data draws, "
            f"{int(studies['params'].iloc[0])} parameters; classes: {shares}; trap rate by "
            f"margin {sens}; distinct optima per draw (min) {n_distinct}"
        )
        rows.append(
            row(
                "C2",
                label,
                _c2_rule(trap, n_distinct),
                "trap rate (stalled traps / all starts)",
                trap,
                "share of all starts ending above the stall margin (any class)",
                above,
                n,
                detail,
                evidence,
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def gating_table(starts: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Does gating change C2? Per task, data draw pooled: Elman against the GRU and LSTM of
    matched parameter count (same data, same seed indices): architecture, hidden, parameters,
    trap rate [95% CI], class shares, and the trap-rate difference gated - Elman paired by
    (data seed, seed index) with its interval."""
    rel = Thresholds().stall_rel
    rows = []
    s = summary[summary["model"].isin(["elman", "gru", "lstm"])]
    for task_label, ts in s.groupby(s["study"].str.split(" / ").str[0], sort=False):
        elman = ts[ts["model"] == "elman"]
        for _, e in elman.drop_duplicates("hidden").iterrows():
            e_studies = elman[elman["hidden"] == e["hidden"]]["study"]
            eg = starts[starts["study"].isin(e_studies)].set_index(["data_seed", "seed"])
            e_tr = pd.Series(_traps(eg.reset_index(), rel), index=eg.index)
            for arch in ("elman", "gru", "lstm"):
                if arch == "elman":
                    studies = e_studies
                else:
                    cand = ts[(ts["model"] == arch)]
                    cand = cand[
                        cand["params"].sub(int(e["params"])).abs()
                        == cand["params"].sub(int(e["params"])).abs().min()
                    ]
                    if cand.empty:
                        continue
                    studies = cand[cand["hidden"] == cand["hidden"].iloc[0]]["study"]
                g = starts[starts["study"].isin(studies)]
                if g.empty:
                    continue
                tr = pd.Series(
                    _traps(g, rel), index=pd.MultiIndex.from_frame(g[["data_seed", "seed"]])
                )
                eff = paired_bootstrap(len(tr), _share(tr.to_numpy()))
                both = tr.index.intersection(e_tr.index)
                a, b = tr.loc[both].to_numpy(), e_tr.loc[both].to_numpy()
                diff = paired_bootstrap(len(both), _mean_diff(a, b))
                first = summary[summary["study"] == g["study"].iloc[0]].iloc[0]
                rows.append(
                    {
                        "task": task_label,
                        "elman_hidden": int(e["hidden"]),
                        "architecture": arch,
                        "hidden": int(first["hidden"]),
                        "params": int(first["params"]),
                        "starts": len(g),
                        "trap_rate": eff.value,
                        "trap_low": eff.low,
                        "trap_high": eff.high,
                        "minus_elman": diff.value,
                        "minus_elman_low": diff.low,
                        "minus_elman_high": diff.high,
                        **{f"share_{c}": float((g["class"] == c).mean()) for c in CLASSES},
                    }
                )
    return pd.DataFrame(rows)


def _common_gap(starts: pd.DataFrame) -> pd.Series:
    """Stall gap of every start against the common reference of its task and data draw: the
    best loss any model reached, ``(L - ref) / (baseline - ref)``."""
    key = starts["study"].str.split(" / ").str[0] + "|" + starts["data_seed"].astype(str)
    ok = ~starts["class"].isin(["diverged"])
    ref = starts["loss"].where(ok).groupby(key).transform("min")
    base = starts["baseline_loss"]
    span = (base - ref).clip(lower=Thresholds().loss_tol_rel * base)
    return (starts["loss"] - ref) / span


def c3_pairs(starts: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Every (Elman, TDNN) pair on the same task: sizes, parameter counts, window, whether both
    reach the success target at least once over the draws (``eligible``), and the trap rates
    (all starts, 10% margin) against the common reference and against each model's own best,
    with the paired difference RNN - TDNN (pairs by data seed and seed index; ``diff``,
    ``diff_low``, ``diff_high``: its paired bootstrap interval)."""
    if starts.empty or summary.empty:
        return pd.DataFrame()
    rel = Thresholds().stall_rel
    st = starts.assign(common_gap=_common_gap(starts))
    st["trap_common"] = st["trap_candidate"] & (st["common_gap"] > rel)
    st["trap_own"] = st["trap_candidate"] & (st["stall_gap"] > rel)
    summary = summary.assign(task_label=summary["study"].str.split(" / ").str[0])
    rows = []
    for task_label, ts in summary.groupby("task_label", sort=False):
        for _, e in ts[ts["model"] == "elman"].drop_duplicates("hidden").iterrows():
            e_s = ts[(ts["model"] == "elman") & (ts["hidden"] == e["hidden"])]
            tdnns = ts[ts["model"] == "tdnn"]
            for (th, tw), t_s in tdnns.groupby(["hidden", "window"], sort=False):
                a = st[st["study"].isin(e_s["study"])].set_index(["data_seed", "seed"])
                b = st[st["study"].isin(t_s["study"])].set_index(["data_seed", "seed"])
                both = a.index.intersection(b.index)
                reach = pd.concat(
                    [
                        e_s.set_index("data_seed")["n_reached"],
                        t_s.set_index("data_seed")["n_reached"],
                    ],
                    axis=1,
                ).fillna(0)
                eligible = bool(len(reach) and (reach.sum() > 0).all())
                da = a.loc[both, "trap_common"].to_numpy(float)
                db = b.loc[both, "trap_common"].to_numpy(float)
                d = paired_bootstrap(len(both), _mean_diff(da, db))
                rows.append(
                    {
                        "task": task_label,
                        "rnn_hidden": int(e["hidden"]),
                        "rnn_params": int(e["params"]),
                        "tdnn_hidden": int(th),
                        "tdnn_window": int(tw),
                        "tdnn_params": int(t_s["params"].iloc[0]),
                        "draws": int(len(reach)),
                        "eligible": eligible,
                        "starts": int(len(both)),
                        "rnn_trap_common": float(a.loc[both, "trap_common"].mean()),
                        "tdnn_trap_common": float(b.loc[both, "trap_common"].mean()),
                        "rnn_trap_own": float(a.loc[both, "trap_own"].mean()),
                        "tdnn_trap_own": float(b.loc[both, "trap_own"].mean()),
                        "diff": d.value,
                        "diff_low": d.low,
                        "diff_high": d.high,
                        "_a": a.loc[both, "trap_common"].to_numpy(float),
                        "_b": b.loc[both, "trap_common"].to_numpy(float),
                        "_ao": a.loc[both, "trap_own"].to_numpy(float),
                        "_bo": b.loc[both, "trap_own"].to_numpy(float),
                    }
                )
    return pd.DataFrame(rows)


def _c3_rule(diff: Effect) -> str:
    if math.isnan(diff.value) or math.isnan(diff.low):
        return "no data"
    if diff.value >= C3_DIFF and diff.low > 0:
        return "supported"
    if diff.value <= 0 and diff.high < C3_DIFF:
        return "refuted"
    return "mixed"


def verdict_c3(starts: pd.DataFrame, summary: pd.DataFrame, evidence: str = "") -> pd.DataFrame:
    """C3 per task from the size x window design (:func:`c3_pairs`): effect 1 the trap rate
    against the common reference, RNN - TDNN, averaged over eligible pairs (paired bootstrap
    over starts, the same resample for every pair); effect 2 the same against each model's own
    best."""
    pairs = c3_pairs(starts, summary)
    if pairs.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for task, p in pairs.groupby("task", sort=False):
        ok = p[p["eligible"] & (p["starts"] > 0)]
        if ok.empty or ok["starts"].nunique() != 1:
            rows.append(
                row(
                    "C3",
                    task,
                    "no data",
                    detail=f"{len(p)} pairs, none where both models reach the success target "
                    "at least once",
                    ev=evidence,
                )
            )
            continue
        n = int(ok["starts"].iloc[0])
        A, B = np.stack(ok["_a"].to_list()), np.stack(ok["_b"].to_list())
        Ao, Bo = np.stack(ok["_ao"].to_list()), np.stack(ok["_bo"].to_list())

        def stat(idx: np.ndarray, A: np.ndarray = A, B: np.ndarray = B) -> np.ndarray:
            return (A[:, idx].mean(-1) - B[:, idx].mean(-1)).mean(0)

        def stat_own(idx: np.ndarray, A: np.ndarray = Ao, B: np.ndarray = Bo) -> np.ndarray:
            return (A[:, idx].mean(-1) - B[:, idx].mean(-1)).mean(0)

        diff, own = paired_bootstrap(n, stat), paired_bootstrap(n, stat_own)
        listed = "; ".join(
            f"elman H={r.rnn_hidden} ({r.rnn_params} p) vs tdnn H={r.tdnn_hidden} "
            f"w={r.tdnn_window} ({r.tdnn_params} p): {r.rnn_trap_common:.2f} vs "
            f"{r.tdnn_trap_common:.2f}"
            for r in ok.itertuples()
        )
        detail = f"{len(ok)} of {len(p)} pairs eligible; trap rates (common reference): {listed}"
        rows.append(
            row(
                "C3",
                task,
                _c3_rule(diff),
                "trap rate vs common reference, RNN - TDNN (eligible pairs)",
                diff,
                "trap rate vs own best, RNN - TDNN",
                own,
                n,
                detail,
                evidence,
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)
