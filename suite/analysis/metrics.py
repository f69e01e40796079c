"""Performance statistics over the tidy frames of a results folder.

Every function takes the frames of :func:`suite.store.load_results` (``trials``: one row per
trial, ``trace``: one row per checkpoint; columns in ``docs/architecture.md``) or a frame made by
another function of this module, and returns a tidy :class:`pandas.DataFrame`. Figures and tables
draw these frames; nothing is computed in a plot function.

Conventions used throughout

* **Best-so-far.** The trace's ``train_loss`` is the incumbent at each checkpoint; it is made
  monotone with a running minimum per run (NaN counts as ``+inf``).
* **Time to target.** The cost (``fe`` or ``seconds``) of the *first checkpoint* at which the
  best-so-far train loss is ``<= target``. Checkpoints lie on a log grid (10 per decade), so this
  is an upper bound of the exact hitting cost, at most ~26 % above it; every optimizer is measured
  on the same grid, so ratios are unbiased to that resolution.
* **Spent cost.** What a run used in total: the trial's ``fe`` counter, and for seconds the last
  checkpoint's ``seconds`` (the Problem's clock, checkpoint evaluations excluded); a run without a
  trace falls back on the trial's ``wall`` time.
* **Failures.** A run that never reaches the target has time-to-target ``+inf``. Runs with status
  ``error`` or ``diverged`` count as unsuccessful runs with the cost they spent (COCO counts every
  run that was started).
* **Bootstrap.** Percentile intervals from resampling runs (or seed pairs) with replacement,
  computed from order statistics without interpolation so that infinite resampled values (an ERT
  with no success in the resample) give a well-defined ``inf`` bound. Every bootstrap takes an
  explicit :class:`numpy.random.Generator`; ``rng=None`` means ``default_rng(0)`` so that tables
  are reproducible.

References

* N. Hansen, A. Auger, D. Brockhoff, T. Tusar (2022). Anytime performance assessment in
  blackbox optimization benchmarking. IEEE TEVC 26(6). (runtime ECDFs over target ladders)
* N. Hansen, A. Auger, O. Mersmann, T. Tusar, D. Brockhoff (2021). COCO: a platform for comparing
  continuous optimizers in a black-box setting. Optim. Methods Softw. 36(1). (ERT, bootstrap)
* E. D. Dolan, J. J. More (2002). Benchmarking optimization software with performance profiles.
  Math. Program. 91(2). (performance profiles; also the AlgoPerf benchmark, Dahl et al. 2023)
* S. Holm (1979). A simple sequentially rejective multiple test procedure. Scand. J. Stat. 6(2).
* D. S. Kerby (2014). The simple difference formula: an approach to teaching nonparametric
  correlation. Compr. Psychol. 3. (matched-pairs rank-biserial correlation)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "CLOCKS",
    "aggregate_ecdf",
    "anytime_score",
    "best_so_far",
    "bootstrap_ci",
    "cost_grid",
    "ert",
    "ert_table",
    "final_losses",
    "fixed_budget",
    "holm",
    "loss_curves",
    "paired_comparison",
    "performance_profile",
    "performance_ratios",
    "rank_biserial",
    "runtime_ecdf",
    "success_rate",
    "target_ladder",
    "time_to_target",
]

CLOCKS: tuple[str, ...] = ("fe", "seconds")
"""The two cost clocks: forward-equivalents and wall seconds."""

TRACE_COLUMNS = ("key", "problem", "optimizer", "seed", "fe", "seconds", "train_loss", "test_loss")
HIT_COLUMNS = ("key", "problem", "optimizer", "seed", "target_id", "hit", "fe", "seconds")

_BIG = 1e300  # finite stand-in for +inf inside interpolating quantiles


# --------------------------------------------------------------------------- helpers


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(frame.columns)}")


def _check_clock(clock: str) -> None:
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {list(CLOCKS)}, got {clock!r}")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


def _log_grid(lo: float, hi: float, points_per_decade: int) -> np.ndarray:
    """Log-spaced grid from ``lo`` to ``hi`` (both included), ``points_per_decade`` per decade."""
    if points_per_decade < 1:
        raise ValueError(f"points_per_decade must be >= 1, got {points_per_decade}")
    if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0 and hi > 0):
        return np.array([], dtype=float)
    if hi <= lo:
        return np.array([lo], dtype=float)
    n = max(2, int(np.ceil(points_per_decade * np.log10(hi / lo))) + 1)
    return np.logspace(np.log10(lo), np.log10(hi), n)


def bootstrap_ci(
    samples: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the rows of ``samples``.

    Draws ``n_boot`` resamples of the ``n`` rows with replacement (Efron & Tibshirani 1993, ch. 13),
    evaluates ``statistic`` on the stacked resamples ``samples[idx]`` of shape ``[n_boot, n, ...]``
    (it must reduce axis 1 and return ``[n_boot]``) and returns the ``(1 - confidence)/2`` and
    ``(1 + confidence)/2`` order statistics (``method="inverted_cdf"``: no interpolation, so
    infinite resampled values are handled). ``scipy.stats.bootstrap`` is not used because its
    interpolated percentiles turn ``inf`` into NaN. Empty ``samples`` give ``(nan, nan)``.
    """
    _check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    samples = np.asarray(samples)
    n = samples.shape[0]
    if n == 0:
        return (float("nan"), float("nan"))
    idx = _rng(rng).integers(0, n, size=(n_boot, n))
    values = np.asarray(statistic(samples[idx]), dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha], method="inverted_cdf")
    return (float(lo), float(hi))


