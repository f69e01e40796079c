"""Figures of a results folder, drawn from the frames of :mod:`suite.analysis.metrics` and
:mod:`suite.analysis.profiles`.

Every function takes a frame that an analysis function computed and only draws it (no statistics
here). Figures are plain :class:`matplotlib.figure.Figure` objects (no pyplot state, Agg-safe);
:func:`save_figure` writes PNG and, on request, PDF. Each optimizer has one colour, marker and
line style in every figure (:mod:`suite.report.style`); costs are on log axes with their units.

Example::

    from suite.analysis import profiles
    from suite.report import plots
    curves = profiles.loss_curves(results.trace, "fe")
    fig = plots.plot_loss_curves(curves, clock="fe")
    plots.save_figure(fig, "figures", "loss_fe")
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from suite.report.style import RC_PARAMS, clock_label, optimizer_style, styled

__all__ = [
    "plot_final_losses",
    "plot_loss_curves",
    "plot_performance_profile",
    "plot_runtime_ecdf",
    "plot_speed_ratios",
    "empty_figure",
    "panel_grid",
    "plain_log_axis",
    "save_figure",
    "short_title",
]


def save_figure(
    fig: Figure, directory: str | os.PathLike[str], name: str, *, pdf: bool = False
) -> list[Path]:
    """Save ``fig`` as ``directory/name.png`` (and ``.pdf`` if asked); returns the paths."""
    if not name or any(ch in name for ch in "/\\"):
        raise ValueError(f"figure name must be a plain file stem, got {name!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png"] + ([directory / f"{name}.pdf"] if pdf else [])
    with matplotlib.rc_context(RC_PARAMS):  # type: ignore[arg-type]  # keys typed as a Literal
        for path in paths:
            fig.savefig(path, metadata={"Software": None} if path.suffix == ".png" else None)
    return paths


def panel_grid(
    n: int, ncols: int = 3, width: float = 3.6, height: float = 2.8
) -> tuple[Figure, list]:
    """A figure of ``n`` panels, ``ncols`` per row, each ``width x height`` inches."""
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    return fig, axes


def short_title(text: str, width: int = 48) -> str:
    """``text`` wrapped to lines of at most ``width`` characters (a panel title)."""
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def empty_figure(message: str) -> Figure:
    """A small figure that only says ``message`` (nothing to draw)."""
    fig = Figure(figsize=(4, 2))
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


def plain_log_axis(ax: Any, which: str = "x") -> None:
    """Plain major tick labels on a log axis, no minor labels (they overlap)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _p: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _wrap(text: str, width: int = 42) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def _grid(
    n: int,
    legend: Sequence[str],
    *,
    ncols: int = 3,
    width: float = 3.6,
    height: float = 2.6,
    below: float = 0.6,
) -> tuple[Figure, list]:
    """A figure of ``n`` panels in a fixed layout (all sizes in inches).

    Margins are computed, not searched: matplotlib's constrained layout measures every tick
    label several times and takes seconds for a dozen log-scaled panels. ``below`` is the space
    under each panel for its tick labels and x label; the legend of ``legend`` labels goes on the
    right, outside the panels.
    """
    n = max(1, n)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    left, gap_w, top, title = 0.85, 0.95, 0.45, 0.5
    legend_w = 0.9 + 0.07 * max([len(str(s)) for s in legend] + [8])
    gap_h = below + title
    fig_w = left + ncols * width + (ncols - 1) * gap_w + legend_w
    fig_h = top + title + nrows * height + (nrows - 1) * gap_h + below
    fig = Figure(figsize=(fig_w, fig_h))
    right = (left + ncols * width + (ncols - 1) * gap_w) / fig_w
    grid = {
        "left": left / fig_w,
        "right": right,
        "bottom": below / fig_h,
        "top": 1 - (top + title) / fig_h,
        "wspace": gap_w / width,
        "hspace": gap_h / height,
    }
    axes = (
        np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, gridspec_kw=grid)).ravel().tolist()
    )
    for ax in axes[n:]:
        ax.set_visible(False)
    fig._rnnbench_legend_x = right + 0.15 / fig_w  # type: ignore[attr-defined]
    return fig, axes[:n]


