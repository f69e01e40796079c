"""Time to target, success rates, ERT and paired comparisons over the tidy frames of a results
folder (the fixed-target view; ECDFs, budgets, loss curves and profiles are in
:mod:`suite.analysis.profiles`, the statistics themselves in :mod:`suite.analysis.stats`).

Every function takes the frames of :func:`suite.store.load_results` (``trials``: one row per
trial, ``trace``: one row per checkpoint; columns in ``docs/architecture.md``) or a frame made by
another function of this module, and returns a tidy :class:`pandas.DataFrame`. Figures and tables
draw these frames; nothing is computed in a plot function.

Conventions used throughout

* **Best-so-far.** The trace's ``train_loss`` is the incumbent at each checkpoint; it is made
  monotone with a running minimum per run (NaN counts as ``+inf``).
* **Time to target.** For the record's own target (``target_loss``), the exact cost (``fe`` and
  ``seconds``) at which the Problem's incumbent first reached it: the counters after the call
  that evaluated the first point at or below the target (trials column ``hit_exact``; a
  population call is charged whole; a minibatch method's points are evaluated on the full
  train set only at checkpoints, so its hit is known at the checkpoint). For other targets
  (a ladder), and for records written before the Problem recorded the hit, the cost of the
  *first checkpoint* at which the best-so-far train loss is ``<= target``: checkpoints lie on a
  log grid (10 per decade), so that is an upper bound of the exact hitting cost, at most ~26 %
  above it.
* **Spent cost.** What a run used in total: the trial's ``fe`` counter, and for seconds the last
  checkpoint's ``seconds`` (the Problem's clock, checkpoint evaluations excluded); a run without a
  trace falls back on the trial's ``wall`` time.
* **Failures.** A run that never reaches the target has time-to-target ``+inf``. Runs with status
  ``error`` or ``diverged`` count as unsuccessful runs with the cost they spent (COCO counts every
  run that was started).
* **Bootstrap.** :func:`suite.analysis.stats.bootstrap_ci`: percentile intervals from resampling
  runs (or seed pairs) with replacement, from order statistics without interpolation so that an
  ERT with no success in the resample gives a well-defined ``inf`` bound; ``rng=None`` means
  ``default_rng(0)`` so that tables are reproducible.

References

* N. Hansen, A. Auger, O. Mersmann, T. Tusar, D. Brockhoff (2021). COCO: a platform for comparing
  continuous optimizers in a black-box setting. Optim. Methods Softw. 36(1). (ERT, bootstrap)
* K. Price (1997). Differential evolution vs. the functions of the 2nd ICEO. (ERT)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from suite.analysis.stats import (
    as_generator,
    bootstrap_ci,
    check_confidence,
    holm,
    log_ratio,
    rank_biserial,
    signed_rank_p,
)

__all__ = [
    "CLOCKS",
    "best_so_far",
    "check_clock",
    "ert",
    "ert_table",
    "log_grid",
    "paired_comparison",
    "require_columns",
    "success_rate",
    "target_ladder",
    "time_to_target",
]

CLOCKS: tuple[str, ...] = ("fe", "seconds")
"""The two cost clocks: forward-equivalents and wall seconds."""

TRACE_COLUMNS = ("key", "problem", "optimizer", "seed", "fe", "seconds", "train_loss", "test_loss")
HIT_COLUMNS = ("key", "problem", "optimizer", "seed", "target_id", "hit", "fe", "seconds")


# --------------------------------------------------------------------------- helpers


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """ValueError unless ``frame`` is a DataFrame with every one of ``columns``."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(frame.columns)}")


