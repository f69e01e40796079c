"""Figures and tables of error-surface diagnostics (statement C4).

Every ``plot_*`` function draws a frame computed by :mod:`suite.analysis.landscape` and returns
a :class:`matplotlib.figure.Figure` (no pyplot state; Agg-safe); nothing is computed here beyond
the closed-form cliff surface (:func:`suite.probes.cliff_surface`).
:func:`write_landscape_report` turns a results folder into ``tables/landscape_*.{csv,md}`` and
``figures/landscape_*.png`` and returns the paths.

Example::

    from suite.report.landscape import write_landscape_report
    paths = write_landscape_report("results/landscape")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from suite.analysis.landscape import (
    aggregate_slices,
    analyse_landscape,
    cliff_end_points,
    landscape_records,
)
from suite.analysis.verdicts.c4 import (
    c4b_sensitivity,
    chaos_shares,
    reference_shares,
    verdict_c4a,
    verdict_c4b,
)
from suite.probes import cliff_surface
from suite.report.c4 import (
    landscape_markdown,
    plot_chaos_shares,
    plot_prominence_sensitivity,
    plot_trend_forest,
)
from suite.report.plots import (
    empty_figure,
    panel_grid,
    plain_log_axis,
    save_figure,
)
from suite.report.style import MODEL_COLORS, PALETTE, optimizer_style, styled
from suite.report.tables import write_table
from suite.store import load_results

__all__ = [
    "plot_cliff",
    "plot_interpolation",
    "plot_lyapunov",
    "plot_roughness",
    "plot_slices_1d",
    "plot_slices_2d",
    "plot_truncation",
    "write_landscape_report",
]


@styled
def plot_roughness(slices: pd.DataFrame, x: str = "seq_len", where: str = "init") -> Figure:
    """Roughness (local minima per unit length, normalised total variation, gradient-norm
    spread) against ``x`` (``seq_len`` or ``spectral_radius``), mean over seeds with its
    standard error; Elman lines per value of the other axis, the TDNN twin dashed."""
    df = slices[slices["where"] == where] if not slices.empty else slices
    if df.empty or df[x].nunique() < 2:
        return empty_figure(f"no variation in {x} ({where})")
    metrics = [
        ("minima_per_unit", "local minima per unit length"),
        ("tv_norm", "total variation / range"),
        ("log10_grad_spread", "log10 (q95 / q5) of |grad|"),
    ]
    tasks_ = list(dict.fromkeys(df["task"]))
    fig, axes = panel_grid(len(metrics) * len(tasks_), ncols=3, width=3.5)
    other = "spectral_radius" if x == "seq_len" else "seq_len"
    df = df.copy()
    df[other] = df[other].astype(float)
    for t_i, task in enumerate(tasks_):
        dt = df[df["task"] == task]
        for m_i, (col, label) in enumerate(metrics):
            ax = axes[t_i * len(metrics) + m_i]
            groups = dt.groupby(["model", other], sort=True, dropna=False)
            for j, ((model, ov), g) in enumerate(groups):
                if model == "tdnn" and x == "spectral_radius":
                    continue
                s = g.groupby(x)[col].agg(["mean", "sem"]).reset_index()
                color = (
                    MODEL_COLORS["tdnn"]
                    if model == "tdnn"
                    else matplotlib.colormaps["viridis"](j / max(len(groups), 1))
                )
                name = "TDNN twin" if model == "tdnn" else f"elman, {other}={ov:g}"
                ax.errorbar(
                    s[x],
                    s["mean"],
                    yerr=s["sem"].fillna(0),
                    marker="o",
                    ms=3,
                    color=color,
                    ls="--" if model == "tdnn" else "-",
                    label=name,
                    capsize=2,
                )
            if x == "spectral_radius":
                td = dt[dt["model"] == "tdnn"]
                for k, (ov, g) in enumerate(td.groupby(other)):
                    ax.axhline(
                        g[col].mean(),
                        color=MODEL_COLORS["tdnn"],
                        ls=":",
                        lw=0.8 + 0.4 * k,
                        label=f"TDNN twin, {other}={ov:g}",
                    )
            ax.set_xlabel("sequence length T" if x == "seq_len" else "initial spectral radius")
            ax.set_ylabel(label)
            ax.set_title(f"{task} ({where})", fontsize=8)
            if x == "seq_len" and dt[x].max() / max(dt[x].min(), 1) >= 10:
                ax.set_xscale("log")
    axes[0].legend(fontsize=6)
    return fig


@styled
def plot_lyapunov(lyapunov: pd.DataFrame, reference: pd.DataFrame | None = None) -> Figure:
    """Largest Lyapunov exponent against the spectral radius of ``W_h`` at the start and after
    training (Elman networks driven by their task inputs), and the reference check of
    ``tanh(W h)`` with ``W ~ N(0, g^2/N)`` against Sompolinsky et al.'s values."""
    n = 1 + (reference is not None and not reference.empty)
    fig, axes = panel_grid(n, ncols=2, width=4.2, height=3.2)
    ax = axes[0]
    if not lyapunov.empty:
        for where, marker, col in (("init", "o", PALETTE[0]), ("trained", "s", PALETTE[1])):
            ax.scatter(
                lyapunov[f"radius_{where}"],
                lyapunov[f"lambda_{where}"],
                s=12,
                marker=marker,
                color=col,
                alpha=0.7,
                label=f"{where} (driven)",
            )
        ax.scatter(
            lyapunov["radius_init"],
            lyapunov["lambda_init_autonomous"],
            s=10,
            marker="x",
            color=PALETTE[2],
            alpha=0.7,
            label="init, no input",
        )
    ax.axhline(0, color="k", lw=0.8)
    ax.axvline(1, color="k", lw=0.5, ls=":")
    ax.set_xlabel("spectral radius of W_h")
    ax.set_ylabel("largest Lyapunov exponent (per step)")
    ax.legend(fontsize=7)
    if n == 2 and reference is not None:  # n == 2: there is a reference
        ax = axes[1]
        ref = reference
        ax.errorbar(
            ref["gain"],
            ref["lambda_mean"],
            yerr=ref["lambda_std"],
            fmt="o-",
            color=PALETTE[0],
            capsize=3,
            label="measured (mean +- sd)",
        )
        lit = pd.DataFrame({"g": [0.5, 0.9, 1.0, 1.5, 2.0], "l": [-0.63, -0.10, 0.0, 0.03, 0.14]})
        ax.plot(lit["g"], lit["l"], "x", color=PALETTE[1], ms=8, label="SCIENCE.md reference")
        g = np.linspace(0.4, 1.0, 50)
        ax.plot(g, np.log(g), ":", color="grey", label="log g")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("gain g")
        ax.set_ylabel("largest Lyapunov exponent")
        ax.set_title("tanh(W h), W ~ N(0, g^2/N), N = 200", fontsize=8)
        ax.legend(fontsize=7)
    return fig


