"""The per-experiment report: tables/, figures/ and REPORT.md written into a results folder.

:func:`write_report` loads ``results/<name>/`` (:func:`suite.store.load_results`), computes every
statistic once with :mod:`suite.analysis.metrics` (:func:`analyse`), writes the tables
(:mod:`suite.report.tables`) and figures (:mod:`suite.report.plots`) and composes ``REPORT.md``:
what was run (problems, optimizers and hyper-parameters, budgets, seeds, machine and versions,
compute time), findings stated from the numbers (who wins where, by what paired ratio, with its
interval and Holm-adjusted p-value; failures), the tables and the figures. Everything is derived
from the stored records; rerunning it on the same folder gives the same files (bootstraps use a
fixed-seed generator).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import suite.report.plots as plots
import suite.report.tables as tables
from suite.analysis import metrics, profiles
from suite.report.style import base_name
from suite.store import Results, load_results

__all__ = ["Analysis", "analyse", "write_report"]

SIGNIFICANCE = 0.05
"""Family-wise level at which Holm-adjusted p-values are called significant in the notes."""


@dataclass
class Analysis:
    """Every frame the report shows, computed once from ``trials`` and ``trace``."""

    trials: pd.DataFrame
    trace: pd.DataFrame
    reference: str
    hits: pd.DataFrame
    ladder_hits: pd.DataFrame
    summary: pd.DataFrame
    speed: pd.DataFrame
    quality: pd.DataFrame
    failures: pd.DataFrame
    fixed_budget: pd.DataFrame
    curves: dict[str, pd.DataFrame]
    ecdf: dict[str, pd.DataFrame]
    ecdf_all: dict[str, pd.DataFrame]
    final: pd.DataFrame
    ert: pd.DataFrame
    profile: pd.DataFrame
    targets: dict[str, float]
    paired_fe: pd.DataFrame = field(default_factory=pd.DataFrame)
    paired_seconds: pd.DataFrame = field(default_factory=pd.DataFrame)


def analyse(
    trials: pd.DataFrame,
    trace: pd.DataFrame,
    reference: str = "adam",
    *,
    n_targets: int = 10,
    n_boot: int = 1000,
    rng: np.random.Generator | None = None,
) -> Analysis:
    """Compute the frames of the report (see :class:`Analysis`).

    ``reference`` is resolved by :func:`tables.resolve_reference` (exact name, else base name,
    else the first optimizer). Runtime ECDFs use :func:`metrics.target_ladder` with
    ``n_targets`` targets per run; every other statistic uses each record's own target.
    """
    if trials.empty:
        raise ValueError("no trial records to analyse")
    rng = np.random.default_rng(0) if rng is None else rng
    reference = tables.resolve_reference(list(pd.unique(trials["optimizer"])), reference)
    hits = metrics.time_to_target(trials, trace)
    # the ladder needs 0 < target < baseline; runs of a task without such a gap are left out
    laddered = trials[
        (trials["target_loss"] > 0) & (trials["baseline_loss"] > trials["target_loss"])
    ]
    ladder_hits = metrics.time_to_target(
        laddered, trace, metrics.target_ladder(laddered, n_targets)
    )
    summary = tables.summary_table(trials, trace, hits=hits, n_boot=n_boot, rng=rng)
    several = trials["optimizer"].nunique() > 1
    empty = pd.DataFrame()
    paired = {}
    for clock in metrics.CLOCKS:
        paired[clock] = (
            metrics.paired_comparison(
                trials, reference, hits=hits, clock=clock, n_boot=n_boot, rng=rng
            )
            if several
            else empty
        )
    speed = tables.speed_table_from(paired["fe"], paired["seconds"]) if several else empty
    quality = tables.quality_table(trials, reference, n_boot=n_boot, rng=rng) if several else empty
    curves = {c: profiles.loss_curves(trace, c) for c in metrics.CLOCKS}
    ecdf = {
        c: profiles.runtime_ecdf(
            ladder_hits, c, grid=profiles.cost_grid(trace, c) if len(trace) else None
        )
        for c in metrics.CLOCKS
    }
    ecdf_all = {c: profiles.aggregate_ecdf(e) for c, e in ecdf.items()}
    ert = summary[["problem", "optimizer", "ert_fe"]].rename(columns={"ert_fe": "ert"})
    profile = profiles.performance_profile(ert, "ert")
    targets = trials.groupby("problem", sort=False)["target_loss"].median().to_dict()
    return Analysis(
        trials=trials,
        trace=trace,
        reference=reference,
        hits=hits,
        ladder_hits=ladder_hits,
        summary=summary,
        speed=speed,
        quality=quality,
        failures=tables.failure_table(trials),
        fixed_budget=tables.fixed_budget_table(trials, trace),
        curves=curves,
        ecdf=ecdf,
        ecdf_all=ecdf_all,
        final=profiles.final_losses(trials),
        ert=ert,
        profile=profile,
        targets=targets,
        paired_fe=paired["fe"],
        paired_seconds=paired["seconds"],
    )


# --------------------------------------------------------------------------- files


TABLE_NAMES = ("summary", "fixed_budget", "speed", "quality", "failures")
FIGURE_NAMES = (
    "loss_fe",
    "loss_seconds",
    "ecdf_fe",
    "ecdf_seconds",
    "final_train",
    "final_test",
    "profile_ert_fe",
    "speed_fe",
    "speed_seconds",
)
"""Files this module writes (other modules may write their own tables and figures alongside)."""


def _remove_stale(directory: Path, names: tuple[str, ...], written: dict, exts: tuple) -> None:
    """Delete this module's files that the current report did not write (left by an earlier run
    with other options or other data), so the folder matches REPORT.md."""
    fresh: set[Path] = set()
    for paths in written.values():
        fresh.update(Path(p) for p in (paths.values() if isinstance(paths, dict) else paths))
    for name in names:
        for ext in exts:
            path = directory / f"{name}.{ext}"
            if path.exists() and path not in fresh:
                path.unlink()


def _write_tables(a: Analysis, directory: Path, latex: bool) -> dict[str, dict[str, Path]]:
    out = {
        "summary": tables.write_table(
            a.summary, directory, "summary", latex=latex, caption="Per problem and optimizer."
        ),
        "fixed_budget": tables.write_table(
            a.fixed_budget,
            directory,
            "fixed_budget",
            latex=latex,
            caption="Median best-so-far train loss at fractions of the budget.",
        ),
        "failures": tables.write_table(
            a.failures, directory, "failures", latex=latex, caption="Diverged and failed runs."
        ),
    }
    if not a.speed.empty:
        out["speed"] = tables.write_table(
            a.speed, directory, "speed", latex=latex, caption=f"Time to target vs {a.reference}."
        )
        out["quality"] = tables.write_table(
            a.quality,
            directory,
            "quality",
            latex=latex,
            caption=f"Final train loss vs {a.reference}.",
        )
    return out


def _write_figures(a: Analysis, directory: Path, pdf: bool) -> dict[str, list[Path]]:
    figs = {}
    for clock in metrics.CLOCKS:
        figs[f"loss_{clock}"] = plots.plot_loss_curves(a.curves[clock], clock, targets=a.targets)
        figs[f"ecdf_{clock}"] = plots.plot_runtime_ecdf(
            a.ecdf[clock], clock, aggregated=a.ecdf_all[clock]
        )
    figs["final_train"] = plots.plot_final_losses(a.final, "train", targets=a.targets)
    figs["final_test"] = plots.plot_final_losses(a.final, "test")
    figs["profile_ert_fe"] = plots.plot_performance_profile(a.profile, cost_label="ERT (fe)")
    for clock, frame in (("fe", a.paired_fe), ("seconds", a.paired_seconds)):
        testable = frame[frame["ratio"].notna()] if not frame.empty else frame
        if not testable.empty:
            unit = "fe" if clock == "fe" else "s"
            figs[f"speed_{clock}"] = plots.plot_speed_ratios(
                testable, xlabel=f"median time-to-target ratio vs reference ({unit})"
            )
    return {name: plots.save_figure(fig, directory, name, pdf=pdf) for name, fig in figs.items()}


# --------------------------------------------------------------------------- text


def _fmt(x: object) -> str:
    return tables.format_number(x)


def _ci(x: float, lo: float, hi: float) -> str:
    return f"{_fmt(x)} [{_fmt(lo)}, {_fmt(hi)}]"


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "-"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _provenance(results: object) -> list[dict]:
    """The distinct provenance dicts of the trial records (``Results.records("trial")``)."""
    records = getattr(results, "records", None)
    if records is None:
        return []
    seen: dict[str, dict] = {}
    for record in records("trial"):
        prov = record.get("provenance") or {}
        seen.setdefault(json.dumps(prov, sort_keys=True, default=str), prov)
    return list(seen.values())


def _what_was_run(a: Analysis, experiment: dict, provenance: list[dict]) -> list[str]:
    t = a.trials
    lines = ["## What was run", ""]
    if experiment.get("description"):
        lines += [str(experiment["description"]).strip(), ""]
    seeds = sorted(int(s) for s in pd.unique(t["seed"]))
    lines.append(
        f"- **trials:** {len(t)} ({t['problem'].nunique()} problems x "
        f"{t['optimizer'].nunique()} optimizers x {len(seeds)} seeds; seed indices "
        f"{', '.join(map(str, seeds[:20]))}{' ...' if len(seeds) > 20 else ''}; experiment seed "
        f"{experiment.get('seed', '-')})"
    )
    lines.append("- **problems** (task / model; target = success train loss, median over seeds):")
    for p, g in t.groupby("problem", sort=False):
        lines.append(
            f"  - `{p}`: baseline loss {_fmt(g['baseline_loss'].median())}, "
            f"target {_fmt(g['target_loss'].median())}"
        )
    lines.append("- **optimizers** (display name: registered name and hyper-parameters):")
    for o, g in t.groupby("optimizer", sort=False):
        params = g["optimizer_params"].iloc[0] if "optimizer_params" in g else "{}"
        name = g["optimizer_name"].iloc[0] if "optimizer_name" in g else base_name(o)
        lines.append(f"  - `{o}`: `{name}` with `{params}`")
    budgets = t[["budget_fe", "budget_seconds"]].drop_duplicates()
    texts = [
        " and ".join(
            x
            for x in (
                f"{_fmt(r.budget_fe)} fe" if np.isfinite(r.budget_fe) else "",
                f"{_fmt(r.budget_seconds)} s" if np.isfinite(r.budget_seconds) else "",
            )
            if x
        )
        or "unlimited"
        for r in budgets.itertuples()
    ]
    lines.append(f"- **budget per trial:** {'; '.join(texts)}")
    status = t["status"].value_counts().to_dict()
    lines.append(
        f"- **compute:** {_duration(t['wall'].sum())} wall and {_duration(t['cpu'].sum())} CPU "
        f"summed over trials ({_fmt(t['fe'].sum())} fe); statuses: "
        + ", ".join(f"{k} {v}" for k, v in status.items())
    )
    if provenance:
        keys = ("rnnbench", "git", "python", "numpy", "scipy", "cma", "platform", "cpu_count")
        for prov in provenance[:3]:
            lines.append(
                "- **produced by:** " + "; ".join(f"{k} {prov.get(k)}" for k in keys if k in prov)
            )
        if len(provenance) > 3:
            lines.append(f"- ... and {len(provenance) - 3} more software/machine combinations")
    lines.append("")
    return lines


def _notes(a: Analysis) -> list[str]:
    """Findings stated from the numbers of the analysis."""
    s = a.summary
    lines = ["## Findings", ""]
    for problem, g in s.groupby("problem", sort=False):
        g = g.sort_values(["ert_fe", "final_train"], kind="stable")
        best = g.iloc[0]
        if not np.isfinite(best["ert_fe"]):
            low = g.sort_values("final_train", kind="stable").iloc[0]
            lines.append(
                f"- **{problem}:** no optimizer reached the target within the budget; the lowest "
                f"median final train loss was {_fmt(low['final_train'])} (`{low['optimizer']}`)."
            )
            continue
        text = (
            f"- **{problem}:** lowest ERT `{best['optimizer']}`, "
            f"{_ci(best['ert_fe'], best['ert_fe_low'], best['ert_fe_high'])} fe "
            f"(success rate {_fmt(best['success_rate'])})"
        )
        if len(g) > 1:
            second = g.iloc[1]
            ratio = second["ert_fe"] / best["ert_fe"]
            text += f"; next `{second['optimizer']}` at {_fmt(ratio)}x that ERT"
        by_sec = g.sort_values("ert_seconds", kind="stable").iloc[0]
        if by_sec["optimizer"] != best["optimizer"] and np.isfinite(by_sec["ert_seconds"]):
            text += (
                f". In wall time `{by_sec['optimizer']}` is fastest "
                f"(ERT {_fmt(by_sec['ert_seconds'])} s vs {_fmt(best['ert_seconds'])} s)"
            )
        lines.append(text + ".")
        early = _early_leader(a, problem)
        if early and early[0] != best["optimizer"]:
            lines.append(
                f"  - Anytime: at {_fmt(early[1])} fe (1% of the largest cost) the lowest median "
                f"loss was `{early[0]}`'s; the whole curve matters (see the loss figures)."
            )
    if not a.speed.empty:
        sig = a.speed[a.speed["p_holm_fe"] < SIGNIFICANCE]
        for r in sig.itertuples():
            word = "faster" if r.ratio_fe < 1 else "slower"
            lines.append(
                f"- `{r.optimizer}` is {word} than `{r.reference}` on {r.problem}: median paired "
                f"time ratio {_ci(r.ratio_fe, r.ratio_fe_low, r.ratio_fe_high)} (fe), "
                f"{_ci(r.ratio_seconds, r.ratio_seconds_low, r.ratio_seconds_high)} (s); "
                f"Holm-adjusted p = {_fmt(r.p_holm_fe)}; rank-biserial r = "
                f"{_ci(r.effect_fe, r.effect_fe_low, r.effect_fe_high)}; better/worse seeds "
                f"{r.better_worse}."
            )
        tested = int(a.speed["p_holm_fe"].notna().sum())
        if tested > len(sig):
            lines.append(
                f"- {tested - len(sig)} of {tested} testable time-to-target comparisons with "
                f"`{a.reference}` are not significant at a family-wise {SIGNIFICANCE} (Holm); "
                "see the speed table."
            )
        if tested < len(a.speed):
            lines.append(
                f"- {len(a.speed) - tested} time-to-target comparisons are not testable: both "
                "optimizers missed the target on every seed (see the final-loss comparison)."
            )
        qsig = a.quality[a.quality["p_holm"] < SIGNIFICANCE]
        for r in qsig.itertuples():
            word = "lower" if r.ratio < 1 else "higher"
            lines.append(
                f"- Final train loss: `{r.optimizer}` ends {word} than `{r.reference}` on "
                f"{r.problem}: median paired ratio {_ci(r.ratio, r.ratio_low, r.ratio_high)}, "
                f"Holm p = {_fmt(r.p_holm)}."
            )
        testable = a.speed[a.speed["p_holm_fe"].notna()]
        if len(testable):
            # the best case: the comparison with the most informative pairs (ties and pairs
            # where both missed carry no information for Wilcoxon's test)
            n_min = int((testable["pairs"] - a.paired_fe.loc[testable.index, "n_both_inf"]).max())
            floor = min(1.0, len(testable) * 2.0 / 2**n_min)
            if floor >= SIGNIFICANCE:
                lines.append(
                    f"- With {n_min} informative seed pairs and {len(testable)} comparisons the "
                    f"smallest possible Holm-adjusted Wilcoxon p-value is {_fmt(floor)}: no "
                    "difference can be called significant; run more seeds."
                )
    n_fail = int(a.failures["runs"].sum()) if not a.failures.empty else 0
    if n_fail:
        worst = a.failures.sort_values("runs", ascending=False).iloc[0]
        lines.append(
            f"- {n_fail} runs diverged or failed; most often `{worst['optimizer']}` on "
            f"{worst['problem']} ({worst['runs']} x {worst['status']}: {worst['cause'] or '-'})."
        )
    else:
        lines.append("- No run diverged or failed.")
    lines.append("")
    return lines


def _early_leader(a: Analysis, problem: str) -> tuple[str, float] | None:
    c = a.curves["fe"]
    c = c[(c["problem"] == problem) & c["median"].notna()]
    if c.empty:
        return None
    x = c["cost"].max() / 100.0
    early = c[c["cost"] <= x]
    if early.empty:
        return None
    at = early[early["cost"] == early["cost"].max()]
    row = at.sort_values("median", kind="stable").iloc[0]
    return str(row["optimizer"]), float(row["cost"])


DEFINITIONS = """## Definitions

