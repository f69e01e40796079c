"""Tables of a results folder: computed as numeric DataFrames, written as CSV, Markdown, LaTeX.

Each ``*_table`` function returns a numeric :class:`pandas.DataFrame` (what goes to CSV); the
display form (Markdown, LaTeX) is made by :func:`format_table`, which merges interval columns
``X_low``/``X_high`` into ``"X [low, high]"``, prints floats with 3 significant digits and
renames columns through :data:`LABELS`. Markdown and LaTeX are written by hand (a few lines each)
so that neither ``tabulate`` nor ``jinja2`` is needed.

Every number comes from :mod:`suite.analysis.metrics`; nothing is typed in by hand.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suite.analysis import metrics, profiles, stats
from suite.report.style import base_name

_BIG = 1e300

__all__ = [
    "LABELS",
    "error_cause",
    "failure_table",
    "fixed_budget_table",
    "format_number",
    "format_table",
    "overhead_section",
    "overhead_table",
    "quality_table",
    "resolve_reference",
    "speed_table",
    "speed_table_from",
    "summary_table",
    "to_latex",
    "to_markdown",
    "tuning_table",
    "write_table",
]

LABELS: dict[str, str] = {
    "problem": "problem",
    "optimizer": "optimizer",
    "runs": "runs",
    "success_rate": "success rate",
    "final_train": "final train loss, median [IQR]",
    "final_test": "final test loss, median [IQR]",
    "median_fe_to_target": "median fe to target",
    "median_seconds_to_target": "median s to target",
    "ert_fe": "ERT (fe) [95% CI]",
    "ert_seconds": "ERT (s) [95% CI]",
    "anytime": "anytime score, median",
    "statuses": "statuses",
    "reference": "reference",
    "pairs": "pairs",
    "better_worse": "better / worse",
    "ratio_fe": "time ratio (fe) [95% CI]",
    "p_holm_fe": "Holm p (fe)",
    "effect_fe": "effect r (fe) [95% CI]",
    "ratio_seconds": "time ratio (s) [95% CI]",
    "p_holm_seconds": "Holm p (s)",
    "ratio": "ratio [95% CI]",
    "p_holm": "Holm p",
    "effect": "effect r [95% CI]",
    "budget_fe": "budget (fe)",
    "at_0.001": "median loss at 0.1% of budget",
    "at_0.01": "at 1%",
    "at_0.1": "at 10%",
    "at_1": "at 100%",
    "status": "status",
    "cause": "cause",
    "seeds": "seeds",
    "family": "family",
    "wall_s": "wall (s)",
    "share_model": "model share",
    "share_optimizer": "optimizer own",
    "share_checkpoint": "checkpoints",
    "share_setup": "set-up",
    "share_harness": "harness",
    "x_model_bound": "wall / model time",
    "fe_per_s": "fe/s",
    "model_fe_per_s": "model fe/s",
    "harness_checkpoint_p90": "harness + checkpoints, p90 of trials",
}
"""Display headers of the suite's table columns (others are shown as they are named)."""


# --------------------------------------------------------------------------- formatting


def format_number(value: object, style: str = "md", digits: int = 3) -> str:
    """A number as text: ``digits`` significant digits; ``inf`` as the infinity sign; NaN as '-'.

    Floats between 1e-3 and 1e5 in positional notation (``5010``, ``0.0501``), others in compact
    scientific notation (``1.2e+6``); integers as they are.

    ``style`` is ``"md"`` (Unicode) or ``"latex"`` (math mode).
    """
    if style not in ("md", "latex"):
        raise ValueError(f"style must be 'md' or 'latex', got {style!r}")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isinf(v):
            inf = r"$\infty$" if style == "latex" else "∞"
            return inf if v > 0 else f"-{inf}"
        if v == 0.0:
            return "0"
        if 1e-3 <= abs(v) < 1e5:
            return np.format_float_positional(
                v, precision=digits, unique=False, fractional=False, trim="-"
            )
        return np.format_float_scientific(v, precision=digits - 1, exp_digits=1, trim="-")
    return str(value)


