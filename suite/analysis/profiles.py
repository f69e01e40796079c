"""Anytime views of a results folder: runtime ECDFs, fixed-budget losses, loss curves, the
anytime score and performance profiles (the fixed-target numbers -- time to target, ERT, paired
comparisons -- are in :mod:`suite.analysis.metrics`, whose conventions apply here too).

Every function takes the frames of :func:`suite.store.load_results` or of
:mod:`suite.analysis.metrics` and returns a tidy :class:`pandas.DataFrame`.

References

* N. Hansen, A. Auger, D. Brockhoff, T. Tusar (2022). Anytime performance assessment in
  blackbox optimization benchmarking. IEEE TEVC 26(6). (runtime ECDFs over target ladders)
* E. D. Dolan, J. J. More (2002). Benchmarking optimization software with performance profiles.
  Math. Program. 91(2). (performance profiles; also the AlgoPerf benchmark, Dahl et al. 2023)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from suite.analysis.metrics import best_so_far, check_clock, log_grid, require_columns

__all__ = [
    "aggregate_ecdf",
    "anytime_score",
    "cost_grid",
    "final_losses",
    "fixed_budget",
    "loss_curves",
    "performance_profile",
    "performance_ratios",
    "runtime_ecdf",
]

_BIG = 1e300  # finite stand-in for +inf inside interpolating quantiles


# --------------------------------------------------------------------------- ECDFs, budgets


def cost_grid(trace: pd.DataFrame, clock: str = "fe", points_per_decade: int = 20) -> np.ndarray:
    """A log grid over the positive costs of all checkpoints in ``trace`` (for ECDFs).

    Empty when the trace has no positive cost.
    """
    check_clock(clock)
    require_columns(trace, [clock], "trace")
    c = trace[clock].to_numpy(float)
    c = c[np.isfinite(c) & (c > 0)]
    return log_grid(c.min(), c.max(), points_per_decade) if c.size else np.array([], float)


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
    check_clock(clock)
    require_columns(hits, [*by, "hit", clock, f"spent_{clock}"], "hits")
    if grid is None:
        hit = hits["hit"].to_numpy(bool)
        c = np.concatenate(
            [hits[clock].to_numpy(float)[hit], hits[f"spent_{clock}"].to_numpy(float)]
        )
        c = c[np.isfinite(c) & (c > 0)]
        grid = log_grid(c.min(), c.max(), points_per_decade) if c.size else np.array([1.0])
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
    require_columns(ecdf, [over, "optimizer", "cost", "fraction"], "ecdf")
    g = ecdf.groupby(["optimizer", "cost"], sort=False, observed=True)
    return g.agg(fraction=("fraction", "mean"), problems=(over, "nunique")).reset_index()


def fixed_budget(trace: pd.DataFrame, budgets: Sequence[float], clock: str = "fe") -> pd.DataFrame:
    """Best-so-far train loss (and its test loss) at given budgets: the fixed-budget view.

    For each run and budget ``b``, the values at the last checkpoint with cost ``<= b`` (NaN if the
    run had no checkpoint by then); a run that ended before ``b`` keeps its final values.
    Returns ``key, problem, optimizer, seed, budget, train_loss, test_loss``.
    """
    check_clock(clock)
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
    require_columns(trials, [*cols, "final_train_loss", "final_test_loss"], "trials")
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
    check_clock(clock)
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
        grid = log_grid(c.min(), c.max(), points_per_decade)
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
    require_columns(trials, cols, "trials")
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
    # Python's pow per point (libm, correctly rounded at the ends: 10^-4 is the double 1e-4);
    # numpy 1.26's vectorised power gave B * 10^-4 = 0.9999999999999999 for B = 1e4, one ulp
    # before a checkpoint at 1 fe
    frac = np.array([10.0 ** (-decades + decades * j / (n - 1)) for j in range(n)])
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
        taus = log_grid(1.0, top, points_per_decade)
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
    require_columns(costs, ["problem", "optimizer", cost], "costs")
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