# --------------------------------------------------------------------------- time to target


def best_so_far(trace: pd.DataFrame) -> pd.DataFrame:
    """The trace sorted by ``(key, fe)`` with a column ``best``: running minimum of ``train_loss``.

    NaN losses count as ``+inf``; the result is monotone non-increasing within each run.
    """
    _require(trace, TRACE_COLUMNS, "trace")
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
    _require(trials, ["key", "target_loss", "baseline_loss"], "trials")
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
        _require(trials, ["target_loss"], "trials")
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
    """Cost of the first checkpoint with best-so-far train loss ``<= target``, per run and target.

    ``targets``: ``None`` uses each record's ``target_loss``; a number or a list of numbers is
    applied to every run; a DataFrame with ``key`` (or ``problem``) and ``target`` columns (and
    optionally ``target_id``) gives per-run (per-problem) targets, e.g. :func:`target_ladder`.

    Returns one row per (run, target): ``key, problem, optimizer, seed, target_id, target, hit,
    fe, seconds, spent_fe, spent_seconds``; ``fe`` and ``seconds`` are the hitting costs (NaN when
    not hit). Fully vectorised: since the best-so-far is monotone within a run, the first hit is
    found by one ``searchsorted`` over integer codes ``run * M + rank(-best)``.
    """
    _require(trials, ["key", "problem", "optimizer", "seed"], "trials")
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
    return out[
        ["key", "problem", "optimizer", "seed", "target_id", "target", "hit", "fe", "seconds"]
        + ["spent_fe", "spent_seconds"]
    ].reset_index(drop=True)


def success_rate(hits: pd.DataFrame, by: Sequence[str] = ("problem", "optimizer")) -> pd.DataFrame:
    """Fraction of runs that reached the target, per group and target.

    ``success_rate = successes / runs``. Returns ``*by, target_id, runs, successes, success_rate``.
    """
    _require(hits, [*by, "target_id", "hit"], "hits")
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
    _check_clock(clock)
    _require(hits, [*by, "target_id", "hit", clock, f"spent_{clock}"], "hits")
    rng = _rng(rng)
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


# --------------------------------------------------------------------------- ECDFs, budgets