@styled
def plot_cliff(
    surface: dict[str, np.ndarray],
    end_points: pd.DataFrame | None = None,
    interval: tuple[float, float] | None = None,
) -> Figure:
    """The cliff loss ``E_50`` over ``(w, b)`` (log colour scale) and its gradient norm, with
    Doya's bistable interval at ``w = 5`` and the end points of each optimizer family
    (arrows from their starts are omitted for legibility; starts are small grey dots)."""
    fig, axes = panel_grid(2, ncols=2, width=5.0, height=4.0)
    w, b = surface["w"], surface["b"]
    for ax, key, label in ((axes[0], "E", "loss E_50"), (axes[1], "grad_norm", "|grad E_50|")):
        z = np.asarray(surface[key], dtype=float)
        pos = z[z > 0]
        vmin = max(
            float(pos.min()) if pos.size else 1e-12,
            float(np.quantile(pos, 0.001)) if pos.size else 1e-12,
        )
        mesh = ax.pcolormesh(
            w,
            b,
            np.maximum(z, vmin),
            norm=mcolors.LogNorm(vmin, z.max()),
            cmap="magma",
            shading="auto",
            rasterized=True,
        )
        fig.colorbar(mesh, ax=ax, label=label)
        ax.set_xlabel("w")
        ax.set_ylabel("b")
        if interval is not None:
            ax.plot(
                [5, 5],
                list(interval),
                color="cyan",
                lw=3,
                solid_capstyle="butt",
                label=f"bistable at w=5: b in ({interval[0]:.3f}, {interval[1]:.3f})",
            )
    if end_points is not None and not end_points.empty:
        ax = axes[0]
        ax.scatter(end_points["w0"], end_points["b0"], s=3, color="0.7", label="starts")
        for fam, g in end_points.groupby("name", sort=True):
            st = optimizer_style(str(fam))
            ax.scatter(
                g["w"].clip(w.min(), w.max()),
                g["b"].clip(b.min(), b.max()),
                s=18,
                marker=st.marker,
                facecolor="none",
                edgecolor=st.color,
                lw=1.0,
                label=f"{fam} end points",
            )
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # below the panels: a legend inside would cover the surface
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=min(3, len(handles)),
            fontsize=7,
            frameon=False,
        )
    axes[0].set_xlim(w.min(), w.max())
    axes[0].set_ylim(b.min(), b.max())
    fig.suptitle(
        "Pascanu et al.'s cliff: x_t = w sigmoid(x_{t-1}) + b, E = (sigmoid(x_50) - 0.7)^2"
    )
    return fig


