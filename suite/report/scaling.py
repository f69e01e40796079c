"""The scaling study in the claims report: the C1 ratio against the parameter count (figure and
table, both clocks, with intervals) and CMA-ES's cost per generation against the model's."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from suite.analysis.scaling import cmaes_overhead, scaling_ratios
from suite.report.style import CLOCK_LABELS, optimizer_style
from suite.report.tables import format_number, to_markdown, write_table
from suite.store import load_results


def parameter_counts(folder: Path) -> dict[str, int]:
    """Parameter count per problem label, from the length of the stored ``theta``."""
    out: dict[str, int] = {}
    for r in load_results(folder).records("trial"):
        problem = (r.get("labels") or {}).get("problem")
        theta = r.get("theta") or []
        if problem and len(theta) and problem not in out:
            out[str(problem)] = len(theta)
    return out


def _interval(r: pd.Series) -> str:
    v, lo, hi = r["ratio"], r["ratio_low"], r["ratio_high"]
    if r["bound"] == "lower":
        return f">= {format_number(v)}"
    if r["bound"] == "upper":
        return f"<= {format_number(v)}"
    if r["bound"] == "none":
        return "[0, inf) (neither reached the target)"
    return f"{format_number(v)} [{format_number(lo)}, {format_number(hi)}]"


def scaling_figure(ratios: pd.DataFrame, path: Path) -> Path:
    """ERT ratio black-box / BPTT against the parameter count: one row of panels per task, one
    column per clock; a line per (BPTT method, black-box method), bars for the intervals,
    triangles for one-sided bounds (up: lower bound, down: upper bound)."""
    tasks = list(dict.fromkeys(ratios["task"]))
    fig = Figure(figsize=(10, 3.6 * len(tasks)))
    axes = fig.subplots(len(tasks), 2, squeeze=False, sharex=True)
    for i, task in enumerate(tasks):
        for j, clock in enumerate(("fe", "seconds")):
            ax = axes[i][j]
            d = ratios[(ratios["task"] == task) & (ratios["clock"] == clock)]
            for (a, b), g in d.groupby(["bptt", "black_box"], sort=False):
                g = g.sort_values("params")
                style = optimizer_style(str(b))
                ls = "-" if g["group"].iloc[0] == "first-order" else "--"
                ok = g[(g["bound"] != "none") & (g["ratio"] > 0) & (g["ratio"] < math.inf)]
                if ok.empty:
                    continue
                ax.plot(ok["params"], ok["ratio"], ls, color=style.color, label=f"{b} / {a}")
                for _, r in ok.iterrows():
                    if r["bound"] == "lower":
                        ax.plot(r["params"], r["ratio"], "^", color=style.color)
                    elif r["bound"] == "upper":
                        ax.plot(r["params"], r["ratio"], "v", color=style.color)
                    else:
                        hi = r["ratio_high"] if math.isfinite(r["ratio_high"]) else r["ratio"] * 10
                        lo = r["ratio_low"] if r["ratio_low"] > 0 else r["ratio"] / 10
                        ax.plot([r["params"]] * 2, [lo, hi], color=style.color)
                        ax.plot(r["params"], r["ratio"], style.marker, color=style.color)
            if not ax.lines:
                ax.text(0.5, 0.5, "no ratio with a finite point", transform=ax.transAxes)
                ax.set_xlim(10, 1e4)
                ax.set_ylim(0.1, 10)
            ax.axhline(1.0, color="grey", lw=0.8)
            ax.axhline(3.0, color="grey", lw=0.8, ls=":")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{task}: ERT ratio in {CLOCK_LABELS[clock]}")
            ax.set_xlabel("parameters")
            ax.set_ylabel("ERT(black-box) / ERT(BPTT)")
            if i == 0 and j == 0 and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def write_scaling(folder: Path, target: Path) -> list[str]:
    """Tables ``scaling`` and ``scaling_cmaes`` and the figure under ``target``; the claims
    report's section as Markdown lines (empty when the folder is missing)."""
    if not Path(folder).is_dir():
        return []
    res = load_results(folder)
    if res.trials.empty:
        return []
    params = parameter_counts(folder)
    ratios = scaling_ratios(res.trials, res.trace, params)
    overhead = cmaes_overhead(res.trials, params)
    if ratios.empty:  # no pair of a BPTT and a black-box method: nothing to compare
        return [
            "## C1 and network size (scaling study)",
            "",
            f"`{Path(folder).name}` holds no pair of a BPTT and a black-box method on the same "
            "problem: no ratio to show.",
            "",
        ]
    write_table(ratios, target / "tables", "scaling")
    write_table(overhead, target / "tables", "scaling_cmaes")
    fig = scaling_figure(ratios, target / "figures" / "scaling_ratio.png")
    budget = res.trials[["budget_fe", "budget_seconds"]].iloc[0]
    display = ratios.assign(interval=[_interval(r) for _, r in ratios.iterrows()])
    wide = display.pivot_table(
        index=["task", "params", "bptt", "black_box"],
        columns="clock",
        values="interval",
        aggfunc="first",
    ).reset_index()
    succ = ratios[ratios["clock"] == "fe"].set_index(["task", "params", "bptt", "black_box"])
    wide["successes BPTT / black-box"] = [
        f"{succ.at[k, 'bptt_successes']}/{succ.at[k, 'runs']} vs "
        f"{succ.at[k, 'bb_successes']}/{succ.at[k, 'runs']}"
        for k in zip(wide["task"], wide["params"], wide["bptt"], wide["black_box"], strict=True)
    ]
    wide = wide.rename(columns={"fe": "ratio (fe)", "seconds": "ratio (seconds)"})
    ov = overhead.assign(
        **{
            c: [format_number(x) for x in overhead[c]]
            for c in ("optimizer_s_per_gen", "model_s_per_gen", "overhead_ratio", "generations")
        }
    )
    rel = f"../{Path(folder).name}"
    return [
        "## C1 and network size (scaling study)",
        "",
        f"Elman nets of growing size on adding and narma10 ([`{Path(folder).name}`]"
        f"({rel}/REPORT.md)), budget {format_number(budget['budget_fe'])} fe and "
        f"{format_number(budget['budget_seconds'])} s per trial (whichever ends first). "
        "ERT ratio black-box / BPTT with 95% intervals; `>= x`: the black-box method never "
        "reached the target and x is the Clopper-Pearson bound (see the C1 rule); `<= x`: the "
        "BPTT method never did.",
        "",
        f"![scaling]({fig.relative_to(target)})",
        "",
        to_markdown(wide),
        "",
        "CMA-ES's own cost per generation (wall time outside the Problem: ask, tell, "
        "eigendecompositions) against the model's evaluation of one population (wall time "
        "inside the Problem), medians over trials:",
        "",
        to_markdown(ov),
        "",
    ]
