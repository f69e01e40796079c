"""``rnnbench reproduce claims``: run the shipped experiments and judge SCIENCE.md's statements.

The five shipped claims experiments (each with a quick and a reference profile):

* ``speed`` (C1): every task x every built-in optimizer family, tuned, paired seeds;
* ``truncation``: truncated BPTT(h; h) against full BPTT over the window h;
* ``optima`` (C2, C3): multi-start studies of the Elman RNN and its matched TDNN twin;
* ``landscape`` (C4): roughness, gradient-norm spread, Lyapunov exponents, the cliff, and the
  truncated-gradient cosine;
* ``scaling`` (C1 against network size): Elman H = 4..64 on adding and narma10.

An optional ``speed-nevergrad`` folder (the nevergrad extra's experiment), when present beside
``speed``, adds its black-box methods to the candidates for C1's best black-box method.

:func:`reproduce_claims` runs them (resuming whatever is stored), writes each experiment's own
report, then the claims report: ``results/claims/REPORT.md`` for the reference profile,
``results/claims-quick/REPORT.md`` for the quick one, with a verdict per statement and task
computed from the stored records by the rules of :mod:`suite.analysis.verdicts`.
:func:`write_claims_report` rebuilds the report from stored results alone.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from suite import workerpool
from suite.analysis import verdicts as V
from suite.experiment import experiment_kind, experiment_path, read_experiment_file
from suite.kinds import Kind, ReportOptions, get_kind
from suite.report.scaling import write_scaling
from suite.report.tables import format_number, to_markdown, write_table
from suite.reproduction import (
    print_verdicts,
    quick_lines,
    reproduction_lines,
    resumed_units,
)
from suite.runner import RunSummary
from suite.store import load_results
from suite.tuning import run_tuned

EXPERIMENTS: tuple[str, ...] = ("speed", "truncation", "optima", "landscape", "scaling")

STATEMENTS: dict[str, str] = {
    "C1": "BPTT trains RNNs much faster than general-purpose optimizers such as evolution "
    "strategies.",
    "C2": "BPTT has trouble with local optima.",
    "C3": "Local optima are a much bigger problem for RNNs than for feed-forward networks.",
    "C4": "Recurrent feedback makes the error surface chaotic, so local optima are frequent "
    "and badly placed.",
}


def result_dirs(out: str | os.PathLike[str], quick: bool) -> dict[str, Path]:
    """Results folder of each shipped claims experiment."""
    suffix = "-quick" if quick else ""
    return {name: Path(out) / f"{name}{suffix}" for name in EXPERIMENTS}


def claims_dir(out: str | os.PathLike[str], quick: bool) -> Path:
    """Folder of the claims report."""
    return Path(out) / ("claims-quick" if quick else "claims")


def reproduce_claims(
    quick: bool = True,
    jobs: int | None = None,
    out: str | os.PathLike[str] = "results",
    dask: str | None = None,
    progress: bool = True,
    report_only: bool = False,
) -> Path:
    """Run the claims experiments (``quick`` or reference profile) and write the report.

    Returns the path of the claims ``REPORT.md``. Stored records are reused (a rerun resumes).
    ``report_only`` skips running and rebuilds every report from what is stored.
    """
    profile = "quick" if quick else "default"
    dirs = result_dirs(out, quick)
    target = claims_dir(out, quick)
    timings: dict[str, float] = {}
    summaries: list[RunSummary] = []
    if not report_only:
        t0 = time.perf_counter()
        for name in EXPERIMENTS + optional_experiments():
            t = time.perf_counter()
            for s in run_tuned(name, profile, out, jobs, dask, progress=progress):
                print(s)
                summaries.append(s)
            timings[name] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        target.mkdir(parents=True, exist_ok=True)
    ran, skipped = sum(s.completed for s in summaries), resumed_units(summaries)
    if not report_only and (ran or not (target / "run.json").exists()):
        # a rerun that found everything stored keeps the timings of the run that did the work
        run_info = {
            "profile": profile,
            "jobs": jobs or os.cpu_count(),
            "executor": "dask" if dask else ("in-process" if jobs == 1 else "processes"),
            "seconds": timings,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
            "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        if skipped:
            run_info["resumed"] = f"{skipped} units were already stored and not timed"
        (target / "run.json").write_text(json.dumps(run_info, indent=2) + "\n")
    bar = tqdm(
        total=len(report_jobs(dirs)) + 1,
        desc="reports",
        unit="report",
        disable=None if progress else True,  # None: no bar off a terminal
        file=sys.stderr,
        dynamic_ncols=True,
    )
    with bar:
        write_experiment_reports(dirs, bar, jobs=1 if dask else jobs)
        bar.set_postfix_str("claims", refresh=True)
        path = write_claims_report(dirs, target)
        bar.update(1)
    print_verdicts(target)
    return path


def reference_verdicts() -> Path | None:
    """The committed reference verdicts (``results/claims/tables/verdicts.csv`` of the
    repository this package runs from), or None when absent (e.g. an installed wheel)."""
    path = Path(__file__).resolve().parents[1] / "results" / "claims" / "tables" / "verdicts.csv"
    return path if path.is_file() else None


def kind_of(name: str) -> Kind:
    """The kind of the shipped experiment ``name`` (read from its TOML file)."""
    return get_kind(experiment_kind(read_experiment_file(experiment_path(name))))


def report_options(dirs: dict[str, Path]) -> dict[str, ReportOptions]:
    """What each claims experiment's report is asked for: the truncation study compares with
    full BPTT, the landscape report draws the speed study's cliff trials."""
    options = {name: ReportOptions() for name in EXPERIMENTS}
    options["truncation"] = ReportOptions(reference="full BPTT (adam)")
    options["landscape"] = ReportOptions(trial_results=(dirs["speed"],))
    return options