@styled
def plot_slices_1d(examples: Sequence[dict], max_panels: int = 6) -> Figure:
    """Sample 1-D filter-normalised slices (all directions of one record per panel), for the
    records with the shortest and longest sequences at the smallest and largest radius."""
    ex = [e for e in examples if e["where"] == "init"]
    if not ex:
        return empty_figure("no slices")
    pick = _pick_examples(ex, max_panels)
    fig, axes = panel_grid(len(pick), ncols=3, width=3.4)
    for ax, e in zip(axes, pick, strict=True):
        a = np.asarray(e["alphas"])
        for k, sl in enumerate(e["slices"]):
            ax.plot(a, np.asarray(sl, dtype=float), lw=1, color=PALETTE[k % len(PALETTE)])
        ax.set_yscale("log")
        ax.set_xlabel("alpha (filter-normalised)")
        ax.set_ylabel("train loss")
        ax.set_title(_title(e), fontsize=8)
    return fig


def _title(e: dict) -> str:
    r = e.get("spectral_radius")
    rad = f", rho={float(r):g}" if r is not None and r == r else ""
    return f"{e['task']} T={e['seq_len']} {e['model']}{rad}"


def _pick_examples(ex: Sequence[dict], k: int) -> list[dict]:
    df = pd.DataFrame(
        {
            "i": range(len(ex)),
            "model": [e["model"] for e in ex],
            "T": [e["seq_len"] or 0 for e in ex],
            "r": [
                float(e["spectral_radius"]) if e["spectral_radius"] is not None else -1 for e in ex
            ],
            "seed": [e["seed"] for e in ex],
        }
    )
    df = df[df["seed"] == df["seed"].min()]
    chosen: list[int] = []
    for model in ("elman", "tdnn"):
        d = df[df["model"] == model]
        if d.empty:
            continue
        for T in sorted({d["T"].min(), d["T"].max()}):
            dd = d[d["T"] == T]
            for r in sorted({dd["r"].min(), dd["r"].max()}):
                chosen += dd.loc[dd["r"] == r, "i"].head(1).tolist()
    seen = list(dict.fromkeys(chosen))[:k]
    return [ex[i] for i in seen]


@styled
def plot_slices_2d(examples: Sequence[dict], max_panels: int = 6) -> Figure:
    """2-D filter-normalised slices (log colour scale) for a few records (see
    :func:`plot_slices_1d` for which)."""
    ex = [e for e in examples if e.get("slice2d")]
    if not ex:
        return empty_figure("no 2-D slices")
    pick = _pick_examples(ex, max_panels)
    fig, axes = panel_grid(len(pick), ncols=3, width=3.4, height=3.0)
    for ax, e in zip(axes, pick, strict=True):
        a = np.asarray(e["slice2d"]["alphas"])
        z = np.asarray(e["slice2d"]["loss"], dtype=float)
        z = np.where(np.isfinite(z), z, np.nan)
        pos = z[np.isfinite(z) & (z > 0)]
        if pos.size == 0:
            continue
        mesh = ax.pcolormesh(
            a,
            a,
            np.maximum(z, pos.min()).T,
            norm=mcolors.LogNorm(pos.min(), pos.max()),
            cmap="viridis",
            shading="auto",
            rasterized=True,
        )
        ax.contour(
            a,
            a,
            np.log10(np.maximum(z, pos.min())).T,
            levels=12,
            colors="w",
            linewidths=0.4,
            linestyles="solid",
        )
        fig.colorbar(mesh, ax=ax, label="train loss")
        ax.set_xlabel("alpha")
        ax.set_ylabel("beta")
        ax.set_title(f"{_title(e)} ({e['where']})", fontsize=8)
    return fig