- **Cost**: forward-equivalents (fe; one forward RNN cell step of one sequence, a backward step
  counts 2 fe) and wall seconds spent inside the trial (checkpoint evaluations excluded).
- **Time to target**: the cost of the first checkpoint (10 per decade of fe) at which the
  best-so-far train loss is at or below the task's target; a run that never gets there has
  time `inf`.
- **ERT** (COCO): cost summed over all runs (to success, or to the end of unsuccessful runs)
  divided by the number of successful runs; `inf` if none. 95% interval: percentile bootstrap
  over runs.
- **Paired ratio**: per seed (same data, same initial point for every optimizer) the ratio
  optimizer / reference, failures as `inf`; pairs where both failed are dropped; median over
  seeds with a percentile bootstrap interval over seed pairs. < 1 means faster (or lower loss).
- **p (Holm)**: two-sided Wilcoxon signed-rank test on the paired log ratios, adjusted with
  Holm's step-down procedure over all comparisons of the table.
- **effect r**: matched-pairs rank-biserial correlation (+1: the optimizer is better on every
  seed, -1: worse on every seed), with a bootstrap interval.
- **Anytime score**: mean over the last 4 decades of the fe budget (log grid) of the normalised
  gap `clip(log(L/target) / log(baseline/target), 0, 1)` of the best-so-far loss; 0 = target hit
  at 1/10^4 of the budget, 1 = never better than the baseline.
