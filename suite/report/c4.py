"""Figures of the two C4 verdicts, each drawing the verdict's own measure with its interval.

* :func:`plot_chaos_shares` (C4a): share of networks with a positive largest Lyapunov exponent
  per initial gain, at the start and after training, driven and autonomous, with the
  Sompolinsky random networks as the calibration;
* :func:`plot_trend_forest` (C4b): the Spearman trends of prominent minima (fixed-radius and
  filter-normalised lines) and of stall gaps with T and with the spectral radius, per stratum
  and their mean, with stratified bootstrap intervals;
* :func:`plot_prominence_sensitivity` (C4b): the mean trends against the prominence threshold;
* :func:`landscape_markdown`: the lines of the landscape experiment's ``REPORT.md``.

Frames come from :mod:`suite.analysis.verdicts.c4` and :mod:`suite.analysis.landscape`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from suite.analysis.landscape import LandscapeAnalysis
from suite.analysis.verdicts.c4 import (
    C4A_SHARE,
    C4A_SHARE_LOW,
    C4B_RHO,
    LIMITS,
    LYAP_EPS,
    RULES,
    chaos_shares,
)
from suite.report.plots import empty_figure, panel_grid
from suite.report.style import PALETTE, styled
from suite.report.tables import format_number, to_markdown

__all__ = [
    "landscape_markdown",
    "plot_chaos_shares",
    "plot_prominence_sensitivity",
    "plot_trend_forest",
    "share_table",
    "verdict_lines",
]

_SERIES = (
    ("init", "driven", "o", "-", 0),
    ("init", "autonomous", "o", ":", 0),
    ("trained", "driven", "s", "-", 1),
    ("trained", "autonomous", "s", ":", 1),
)


@styled
def plot_chaos_shares(shares: pd.DataFrame, reference: pd.DataFrame | None = None) -> Figure:
    """C4a: share of Elman networks with ``lambda_max > eps`` against the initial gain (spectral
    radius of ``W_h`` at the start), one panel per task, 95% intervals as error bars; the
    Sompolinsky networks (``tanh(W h)``, ``N = 200``) in black as the calibration."""
    if shares.empty:
        return empty_figure("no Lyapunov records")
    tasks = list(dict.fromkeys(shares["task"]))
    fig, axes = panel_grid(len(tasks), ncols=2, width=4.4, height=3.3)
    for ax, task in zip(axes, tasks, strict=True):
        s = shares[(shares["task"] == task) & (shares["gain"] != "all")].copy()
        s["g"] = s["gain"].astype(float)
        for k, (where, drive, marker, ls, color) in enumerate(_SERIES):
            d = s[(s["where"] == where) & (s["drive"] == drive)].sort_values("g")
            if d.empty:
                continue
            shift = (k - 1.5) * 0.015 * max(float(s["g"].max()), 1.0)
            ax.errorbar(
                d["g"] + shift,
                d["share"],
                yerr=[d["share"] - d["low"], d["high"] - d["share"]],
                marker=marker,
                ls=ls,
                color=PALETTE[color],
                capsize=2,
                ms=4,
                label=f"Elman H={d['hidden'].iloc[0]}, {where}, {drive} "
                f"(n={int(d['n'].iloc[0])}/gain)",
            )
        if reference is not None and not reference.empty:
            r = reference.sort_values("gain")
            ax.errorbar(
                r["gain"],
                r["share"],
                yerr=[r["share"] - r["low"], r["high"] - r["share"]],
                marker="x",
                color="k",
                capsize=2,
                label=f"Sompolinsky N=200 (n={int(r['n'].iloc[0])}/gain)",
            )
        ax.axhline(C4A_SHARE, color="0.4", lw=0.7, ls="--", label=f"support: {C4A_SHARE:g}")
        ax.axhline(
            C4A_SHARE_LOW, color="0.6", lw=0.7, ls="-.", label=f"refute below {C4A_SHARE_LOW:g}"
        )
        ax.axvline(1.0, color="0.6", lw=0.5, ls=":")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("gain g (initial spectral radius of W_h)")
        ax.set_ylabel(f"share with lambda_max > {LYAP_EPS:g}")
        ax.set_title(f"C4a chaos: {task}", fontsize=9)
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=6
    )
    return fig


_METRIC_LABELS = {
    "minima_fixed": "minima, fixed-radius lines",
    "minima": "minima, filter-normalised lines",
    "stall_gap": "stall gap (trained)",
}


@styled
def plot_trend_forest(
    trends: pd.DataFrame, metrics: tuple[str, ...] = tuple(_METRIC_LABELS)
) -> Figure:
    """C4b: Spearman rho (95% stratified bootstrap interval) of each measure with T within
    each spectral radius and with the radius within each T, and the mean over strata (filled,
    the value the verdict uses); one panel per task, Elman networks; roughness at the start,
    stall gaps after training."""
    if trends.empty or "stratum" not in trends:
        return empty_figure("no trends")
    t = trends[(trends["model"] == "elman") & trends["metric"].isin(metrics)]
    t = t[
        ((t["metric"] == "stall_gap") & (t["where"] == "trained"))
        | ((t["metric"] != "stall_gap") & (t["where"] == "init"))
    ]
    if t.empty:
        return empty_figure("no Elman trends")
    tasks = list(dict.fromkeys(t["task"]))
    n_rows = max(len(t[t["task"] == task]) for task in tasks)
    fig, axes = panel_grid(len(tasks), ncols=2, width=6.0, height=0.9 + 0.17 * n_rows)
    for ax, task in zip(axes, tasks, strict=True):
        d = t[t["task"] == task]
        labels: list[str] = []
        y = 0.0
        for m_i, metric in enumerate(metrics):
            for against in ("seq_len", "spectral_radius"):
                g = d[(d["metric"] == metric) & (d["against"] == against)]
                if g.empty:
                    continue
                g = pd.concat([g[g["stratum"] != "mean"], g[g["stratum"] == "mean"]])
                for r in g.itertuples():
                    mean = r.stratum == "mean"
                    ax.errorbar(
                        r.rho,
                        y,
                        xerr=[[r.rho - r.rho_low], [r.rho_high - r.rho]],
                        fmt="o" if mean else ".",
                        color=PALETTE[m_i % len(PALETTE)],
                        mfc=PALETTE[m_i % len(PALETTE)] if mean else "none",
                        ms=6 if mean else 4,
                        capsize=2,
                        lw=1.6 if mean else 0.8,
                    )
                    vs = "T" if against == "seq_len" else "radius"
                    where = (
                        "mean over strata"
                        if mean
                        else r.stratum.replace("spectral_radius", "radius").replace("seq_len", "T")
                    )
                    labels.append(f"{_METRIC_LABELS[metric]} vs {vs}: {where}")
                    y += 1
            y += 0.5 if m_i < len(metrics) - 1 else 0
        ax.set_yticks(_positions(d, metrics), labels, fontsize=6)
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.7)
        ax.axvline(C4B_RHO, color="0.5", lw=0.7, ls="--")
        ax.set_xlim(-1.05, 1.05)
        ax.set_xlabel(f"Spearman rho, 95% bootstrap CI (dashed: {C4B_RHO:g})")
        ax.set_title(f"C4b trends: {task} (Elman)", fontsize=9)
    return fig


def _positions(d: pd.DataFrame, metrics: tuple[str, ...]) -> list[float]:
    """The y positions :func:`plot_trend_forest` draws its rows at (same walk)."""
    pos, y = [], 0.0
    for m_i, metric in enumerate(metrics):
        for against in ("seq_len", "spectral_radius"):
            n = len(d[(d["metric"] == metric) & (d["against"] == against)])
            pos += [y + i for i in range(n)]
            y += n
        y += 0.5 if m_i < len(metrics) - 1 else 0
    return pos


@styled
def plot_prominence_sensitivity(sens: pd.DataFrame) -> Figure:
    """C4b sensitivity: the mean-over-strata Spearman rho of minima per line with T and with
    the spectral radius against the prominence threshold (decades of the loss), for fixed-radius
    and filter-normalised lines, 95% bootstrap intervals; one panel per task."""
    if sens.empty:
        return empty_figure("no minima counts")
    tasks = list(dict.fromkeys(sens["task"]))
    fig, axes = panel_grid(len(tasks), ncols=2, width=4.4, height=3.2)
    proms = sorted(sens["prominence"].unique())
    xpos = {p: i for i, p in enumerate(proms)}
    for ax, task in zip(axes, tasks, strict=True):
        d = sens[sens["task"] == task]
        for k, ((line, against), g) in enumerate(d.groupby(["line", "against"], sort=True)):
            g = g.sort_values("prominence")
            x = np.array([xpos[p] for p in g["prominence"]]) + (k - 1.5) * 0.06
            ax.errorbar(
                x,
                g["rho"],
                yerr=[g["rho"] - g["low"], g["high"] - g["rho"]],
                marker="o" if line == "fixed" else "s",
                ls="-" if against == "seq_len" else "--",
                color=PALETTE[k % len(PALETTE)],
                capsize=2,
                ms=4,
                label=f"{'fixed-radius' if line == 'fixed' else 'filter-normalised'} lines, "
                f"vs {'T' if against == 'seq_len' else 'radius'}",
            )
        ax.set_xticks(range(len(proms)), [f"{p:g}" for p in proms])
        ax.axhline(0, color="k", lw=0.7)
        ax.axhline(C4B_RHO, color="0.5", lw=0.7, ls="--")
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("prominence threshold (decades of the loss; 0 = every dip)")
        ax.set_ylabel("Spearman rho, mean over strata")
        ax.set_title(f"C4b sensitivity: {task}", fontsize=9)
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=6
    )
    return fig


def _ci(value: float, low: float, high: float) -> str:
    return f"{format_number(value)} [{format_number(low)}, {format_number(high)}]"


def verdict_lines(v: pd.DataFrame) -> list[str]:
    """A Markdown table of C4 verdict rows: task, verdict, effect [95% CI], second effect,
    n, detail."""
    if v.empty:
        return ["No data.", ""]
    display = pd.DataFrame(
        {
            "task": v["problem"],
            "verdict": v["verdict"],
            "effect [95% CI]": [
                f"{r.measure}: {_ci(r.effect, r.ci_low, r.ci_high)}" for r in v.itertuples()
            ],
            "second effect [95% CI]": [
                f"{r.measure_2}: {_ci(r.effect_2, r.ci_low_2, r.ci_high_2)}" for r in v.itertuples()
            ],
            "n": v["n"],
            "detail": v["detail"],
        }
    )
    return [to_markdown(display), ""]


def share_table(shares: pd.DataFrame) -> pd.DataFrame:
    """Display frame of :func:`suite.analysis.verdicts.c4.chaos_shares`: one row per task, point
    and drive, one column per initial gain (``share [low, high]``)."""
    if shares.empty:
        return pd.DataFrame()
    s = shares.assign(cell=[_ci(r.share, r.low, r.high) for r in shares.itertuples()])
    out = s.pivot_table(
        index=["task", "where", "drive"], columns="gain", values="cell", aggfunc="first"
    )
    cols = sorted((c for c in out.columns if c != "all"), key=float) + ["all"]
    out = out.reindex(columns=[c for c in cols if c in out.columns])
    out.columns = [f"g={c}" if c != "all" else "all gains" for c in out.columns]
    return out.reset_index()


_CAPTIONS = {
    "landscape_c4a_chaos": "C4a: share of networks with a positive largest Lyapunov exponent per "
    "initial gain, at the start and after training, driven by the task inputs and autonomous, "
    "95% bootstrap intervals; black: Sompolinsky's random networks (the calibration).",
    "landscape_c4b_trends": "C4b: Spearman trends with T (within each radius) and with the radius "
    "(within each T), per stratum (open) and their mean (filled), 95% stratified bootstrap "
    "intervals.",
    "landscape_c4b_sensitivity": "C4b sensitivity: mean trends of minima per line against the "
    "prominence threshold, fixed-radius and filter-normalised lines.",
    "landscape_roughness_init_vs_seq_len": "Roughness at the start against T (mean, s.e.).",
    "landscape_roughness_init_vs_spectral_radius": "Roughness at the start against the radius.",
    "landscape_roughness_trained_vs_seq_len": "Roughness at the trained point against T.",
    "landscape_roughness_trained_vs_spectral_radius": "Roughness at the trained point against "
    "the radius.",
    "landscape_slices_1d": "Sample filter-normalised 1-D slices.",
    "landscape_slices_2d": "Sample filter-normalised 2-D slices.",
    "landscape_interpolation": "Loss from the start to the trained point (Goodfellow et al.).",
    "landscape_lyapunov": "Largest Lyapunov exponent against the spectral radius; the "
    "Sompolinsky check.",
    "landscape_truncation": "Cosine of truncated and full gradients against the window k.",
    "landscape_cliff": "Pascanu et al.'s cliff and Doya's bistable interval.",
}


def landscape_markdown(
    directory: Path,
    experiment: dict,
    a: LandscapeAnalysis,
    verdicts: pd.DataFrame,
    tables: dict[str, Path],
    figures: dict[str, Path],
) -> list[str]:
    """The lines of the landscape ``REPORT.md``: the C4a and C4b verdicts with their rules,
    measures, figures and limits, the share table, links to every table, the other figures and
    the experiment spec."""

    def rel(p: Path) -> str:
        return p.relative_to(directory).as_posix()

    def fig(name: str) -> list[str]:
        if name not in figures:
            return []
        return [f"**{_CAPTIONS.get(name, name)}**", "", f"![{name}]({rel(figures[name])})", ""]

    n_lines = a.slices["problem"].nunique() if not a.slices.empty else 0
    lines = [
        f"# Report: {experiment.get('name') or directory.name} (statement C4)",
        "",
        f"Generated by `rnnbench report` from the landscape records in `{directory.name}/`: "
        f"{len(a.slices)} slice rows over {n_lines} problems, {len(a.lyapunov)} Lyapunov records, "
        f"{len(a.reference)} Sompolinsky gains. C4 is judged as two statements; rules and "
        "measures in `suite/analysis/verdicts/c4.py`. Tables in `tables/` (CSV with full "
        "precision, Markdown), figures in `figures/`.",
        "",
    ]
    for claim, title, figs in (
        ("C4a", "chaotic", ("landscape_c4a_chaos", "landscape_lyapunov")),
        (
            "C4b",
            "rough, with frequent and badly placed optima",
            ("landscape_c4b_trends", "landscape_c4b_sensitivity"),
        ),
    ):
        rows = verdicts[verdicts["claim"] == claim] if not verdicts.empty else verdicts
        lines += [f"## {claim}: {title}", "", f"**Rule.** {RULES[claim]}", ""]
        lines += verdict_lines(rows)
        for name in figs:
            lines += fig(name)
        lines += [f"**Limits.** {LIMITS[claim]}", ""]
    if "landscape_c4a_shares" in tables:
        shares = chaos_shares(a.chaos)
        lines += ["### Share of chaotic networks per gain", "", to_markdown(share_table(shares))]
    if "landscape_cliff_end_points" in tables:
        lines += [
            "### End points of the trials on the cliff",
            "",
            tables["landscape_cliff_end_points"].read_text(encoding="utf-8"),
            "",
        ]
    lines += ["## Tables", ""]
    lines += [f"- [`{name}`]({rel(path)})" for name, path in tables.items()]
    if (directory / "TRIALS.md").exists():
        lines += ["- [the report of the cliff trials of this folder](TRIALS.md)"]
    lines += ["", "## Other figures", ""]
    for name in figures:
        if not name.startswith(("landscape_c4", "landscape_lyapunov")):
            lines += fig(name)
    if experiment:
        lines += [
            "<details><summary>experiment spec</summary>",
            "",
            "```json",
            json.dumps(experiment, indent=2, default=str),
            "```",
            "",
            "</details>",
            "",
        ]
    return lines