def report_jobs(dirs: dict[str, Path]) -> list[tuple[str, Path, ReportOptions]]:
    """The experiment reports to write: (experiment name, folder, options), speed-nevergrad's
    when its folder exists."""
    options = report_options(dirs)
    todo = [(name, dirs[name], options[name]) for name in EXPERIMENTS]
    ng = nevergrad_dir(dirs)
    if ng.is_dir():
        todo.append(("speed-nevergrad", ng, ReportOptions()))
    return todo


def _write_report(name: str, folder: Path, options: ReportOptions) -> str:
    kind_of(name).report(folder, options)
    return name


def write_experiment_reports(dirs: dict[str, Path], bar: Any = None, jobs: int | None = 1) -> None:
    """Each experiment's own tables, figures and REPORT.md, written by its kind (``bar``: a
    tqdm bar advanced once per report).

    The folders are independent (the landscape report only reads the speed folder), so with
    ``jobs`` > 1 (None: the CPU count) they are written by that many local worker processes;
    the files are the same either way (``tests/test_figures.py``).
    """
    todo = report_jobs(dirs)
    workers = min(len(todo), jobs if jobs is not None else (os.cpu_count() or 1))
    if workers <= 1:
        for name, folder, options in todo:
            if bar is not None:
                bar.set_postfix_str(name, refresh=True)
            _advance(bar, _write_report(name, folder, options))
        return
    ctx = workerpool.context()
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_write_report, *job) for job in todo]
        for future in cf.as_completed(futures):
            _advance(bar, future.result())


def _advance(bar: Any, written: str) -> None:
    if bar is not None:
        bar.set_postfix_str(f"{written} done", refresh=False)
        bar.update(1)


OPTIONAL: tuple[str, ...] = ("speed-nevergrad",)
"""Claims experiments that need an optional extra (``speed-nevergrad``: nevergrad)."""