def check_clock(clock: str) -> None:
    """ValueError unless ``clock`` is one of :data:`CLOCKS`."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {list(CLOCKS)}, got {clock!r}")


def log_grid(lo: float, hi: float, points_per_decade: int) -> np.ndarray:
    """Log-spaced grid from ``lo`` to ``hi`` (both included), ``points_per_decade`` per decade."""
    if points_per_decade < 1:
        raise ValueError(f"points_per_decade must be >= 1, got {points_per_decade}")
    if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0 and hi > 0):
        return np.array([], dtype=float)
    if hi <= lo:
        return np.array([lo], dtype=float)
    n = max(2, int(np.ceil(points_per_decade * np.log10(hi / lo))) + 1)
    return np.logspace(np.log10(lo), np.log10(hi), n)


# --------------------------------------------------------------------------- time to target


def best_so_far(trace: pd.DataFrame) -> pd.DataFrame:
    """The trace sorted by ``(key, fe)`` with a column ``best``: running minimum of ``train_loss``.

    NaN losses count as ``+inf``; the result is monotone non-increasing within each run.
    """
    require_columns(trace, TRACE_COLUMNS, "trace")
    out = trace.sort_values(["key", "fe"], kind="stable").reset_index(drop=True)
    loss = out["train_loss"].astype(float).fillna(np.inf)
    out["best"] = loss.groupby(out["key"], sort=False).cummin()
    return out


def target_ladder(
    trials: pd.DataFrame,
    n_targets: int = 10,
    factors: Sequence[float] | None = None,
) -> pd.DataFrame:
    """A ladder of targets per run, for runtime ECDFs (COCO's fixed-target view).

    Without ``factors``: ``n_targets`` targets log-spaced from each run's ``baseline_loss``
    (excluded: the trivial predictor) down to its ``target_loss`` (included),
    ``t_k = baseline * (target / baseline) ** (k / n_targets)``, ``k = 1..n_targets``.
    With ``factors``: ``t_k = target_loss * factors[k]`` (e.g. ``[100, 10, 1]``), as COCO's
    targets ``f_opt + 10^k``. Returns columns ``key, target_id, target`` (``target_id = k - 1``;
    the highest id is the task target when ``factors`` is None).
    """
    require_columns(trials, ["key", "target_loss", "baseline_loss"], "trials")
    keys = trials["key"].to_numpy()
    target = trials["target_loss"].to_numpy(dtype=float)
    if factors is not None:
        f = np.asarray(list(factors), dtype=float)
        if f.size == 0 or not np.all(np.isfinite(f)) or np.any(f <= 0):
            raise ValueError(f"factors must be a non-empty list of positive numbers, got {factors}")
        values = target[:, None] * f[None, :]
    else:
        if int(n_targets) < 1:
            raise ValueError(f"n_targets must be >= 1, got {n_targets}")
        base = trials["baseline_loss"].to_numpy(dtype=float)
        bad = ~((target > 0) & (base > target))
        if np.any(bad & np.isfinite(target) & np.isfinite(base)):
            raise ValueError(
                "target_ladder needs 0 < target_loss < baseline_loss in every trial; "
                f"violated for keys {list(keys[bad][:3])}"
            )
        k = np.arange(1, int(n_targets) + 1) / int(n_targets)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = base[:, None] * (target / base)[:, None] ** k[None, :]
    n_k = values.shape[1]
    return pd.DataFrame(
        {
            "key": np.repeat(keys, n_k),
            "target_id": np.tile(np.arange(n_k), len(keys)),
            "target": values.ravel(),
        }
    )


def _targets_frame(trials: pd.DataFrame, targets: object) -> pd.DataFrame:
    """The ``targets`` argument of :func:`time_to_target` as ``key, target_id, target``."""
    keys = trials["key"].to_numpy()
    if targets is None:
        require_columns(trials, ["target_loss"], "trials")
        return pd.DataFrame(
            {"key": keys, "target_id": 0, "target": trials["target_loss"].to_numpy(dtype=float)}
        )
    if isinstance(targets, pd.DataFrame):
        if "target" not in targets.columns:
            raise ValueError("a targets DataFrame needs a 'target' column")
        t = targets.copy()
        if "key" in t.columns:
            pass
        elif "problem" in t.columns:
            t = (
                trials[["key", "problem"]]
                .merge(t, on="problem", how="inner")
                .drop(columns="problem")
            )
        else:
            raise ValueError("a targets DataFrame needs a 'key' or a 'problem' column")
        if "target_id" not in t.columns:
            t["target_id"] = t.groupby("key").cumcount()
        return t[["key", "target_id", "target"]]
    values = np.atleast_1d(np.asarray(targets, dtype=float))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"targets must be None, a number, a list of numbers or a DataFrame; got {targets!r}"
        )
    return pd.DataFrame(
        {
            "key": np.repeat(keys, values.size),
            "target_id": np.tile(np.arange(values.size), len(keys)),
            "target": np.tile(values, len(keys)),
        }
    )


def _spent(trials: pd.DataFrame, trace: pd.DataFrame) -> pd.DataFrame:
    """Per run: total fe (trial counter, else last checkpoint) and seconds (last checkpoint)."""
    last = trace.groupby("key", sort=False)[["fe", "seconds"]].max()
    out = trials[["key"]].copy()
    out["spent_fe"] = trials["fe"].to_numpy(dtype=float) if "fe" in trials else np.nan
    out["spent_seconds"] = out["key"].map(last["seconds"]).to_numpy(dtype=float)
    fe_last = out["key"].map(last["fe"]).to_numpy(dtype=float)
    out["spent_fe"] = np.where(np.isnan(out["spent_fe"]), fe_last, out["spent_fe"])
    if "wall" in trials:
        out["spent_seconds"] = np.where(
            np.isnan(out["spent_seconds"]),
            trials["wall"].to_numpy(dtype=float),
            out["spent_seconds"],
        )
    out[["spent_fe", "spent_seconds"]] = out[["spent_fe", "spent_seconds"]].fillna(0.0)
    return out


def time_to_target(
    trials: pd.DataFrame,
    trace: pd.DataFrame,
    targets: None | float | Sequence[float] | pd.DataFrame = None,
) -> pd.DataFrame:
    """Cost to reach ``target`` per run and target: exact for the record's own target when the
    Problem recorded it, else the first checkpoint with best-so-far train loss ``<= target``.

    ``targets``: ``None`` uses each record's ``target_loss``; a number or a list of numbers is
    applied to every run; a DataFrame with ``key`` (or ``problem``) and ``target`` columns (and
    optionally ``target_id``) gives per-run (per-problem) targets, e.g. :func:`target_ladder`.

    Returns one row per (run, target): ``key, problem, optimizer, seed, target_id, target, hit,
    fe, seconds, spent_fe, spent_seconds``; ``fe`` and ``seconds`` are the hitting costs (NaN when
    not hit). Fully vectorised: since the best-so-far is monotone within a run, the first hit is
    found by one ``searchsorted`` over integer codes ``run * M + rank(-best)``.
    """
    require_columns(trials, ["key", "problem", "optimizer", "seed"], "trials")
    tr = best_so_far(trace)
    tg = _targets_frame(trials, targets)

    keys, run_of_row = np.unique(tr["key"].to_numpy(), return_inverse=True)
    if np.any(np.diff(run_of_row) < 0):  # keep rows grouped in np.unique's key order
        order = np.argsort(run_of_row, kind="stable")
        tr, run_of_row = tr.iloc[order].reset_index(drop=True), run_of_row[order]
    starts = np.searchsorted(run_of_row, np.arange(len(keys) + 1), side="left")
    q_run = np.searchsorted(keys, tg["key"].to_numpy()) if len(keys) else np.zeros(len(tg), int)
    known = q_run < len(keys)
    known[known] &= keys[q_run[known]] == tg["key"].to_numpy()[known]
    t = tg["target"].to_numpy(dtype=float)
    valid = known & ~np.isnan(t)

    neg_best = -tr["best"].to_numpy(dtype=float)
    values, codes = np.unique(np.concatenate([neg_best, -t[valid]]), return_inverse=True)
    m = len(values) + 1
    row_code = run_of_row.astype(np.int64) * m + codes[: len(neg_best)]
    q_code = q_run[valid].astype(np.int64) * m + codes[len(neg_best) :]
    pos = np.searchsorted(row_code, q_code, side="left")
    hit_valid = pos < starts[q_run[valid] + 1]

    hit = np.zeros(len(tg), dtype=bool)
    hit[valid] = hit_valid
    fe = np.full(len(tg), np.nan)
    sec = np.full(len(tg), np.nan)
    rows = pos[hit_valid]
    where = np.flatnonzero(valid)[hit_valid]
    fe[where] = tr["fe"].to_numpy(dtype=float)[rows]
    sec[where] = tr["seconds"].to_numpy(dtype=float)[rows]

    out = tg.assign(hit=hit, fe=fe, seconds=sec)
    meta = trials[["key", "problem", "optimizer", "seed"]].merge(_spent(trials, trace), on="key")
    out = meta.merge(out, on="key", how="inner")
    out = _exact_hits(trials, out)
    return out[
        ["key", "problem", "optimizer", "seed", "target_id", "target", "hit", "fe", "seconds"]
        + ["spent_fe", "spent_seconds"]
    ].reset_index(drop=True)


def _exact_hits(trials: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    """Replace the checkpoint hitting cost by the Problem's exact one (``fe_to_target``,
    ``seconds_to_target`` of trials with ``hit_exact``) where the target is the record's own."""
    cols = ["key", "target_loss", "fe_to_target", "seconds_to_target", "hit_exact"]
    if not set(cols) <= set(trials.columns) or out.empty:
        return out
    ex = out[["key", "target"]].merge(trials[cols], on="key", how="left")
    use = (
        ex["hit_exact"].fillna(False).to_numpy(dtype=bool)
        & (ex["target"].to_numpy(dtype=float) == ex["target_loss"].to_numpy(dtype=float))
        & ex["fe_to_target"].notna().to_numpy()
    )
    if not use.any():
        return out
    out = out.copy()
    out.loc[use, "hit"] = True
    out.loc[use, "fe"] = ex.loc[use, "fe_to_target"].to_numpy(dtype=float)
    out.loc[use, "seconds"] = ex.loc[use, "seconds_to_target"].to_numpy(dtype=float)
    return out


