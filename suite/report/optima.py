"""Figures and tables of local-optimum studies (statements C2 and C3).

Every ``plot_*`` function draws a frame computed by :mod:`suite.analysis.optima` (or
:mod:`suite.analysis.twins`) and returns a :class:`matplotlib.figure.Figure` (no pyplot state;
Agg-safe); nothing is computed here beyond binning. :func:`write_optima_report` turns a results
folder into ``tables/optima_*.{csv,md}`` and ``figures/optima_*.png`` and returns the paths.

Example::

    from suite.report.optima import write_optima_report
    paths = write_optima_report("results/optima_demo")
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from suite.analysis.optima import analyse_records
from suite.report.plots import empty_figure, panel_grid, save_figure, short_title
from suite.report.style import MODEL_COLORS, PALETTE, styled
from suite.report.tables import write_table
from suite.store import load_results

__all__ = [
    "CLASS_COLORS",
    "plot_basin_shares",
    "plot_class_counts",
    "plot_final_losses",
    "plot_stall_trend",
    "plot_twin_comparison",
    "write_optima_report",
]

CLASS_COLORS: dict[str, str] = {
    "minimum": PALETTE[0],
    "saddle": PALETTE[1],
    "plateau": PALETTE[4],
    "unchecked": PALETTE[8],
    "not converged": PALETTE[5],
    "diverged": PALETTE[6],
}
"""One colour per end-point class."""


@styled
def plot_final_losses(starts: pd.DataFrame, bins: int = 40) -> Figure:
    """Histogram of final train losses per study (log-spaced bins), stacked by end-point class;
    the dashed line is the best loss, the dotted one the trivial predictor's loss."""
    if starts.empty:
        return empty_figure("no start records")
    studies = list(dict.fromkeys(starts["study"]))
    fig, axes = panel_grid(len(studies), ncols=2, width=4.4)
    finite = starts["loss"][np.isfinite(starts["loss"]) & (starts["loss"] > 0)]
    lo = max(float(finite.min()) if len(finite) else 1e-8, 1e-12)
    hi = max(float(finite.max()) if len(finite) else 1.0, lo * 10)
    edges = np.geomspace(lo * 0.9, hi * 1.1, bins + 1)
    for ax, study in zip(axes, studies, strict=True):
        df = starts[starts["study"] == study]
        data, labels, cols = [], [], []
        for cls, col in CLASS_COLORS.items():
            v = df.loc[(df["class"] == cls) & np.isfinite(df["loss"]), "loss"].clip(lower=edges[0])
            if len(v):
                data.append(v.to_numpy())
                labels.append(f"{cls} ({len(v)})")
                cols.append(col)
        if data:
            ax.hist(data, bins=edges, stacked=True, color=cols, label=labels)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(numticks=6))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        best = df.loc[df["class"] != "diverged", "loss"].min()
        if np.isfinite(best):
            ax.axvline(best, color="k", ls="--", lw=0.8)
        base = df["baseline_loss"].median()
        if np.isfinite(base):
            ax.axvline(base, color="k", ls=":", lw=0.8)
        ax.set_title(short_title(study), fontsize=8)
        ax.set_xlabel("final train loss")
        ax.set_ylabel("starts")
        ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("Final train loss of every start (dashed: best; dotted: trivial predictor)")
    return fig