def cost_grid(trace: pd.DataFrame, clock: str = "fe", points_per_decade: int = 20) -> np.ndarray:
    """A log grid over the positive costs of all checkpoints in ``trace`` (for ECDFs).

    Empty when the trace has no positive cost.
    """
    _check_clock(clock)
    _require(trace, [clock], "trace")
    c = trace[clock].to_numpy(float)
    c = c[np.isfinite(c) & (c > 0)]
    return _log_grid(c.min(), c.max(), points_per_decade) if c.size else np.array([], float)


def runtime_ecdf(
    hits: pd.DataFrame,
    clock: str = "fe",
    *,
    grid: np.ndarray | None = None,
    points_per_decade: int = 20,
    by: Sequence[str] = ("problem", "optimizer"),
) -> pd.DataFrame:
    """Runtime ECDF (fixed-target view): fraction of (run, target) pairs hit by cost ``x``.

    ``F(x) = #{(i, k): run i hit target k at cost <= x} / #{(i, k)}`` over the runs and targets
    of a group (Hansen et al. 2022). The cost grid ``x`` is log-spaced over the range of hitting
    and spent costs in ``hits`` (shared by all groups) unless ``grid`` is given (e.g.
    :func:`cost_grid` of the trace, to start at the first checkpoint). Returns
    ``*by, cost, fraction, pairs``.
    """
    _check_clock(clock)
    _require(hits, [*by, "hit", clock, f"spent_{clock}"], "hits")
    if grid is None:
        hit = hits["hit"].to_numpy(bool)
        c = np.concatenate(
            [hits[clock].to_numpy(float)[hit], hits[f"spent_{clock}"].to_numpy(float)]
        )
        c = c[np.isfinite(c) & (c > 0)]
        grid = _log_grid(c.min(), c.max(), points_per_decade) if c.size else np.array([1.0])
    grid = np.sort(np.asarray(grid, dtype=float))
    parts = []
    for name, g in hits.groupby(list(by), sort=False, observed=True):
        name = name if isinstance(name, tuple) else (name,)
        h = np.sort(g.loc[g["hit"], clock].to_numpy(float))
        frac = np.searchsorted(h, grid, side="right") / len(g)
        part = pd.DataFrame({"cost": grid, "fraction": frac, "pairs": len(g)})
        for col, val in zip(by, name, strict=True):
            part.insert(len(part.columns) - 3, col, val)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*by, "cost", "fraction", "pairs"])
    return pd.concat(parts, ignore_index=True)


def aggregate_ecdf(ecdf: pd.DataFrame, over: str = "problem") -> pd.DataFrame:
    """Average runtime ECDFs over ``over`` (each problem weighted equally), per optimizer and cost.

    ``F_agg(x) = mean_p F_p(x)`` over the problems an optimizer ran on; the ECDFs must share a
    cost grid (as :func:`runtime_ecdf` makes them). Returns ``optimizer, cost, fraction,
    problems``.
    """
    _require(ecdf, [over, "optimizer", "cost", "fraction"], "ecdf")
    g = ecdf.groupby(["optimizer", "cost"], sort=False, observed=True)
    return g.agg(fraction=("fraction", "mean"), problems=(over, "nunique")).reset_index()


def fixed_budget(trace: pd.DataFrame, budgets: Sequence[float], clock: str = "fe") -> pd.DataFrame:
    """Best-so-far train loss (and its test loss) at given budgets: the fixed-budget view.

    For each run and budget ``b``, the values at the last checkpoint with cost ``<= b`` (NaN if the
    run had no checkpoint by then); a run that ended before ``b`` keeps its final values.
    Returns ``key, problem, optimizer, seed, budget, train_loss, test_loss``.
    """
    _check_clock(clock)
    b = np.sort(np.atleast_1d(np.asarray(budgets, dtype=float)))
    if b.size == 0 or np.any(~np.isfinite(b)) or np.any(b <= 0):
        raise ValueError(f"budgets must be positive finite numbers, got {budgets!r}")
    tr = best_so_far(trace)
    runs = tr.drop_duplicates("key")[["key", "problem", "optimizer", "seed"]]
    left = runs.loc[runs.index.repeat(b.size)].assign(budget=np.tile(b, len(runs)))
    left = left.sort_values("budget", kind="stable")
    right = tr[["key", clock, "best", "test_loss"]].rename(columns={clock: "budget"})
    right = right.sort_values("budget", kind="stable")
    out = pd.merge_asof(left, right, on="budget", by="key", direction="backward")
    out = out.rename(columns={"best": "train_loss"})
    out = out.sort_values(["key", "budget"], kind="stable").reset_index(drop=True)
    return out[["key", "problem", "optimizer", "seed", "budget", "train_loss", "test_loss"]]