def success_rate(hits: pd.DataFrame, by: Sequence[str] = ("problem", "optimizer")) -> pd.DataFrame:
    """Fraction of runs that reached the target, per group and target.

    ``success_rate = successes / runs``. Returns ``*by, target_id, runs, successes, success_rate``.
    """
    require_columns(hits, [*by, "target_id", "hit"], "hits")
    g = hits.groupby([*by, "target_id"], sort=False, observed=True)["hit"]
    out = g.agg(runs="size", successes="sum").reset_index()
    out["success_rate"] = out["successes"] / out["runs"]
    return out


# --------------------------------------------------------------------------- ERT


def ert(cost: np.ndarray, success: np.ndarray) -> np.ndarray:
    """Expected running time (COCO): total cost of all runs divided by the number of successes.

    ``ERT = sum_i c_i / #{i: success_i}``, where ``c_i`` is the cost run ``i`` spent until it
    reached the target (successful run) or until it ended (unsuccessful run); ``inf`` when no run
    succeeded (Hansen et al. 2021, sec. 5; Price 1997). Works along the last axis, so a stack of
    bootstrap resamples ``[n_boot, n]`` gives ``[n_boot]`` values. Example: costs 10 and 20 to
    success and a failure that spent 30 give ``(10 + 20 + 30) / 2 = 30``.
    """
    cost = np.asarray(cost, dtype=float)
    success = np.asarray(success, dtype=bool)
    if cost.shape != success.shape:
        raise ValueError(f"cost {cost.shape} and success {success.shape} must have the same shape")
    n_succ = success.sum(axis=-1)
    total = cost.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_succ > 0, total / np.maximum(n_succ, 1), np.inf)