@styled
def plot_class_counts(summary: pd.DataFrame) -> Figure:
    """Share of starts per end-point class, one horizontal stacked bar per study."""
    if summary.empty:
        return empty_figure("no studies")
    fig = Figure(figsize=(7.5, 0.45 * len(summary) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(summary))
    left = np.zeros(len(summary))
    for cls, col in CLASS_COLORS.items():
        key = f"n_{cls.replace(' ', '_')}"
        if key not in summary:
            continue
        frac = summary[key].to_numpy(dtype=float) / summary["n_starts"].to_numpy(dtype=float)
        ax.barh(y, frac, left=left, color=col, label=cls)
        left += frac
    ax.set_yticks(y, [short_title(s, 60) for s in summary["study"]], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of starts")
    ax.legend(ncols=3, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return fig


@styled
def plot_basin_shares(optima: pd.DataFrame, top: int = 12) -> Figure:
    """Basin shares of the ``top`` most popular optima per study, coloured by stall gap
    (0 = the best loss found, 1 = the trivial predictor's loss)."""
    if optima.empty:
        return empty_figure("no minima found")
    studies = list(dict.fromkeys(optima["study"]))
    fig, axes = panel_grid(len(studies), ncols=2, width=4.4)
    cmap = matplotlib.colormaps["viridis"]
    norm = mcolors.Normalize(0, 1)
    for ax, study in zip(axes, studies, strict=True):
        df = optima[optima["study"] == study].sort_values("share", ascending=False).head(top)
        x = np.arange(len(df))
        gap = df["stall_gap"].to_numpy(dtype=float).clip(0, 1)
        ax.bar(x, df["share"].to_numpy(dtype=float), color=cmap(norm(gap)))
        ax.set_xticks(x, [f"{v:.2g}" for v in df["loss"]], rotation=60, fontsize=6)
        ax.set_xlabel("optimum (its best train loss)")
        ax.set_ylabel("share of converged starts")
        ax.set_title(
            short_title(f"{study}: {int(optima['study'].eq(study).sum())} optima"), fontsize=8
        )
    fig.colorbar(matplotlib.cm.ScalarMappable(norm, cmap), ax=axes, label="stall gap", shrink=0.8)
    return fig


@styled
def plot_stall_trend(summary: pd.DataFrame, x: str = "seq_len") -> Figure:
    """Stall rate and distinct optima per converged start against ``x`` (``seq_len`` or
    ``spectral_radius``), one line per task/model/method."""
    if summary.empty or x not in summary or summary[x].nunique() < 2:
        return empty_figure(f"no variation in {x}")
    fig, axes = panel_grid(2, ncols=2, width=4.0)
    group_cols = ["task", "model", "method"] + (["spectral_radius"] if x == "seq_len" else [])
    frame = summary.copy()
    frame["spectral_radius"] = frame["spectral_radius"].astype(object)
    for i, (key, g) in enumerate(frame.groupby(group_cols, sort=False, dropna=False)):
        g = g.sort_values(x)
        label = " / ".join(str(k) for k in key if k is not None and k == k)
        color = MODEL_COLORS.get(g["model"].iloc[0], PALETTE[i % len(PALETTE)])
        ls = ["-", "--", ":", "-."][i % 4]
        for ax, col in zip(axes, ("stall_rate", "distinct_per_start"), strict=True):
            ax.plot(g[x], g[col], marker="o", color=color, ls=ls, label=label)
    for ax, col in zip(
        axes,
        ("stall rate (per converged start)", "distinct optima per converged start"),
        strict=True,
    ):
        ax.set_xlabel("sequence length T" if x == "seq_len" else "initial spectral radius of W_h")
        ax.set_ylabel(col)
        if x == "seq_len" and summary[x].max() / max(summary[x].min(), 1) >= 10:
            ax.set_xscale("log")
    axes[0].legend(fontsize=6)
    return fig


@styled
def plot_twin_comparison(comparison: pd.DataFrame) -> Figure:
    """RNN minus TDNN (difference, with its paired bootstrap interval) of each statistic,
    one row per RNN/TDNN pair: right of zero means more for the RNN (what C3 predicts)."""
    if comparison.empty:
        return empty_figure("no RNN/TDNN pairs")
    df = comparison[comparison["measure"] == "difference"].reset_index(drop=True)
    stats_ = list(dict.fromkeys(df["statistic"]))
    pairs = list(dict.fromkeys(df["rnn_study"]))
    fig = Figure(figsize=(3.2 * len(stats_) + 2.4, 0.45 * len(pairs) + 1.3), layout="constrained")
    axes = fig.subplots(1, len(stats_), sharey=True, squeeze=False)[0]
    y = np.arange(len(pairs))
    for ax, stat in zip(axes, stats_, strict=True):
        d = df[df["statistic"] == stat].set_index("rnn_study").reindex(pairs)
        lo = (d["value"] - d["value_low"]).fillna(0).clip(lower=0)
        hi = (d["value_high"] - d["value"]).fillna(0).clip(lower=0)
        ax.errorbar(d["value"], y, xerr=np.vstack([lo, hi]), fmt="o", color=PALETTE[0], capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(f"{stat.replace('_', ' ')}\nRNN - TDNN")
    axes[0].set_yticks(y, [short_title(s, 36) for s in pairs], fontsize=6)
    axes[0].invert_yaxis()
    return fig


# ----------------------------------------------------------------------------------- reports
def write_optima_report(results_dir: str | os.PathLike[str], pdf: bool = False) -> list[Path]:
    """Tables and figures of the ``"start"`` records of a results folder (C2/C3).

    Writes ``tables/optima_summary``, ``tables/optima_optima`` (the distinct optima),
    ``tables/optima_twins`` (RNN vs TDNN, when there are pairs) and ``figures/optima_*.png``;
    returns the paths. ValueError if the folder holds no start records.
    """
    directory = Path(results_dir)
    records = load_results(directory).records("start")
    if not records:
        raise ValueError(f"{directory} holds no start records: run a multistart experiment first")
    a = analyse_records(records)
    tables, figures = directory / "tables", directory / "figures"
    paths: list[Path] = []
    paths += list(write_table(a.summary, tables, "optima_summary").values())
    if not a.optima.empty:
        paths += list(write_table(a.optima, tables, "optima_optima").values())
    if not a.comparison.empty:
        paths += list(write_table(a.comparison, tables, "optima_twins").values())
    figs: dict[str, Figure] = {
        "optima_final_losses": plot_final_losses(a.starts),
        "optima_classes": plot_class_counts(a.summary),
        "optima_basins": plot_basin_shares(a.optima),
    }
    if not a.comparison.empty:
        figs["optima_twins"] = plot_twin_comparison(a.comparison)
    for x in ("seq_len", "spectral_radius"):
        if x in a.summary and a.summary[x].nunique() > 1:
            figs[f"optima_stall_vs_{x}"] = plot_stall_trend(a.summary, x)
    for name, fig in figs.items():
        paths += save_figure(fig, figures, name, pdf=pdf)
    return paths