def optional_experiments() -> tuple[str, ...]:
    """The optional claims experiments whose extra is installed (run after the others)."""
    return OPTIONAL if importlib.util.find_spec("nevergrad") is not None else ()


def nevergrad_dir(dirs: dict[str, Path]) -> Path:
    """Where the optional ``speed-nevergrad`` results sit (beside ``speed``, same profile)."""
    speed = dirs["speed"]
    return speed.parent / speed.name.replace("speed", "speed-nevergrad", 1)


def c1_inputs(dirs: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """C1's trials, trace and tuning records: the speed folder's, plus the black-box trials
    (no ``gradient`` tag) and tuning records of ``speed-nevergrad`` when that folder exists."""
    speed = kind_of("speed").analyse(dirs["speed"])
    trials, trace = speed.trials, speed.trace
    tuning = list(load_results(dirs["speed"]).records("tuning"))
    ng = nevergrad_dir(dirs)
    if ng.is_dir():
        extra = load_results(ng)
        trials, trace = V.c1.add_black_box(trials, trace, extra.trials, extra.trace)
        tuning += list(extra.records("tuning"))
    return trials, trace, tuning


def compute_verdicts(dirs: dict[str, Path]) -> pd.DataFrame:
    """Every verdict row (claim x problem) from the stored results of ``dirs``, each folder
    read by its experiment's kind (``Kind.analyse``)."""
    rel = {name: f"../{d.name}" for name, d in dirs.items()}
    trials, trace, tuning = c1_inputs(dirs)
    frames = [V.verdict_c1(trials, trace, f"{rel['speed']}/figures/loss_fe.png", tuning)]
    optima = kind_of("optima").analyse(dirs["optima"])
    frames.append(
        V.verdict_c2(
            optima.starts,
            optima.summary,
            f"{rel['optima']}/figures/optima_trap_rates.png;"
            f"{rel['optima']}/figures/optima_margin_sensitivity.png",
        )
    )
    frames.append(
        V.verdict_c3(optima.starts, optima.summary, f"{rel['optima']}/figures/optima_c3_design.png")
    )
    frames += _c4_verdicts(dirs["landscape"], rel["landscape"])
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=V.COLUMNS)


@functools.lru_cache(maxsize=2)
def _landscape_analysis(folder: str, stamp: int) -> Any:
    return kind_of("landscape").analyse(Path(folder))


def _landscape(folder: Path) -> Any:
    """The landscape analysis of ``folder``, computed once per state of its index (the
    bootstrap trend tables take seconds; the verdicts and the C4 section share them)."""
    index = folder / "index.jsonl"
    return _landscape_analysis(str(folder), index.stat().st_mtime_ns if index.exists() else 0)


def _c4_verdicts(folder: Path, rel: str) -> list[pd.DataFrame]:
    """C4a (chaos: Lyapunov shares) and C4b (roughness and stall trends) from a landscape
    folder, with their figures as evidence."""
    la = _landscape(folder)
    figs = f"{rel}/figures/landscape_"
    return [
        V.verdict_c4a(la.chaos, la.reference, f"{figs}c4a_chaos.png"),
        V.verdict_c4b(la.trends, f"{figs}c4b_trends.png;{figs}c4b_sensitivity.png"),
    ]