def final_losses(trials: pd.DataFrame) -> pd.DataFrame:
    """Final (end-of-budget) train and test losses in long form, for box/strip plots.

    Returns ``key, problem, optimizer, seed, status, split, loss`` with ``split`` in
    ``{"train", "test"}``; non-finite losses are kept (``inf``) so the caller can count them.
    """
    cols = ["key", "problem", "optimizer", "seed", "status"]
    _require(trials, [*cols, "final_train_loss", "final_test_loss"], "trials")
    out = trials[[*cols, "final_train_loss", "final_test_loss"]].melt(
        id_vars=cols, var_name="split", value_name="loss"
    )
    out["split"] = out["split"].map({"final_train_loss": "train", "final_test_loss": "test"})
    return out


def _values_on_grid(tr: pd.DataFrame, grids: pd.DataFrame, clock: str, value: str) -> pd.DataFrame:
    """Step-interpolate ``value`` of each run onto grid points (last checkpoint at or before)."""
    left = grids.sort_values("cost", kind="stable")
    right = tr[["key", clock, value]].rename(columns={clock: "cost"}).sort_values("cost")
    return pd.merge_asof(left, right, on="cost", by="key", direction="backward")


def loss_curves(
    trace: pd.DataFrame,
    clock: str = "fe",
    *,
    value: str = "train_loss",
    points_per_decade: int = 10,
    quantiles: tuple[float, float, float] = (0.25, 0.5, 0.75),
) -> pd.DataFrame:
    """Median and interquartile band of the best-so-far loss vs cost, per problem and optimizer.

    Each run's best-so-far train loss (``value="train_loss"``) or its incumbent's test loss
    (``"test_loss"``) is step-interpolated onto a per-problem log grid of ``clock`` (the last
    checkpoint at or before each grid point; a finished run keeps its final value). Before a run's
    first checkpoint its value is undefined and counts as ``+inf``, so a quantile is NaN (not
    drawn) until enough runs have reported. Returns ``problem, optimizer, cost, low, median,
    high, runs`` (``low``/``high`` are the first and last of ``quantiles``).
    """
    _check_clock(clock)
    if value not in ("train_loss", "test_loss"):
        raise ValueError(f"value must be 'train_loss' or 'test_loss', got {value!r}")
    tr = best_so_far(trace)
    if value == "train_loss":
        tr["train_loss"] = tr["best"]
    runs = tr.drop_duplicates("key")[["key", "problem", "optimizer"]]
    pieces = []
    for problem, g in tr.groupby("problem", sort=False, observed=True):
        c = g[clock].to_numpy(float)
        c = c[np.isfinite(c) & (c > 0)]
        if c.size == 0:
            continue
        grid = _log_grid(c.min(), c.max(), points_per_decade)
        r = runs[runs["problem"] == problem]
        pieces.append(r.loc[r.index.repeat(grid.size)].assign(cost=np.tile(grid, len(r))))
    cols = ["problem", "optimizer", "cost", "low", "median", "high", "runs"]
    if not pieces:
        return pd.DataFrame(columns=cols)
    on_grid = _values_on_grid(tr, pd.concat(pieces, ignore_index=True), clock, value)
    v = on_grid[value].to_numpy(float)
    on_grid["_v"] = np.where(np.isfinite(v), v, _BIG)
    g = on_grid.groupby(["problem", "optimizer", "cost"], sort=False, observed=True)["_v"]
    q = g.quantile(list(quantiles)).unstack()
    q.columns = ["low", "median", "high"]
    q = q.where(q < _BIG / 10)
    q["runs"] = g.size()
    out = q.reset_index()[cols]
    # keep the problems and optimizers in the order they appear in the trace
    order = {k: pd.unique(trace[k]) for k in ("problem", "optimizer")}
    rank = [out[k].map({v: i for i, v in enumerate(order[k])}) for k in order]
    out = out.assign(_p=rank[0], _o=rank[1]).sort_values(["_p", "_o", "cost"], kind="stable")
    return out.drop(columns=["_p", "_o"]).reset_index(drop=True)