def format_table(
    frame: pd.DataFrame,
    style: str = "md",
    labels: Mapping[str, str] | None = None,
    digits: int = 3,
) -> pd.DataFrame:
    """Display form of a numeric table: intervals merged, numbers formatted, headers renamed.

    A column ``X`` with companions ``X_low`` and ``X_high`` becomes ``"x [low, high]"``; every
    cell is formatted by :func:`format_number`; headers go through ``labels`` (default
    :data:`LABELS`; unknown names are kept).
    """
    labels = LABELS if labels is None else labels
    cols = list(frame.columns)
    out = pd.DataFrame(index=frame.index)
    for col in cols:
        if col.endswith(("_low", "_high")) and col.rsplit("_", 1)[0] in cols:
            continue
        cells = [format_number(v, style, digits) for v in frame[col].tolist()]
        if f"{col}_low" in cols and f"{col}_high" in cols:
            lo = [format_number(v, style, digits) for v in frame[f"{col}_low"].tolist()]
            hi = [format_number(v, style, digits) for v in frame[f"{col}_high"].tolist()]
            cells = [
                c if (a == "-" and b == "-") else f"{c} [{a}, {b}]"
                for c, a, b in zip(cells, lo, hi, strict=True)
            ]
        label = labels.get(col, col)
        if f"{col}_low" not in cols:  # no interval shown: drop "[95% CI]" / "[IQR]" from the header
            label = re.sub(r"\s*\[(95% CI|IQR)\]", "", label)
        out[label] = cells
    return out.reset_index(drop=True)


