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
from typing import Any

import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from suite.analysis.optima import CLASSES, analyse_records
from suite.analysis.verdicts.c2 import RULES, c3_pairs, gating_table, verdict_c2, verdict_c3
from suite.report.plots import (
    empty_figure,
    panel_grid,
    plain_log_axis,
    save_figure,
    short_title,
)
from suite.report.style import MODEL_COLORS, PALETTE, styled
from suite.report.tables import to_markdown, write_table
from suite.store import load_results

__all__ = [
    "CLASS_COLORS",
    "plot_basin_shares",
    "plot_class_counts",
    "plot_final_losses",
    "plot_stall_trend",
    "plot_c3_design",
    "plot_margin_sensitivity",
    "plot_saturation",
    "plot_trap_rates",
    "plot_twin_comparison",
    "write_optima_report",
]

CLASS_COLORS: dict[str, str] = {
    "minimum": PALETTE[0],
    "saddle": PALETTE[1],
    "plateau": PALETTE[4],
    "diverging": PALETTE[2],
    "unresolved": PALETTE[5],
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
    df["pair"] = df["rnn_study"] + " vs " + df["tdnn_study"].map(_study_short)
    stats_ = list(dict.fromkeys(df["statistic"]))
    pairs = list(dict.fromkeys(df["pair"]))
    fig = Figure(figsize=(3.2 * len(stats_) + 2.4, 0.45 * len(pairs) + 1.3), layout="constrained")
    axes = fig.subplots(1, len(stats_), sharey=True, squeeze=False)[0]
    y = np.arange(len(pairs))
    for ax, stat in zip(axes, stats_, strict=True):
        d = df[df["statistic"] == stat].set_index("pair").reindex(pairs)
        lo = (d["value"] - d["value_low"]).fillna(0).clip(lower=0)
        hi = (d["value_high"] - d["value"]).fillna(0).clip(lower=0)
        ax.errorbar(d["value"], y, xerr=np.vstack([lo, hi]), fmt="o", color=PALETTE[0], capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(f"{stat.replace('_', ' ')}\nRNN - TDNN")
    axes[0].set_yticks(y, [short_title(s, 60) for s in pairs], fontsize=6)
    axes[0].invert_yaxis()
    return fig


# ------------------------------------------------------------------- verdict measures (C2/C3)
def _interval_rows(ax: Any, labels: list[str], value: Any, low: Any, high: Any, color: str) -> None:
    y = np.arange(len(labels))
    v = np.asarray(value, dtype=float)
    lo = np.clip(v - np.asarray(low, dtype=float), 0, None)
    hi = np.clip(np.asarray(high, dtype=float) - v, 0, None)
    ax.errorbar(
        v,
        y,
        xerr=np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)]),
        fmt="o",
        color=color,
        capsize=3,
    )
    ax.set_yticks(y, labels, fontsize=7)
    if not ax.yaxis_inverted():
        ax.invert_yaxis()


def _task_panels(
    frame: pd.DataFrame, row_height: float
) -> tuple[Figure, list[tuple[Any, str, pd.DataFrame]]]:
    """One panel per task of ``frame`` (rows of interval plots, ``row_height`` inches per row):
    the figure and ``(axes, task, the task's rows)`` per panel, in the frame's task order."""
    tasks_ = list(dict.fromkeys(frame["task"]))
    fig = Figure(
        figsize=(7.5, row_height * len(frame) + 0.9 * len(tasks_) + 0.6), layout="constrained"
    )
    axes = fig.subplots(len(tasks_), 1, squeeze=False)[:, 0]
    return fig, [(ax, t, frame[frame["task"] == t]) for ax, t in zip(axes, tasks_, strict=True)]


@styled
def plot_trap_rates(gating: pd.DataFrame) -> Figure:
    """C2's own measure: trap rate over all starts (10% margin) with its 95% interval, one row
    per task / architecture, the size (hidden units, parameters) in the label."""
    if gating.empty:
        return empty_figure("no Elman / gated studies")
    fig, panels = _task_panels(gating, 0.32)
    for ax, task, g in panels:
        labels = [
            f"{r.architecture} H={r.hidden} ({r.params} p; vs elman H={r.elman_hidden})"
            for r in g.itertuples()
        ]
        for arch, col in (
            ("elman", MODEL_COLORS.get("elman", PALETTE[0])),
            ("gru", PALETTE[2]),
            ("lstm", PALETTE[3]),
        ):
            m = (g["architecture"] == arch).to_numpy()
            v = np.where(m, g["trap_rate"], np.nan)
            _interval_rows(
                ax,
                labels,
                v,
                np.where(m, g["trap_low"], np.nan),
                np.where(m, g["trap_high"], np.nan),
                col,
            )
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(short_title(task, 80), fontsize=8)
    panels[-1][0].set_xlabel("trap rate: stalled traps / all starts (10% margin), 95% bootstrap CI")
    return fig