- **Runtime ECDF**: fraction of (run, target) pairs reached by a cost, over 10 targets
  log-spaced from the baseline loss down to the task target.
- **Performance profile** (Dolan & More): fraction of problems on which an optimizer's ERT is
  within a factor tau of the best optimizer's.
"""


def _tuning(results: Results, directory: Path, latex: bool) -> list[str]:
    """Write ``tables/tuning.*`` from the tuning records; return the REPORT.md section.

    A tuned experiment whose folder holds no tuning records (written before the choices were
    stored) gets a note saying so, and its ``tuning.*`` files are left as they are.
    """
    spec = results.experiment or {}
    table = tables.tuning_table(results.records("tuning"))
    if table.empty:
        entries = ", ".join(f"`{e}`" for e in spec.get("tuned", [])) or "its entries"
        missing = (
            f"This experiment was tuned ({entries}), but this folder holds no tuning records "
            "(kind `tuning`), so `tables/tuning.csv` was not regenerated. Run the experiment "
            "again with `rnnbench run` (same profile): it reuses the stored tuning and "
            "evaluation trials and stores the choices."
        )
        return ["### Tuning", "", missing, ""] if spec.get("tuned") or spec.get("tuning") else []
    caption = "Tuning choices and cost (seeds not used in the evaluation)."
    paths = tables.write_table(table, directory / "tables", "tuning", latex=latex, caption=caption)
    return _section_table(
        "Tuning",
        paths["md"],
        "Per problem and optimizer entry, every grid point tried on the tuning seeds, in rank "
        "order (success rate, then median fe to target, then median final train loss); the "
        f"chosen one ran in the evaluation. Tuning cost: {_fmt(table['fe'].sum())} fe, "
        f"{_duration(table['seconds'].sum())} of trial time.",
    )


def _section_table(title: str, path: Path, intro: str) -> list[str]:
    return [f"### {title}", "", intro, "", path.read_text(encoding="utf-8"), ""]


def _in_experiment_order(
    trials: pd.DataFrame, trace: pd.DataFrame, experiment: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sort rows so problems and optimizers appear in the experiment file's order (then seed);
    tables and figures list them in order of first appearance."""
    ranks = {}
    for col, key in (("problem", "problems"), ("optimizer", "optimizers")):
        listed = [e.get("label") for e in experiment.get(key, []) if isinstance(e, dict)]
        names = [n for n in listed if n] + sorted(set(trials[col]) - set(listed))
        ranks[col] = {n: i for i, n in enumerate(names)}

    def order(frame: pd.DataFrame) -> pd.DataFrame:
        keys = frame.assign(
            _p=frame["problem"].map(ranks["problem"]), _o=frame["optimizer"].map(ranks["optimizer"])
        )
        cols = ["_p", "_o", "seed"] + (["fe"] if "fe" in frame and frame is trace else [])
        return keys.sort_values(cols, kind="stable").drop(columns=["_p", "_o"])

    return order(trials).reset_index(drop=True), order(trace).reset_index(drop=True)