def _c4_section(v: pd.DataFrame, display: pd.DataFrame, folder: Path) -> list[str]:
    """The claims report's C4 section: C4a and C4b apart, each with its rule, verdict table
    (effect, 95% interval), figures, sensitivity and limits."""
    la = _landscape(folder)
    rel = f"../{folder.name}"
    lines = [
        f"## C4: {STATEMENTS['C4']}",
        "",
        "Judged as two statements: C4a *chaotic* (a positive largest Lyapunov exponent) and C4b "
        "*rough, with frequent and badly placed optima* (trends of prominent minima along lines "
        "and of stall losses with T and radius). Details: "
        f"[`{folder.name}/REPORT.md`]({rel}/REPORT.md).",
        "",
    ]
    for claim, title in (("C4a", "chaotic"), ("C4b", "rough, frequent and badly placed optima")):
        rows = v[v["claim"] == claim]
        lines += [f"### {claim}: {title}", "", f"**Rule.** {V.RULES[claim]}", ""]
        if rows.empty:
            lines += ["No data: the landscape experiment has no usable records.", ""]
            continue
        lines += [to_markdown(display[v["claim"] == claim].drop(columns=["claim"])), ""]
        for ev in dict.fromkeys(e for evs in rows["evidence"] for e in evs.split(";") if e):
            lines += [f"![{claim}]({ev})", ""]
        if claim == "C4a":
            sens = pd.concat(
                [V.c4.chaos_shares(la.chaos, eps) for eps in V.c4.LYAP_EPS_SENSITIVITY]
            )
            if not sens.empty:
                sens = sens[(sens["gain"] == "all") & (sens["drive"] == "driven")]
                lines += [
                    "**Sensitivity to the threshold** (share of networks with lambda_max > eps, "
                    "driven, all gains pooled):",
                    "",
                    to_markdown(_ci_table(sens, ["task", "where", "eps"], "share")),
                    "",
                ]
        else:
            sens = V.c4.c4b_sensitivity(la.minima)
            if not sens.empty:
                lines += [
                    "**Sensitivity to the prominence threshold and to the line** (Spearman rho of "
                    "minima per line, mean over strata, at the start):",
                    "",
                    to_markdown(_ci_table(sens, ["task", "line", "against", "prominence"], "rho")),
                    "",
                ]
        lines += [f"**Limits.** {V.LIMITS[claim]}", ""]
    return lines