@styled
def plot_interpolation(interp: pd.DataFrame) -> Figure:
    """Loss along the line from the start (a = 0) to the trained point (a = 1), Goodfellow et
    al. (2015), first seed of each problem: one panel per task and sequence length, one colour
    per initial spectral radius, the TDNN twin dashed."""
    if interp.empty:
        return empty_figure("no interpolation records")
    df = interp[interp["seed"] == interp["seed"].min()].copy()
    df["spectral_radius"] = df["spectral_radius"].astype(float)
    panels = df[["task", "seq_len"]].drop_duplicates().sort_values(["task", "seq_len"])
    fig, axes = panel_grid(len(panels), ncols=3, width=3.4)
    radii = sorted(df["spectral_radius"].dropna().unique())
    cmap = matplotlib.colormaps["viridis"]
    color: str | tuple[float, float, float, float]
    for ax, (_, row) in zip(axes, panels.iterrows(), strict=True):
        d = df[(df["task"] == row["task"]) & (df["seq_len"] == row["seq_len"])]
        for r in d.itertuples():
            if r.model == "tdnn":
                color, ls, label = MODEL_COLORS["tdnn"], "--", "TDNN twin"
            else:
                j = radii.index(r.spectral_radius) if r.spectral_radius in radii else 0
                color = cmap(j / max(len(radii) - 1, 1))
                ls, label = "-", f"elman, rho={r.spectral_radius:g}"
            ax.plot(r.alphas, r.loss, color=color, ls=ls, lw=1, label=label)
        ax.axvline(0, color="k", lw=0.5)
        ax.axvline(1, color="k", lw=0.5)
        ax.set_yscale("log")
        ax.set_xlabel("a  ((1 - a) theta_start + a theta_trained)")
        ax.set_ylabel("train loss")
        ax.set_title(f"{row['task']}, T = {row['seq_len']}", fontsize=8)
    axes[0].legend(fontsize=6)
    return fig


@styled
def plot_truncation(truncation: pd.DataFrame) -> Figure:
    """Cosine between the window-k truncated gradient and the full gradient against k (mean
    over seeds): one panel per task and sequence length, one colour per initial spectral
    radius; solid at the start of the Adam run, dashed at its last checkpoint."""
    if truncation.empty:
        return empty_figure("no truncation records")
    df = truncation.copy()
    df["spectral_radius"] = df["spectral_radius"].astype(float)
    panels = df[["task", "seq_len"]].drop_duplicates().sort_values(["task", "seq_len"])
    fig, axes = panel_grid(len(panels), ncols=3, width=3.4)
    radii = sorted(df["spectral_radius"].dropna().unique())
    cmap = matplotlib.colormaps["viridis"]
    first, last = df["checkpoint"].min(), df["checkpoint"].max()
    for ax, (_, row) in zip(axes, panels.iterrows(), strict=True):
        d = df[(df["task"] == row["task"]) & (df["seq_len"] == row["seq_len"])]
        for j, r in enumerate(radii):
            color = cmap(j / max(len(radii) - 1, 1))
            for ck, ls in ((first, "-"), (last, "--")):
                s = d[(d["spectral_radius"] == r) & (d["checkpoint"] == ck)]
                s = s.groupby("k")["cosine"].mean()
                label = f"rho={r:g}" if ck == first else None
                ax.plot(s.index, s.values, marker="o", ms=3, color=color, ls=ls, label=label)
        ax.set_xscale("log")
        plain_log_axis(ax, "x")
        ax.set_ylim(min(-0.05, float(d["cosine"].min()) - 0.05), 1.05)
        ax.axhline(1, color="k", lw=0.5)
        ax.set_xlabel("truncation window k (steps)")
        ax.set_ylabel("cos(truncated, full gradient)")
        ax.set_title(f"{row['task']}, T = {row['seq_len']}", fontsize=8)
    handles = [
        Line2D([], [], color="k", ls="-", label=f"step {first} (start)"),
        Line2D([], [], color="k", ls="--", label=f"step {last} (Adam)"),
    ]
    axes[0].legend(handles=axes[0].get_legend_handles_labels()[0] + handles, fontsize=6)
    return fig