def write_report(
    results_dir: str | os.PathLike[str],
    latex: bool = False,
    pdf: bool = False,
    reference: str = "adam",
    *,
    n_boot: int = 1000,
) -> Path:
    """Write ``tables/``, ``figures/`` and ``REPORT.md`` into ``results_dir``; return REPORT.md.

    ``latex`` adds ``.tex`` tables, ``pdf`` adds ``.pdf`` figures; ``reference`` names the
    optimizer the others are compared with (display or base name; the first optimizer if absent).
    ``n_boot`` bootstrap resamples are drawn from ``numpy.random.default_rng(0)``, so the report
    is reproducible. ValueError if the folder holds no trial records.
    """
    directory = Path(results_dir)
    results = load_results(directory)
    trials, trace = results.trials, results.trace
    if trials.empty:
        raise ValueError(f"{directory} holds no trial records: run the experiment first")
    trials, trace = _in_experiment_order(trials, trace, results.experiment or {})
    a = analyse(trials, trace, reference, n_boot=n_boot, rng=np.random.default_rng(0))
    table_paths = _write_tables(a, directory / "tables", latex)
    figure_paths = _write_figures(a, directory / "figures", pdf)
    _remove_stale(directory / "tables", TABLE_NAMES, table_paths, ("csv", "md", "tex"))
    tuning_lines = _tuning(results, directory, latex)
    _remove_stale(directory / "figures", FIGURE_NAMES, figure_paths, ("png", "pdf"))

    experiment = results.experiment or {}
    name = experiment.get("name") or directory.name
    lines = [f"# Report: {name}", ""]
    lines.append(
        f"Generated by `rnnbench report` from {len(trials)} trial records in "
        f"`{directory.name}/`. "
        f"Reference optimizer for paired comparisons: `{a.reference}`. Tables are in `tables/` "
        "(CSV with full precision, Markdown" + (", LaTeX" if latex else "") + "), figures in "
        "`figures/`."
    )
    lines.append("")
    lines += _what_was_run(a, experiment, _provenance(results))
    lines += _notes(a)
    lines += ["## Tables", ""]
    lines += _section_table(
        "Summary",
        table_paths["summary"]["md"],
        "Per problem and optimizer; medians over seeds, [IQR] for losses, [95% CI] for ERT.",
    )
    lines += _section_table(
        "Fixed-budget view",
        table_paths["fixed_budget"]["md"],
        "Median over seeds of the best-so-far train loss after 0.1%, 1%, 10% and 100% of the "
        "fe budget: who leads early may not lead at the end.",
    )
    if "speed" in table_paths:
        lines += _section_table(
            f"Time to target vs {a.reference}",
            table_paths["speed"]["md"],
            "Median paired ratio of time to target (< 1: faster), Holm-adjusted Wilcoxon "
            "p-values, rank-biserial effect (+1: faster on every seed).",
        )
        lines += _section_table(
            f"Final train loss vs {a.reference}",
            table_paths["quality"]["md"],
            "Median paired ratio of the final train loss (< 1: lower), Holm-adjusted Wilcoxon "
            "p-values, rank-biserial effect (+1: lower on every seed).",
        )
    if a.failures.empty:
        lines += ["### Failures", "", "No run diverged or raised an error.", ""]
    else:
        lines += _section_table(
            "Failures", table_paths["failures"]["md"], "Runs that diverged or raised, by cause."
        )
    lines += tables.overhead_section(trials, directory / "tables", latex)
    lines += tuning_lines
    lines += ["## Figures", ""]
    captions = {
        "loss_fe": "Best-so-far train loss vs forward-equivalents (median, IQR band; dashed: "
        "target).",
        "loss_seconds": "Best-so-far train loss vs wall time.",
        "ecdf_fe": "Runtime ECDFs over a ladder of 10 targets, in forward-equivalents.",
        "ecdf_seconds": "Runtime ECDFs in wall time.",
        "final_train": "Final train loss per seed (fixed-budget view).",
        "final_test": "Final test loss of the incumbent per seed.",
        "profile_ert_fe": "Performance profile of ERT (fe) across problems.",
        "speed_fe": f"Paired time-to-target ratios vs {a.reference} (fe), 95% bootstrap CI "
        "(comparisons where both missed the target on every seed are left out).",
        "speed_seconds": f"Paired time-to-target ratios vs {a.reference} (wall time).",
    }
    for fig_name, paths in figure_paths.items():
        rel = paths[0].relative_to(directory).as_posix()
        lines += [f"**{captions.get(fig_name, fig_name)}**", "", f"![{fig_name}]({rel})", ""]
    lines += [DEFINITIONS]
    if experiment:
        spec = json.dumps(experiment, indent=2, default=str)
        lines += [
            "<details><summary>experiment spec</summary>",
            "",
            "```json",
            spec,
            "```",
            "",
            "</details>",
            "",
        ]
    report = directory / "REPORT.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report