def to_markdown(display: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a frame of strings (``|`` escaped)."""

    def cell(v: object) -> str:
        return str(v).replace("|", r"\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in display.columns) + " |"
    rule = "|" + "|".join("---" for _ in display.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in display.itertuples(False)]
    return "\n".join([head, rule, *body]) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    if text.startswith("$") and text.endswith("$"):
        return text
    parts = text.split(r"$\infty$")
    escaped = ["".join(_LATEX_ESCAPES.get(ch, ch) for ch in p) for p in parts]
    return r"$\infty$".join(escaped)


def to_latex(display: pd.DataFrame, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs LaTeX table of a frame of strings (made with ``format_table(style="latex")``)."""
    spec = "l" * len(display.columns)
    lines = [r"\begin{table}[htbp]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(_latex_escape(str(c)) for c in display.columns) + r" \\")
    lines.append(r"\midrule")
    for row in display.itertuples(False):
        lines.append(" & ".join(_latex_escape(str(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    frame: pd.DataFrame,
    directory: str | os.PathLike[str],
    name: str,
    *,
    latex: bool = False,
    caption: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``name.csv`` (numbers as computed), ``name.md`` and, if asked, ``name.tex``.

    Returns ``{"csv": path, "md": path[, "tex": path]}``; the folder is created.
    """
    if not name or any(ch in name for ch in "/\\"):
        raise ValueError(f"table name must be a plain file stem, got {name!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"csv": directory / f"{name}.csv", "md": directory / f"{name}.md"}
    frame.to_csv(paths["csv"], index=False)
    paths["md"].write_text(to_markdown(format_table(frame, "md", labels)), encoding="utf-8")
    if latex:
        paths["tex"] = directory / f"{name}.tex"
        tex = to_latex(format_table(frame, "latex", labels), caption=caption, label=f"tab:{name}")
        paths["tex"].write_text(tex, encoding="utf-8")
    return paths


# --------------------------------------------------------------------------- tables


def resolve_reference(optimizers: Sequence[str], reference: str) -> str:
    """The optimizer (display name) to compare against.

    An exact display-name match wins; else the first optimizer whose base name is ``reference``
    (``"adam"`` matches ``"adam(lr=0.01)"``); else the first optimizer. ValueError if there is
    none.
    """
    names = list(dict.fromkeys(optimizers))
    if not names:
        raise ValueError("no optimizers to compare: the results hold no trials")
    if reference in names:
        return reference
    for name in names:
        if base_name(name) == reference:
            return name
    return names[0]


def _order(trials: pd.DataFrame) -> tuple[list[str], list[str]]:
    return list(pd.unique(trials["problem"])), list(pd.unique(trials["optimizer"]))


def _status_text(statuses: pd.Series) -> str:
    shares = statuses.fillna("unknown").value_counts(normalize=True)
    return ", ".join(f"{s} {100 * v:.0f}%" for s, v in shares.items())


def summary_table(
    trials: pd.DataFrame,
    trace: pd.DataFrame,
    *,
    hits: pd.DataFrame | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """One row per (problem, optimizer): runs, success, final losses, times to target, ERT.

    Columns: ``runs``; ``success_rate`` (record target); ``final_train`` / ``final_test``
    (median, with quartiles as ``_low``/``_high``); ``median_fe_to_target`` and
    ``median_seconds_to_target`` (median over all runs, a failure counting as ``inf``);
    ``ert_fe`` and ``ert_seconds`` with bootstrap intervals (:func:`metrics.ert_table`);
    ``anytime`` (median :func:`profiles.anytime_score`); ``statuses`` (share of each status).
    ``hits`` defaults to :func:`metrics.time_to_target` at each record's target.
    """
    if hits is None:
        hits = metrics.time_to_target(trials, trace)
    rng = stats.as_generator(rng)
    by = ["problem", "optimizer"]
    g = trials.groupby(by, sort=False, observed=True)
    out = g.size().rename("runs").to_frame()
    out["success_rate"] = metrics.success_rate(hits).set_index(by)["success_rate"]
    for split in ("train", "test"):
        # non-finite losses count as +inf: a finite stand-in keeps the interpolation defined
        col = trials[f"final_{split}_loss"].astype(float).fillna(np.inf).clip(upper=_BIG)
        q = col.groupby([trials[b] for b in by], sort=False).quantile([0.25, 0.5, 0.75])
        q = q.unstack()
        q = q.where(q < _BIG / 10, np.inf)
        out[f"final_{split}"] = q[0.5]
        out[f"final_{split}_low"] = q[0.25]
        out[f"final_{split}_high"] = q[0.75]
    for clock in metrics.CLOCKS:
        t = np.where(hits["hit"], hits[clock], np.inf).astype(float)
        med = pd.Series(t).groupby([hits[b].to_numpy() for b in by]).median()
        out[f"median_{clock}_to_target"] = med
    for clock in metrics.CLOCKS:
        e = metrics.ert_table(hits, by, clock, n_boot=n_boot, confidence=confidence, rng=rng)
        e = e.set_index(by)
        out[f"ert_{clock}"] = e["ert"]
        out[f"ert_{clock}_low"] = e["ert_low"]
        out[f"ert_{clock}_high"] = e["ert_high"]
    anytime = profiles.anytime_score(trials, trace)
    out["anytime"] = anytime.groupby(by, sort=False)["anytime"].median()
    out["statuses"] = g["status"].agg(_status_text)
    return out.reset_index()


def speed_table(
    trials: pd.DataFrame,
    hits: pd.DataFrame,
    reference: str,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Every optimizer against ``reference``: paired time-to-target ratios on both clocks.

    From :func:`metrics.paired_comparison` with ``metric="time"`` (one target per run in
    ``hits``): ``ratio_fe``/``ratio_seconds`` are median paired ratios (< 1: faster than the
    reference) with bootstrap intervals; ``p_holm_*`` are Wilcoxon signed-rank p-values with
    Holm's correction across all rows; ``effect_fe`` is the rank-biserial correlation (+1:
    faster on every seed) with its interval; ``better_worse`` counts seeds (fe clock).
    """
    rng = stats.as_generator(rng)
    kw: dict[str, Any] = {"n_boot": n_boot, "confidence": confidence, "rng": rng}
    fe = metrics.paired_comparison(trials, reference, hits=hits, metric="time", clock="fe", **kw)
    sec = metrics.paired_comparison(
        trials, reference, hits=hits, metric="time", clock="seconds", **kw
    )
    return speed_table_from(fe, sec)


def speed_table_from(fe: pd.DataFrame, sec: pd.DataFrame) -> pd.DataFrame:
    """The speed table from the two :func:`metrics.paired_comparison` frames (``metric="time"``,
    clocks ``fe`` and ``seconds``), for callers that already computed them."""
    out = fe[["problem", "optimizer", "reference", "n_pairs"]].rename(columns={"n_pairs": "pairs"})
    out["better_worse"] = [f"{b} / {w}" for b, w in zip(fe["n_better"], fe["n_worse"], strict=True)]
    out = out.merge(
        _clock_columns(fe, "fe", effect=True), on=["problem", "optimizer"], how="left"
    ).merge(_clock_columns(sec, "seconds", effect=False), on=["problem", "optimizer"], how="left")
    return out


def _clock_columns(frame: pd.DataFrame, clock: str, effect: bool) -> pd.DataFrame:
    out = frame[["problem", "optimizer"]].copy()
    for col in ("ratio", "ratio_low", "ratio_high"):
        out[col.replace("ratio", f"ratio_{clock}")] = frame[col].to_numpy()
    out[f"p_holm_{clock}"] = frame["p_holm"].to_numpy()
    if effect:
        for col in ("effect", "effect_low", "effect_high"):
            out[col.replace("effect", f"effect_{clock}")] = frame[col].to_numpy()
    return out


def quality_table(
    trials: pd.DataFrame,
    reference: str,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Every optimizer against ``reference`` on the paired final train loss (fixed budget).

    ``ratio`` is the median paired loss ratio (< 1: lower loss than the reference) with a
    bootstrap interval, ``p_holm`` the Holm-adjusted Wilcoxon signed-rank p-value and
    ``effect`` the rank-biserial correlation (+1: lower loss on every seed).
    """
    q = metrics.paired_comparison(
        trials,
        reference,
        metric="final_train_loss",
        n_boot=n_boot,
        confidence=confidence,
        rng=stats.as_generator(rng),
    )
    out = q[["problem", "optimizer", "reference", "n_pairs"]].rename(columns={"n_pairs": "pairs"})
    out["better_worse"] = [f"{b} / {w}" for b, w in zip(q["n_better"], q["n_worse"], strict=True)]
    cols = ["ratio", "ratio_low", "ratio_high", "p_holm", "effect", "effect_low", "effect_high"]
    out[cols] = q[cols].to_numpy()
    return out


def fixed_budget_table(
    trials: pd.DataFrame,
    trace: pd.DataFrame,
    fractions: Sequence[float] = (0.001, 0.01, 0.1, 1.0),
) -> pd.DataFrame:
    """Median best-so-far train loss at fractions of the fe budget (the fixed-budget view).

    For each problem the budget ``B`` is the median ``budget_fe`` of its trials (if unset: the
    largest fe spent); column ``at_<f>`` holds the median over seeds of
    :func:`profiles.fixed_budget` at ``f * B`` (NaN while fewer than half the runs have reported,
    counting a run without a checkpoint yet as ``+inf``).
    """
    f = np.asarray(list(fractions), dtype=float)
    if f.size == 0 or np.any(~np.isfinite(f)) or np.any(f <= 0):
        raise ValueError(f"fractions must be positive numbers, got {fractions!r}")
    parts = []
    for problem, g in trials.groupby("problem", sort=False):
        budget = float(g["budget_fe"].median()) if "budget_fe" in g else float("nan")
        if not np.isfinite(budget) or budget <= 0:
            budget = float(g["fe"].max())
        tr = trace[trace["problem"] == problem]
        if tr.empty or not np.isfinite(budget) or budget <= 0:
            continue
        fb = profiles.fixed_budget(tr, (f * budget).tolist())
        loss = fb["train_loss"].astype(float).fillna(np.inf).clip(upper=_BIG)
        med = loss.groupby([fb["optimizer"], fb["budget"]], sort=False).median().unstack()
        med = med.where(med < _BIG / 10)
        med.columns = [f"at_{x:g}" for x in f]
        med = med.reindex(pd.unique(g["optimizer"]))
        med.insert(0, "budget_fe", budget)
        med.insert(0, "problem", problem)
        parts.append(med.reset_index(names="optimizer"))
    cols = ["problem", "optimizer", "budget_fe", *[f"at_{x:g}" for x in f]]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def error_cause(error: object) -> str:
    """One line naming why a run failed: the last line of a traceback (the exception and its
    message), else the first non-empty line of the error text; ``""`` when there is none."""
    if not isinstance(error, str) or not error.strip():
        return ""
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    if lines[0].startswith("Traceback"):
        return lines[-1][:200]
    return lines[0][:200]


def failure_table(
    trials: pd.DataFrame, statuses: Sequence[str] = ("diverged", "error")
) -> pd.DataFrame:
    """Runs that diverged or raised, grouped by (problem, optimizer, status, cause).

    Columns ``problem, optimizer, status, cause, runs, seeds`` (seeds as a comma list).
    """
    cols = ["problem", "optimizer", "status", "cause", "runs", "seeds"]
    bad = trials[trials["status"].isin(list(statuses))]
    if bad.empty:
        return pd.DataFrame(columns=cols)
    bad = bad.assign(cause=bad["error"].map(error_cause))
    g = bad.groupby(["problem", "optimizer", "status", "cause"], sort=False, observed=True)
    out = g["seed"].agg(runs="size", seeds=lambda s: ", ".join(str(int(v)) for v in sorted(s)))
    return out.reset_index()[cols]


TUNING_COLUMNS = (
    "problem",
    "optimizer entry",
    "configuration",
    "success",
    "median_fe_to_target",
    "median_final_loss",
    "fe",
    "seconds",
    "chosen",
)
"""Columns of :func:`tuning_table`."""


def tuning_table(records: Sequence[dict]) -> pd.DataFrame:
    """The tuning choices and their cost, from the records of kind ``"tuning"``.

    One row per (problem, optimizer entry, candidate configuration), sorted by problem and
    entry, candidates in rank order: success rate, median fe to target (``inf`` if missed),
    median final train loss, the tuning cost (fe and seconds summed over the tuning seeds) and
    whether it was chosen (see :mod:`suite.tuning` for the record and the rule).
    """
    rows = [
        {
            "problem": r["problem"],
            "optimizer entry": r["entry"],
            "configuration": c["label"],
            **{k: float(c[k]) for k in TUNING_COLUMNS[3:8]},
            "chosen": bool(c["chosen"]),
        }
        for r in sorted(records, key=lambda r: (str(r["problem"]), str(r["entry"])))
        for c in r["candidates"]
    ]
    return pd.DataFrame(rows, columns=list(TUNING_COLUMNS))


# --------------------------------------------------------------------------- cost split

OVERHEAD_PARTS = {
    "model": ("time_model_loss", "time_model_grad"),
    "optimizer": ("time_optimizer",),
    "checkpoint": ("time_checkpoint",),
    "setup": ("time_setup",),
    "harness": ("time_harness",),
}
"""Shares of the overhead table and the trial-frame columns each one sums."""


def overhead_table(trials: pd.DataFrame, by: str = "optimizer") -> pd.DataFrame:
    """Where the wall time went: one row per value of ``by`` (``"optimizer"`` or ``"task"``)
    over all its trials.

    ``share_<part>`` is the part's summed seconds over the summed ``wall`` (the parts of
    ``suite.trial.TIME_PARTS``; they add up to 1), ``x_model_bound`` is wall / model time: how
    many times longer the trials ran than the model's own passes (1 = model-bound; the
    optimizer, checkpoint, set-up and harness make up the rest), and ``fe_per_s`` /
    ``model_fe_per_s`` are forward-equivalents per second of wall and of model time. Trials
    without the split (records written before it existed) are left out; empty if none has it.
    ``harness_checkpoint_p90`` is the 90th percentile over the trials of each trial's own
    (harness + checkpoint) / wall share.
    """
    cols = [c for parts in OVERHEAD_PARTS.values() for c in parts]
    if trials.empty or any(c not in trials for c in cols):
        return pd.DataFrame()
    have = trials[trials[cols].notna().all(axis=1) & (trials["wall"] > 0)]
    rows = []
    for value, group in have.groupby(by, sort=False):
        wall = float(group["wall"].sum())
        parts = {name: float(group[list(c)].to_numpy().sum()) for name, c in OVERHEAD_PARTS.items()}
        fe = float(group["fe"].sum())
        model = parts["model"]
        per_trial = (group["time_harness"] + group["time_checkpoint"]) / group["wall"]
        rows.append(
            {
                by: value,
                **({"family": group["family"].iloc[0]} if by == "optimizer" else {}),
                "runs": len(group),
                "wall_s": wall,
                **{f"share_{name}": value / wall for name, value in parts.items()},
                "x_model_bound": wall / model if model > 0 else math.inf,
                "fe_per_s": fe / wall,
                "model_fe_per_s": fe / model if model > 0 else math.nan,
                "harness_checkpoint_p90": float(per_trial.quantile(0.9)),
            }
        )
    return pd.DataFrame(rows)


def overhead_section(trials: pd.DataFrame, directory: Path, latex: bool) -> list[str]:
    """Write ``tables/overhead.*`` and return the report's lines for it (none without data)."""
    table = overhead_table(trials)
    if table.empty:
        for name in ("overhead", "overhead_by_task"):
            for ext in ("csv", "md", "tex"):
                (Path(directory) / f"{name}.{ext}").unlink(missing_ok=True)
        return []
    paths = write_table(
        table, directory, "overhead", latex=latex, caption="Where the wall time went."
    )
    by_task = overhead_table(trials, by="task")
    task_paths = write_table(
        by_task, directory, "overhead_by_task", latex=latex, caption="Where the time went, by task."
    )
    fixed = by_task["share_harness"] + by_task["share_checkpoint"]
    worst = table.sort_values("x_model_bound").iloc[-1]
    return [
        "### Where the time went",
        "",
        "Share of each optimizer's summed trial wall time spent in the model's passes, in the "
        "optimizer's own work between the Problem's calls, in checkpoint evaluations, in set-up "
        "(data, model, initial point) and in the harness (the Problem's per-call checks and the "
        "trial's bookkeeping). Wall / model time: 1 would be model-bound; "
        f"the furthest from that limit is {worst['optimizer']} at "
        f"{format_number(worst['x_model_bound'])}x.",
        "",
        paths["md"].read_text(encoding="utf-8"),
        "",
        "By task: harness + checkpoints take "
        f"{format_number(100 * fixed.min())}-{format_number(100 * fixed.max())}% of the summed "
        "wall time (the target is at most 5% on every task); the last column is the 90th "
        "percentile of that share over single trials (short trials pay proportionally more).",
        "",
        task_paths["md"].read_text(encoding="utf-8"),
        "",
    ]