def write_landscape_report(
    results_dir: str | os.PathLike[str],
    pdf: bool = False,
    trial_results: Sequence[str | os.PathLike[str]] = (),
    records: Sequence[dict] | None = None,
) -> list[Path]:
    """Tables, figures and ``REPORT.md`` of the landscape records of a results folder (C4)
    (``records``: those to use, default every landscape record of the folder).

    Writes ``tables/landscape_roughness`` (means per problem), ``tables/landscape_trends``
    (Spearman trends per stratum, bootstrap intervals), ``tables/landscape_c4a_shares``,
    ``tables/landscape_c4a_reference``, ``tables/landscape_c4b_sensitivity``,
    ``tables/landscape_verdicts``, ``tables/landscape_lyapunov``,
    ``tables/landscape_reference``, ``tables/landscape_cliff``, the ``figures/landscape_*.png``
    and ``REPORT.md`` (the C4a and C4b verdicts with their rules, then every table and figure).
    The cliff figure draws the end points of the compare trials on the cliff task found in this
    folder and in the folders ``trial_results``. ValueError if the folder holds no landscape
    records at all.
    """
    directory = Path(results_dir)
    results = load_results(directory)
    records = landscape_records(results) if records is None else list(records)
    sources = [results, *(load_results(other) for other in trial_results)]
    trials = [r for source in sources for r in source.records("trial")]
    frames = [source.trials for source in sources if len(source.trials)]
    trial_frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not records and not trials:
        raise ValueError(f"{directory} holds no landscape records: run a landscape experiment")
    a = analyse_landscape(records)
    tables, figures = directory / "tables", directory / "figures"
    written: dict[str, Path] = {}

    def table(frame: pd.DataFrame, name: str) -> None:
        if not frame.empty:
            written[name] = write_table(frame, tables, name)["md"]

    shares, ref_shares = chaos_shares(a.chaos), reference_shares(a.reference)
    sens = c4b_sensitivity(a.minima)
    verdicts = pd.concat(
        [f for f in (verdict_c4a(a.chaos, a.reference), verdict_c4b(a.trends)) if not f.empty]
        or [pd.DataFrame()],
        ignore_index=True,
    )
    table(aggregate_slices(a.slices), "landscape_roughness")
    table(a.trends, "landscape_trends")
    table(shares, "landscape_c4a_shares")
    table(ref_shares, "landscape_c4a_reference")
    table(sens, "landscape_c4b_sensitivity")
    table(verdicts, "landscape_verdicts")
    table(a.lyapunov, "landscape_lyapunov")
    table(a.reference.drop(columns=["lambdas"], errors="ignore"), "landscape_reference")
    ends = cliff_end_points(trials, trial_frame)
    if a.cliff is not None:
        c = a.cliff
        row = {k: v for k, v in c.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        row["doya_low"], row["doya_high"] = c["doya_interval"]
        row["doya_numeric_low"], row["doya_numeric_high"] = c["doya_interval_numeric"]
        table(pd.DataFrame([row]), "landscape_cliff")
    if not ends.empty:
        fam = ends.assign(success=ends["loss"] <= ends["target_loss"]).groupby("optimizer")
        table(
            fam.agg(
                runs=("seed", "size"),
                success_rate=("success", "mean"),
                median_loss=("loss", "median"),
            ).reset_index(),
            "landscape_cliff_end_points",
        )
    figs: dict[str, Figure] = {}
    if not shares.empty:
        figs["landscape_c4a_chaos"] = plot_chaos_shares(shares, ref_shares)
    if not a.trends.empty:
        figs["landscape_c4b_trends"] = plot_trend_forest(a.trends)
    if not sens.empty:
        figs["landscape_c4b_sensitivity"] = plot_prominence_sensitivity(sens)
    if not a.slices.empty:
        for where in ("init", "trained"):
            for x in ("seq_len", "spectral_radius"):
                if a.slices[x].nunique() > 1:
                    figs[f"landscape_roughness_{where}_vs_{x}"] = plot_roughness(a.slices, x, where)
        figs["landscape_slices_1d"] = plot_slices_1d(a.examples)
        figs["landscape_slices_2d"] = plot_slices_2d(a.examples)
    if not a.interpolation.empty:
        figs["landscape_interpolation"] = plot_interpolation(a.interpolation)
    if not a.lyapunov.empty or not a.reference.empty:
        figs["landscape_lyapunov"] = plot_lyapunov(a.lyapunov, a.reference)
    if not a.truncation.empty:
        figs["landscape_truncation"] = plot_truncation(a.truncation)
    if a.cliff is not None or not ends.empty:
        steps = int(a.cliff["steps"]) if a.cliff else 50
        interval = tuple(a.cliff["doya_interval"]) if a.cliff else None
        figs["landscape_cliff"] = plot_cliff(cliff_surface(steps=steps), ends, interval)
    fig_paths: dict[str, Path] = {}
    for name, fig in figs.items():
        saved = save_figure(fig, figures, name, pdf=pdf)
        fig_paths[name] = saved[0]
    paths = [*(p.with_suffix(".csv") for p in written.values()), *written.values()]
    paths += list(fig_paths.values())
    report = directory / "REPORT.md"
    report.write_text(
        "\n".join(
            landscape_markdown(directory, results.experiment or {}, a, verdicts, written, fig_paths)
        ),
        encoding="utf-8",
    )
    return [*paths, report]