def _ci_table(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """``keys`` and ``value [low, high]`` as display strings."""
    out = frame[keys].astype(str).reset_index(drop=True)
    out[f"{value} [95% CI]"] = [
        f"{_fmt(r[value])} [{_fmt(r['low'])}, {_fmt(r['high'])}]" for _, r in frame.iterrows()
    ]
    return out


def _fmt(x: Any) -> str:
    return format_number(x)


def _effect(row: pd.Series, which: str = "") -> str:
    value = row[f"effect{which}"]
    low, high = row[f"ci_low{which}"], row[f"ci_high{which}"]
    if pd.isna(value):  # no point estimate; an interval may still say something (C1: [0, inf))
        return "" if pd.isna(low) or pd.isna(high) else f"none [{_fmt(low)}, {_fmt(high)}]"
    return f"{_fmt(value)} [{_fmt(low)}, {_fmt(high)}]"


def verdict_table(v: pd.DataFrame) -> pd.DataFrame:
    """The display table: claim, task, verdict, effect [95% CI], second effect, detail."""
    return pd.DataFrame(
        {
            "claim": v["claim"],
            "task": v["problem"],
            "verdict": v["verdict"],
            "effect [95% CI]": [
                f"{m}: {_effect(r)}" if m else ""
                for m, (_, r) in zip(v["measure"], v.iterrows(), strict=True)
            ],
            "second effect [95% CI]": [
                f"{m}: {_effect(r, '_2')}" if m else ""
                for m, (_, r) in zip(v["measure_2"], v.iterrows(), strict=True)
            ],
            "n": v["n"],
            "detail": v["detail"],
        }
    )


def _matrix(v: pd.DataFrame) -> pd.DataFrame:
    m = v.pivot_table(index="problem", columns="claim", values="verdict", aggfunc="first")
    order = [c for k in STATEMENTS for c in (k, f"{k}a", f"{k}b")]
    return m.reindex(columns=[c for c in order if c in m.columns]).fillna("")


def c1_sections(dirs: dict[str, Path], target: Path, v: pd.DataFrame) -> list[str]:
    """C1's companion rows (C1q, C1+tuning) and the tuning protocol with its cost per family."""
    lines: list[str] = []
    display = verdict_table(v)
    for claim in ("C1q", "C1+tuning"):
        sel = (v["claim"] == claim).to_numpy()
        if sel.any():
            lines += [f"**{claim}.** {V.RULES[claim]}", ""]
            lines += [to_markdown(display[sel].drop(columns=["claim"])), ""]
            lines += [f"**Limits ({claim}).** {V.LIMITS[claim]}", ""]
    trials, _, tuning = c1_inputs(dirs)
    held = V.c1.heldout_table(trials, tuning)
    if not held.empty:
        write_table(held, target / "tables", "c1_heldout", latex=False)
        lines += [
            "**Held-out view.** C1's success is judged on the train target (`target_loss`, "
            "stated per task). Median final train and held-out (test split) losses of each "
            "group's winner, so that overfitting shows (`test_over_train` far above 1):",
            "",
            to_markdown(held.assign(**{c: held[c].map(_fmt) for c in held.columns[4:]})),
            "",
        ]
    cost = V.c1.tuning_cost(tuning, trials)
    if not cost.empty:
        write_table(cost, target / "tables", "tuning_cost", latex=False)
        name = dirs["speed"].name
        lines += [
            "**Tuning protocol and cost.** Every optimizer gets the same number of configurations "
            "on the same tuning seeds (disjoint from the evaluation seeds) at the same tuning "
            "budget; a grid whose chosen value sits at its edge is extended (`suite/tuning.py`); "
            "each group's winner is chosen on the tuning seeds only. Cost per task and group "
            f"(all configurations of all its members; choices in [`{name}/tables/tuning.md`]"
            f"(../{name}/tables/tuning.md)); totals: "
            + ", ".join(
                f"{g} {c['fe'].sum():.3g} fe / {c['seconds'].sum():.0f} s"
                for g, c in cost.groupby("group", sort=True)
            )
            + ".",
            "",
            to_markdown(cost.assign(fe=cost["fe"].map(_fmt), seconds=cost["seconds"].map(_fmt))),
            "",
        ]
    return lines


def gating_section(optima_dir: Path) -> list[str]:
    """Markdown lines of "does gating change C2?": Elman against the GRU and LSTM of matched
    parameter count, from the optima report's ``tables/optima_gating.csv`` (trap rates over all
    starts with 95% intervals, the paired difference to Elman and the class shares)."""
    table = optima_dir / "tables" / "optima_gating.csv"
    head = ["### Does gating change C2?", ""]
    if not table.exists():
        return [*head, "No data: the optima study has no gated (GRU/LSTM) studies.", ""]
    g = pd.read_csv(table)

    def ci(v: str) -> list[str]:
        return [
            f"{_fmt(r[v])} [{_fmt(r[v + '_low'])}, {_fmt(r[v + '_high'])}]" for _, r in g.iterrows()
        ]

    shares = [c for c in g.columns if c.startswith("share_")]
    out = pd.DataFrame(
        {
            "task": g["task"],
            "vs elman H": g["elman_hidden"],
            "architecture": g["architecture"] + " H=" + g["hidden"].astype(str),
            "params": g["params"],
            "starts": g["starts"],
            "trap rate [95% CI]": [
                f"{_fmt(r['trap_rate'])} [{_fmt(r['trap_low'])}, {_fmt(r['trap_high'])}]"
                for _, r in g.iterrows()
            ],
            "minus elman [95% CI]": ci("minus_elman"),
            **{c.removeprefix("share_"): g[c].round(2) for c in shares},
        }
    )
    return [
        *head,
        "The same classes and rates per architecture: Elman against the GRU and LSTM whose "
        "parameter count is closest (same tasks, data draws and seed indices); `minus elman` is "
        "the trap-rate difference paired by start. Details: "
        f"[`{optima_dir.name}/REPORT.md`](../{optima_dir.name}/REPORT.md).",
        "",
        to_markdown(out),
        "",
        f"![trap rates](../{optima_dir.name}/figures/optima_trap_rates.png)",
        "",
    ]


def write_claims_report(dirs: dict[str, Path], target: Path) -> Path:
    """Verdict tables and ``REPORT.md`` for the claims, from stored results only."""
    target.mkdir(parents=True, exist_ok=True)
    reference_file = reference_verdicts()
    reference = pd.read_csv(reference_file, keep_default_na=False) if reference_file else None
    v = compute_verdicts(dirs)
    write_table(v, target / "tables", "verdicts", latex=False)
    display = verdict_table(v)
    matrix = _matrix(v).reset_index().rename(columns={"problem": "task"})
    write_table(matrix, target / "tables", "verdict_matrix", latex=False)
    run_file = target / "run.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else None
    lines = [
        "# rnnbench: verdicts on the four statements about BPTT",
        "",
        "Generated by `rnnbench reproduce claims"
        + ("" if "quick" in target.name else " --full")
        + "` from the stored records of "
        + ", ".join(f"[`{d.name}`](../{d.name}/REPORT.md)" for d in dirs.values())
        + ". Every verdict below is computed from those records by the rules stated with it "
        "(`suite/analysis/verdicts/`); none is typed by hand. Effects carry 95% bootstrap "
        "confidence intervals over seeds (or starts).",
        "",
    ]
    if "quick" in target.name:
        lines += quick_lines(dirs)
    ng = nevergrad_dir(dirs)
    lines += [
        (
            f"C1's black-box side includes nevergrad's methods ([`{ng.name}`](../{ng.name}/"
            "REPORT.md)): the best black-box method is chosen over pycma, scipy, random search "
            "and nevergrad."
        )
        if ng.is_dir()
        else (
            'nevergrad was not installed for this run (`pip install -e ".[nevergrad]"`): C1\'s '
            "black-box side is pycma, scipy's derivative-free methods and random search."
        ),
        "",
    ]
    if run:
        secs = run["seconds"]
        lines += [
            f"Profile **{run['profile']}**, {run['jobs']} workers ({run['executor']}) on "
            f"{run['machine']}: {secs['total'] / 60:.1f} min in all ("
            + ", ".join(
                f"{k} {secs[k] / 60:.1f} min" for k in (*EXPERIMENTS, *OPTIONAL) if k in secs
            )
            + f"), finished {run['finished']}.",
            "",
        ]
    lines += ["## Verdict matrix", "", to_markdown(matrix), ""]
    lines += reproduction_lines(v, reference, target)
    for claim, statement in STATEMENTS.items():
        if claim == "C4":
            lines += _c4_section(v, display, dirs["landscape"])
            continue
        rows = v[v["claim"] == claim]
        lines += [f"## {claim}: {statement}", "", f"**Rule.** {V.RULES[claim]}", ""]
        if rows.empty:
            lines += ["No data: the experiment that tests it has no usable records.", ""]
            continue
        lines += [to_markdown(display[v["claim"] == claim].drop(columns=["claim"])), ""]
        for ev in dict.fromkeys(e for evs in rows["evidence"] for e in evs.split(";") if e):
            lines += [f"![{claim}]({ev})", ""]
        lines += [f"**Limits.** {V.LIMITS[claim]}", ""]
        if claim == "C1":
            lines += c1_sections(dirs, target, v)
        if claim == "C2":
            lines += gating_section(dirs["optima"])
    lines += write_scaling(dirs["scaling"], target) if "scaling" in dirs else []
    lines += [
        "## Reproduce",
        "",
        "```",
        "rnnbench reproduce claims" + ("" if "quick" in target.name else " --full"),
        "rnnbench reproduce claims --report-only"
        + ("" if "quick" in target.name else " --full")
        + "   # rebuild every report from stored records",
        "```",
        "",
    ]
    path = target / "REPORT.md"
    path.write_text("\n".join(lines))
    return path