def ert_table(
    hits: pd.DataFrame,
    by: Sequence[str] = ("problem", "optimizer"),
    clock: str = "fe",
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """ERT per group and target with a bootstrap percentile interval.

    Each run's cost is its hitting cost on ``clock`` if it hit, else its spent cost. The interval
    resamples the group's runs with replacement (COCO's bootstrap of runs) and recomputes the ERT;
    a resample without a success has ERT ``inf``, so the upper bound is ``inf`` when failures are
    common. Returns ``*by, target_id, runs, successes, ert, ert_low, ert_high``.
    """
    check_clock(clock)
    require_columns(hits, [*by, "target_id", "hit", clock, f"spent_{clock}"], "hits")
    rng = as_generator(rng)
    cost = np.where(hits["hit"], hits[clock], hits[f"spent_{clock}"]).astype(float)
    frame = hits[[*by, "target_id", "hit"]].assign(_cost=cost)
    rows = []
    for name, g in frame.groupby([*by, "target_id"], sort=False, observed=True):
        c = g["_cost"].to_numpy()
        s = g["hit"].to_numpy(dtype=bool)
        data = np.stack([c, s.astype(float)], axis=1)
        lo, hi = bootstrap_ci(
            data,
            lambda d: ert(d[..., 0], d[..., 1] > 0),
            n_boot=n_boot,
            confidence=confidence,
            rng=rng,
        )
        rows.append((*name, len(c), int(s.sum()), float(ert(c, s)), lo, hi))
    cols = [*by, "target_id", "runs", "successes", "ert", "ert_low", "ert_high"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- paired comparison


def paired_comparison(
    trials: pd.DataFrame,
    reference: str,
    *,
    hits: pd.DataFrame | None = None,
    metric: str = "time",
    clock: str = "fe",
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Every optimizer against ``reference`` on the same seeds, per problem.

    Per seed ``i`` the value ``x_i`` of the optimizer and ``y_i`` of the reference are paired
    (same data, same start). ``metric="time"``: time-to-target on ``clock`` from ``hits`` (one
    target per run), a failure counting as ``+inf``; ``metric="final_train_loss"`` or
    ``"final_test_loss"``: the end-of-budget loss (NaN as ``+inf``). Pairs where both are ``inf``
    carry no information and are dropped (``n_both_inf``).

    * ``ratio``: median over pairs of ``x_i / y_i`` (``inf`` when the optimizer failed and the
      reference did not, 0 in the opposite case; the median is still defined); ``ratio_low``,
      ``ratio_high``: percentile bootstrap interval resampling pairs. ``< 1`` = optimizer better.
    * ``gmean_ratio``: geometric mean of ``x_i / y_i`` over pairs where both are finite.
    * ``p``: two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, zero differences
      dropped) on ``d_i = log x_i - log y_i`` (``+-inf`` differences rank as largest); ``p = 1``
      when every difference is zero. ``p_holm``: Holm-adjusted over all rows of the result.
    * ``effect``: matched-pairs rank-biserial correlation of ``d`` (:func:`rank_biserial`,
      ``+1`` = optimizer better on every pair) with bootstrap interval ``effect_low/high``.
    * ``n_better`` / ``n_worse``: pairs where the optimizer was strictly better / worse.

    Returns one row per (problem, optimizer) other than the reference.
    """
    check_clock(clock)
    check_confidence(confidence)
    rng = as_generator(rng)
    require_columns(trials, ["problem", "optimizer", "seed"], "trials")
    if metric == "time":
        if hits is None:
            raise ValueError("metric='time' needs the hits frame of time_to_target")
        require_columns(hits, ["problem", "optimizer", "seed", "target_id", "hit", clock], "hits")
        if hits.groupby(["problem", "optimizer", "seed"]).size().max() > 1:
            raise ValueError("paired_comparison needs one target per run; filter hits by target_id")
        vals = hits[["problem", "optimizer", "seed"]].assign(
            value=np.where(hits["hit"], hits[clock], np.inf).astype(float)
        )
    elif metric in ("final_train_loss", "final_test_loss"):
        require_columns(trials, [metric], "trials")
        vals = trials[["problem", "optimizer", "seed"]].assign(
            value=trials[metric].astype(float).fillna(np.inf)
        )
    else:
        raise ValueError(
            f"metric must be 'time', 'final_train_loss' or 'final_test_loss', got {metric!r}"
        )
    if reference not in set(vals["optimizer"]):
        raise ValueError(
            f"reference {reference!r} is not among the optimizers {sorted(set(vals['optimizer']))}"
        )
    ref = vals[vals["optimizer"] == reference].drop(columns="optimizer")
    other = vals[vals["optimizer"] != reference]
    pairs = other.merge(ref, on=["problem", "seed"], suffixes=("", "_ref"))

    rows = []
    for (problem, opt), g in pairs.groupby(["problem", "optimizer"], sort=False, observed=True):
        x = g["value"].to_numpy(float)
        y = g["value_ref"].to_numpy(float)
        both_inf = np.isinf(x) & np.isinf(y)
        x, y = x[~both_inf], y[~both_inf]
        row = {
            "problem": problem,
            "optimizer": opt,
            "reference": reference,
            "metric": metric if metric != "time" else f"time_{clock}",
            "n_pairs": len(g),
            "n_both_inf": int(both_inf.sum()),
        }
        d = log_ratio(x, y)
        if x.size == 0:
            row.update(ratio=np.nan, ratio_low=np.nan, ratio_high=np.nan, gmean_ratio=np.nan)
            row.update(p=np.nan, effect=np.nan, effect_low=np.nan, effect_high=np.nan)
            row.update(n_better=0, n_worse=0)
            rows.append(row)
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(d == 0, 1.0, x / y)
        both = np.isfinite(d)
        lo, hi = bootstrap_ci(
            ratio, lambda r: np.median(r, axis=1), n_boot=n_boot, confidence=confidence, rng=rng
        )
        elo, ehi = bootstrap_ci(d, rank_biserial, n_boot=n_boot, confidence=confidence, rng=rng)
        p = signed_rank_p(d)
        row.update(
            ratio=float(np.median(ratio)),
            ratio_low=lo,
            ratio_high=hi,
            gmean_ratio=float(np.exp(np.mean(d[both]))) if both.any() else np.nan,
            p=p,
            effect=float(rank_biserial(d)),
            effect_low=elo,
            effect_high=ehi,
            n_better=int((d < 0).sum()),
            n_worse=int((d > 0).sum()),
        )
        rows.append(row)
    cols = [
        "problem", "optimizer", "reference", "metric", "n_pairs", "n_both_inf", "n_better",
        "n_worse", "ratio", "ratio_low", "ratio_high", "gmean_ratio", "p", "p_holm", "effect",
        "effect_low", "effect_high",
    ]  # fmt: skip
    out = pd.DataFrame(rows, columns=[c for c in cols if c != "p_holm"])
    out["p_holm"] = holm(out["p"].to_numpy(float)) if len(out) else []
    return out[cols]