def _legend(fig: Figure, optimizers: Sequence[str], extra: Sequence[Line2D] = ()) -> None:
    handles = [
        Line2D([], [], label=o, markersize=5, **optimizer_style(o).kwargs()) for o in optimizers
    ]
    handles += list(extra)
    x = getattr(fig, "_rnnbench_legend_x", None)
    if x is None:  # a constrained-layout figure: let the engine make room
        fig.legend(handles=handles, loc="outside right center", title="optimizer", frameon=False)
    else:
        fig.legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(x, 0.5),
            title="optimizer",
            frameon=False,
        )


def _suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (about 13 characters per inch at 10 pt)."""
    width = int(fig.get_figwidth() * 13)
    text = "\n".join(textwrap.wrap(text, max(30, width)))
    if getattr(fig, "_rnnbench_legend_x", None) is None:
        fig.suptitle(text)
    else:
        fig.suptitle(text, y=1 - 0.08 / fig.get_figheight(), va="top")


def _plain_ticks(v: float, _pos: object = None) -> str:
    return f"{v:.3g}"


def _sparse_ticks(v: float, _pos: object = None) -> str:
    """Label only the 2x and 5x minor ticks of a decade (as matplotlib does over ~1 decade)."""
    if v <= 0:
        return ""
    mantissa = v / 10 ** math.floor(math.log10(v) + 1e-9)
    return (
        f"{v:.3g}" if round(mantissa) in (2, 5) and abs(mantissa - round(mantissa)) < 1e-6 else ""
    )


def _minor_labels(axis: Any) -> ticker.Formatter:
    """Minor tick labels decided when the axis is drawn, from its final view: the 2x and 5x of
    each decade under 1.5 decades (:func:`_sparse_ticks`), none over it (matplotlib's own
    minor labels at 1.5-2 decades overlap in a narrow panel)."""

    def fmt(v: float, _pos: object = None) -> str:
        low, high = sorted(axis.get_view_interval())
        if low <= 0 or np.log10(high / low) >= 1.5:
            return ""
        return _sparse_ticks(v)

    return ticker.FuncFormatter(fmt)


def _tidy_log(ax: Any) -> None:
    """Readable ticks on log axes: under one decade, about 5 evenly spaced plain numbers (0.16,
    not 1.6 x 10^-1); up to 1.5 decades, plain labels on the decades and their 2x and 5x; wider
    axes keep matplotlib's powers of ten, and beyond 4 decades at most 7 of them and no minor
    ticks. An axis over :data:`MAX_DECADES` decades shows its top :data:`MAX_DECADES` (values
    below, e.g. a loss of 1e-250 on parity, are off the axis)."""
    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log" or min(lim) <= 0:
            continue
        decades = np.log10(max(lim) / min(lim))
        if decades < 1.0:  # under a decade: evenly spaced plain ticks read best
            axis.set_major_locator(ticker.MaxNLocator(nbins=5))
            axis.set_minor_locator(ticker.NullLocator())
            axis.set_major_formatter(ticker.FuncFormatter(_plain_ticks))
        elif decades < 1.5:
            axis.set_major_formatter(ticker.FuncFormatter(_plain_ticks))
            axis.set_minor_formatter(_minor_labels(axis))
        elif decades <= 4:  # the limits may still change before drawing: decide then
            axis.set_minor_formatter(_minor_labels(axis))
        else:
            # minor ticks of many decades cost seconds per figure and add nothing readable
            axis.set_major_locator(ticker.LogLocator(numticks=7))
            axis.set_minor_locator(ticker.NullLocator())
        if decades > MAX_DECADES:  # e.g. a loss of 1e-250: keep the top MAX_DECADES decades
            low, high = sorted(lim)
            low = high / 10**MAX_DECADES
            if axis is ax.yaxis:
                ax.set_ylim(low, high) if lim[0] < lim[1] else ax.set_ylim(high, low)
            else:
                ax.set_xlim(low, high) if lim[0] < lim[1] else ax.set_xlim(high, low)


MAX_DECADES = 11.9
"""The widest log axis drawn (decades): beyond ~12 decades the interesting range is a sliver."""

MAX_FIGURE_WIDTH = 17.0
"""The widest figure (inches): 2210 px at the saved 130 dpi."""


def _fmt_edge(v: float) -> str:
    return "∞" if np.isinf(v) else f"{v:.3g}"


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(frame.columns)}")


def _order(frame: pd.DataFrame, column: str) -> list:
    return list(pd.unique(frame[column]))


@styled
def plot_loss_curves(
    curves: pd.DataFrame,
    clock: str = "fe",
    *,
    targets: Mapping[str, float] | None = None,
    ylabel: str = "best-so-far train loss",
    title: str | None = None,
) -> Figure:
    """Median (line) and interquartile band of the loss vs cost, one log-log panel per problem.

    ``curves`` is :func:`profiles.loss_curves`; ``targets`` maps a problem to its success target,
    drawn as a dashed line.
    """
    _require(curves, ["problem", "optimizer", "cost", "low", "median", "high"], "curves")
    problems = _order(curves, "problem")
    optimizers = _order(curves, "optimizer")
    fig, axes = _grid(len(problems), [*optimizers, "target"])
    for ax, problem in zip(axes, problems, strict=False):
        sub = curves[curves["problem"] == problem]
        for opt in optimizers:
            c = sub[sub["optimizer"] == opt]
            if c.empty:
                continue
            st = optimizer_style(opt)
            ax.fill_between(c["cost"], c["low"], c["high"], color=st.color, alpha=0.18, lw=0)
            ax.plot(c["cost"], c["median"], **st.kwargs(), markevery=max(1, len(c) // 6), label=opt)
        target = targets.get(problem, np.nan) if targets else np.nan
        if np.isfinite(target):
            ax.axhline(target, color="0.3", linestyle="--", linewidth=1.0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        positive = sub["median"][sub["median"] > 0]
        label = ylabel
        if np.isfinite(target) and target > 0 and len(positive):
            # losses that fall to round-off (1e-30 and below) would squash the panel: show
            # at most 8 decades below the target, say so in the label
            floor = target * 1e-8
            if float(positive.min()) < floor:
                ax.set_ylim(bottom=floor)
                label = f"{ylabel}\n(axis cut at target x 1e-8)"
        ax.set_xlabel(clock_label(clock))
        ax.set_ylabel(label)
        ax.set_title(_wrap(problem))
        _tidy_log(ax)
    extra = []
    if targets:
        extra.append(Line2D([], [], color="0.3", linestyle="--", label="target"))
    _legend(fig, optimizers, extra)
    _suptitle(
        fig,
        title
        or f"{ylabel[:1].upper()}{ylabel[1:]} vs {clock_label(clock)}: median and IQR over seeds",
    )
    return fig


@styled
def plot_runtime_ecdf(
    ecdf: pd.DataFrame,
    clock: str = "fe",
    *,
    aggregated: pd.DataFrame | None = None,
    title: str | None = None,
) -> Figure:
    """Runtime ECDFs (fixed-target view): one panel per problem, plus one for all problems.

    ``ecdf`` is :func:`profiles.runtime_ecdf`; ``aggregated`` is :func:`profiles.aggregate_ecdf`.
    """
    _require(ecdf, ["problem", "optimizer", "cost", "fraction"], "ecdf")
    problems = _order(ecdf, "problem")
    optimizers = _order(ecdf, "optimizer")
    panels: list[tuple[str, pd.DataFrame]] = [(p, ecdf[ecdf["problem"] == p]) for p in problems]
    if aggregated is not None and len(problems) > 1:
        panels.append((f"all {len(problems)} problems (mean)", aggregated))
    fig, axes = _grid(len(panels), optimizers)
    for ax, (name, sub) in zip(axes, panels, strict=False):
        for opt in optimizers:
            c = sub[sub["optimizer"] == opt]
            if c.empty:
                continue
            st = optimizer_style(opt)
            ax.plot(
                c["cost"],
                c["fraction"],
                drawstyle="steps-post",
                markevery=max(1, len(c) // 6),
                **st.kwargs(),
            )
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(clock_label(clock))
        ax.set_ylabel("fraction of (run, target) pairs hit")
        ax.set_title(_wrap(name))
        _tidy_log(ax)
    _legend(fig, optimizers)
    _suptitle(fig, title or f"Runtime ECDF over a ladder of targets ({clock_label(clock)})")
    return fig


@styled
def plot_final_losses(
    final: pd.DataFrame,
    split: str = "train",
    *,
    targets: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Box plots with every seed's point of the end-of-budget loss, one panel per problem.

    ``final`` is :func:`profiles.final_losses` (or any frame with ``problem, optimizer, split,
    loss``). Points are spread deterministically (no random jitter); non-finite losses are not
    drawn and are counted in the x tick label.
    """
    _require(final, ["problem", "optimizer", "split", "loss"], "final")
    if split not in set(final["split"]):
        raise ValueError(f"split {split!r} not in the frame; it has {sorted(set(final['split']))}")
    data = final[final["split"] == split]
    problems = _order(data, "problem")
    optimizers = _order(data, "optimizer")
    longest = max([len(o) for o in optimizers] + [10])
    width = max(3.6, 0.32 * len(optimizers) + 1.2)  # labels stand upright: 0.32 in each
    legend_w = 0.9 + 0.07 * max([len(str(o)) for o in optimizers] + [8])
    ncols = max(1, min(3, int((MAX_FIGURE_WIDTH - 0.85 - legend_w + 0.95) // (width + 0.95))))
    fig, axes = _grid(
        len(problems),
        [*optimizers, "target"],
        ncols=ncols,
        width=width,
        below=0.45 + 0.065 * longest + 0.3 * (not np.isfinite(data["loss"].to_numpy(float)).all()),
    )
    for ax, problem in zip(axes, problems, strict=False):
        sub = data[data["problem"] == problem]
        labels = []
        for i, opt in enumerate(optimizers):
            v = sub.loc[sub["optimizer"] == opt, "loss"].to_numpy(float)
            finite = v[np.isfinite(v) & (v > 0)]
            st = optimizer_style(opt)
            bad = v.size - finite.size
            labels.append(opt + (f"\n({bad} non-finite)" if bad else ""))
            if finite.size == 0:
                continue
            ax.boxplot(
                finite,
                positions=[i],
                widths=0.55,
                showfliers=False,
                medianprops={"color": st.color, "linewidth": 2},
                boxprops={"color": st.color},
                whiskerprops={"color": st.color},
                capprops={"color": st.color},
            )
            offsets = np.linspace(-0.18, 0.18, finite.size) if finite.size > 1 else np.zeros(1)
            ax.plot(
                i + offsets,
                finite,
                linestyle="none",
                marker=st.marker,
                color=st.color,
                alpha=0.7,
                markersize=4,
            )
        if targets and problem in targets and np.isfinite(targets[problem]):
            ax.axhline(targets[problem], color="0.3", linestyle="--", linewidth=1.0)
        ax.set_xticks(range(len(optimizers)), labels, rotation=90, ha="center")
        ax.set_yscale("log")
        ax.set_ylabel(f"final {split} loss")
        ax.set_title(_wrap(problem))
        _tidy_log(ax)
    extra = [Line2D([], [], color="0.3", linestyle="--", label="target")] if targets else []
    _legend(fig, optimizers, extra)
    _suptitle(fig, title or f"Final {split} loss at the end of the budget (one point per seed)")
    return fig


@styled
def plot_performance_profile(
    profile: pd.DataFrame, *, cost_label: str = "ERT (fe)", title: str | None = None
) -> Figure:
    """Dolan-More performance profiles: fraction of problems within ``tau`` times the best.

    ``profile`` is :func:`profiles.performance_profile`.
    """
    _require(profile, ["optimizer", "tau", "fraction"], "profile")
    optimizers = _order(profile, "optimizer")
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    for opt in optimizers:
        c = profile[profile["optimizer"] == opt]
        ax.plot(
            c["tau"],
            c["fraction"],
            drawstyle="steps-post",
            markevery=max(1, len(c) // 8),
            **optimizer_style(opt).kwargs(),
        )
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"τ: {cost_label} relative to the best optimizer on the problem")
    ax.set_ylabel("fraction of problems")
    _tidy_log(ax)
    _suptitle(fig, title or f"Performance profile across problems ({cost_label})")
    _legend(fig, optimizers)
    return fig


@styled
def plot_speed_ratios(
    paired: pd.DataFrame,
    *,
    column: str = "ratio",
    xlabel: str = "median time-to-target ratio vs reference (fe)",
    title: str | None = None,
) -> Figure:
    """Paired ratios with their intervals on a log axis (1 = as fast as the reference).

    ``paired`` is :func:`metrics.paired_comparison` (or a table with ``problem, optimizer,
    column, column_low, column_high``). Infinite ratios (the optimizer failed where the reference
    succeeded) are drawn as arrows at the right edge, zero ratios at the left edge.
    """
    lo_col, hi_col = f"{column}_low", f"{column}_high"
    _require(paired, ["problem", "optimizer", column, lo_col, hi_col], "paired")
    data = paired.reset_index(drop=True)
    optimizers = _order(data, "optimizer")
    n = len(data)
    fig = Figure(figsize=(7.2, 0.9 + 0.32 * max(n, 2)), layout="constrained")
    ax = fig.subplots()
    vals = data[[column, lo_col, hi_col]].to_numpy(float)
    finite = vals[np.isfinite(vals) & (vals > 0)]
    lo_lim = min(finite.min() / 2, 0.5) if finite.size else 0.1
    hi_lim = max(finite.max() * 2, 2.0) if finite.size else 10.0
    ypos = np.arange(n)[::-1]
    labels = []
    problems = list(pd.unique(data["problem"]))
    for y, problem in zip(ypos, data["problem"], strict=True):
        if problems.index(problem) % 2 == 1:  # shade every other problem's rows
            ax.axhspan(y - 0.5, y + 0.5, color="0.93", zorder=0, linewidth=0)
    for y, row in zip(ypos, data.itertuples(index=False), strict=True):
        r = row._asdict()
        st = optimizer_style(r["optimizer"])
        v, lo, hi = (float(r[column]), float(r[lo_col]), float(r[hi_col]))
        lo_c = min(max(lo, lo_lim), hi_lim) if not math.isnan(lo) else np.nan
        hi_c = min(max(hi, lo_lim), hi_lim) if not math.isnan(hi) else np.nan
        ax.plot([lo_c, hi_c], [y, y], color=st.color, linewidth=2, alpha=0.6)
        if math.isnan(v):
            pass
        elif v >= hi_lim:
            ax.plot(hi_lim, y, marker=">", color=st.color, markersize=8, linestyle="none")
            ax.annotate(
                _fmt_edge(v),
                (hi_lim, y),
                xytext=(-4, 5),
                textcoords="offset points",
                ha="right",
                fontsize=7,
                color=st.color,
            )
        elif v <= lo_lim:
            ax.plot(lo_lim, y, marker="<", color=st.color, markersize=8, linestyle="none")
            ax.annotate(
                _fmt_edge(v),
                (lo_lim, y),
                xytext=(4, 5),
                textcoords="offset points",
                ha="left",
                fontsize=7,
                color=st.color,
            )
        else:
            ax.plot(v, y, marker=st.marker, color=st.color, markersize=7, linestyle="none")
        labels.append(f"{_wrap(r['problem'], 48)}\n{r['optimizer']}")
    ax.axvline(1.0, color="0.2", linestyle="--", linewidth=1.0)
    ax.set_xscale("log")
    ax.set_xlim(lo_lim / 1.3, hi_lim * 1.3)
    ax.set_yticks(ypos, labels, fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    _tidy_log(ax)
    ax.set_xlabel(xlabel + "; < 1: faster; arrows: 0 or ∞")
    ref = ", ".join(pd.unique(data["reference"])) if "reference" in data else "reference"
    _suptitle(fig, title or f"Paired ratios vs {ref} (median over seeds, 95% bootstrap CI)")
    _legend(fig, optimizers, [Line2D([], [], color="0.2", linestyle="--", label=f"= {ref}")])
    return fig