def anytime_score(
    trials: pd.DataFrame,
    trace: pd.DataFrame,
    *,
    decades: float = 4.0,
    points_per_decade: int = 10,
) -> pd.DataFrame:
    """Area over the convergence curve: one anytime number per run in ``[0, 1]``, lower is better.

    With ``L(x)`` the best-so-far train loss after ``x`` fe, ``L_0`` the run's baseline loss,
    ``L*`` its target loss and ``B`` its fe budget (if unset: the largest fe spent on that
    problem), the normalised gap is

        ``g(x) = clip(log10(L(x) / L*) / log10(L_0 / L*), 0, 1)``  (``g = 1`` before a checkpoint)

    and the score is its mean over the ``G = decades * points_per_decade + 1`` log-spaced points
    ``x_j = B * 10^(-decades + decades * j / (G - 1))``. Since ``1 - g(x)`` is the fraction of a
    log-uniform continuum of targets between ``L_0`` and ``L*`` that the run has reached by ``x``,
    the score is the area over the run's runtime ECDF in ``log10(fe)`` over the last ``decades``
    decades of the budget, divided by ``decades`` (Hansen et al. 2022, sec. 4): 0 means the target
    was reached by ``B * 10^-decades``, 1 means no improvement over the baseline. Returns
    ``key, problem, optimizer, seed, anytime``.
    """
    cols = ["key", "problem", "optimizer", "seed", "target_loss", "baseline_loss", "fe"]
    _require(trials, cols, "trials")
    if not decades > 0:
        raise ValueError(f"decades must be > 0, got {decades}")
    n = int(round(decades * points_per_decade)) + 1
    if n < 2:
        raise ValueError("decades * points_per_decade must be >= 1")
    runs = trials[cols + (["budget_fe"] if "budget_fe" in trials else [])].copy()
    budget = (
        runs["budget_fe"].astype(float) if "budget_fe" in runs else pd.Series(np.nan, runs.index)
    )
    fallback = runs.groupby("problem", sort=False)["fe"].transform("max").astype(float)
    runs["_B"] = budget.where(np.isfinite(budget) & (budget > 0), fallback)
    frac = 10.0 ** (-decades + decades * np.arange(n) / (n - 1))
    grids = pd.DataFrame(
        {
            "key": np.repeat(runs["key"].to_numpy(), n),
            "cost": (runs["_B"].to_numpy(float)[:, None] * frac[None, :]).ravel(),
        }
    )
    grids = grids[np.isfinite(grids["cost"])]
    tr = best_so_far(trace)
    on = _values_on_grid(tr, grids, "fe", "best").merge(
        runs[["key", "target_loss", "baseline_loss"]], on="key"
    )
    loss = on["best"].to_numpy(float)
    tgt = on["target_loss"].to_numpy(float)
    base = on["baseline_loss"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.log10(loss / tgt) / np.log10(base / tgt)
    gap = np.clip(np.where(np.isnan(loss), 1.0, gap), 0.0, 1.0)
    gap[~((tgt > 0) & (base > tgt))] = np.nan
    score = pd.Series(gap).groupby(on["key"].to_numpy()).mean()
    out = runs[["key", "problem", "optimizer", "seed"]].copy()
    out["anytime"] = out["key"].map(score).astype(float)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- profiles


def performance_profile(
    costs: pd.DataFrame,
    cost: str = "ert",
    *,
    taus: np.ndarray | None = None,
    points_per_decade: int = 50,
) -> pd.DataFrame:
    """Dolan-More performance profile of each optimizer across problems.

    With ``c_{p,s}`` the cost of optimizer ``s`` on problem ``p`` (e.g. its ERT or median
    time-to-target; ``inf``/NaN when it never succeeded or did not run) the performance ratio is
    ``r_{p,s} = c_{p,s} / min_s c_{p,s}`` (``inf`` if nobody solved ``p``) and the profile is
    ``rho_s(tau) = #{p: r_{p,s} <= tau} / #problems`` (Dolan & More 2002). ``taus`` defaults to a
    log grid from 1 to 1.05 times the largest finite ratio (at least 10). Returns ``optimizer,
    tau, fraction`` and, for tables, the ratios are available from :func:`performance_ratios`.
    """
    ratios = performance_ratios(costs, cost)
    problems = ratios["problem"].nunique()
    r = ratios["ratio"].to_numpy(float)
    if taus is None:
        finite = r[np.isfinite(r)]
        top = max(10.0, 1.05 * finite.max()) if finite.size else 10.0
        taus = _log_grid(1.0, top, points_per_decade)
    taus = np.sort(np.asarray(taus, dtype=float))
    rows = []
    for opt, g in ratios.groupby("optimizer", sort=False, observed=True):
        rr = np.sort(g["ratio"].to_numpy(float))
        frac = np.searchsorted(rr, taus, side="right") / problems
        rows.append(pd.DataFrame({"optimizer": opt, "tau": taus, "fraction": frac}))
    if not rows:
        return pd.DataFrame(columns=["optimizer", "tau", "fraction"])
    return pd.concat(rows, ignore_index=True)


def performance_ratios(costs: pd.DataFrame, cost: str = "ert") -> pd.DataFrame:
    """Performance ratios ``r_{p,s} = c_{p,s} / min_s c_{p,s}`` for every (problem, optimizer).

    Missing (problem, optimizer) pairs and NaN costs count as ``inf``. Returns ``problem,
    optimizer, cost, ratio``.
    """
    _require(costs, ["problem", "optimizer", cost], "costs")
    wide = costs.pivot_table(index="problem", columns="optimizer", values=cost, aggfunc="first")
    wide = wide.reindex(columns=pd.unique(costs["optimizer"])).astype(float).fillna(np.inf)
    best = wide.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = wide.div(best.where(np.isfinite(best) & (best > 0)), axis=0)
    ratio = ratio.where(np.isfinite(wide), np.inf).fillna(np.inf)
    ratio[(wide == 0).to_numpy()] = 1.0
    out = ratio.stack().rename("ratio").reset_index()
    out["cost"] = wide.stack().to_numpy()
    return out[["problem", "optimizer", "cost", "ratio"]]


# --------------------------------------------------------------------------- paired tests


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


def _log_ratio(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``log(x / y)`` (one rounding, so equal ratios tie exactly), 0 where ``x == y``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = np.log(x / y)
    d[(x == y)] = 0.0
    return d


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
    _check_clock(clock)
    _check_confidence(confidence)
    rng = _rng(rng)
    _require(trials, ["problem", "optimizer", "seed"], "trials")
    if metric == "time":
        if hits is None:
            raise ValueError("metric='time' needs the hits frame of time_to_target")
        _require(hits, ["problem", "optimizer", "seed", "target_id", "hit", clock], "hits")
        if hits.groupby(["problem", "optimizer", "seed"]).size().max() > 1:
            raise ValueError("paired_comparison needs one target per run; filter hits by target_id")
        vals = hits[["problem", "optimizer", "seed"]].assign(
            value=np.where(hits["hit"], hits[clock], np.inf).astype(float)
        )
    elif metric in ("final_train_loss", "final_test_loss"):
        _require(trials, [metric], "trials")
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
        d = _log_ratio(x, y)
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
        if np.all(d == 0):
            p = 1.0
        else:
            p = float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
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