@styled
def plot_margin_sensitivity(summary: pd.DataFrame) -> Figure:
    """Trap rate over all starts against the stall margin (1%, 5%, 10%, 20% of the gap to the
    baseline), mean over data draws, one line per task / model (size in the legend)."""
    cols = [c for c in summary.columns if c.startswith("trap_rate_")]
    if summary.empty or not cols:
        return empty_figure("no trap rates")
    margins = [int(c.split("_")[-1]) for c in cols]
    n_lines = summary["study"].str.split(" / ").str[:2].str.join(" / ").nunique()
    fig = Figure(figsize=(7.5, 3.6 + 0.09 * n_lines), layout="constrained")
    ax = fig.add_subplot()
    lab = summary["study"].str.split(" / ").str[:2].str.join(" / ")
    g = summary.assign(_lab=lab).groupby("_lab", sort=False)
    for i, (label, d) in enumerate(g):
        ax.plot(
            margins,
            d[cols].mean().to_numpy(),
            marker="o",
            color=PALETTE[i % len(PALETTE)],
            ls=["-", "--", ":", "-."][(i // len(PALETTE)) % 4],
            label=f"{short_title(label, 60)} ({int(d['params'].iloc[0])} p)",
        )
    ax.set_xlabel("stall margin (% of the gap between best loss and baseline)")
    ax.set_ylabel("trap rate (all starts)")
    ax.legend(fontsize=5, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    return fig


@styled
def plot_saturation(saturation: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Distinct optima (function-space clusters of minima) found among the first n starts,
    data draw 0, one line per study (size in the legend): a curve still rising at the right
    end says the starts did not find them all."""
    if saturation is None or saturation.empty:
        return empty_figure("no saturation curves")
    first = summary[summary["data_seed"] == summary["data_seed"].min()]
    fig = Figure(figsize=(7.5, 3.6 + 0.09 * len(first)), layout="constrained")
    ax = fig.add_subplot()
    for i, s in enumerate(first.itertuples()):
        d = saturation[saturation["study"] == s.study]
        if d.empty:
            continue
        ax.plot(
            d["n"],
            d["distinct"],
            marker=".",
            color=PALETTE[i % len(PALETTE)],
            ls=["-", "--", ":", "-."][(i // len(PALETTE)) % 4],
            label=f"{short_title(_study_short(s.study), 60)} ({s.params} p)",
        )
    ax.set_xscale("log")
    plain_log_axis(ax, "x")
    ax.set_xlabel("number of starts")
    ax.set_ylabel("distinct optima found")
    ax.legend(fontsize=5, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    return fig


def _study_short(study: str) -> str:
    return " / ".join(study.split(" / ")[:2])


@styled
def plot_c3_design(pairs: pd.DataFrame) -> Figure:
    """C3's own measure per pair: trap rate against the common reference, RNN - TDNN, with its
    paired 95% interval; filled markers: eligible pairs (both reach the target at least once),
    open: left out of the verdict. Sizes, parameters and windows in the labels."""
    if pairs.empty:
        return empty_figure("no RNN / TDNN pairs")
    fig, panels = _task_panels(pairs, 0.26)
    for ax, task, g in panels:
        labels = [
            f"elman H={r.rnn_hidden} ({r.rnn_params} p) - tdnn H={r.tdnn_hidden} "
            f"w={r.tdnn_window} ({r.tdnn_params} p)"
            for r in g.itertuples()
        ]
        el = g["eligible"].to_numpy(bool)
        for mask, col in ((el, PALETTE[0]), (~el, "0.7")):
            _interval_rows(
                ax,
                labels,
                np.where(mask, g["diff"], np.nan),
                np.where(mask, g["diff_low"], np.nan),
                np.where(mask, g["diff_high"], np.nan),
                col,
            )
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(short_title(task, 80) + " (grey: not eligible)", fontsize=8)
    panels[-1][0].set_xlabel("trap rate vs common reference, RNN - TDNN (95% paired bootstrap CI)")
    return fig


# ----------------------------------------------------------------------------------- reports
def write_optima_report(results_dir: str | os.PathLike[str], pdf: bool = False) -> list[Path]:
    """Tables, figures and ``REPORT.md`` of the ``"start"`` records of a results folder.

    Writes ``tables/optima_summary``, ``tables/optima_optima`` (the distinct optima),
    ``tables/optima_twins`` (RNN vs TDNN per draw), ``tables/optima_c3_pairs`` (the size x
    window design), ``tables/optima_gating`` (Elman vs GRU/LSTM), ``figures/optima_*.png`` and
    ``REPORT.md``; returns the paths. ValueError if the folder holds no start records.
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
    pairs = c3_pairs(a.starts, a.summary)
    pairs_out = pairs.drop(columns=[c for c in pairs.columns if c.startswith("_")])
    gating = gating_table(a.starts, a.summary)
    if not pairs_out.empty:
        paths += list(write_table(pairs_out, tables, "optima_c3_pairs").values())
    if not gating.empty:
        paths += list(write_table(gating, tables, "optima_gating").values())
    # per-study panels: the recurrent studies of the first data draw (TDNNs are in the tables)
    shown = a.summary[
        (a.summary["data_seed"] == a.summary["data_seed"].min()) & (a.summary["model"] != "tdnn")
    ]["study"]
    if shown.empty:
        shown = a.summary["study"]
    figs: dict[str, Figure] = {
        "optima_final_losses": plot_final_losses(a.starts[a.starts["study"].isin(shown)]),
        "optima_classes": plot_class_counts(a.summary),
        "optima_basins": plot_basin_shares(
            a.optima[a.optima["study"].isin(shown)] if len(a.optima) else a.optima
        ),
        "optima_trap_rates": plot_trap_rates(gating),
        "optima_margin_sensitivity": plot_margin_sensitivity(a.summary),
        "optima_saturation": plot_saturation(a.saturation, a.summary),
        "optima_c3_design": plot_c3_design(pairs),
    }
    n_pairs = a.comparison.groupby(["rnn_study", "tdnn_study"]).ngroups if len(a.comparison) else 0
    if 0 < n_pairs <= 24:  # one twin per study (older files); the design has its own figure
        figs["optima_twins"] = plot_twin_comparison(a.comparison)
    for x in ("seq_len", "spectral_radius"):
        if x in a.summary and a.summary[x].nunique() > 1:
            figs[f"optima_stall_vs_{x}"] = plot_stall_trend(a.summary, x)
    for name, fig in figs.items():
        paths += save_figure(fig, figures, name, pdf=pdf)
    paths.append(_write_markdown(directory, a, pairs_out, gating))
    return paths


def _md(frame: pd.DataFrame) -> str:
    return to_markdown(frame) if not frame.empty else "(none)"


def _write_markdown(directory: Path, a: Any, pairs: pd.DataFrame, gating: pd.DataFrame) -> Path:
    """``REPORT.md`` of an optima folder: classes, C2 per Elman size and architecture, the C3
    design, saturation; every table and figure computed from the stored records."""
    s = a.summary
    shares = s[
        [
            "study",
            "params",
            "n_starts",
            *[f"share_{c}" for c in CLASSES],
            "trap_rate_10",
            "n_distinct",
            "n_reached",
        ]
    ].copy()
    c2 = verdict_c2(a.starts, s, models=("elman",))
    c2g = verdict_c2(a.starts, s, models=("gru", "lstm"))
    c3 = verdict_c3(a.starts, s)
    cols = ["problem", "verdict", "effect", "ci_low", "ci_high", "n", "detail"]
    lines = [
        f"# Local optima: {directory.name}",
        "",
        "Generated by `rnnbench report` from the stored start records (kind `start`). Every end "
        "point is classified minimum / saddle / plateau / diverging valley / unresolved / "
        "diverged; rates are over all starts. Intervals: 95% percentile bootstrap over starts.",
        "",
        "## End-point classes per study",
        "",
        _md(shares.round(3)),
        "",
        "![classes](figures/optima_classes.png)",
        "",
        "![final losses](figures/optima_final_losses.png)",
        "",
        "## C2: trap rates (all starts)",
        "",
        f"**Rule.** {RULES['C2']}",
        "",
        _md(c2[cols] if not c2.empty else c2),
        "",
        "![trap rates](figures/optima_trap_rates.png)",
        "",
        "![margin sensitivity](figures/optima_margin_sensitivity.png)",
        "",
        "## Does gating change C2?",
        "",
        "Elman against the GRU and LSTM of matched parameter count, same data and seed indices; "
        "`minus_elman` is the paired difference of trap rates.",
        "",
        _md(c2g[cols] if not c2g.empty else c2g),
        "",
        _md(gating.round(3)),
        "",
        "## C3: size x window design",
        "",
        f"**Rule.** {RULES['C3']}",
        "",
        _md(c3[cols] if not c3.empty else c3),
        "",
        _md(pairs.round(3)),
        "",
        "![C3 design](figures/optima_c3_design.png)",
        "",
        "## Distinct optima: saturation",
        "",
        "Distinct optima are clusters of minima by the function they compute on the training "
        "inputs (RMS output difference <= 1% of the target scale, losses within 1e-3 of the "
        "baseline), after the hidden-unit symmetry canonicalisation.",
        "",
        "![saturation](figures/optima_saturation.png)",
        "",
    ]
    path = directory / "REPORT.md"
    path.write_text("\n".join(lines))
    return path
