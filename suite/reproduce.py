"""``rnnbench reproduce claims``: run the shipped experiments and judge SCIENCE.md's statements.

The four shipped experiments (each with a quick and a reference profile):

* ``speed`` (C1): every task x every built-in optimizer family, tuned, paired seeds;
* ``truncation``: truncated BPTT(h; h) against full BPTT over the window h;
* ``optima`` (C2, C3): multi-start studies of the Elman RNN and its matched TDNN twin;
* ``landscape`` (C4): roughness, gradient-norm spread, Lyapunov exponents, the cliff, and the
  truncated-gradient cosine.

:func:`reproduce_claims` runs them (resuming whatever is stored), writes each experiment's own
report, then the claims report: ``results/claims/REPORT.md`` for the reference profile,
``results/claims-quick/REPORT.md`` for the quick one, with a verdict per statement and task
computed from the stored records by the rules of :mod:`suite.analysis.verdicts`.
:func:`write_claims_report` rebuilds the report from stored results alone.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from suite.analysis import verdicts as V
from suite.experiment import experiment_kind, experiment_path, read_experiment_file
from suite.kinds import Kind, ReportOptions, get_kind
from suite.report.tables import format_number, to_markdown, write_table
from suite.store import Store
from suite.tuning import run_tuned

EXPERIMENTS: tuple[str, ...] = ("speed", "truncation", "optima", "landscape")

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
    """Run the four claims experiments (``quick`` or reference profile) and write the report.

    Returns the path of the claims ``REPORT.md``. Stored records are reused (a rerun resumes).
    ``report_only`` skips running and rebuilds every report from what is stored.
    """
    profile = "quick" if quick else "default"
    dirs = result_dirs(out, quick)
    target = claims_dir(out, quick)
    timings: dict[str, float] = {}
    if not report_only:
        t0 = time.perf_counter()
        ran = skipped = 0
        for name in EXPERIMENTS:
            t = time.perf_counter()
            summaries = run_tuned(name, profile, out, jobs, dask, progress=progress)
            for s in summaries:
                print(s)
                ran, skipped = ran + s.completed, skipped + s.skipped
            timings[name] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        target.mkdir(parents=True, exist_ok=True)
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
        total=len(EXPERIMENTS) + 1,
        desc="reports",
        unit="report",
        disable=None if progress else True,  # None: no bar off a terminal
        file=sys.stderr,
        dynamic_ncols=True,
    )
    with bar:
        write_experiment_reports(dirs, bar)
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


def compare_verdicts(v: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, task) of the reference: its verdict, this run's (empty when this
    run has none) and whether they agree."""
    ref = reference[["claim", "problem", "verdict"]].astype(str)
    new = v[["claim", "problem", "verdict"]].astype(str)
    both = ref.merge(new, on=["claim", "problem"], how="left", suffixes=("_reference", ""))
    both["verdict"] = both["verdict"].fillna("")
    both["reproduced"] = both["verdict"] == both["verdict_reference"]
    return both.rename(columns={"problem": "task", "verdict": "this run"})[
        ["claim", "task", "verdict_reference", "this run", "reproduced"]
    ]


def reproduction_lines(v: pd.DataFrame, reference: pd.DataFrame | None, target: Path) -> list[str]:
    """The REPORT.md section "Reproduction": N of M reference verdicts reproduced and a table
    of those that differ (also written to ``tables/reproduction.csv``)."""
    lines = ["## Reproduction of the reference verdicts", ""]
    if reference is None or reference.empty:
        return [*lines, "No committed reference verdicts to compare with.", ""]
    cmp = compare_verdicts(v, reference)
    write_table(cmp, target / "tables", "reproduction", latex=False)
    n, m = int(cmp["reproduced"].sum()), len(cmp)
    lines += [
        f"**{n} of {m} verdicts reproduced** (the committed reference verdicts, "
        "`results/claims/tables/verdicts.csv`, from `rnnbench reproduce claims --full`).",
        "",
    ]
    differ = cmp[~cmp["reproduced"]].drop(columns=["reproduced"])
    if not differ.empty:
        lines += ["Verdicts that differ:", "", to_markdown(differ), ""]
    return lines


def quick_lines(dirs: dict[str, Path]) -> list[str]:
    """The warning at the top of a quick-profile report: a smoke test, with its sizes."""
    sizes = []
    for name, d in dirs.items():
        spec = Store(d).experiment()
        parts = [f"{k} {_size(spec[k])}" for k in ("seeds", "starts", "budget") if k in spec]
        if parts:
            sizes.append(f"{name}: {', '.join(parts)}")
    return [
        "> **Quick profile: a smoke test, not the reference result.** It runs few seeds with "
        "small budgets (" + ("; ".join(sizes) or "see each experiment's REPORT.md") + "), so "
        "its verdicts may differ from the reference verdicts, which come from `rnnbench "
        "reproduce claims --full` (committed in `results/claims/`); the section "
        '"Reproduction of the reference verdicts" below lists the differences.',
        "",
    ]


def _size(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {format_number(x)}" for k, x in value.items())
    return format_number(value) if isinstance(value, float) else str(value)


def print_verdicts(target: Path) -> None:
    """Print the verdict matrix and the reproduction count of a written claims report."""
    tables = target / "tables"
    matrix = tables / "verdict_matrix.csv"
    if matrix.exists():
        print(to_markdown(pd.read_csv(matrix, keep_default_na=False)))
    repro = tables / "reproduction.csv"
    if repro.exists():
        cmp = pd.read_csv(repro, keep_default_na=False)
        ok = cmp["reproduced"].astype(str) == "True"
        print(f"{int(ok.sum())} of {len(cmp)} reference verdicts reproduced")
        if not ok.all():
            print(to_markdown(cmp[~ok].drop(columns=["reproduced"])))
    print(f"report: {target / 'REPORT.md'}")


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


def write_experiment_reports(dirs: dict[str, Path], bar: Any = None) -> None:
    """Each experiment's own tables, figures and REPORT.md, written by its kind (``bar``: a
    tqdm bar advanced once per experiment)."""
    options = report_options(dirs)
    for name in EXPERIMENTS:
        if bar is not None:
            bar.set_postfix_str(name, refresh=True)
        kind_of(name).report(dirs[name], options[name])
        if bar is not None:
            bar.update(1)


def compute_verdicts(dirs: dict[str, Path]) -> pd.DataFrame:
    """Every verdict row (claim x problem) from the stored results of ``dirs``, each folder
    read by its experiment's kind (``Kind.analyse``)."""
    rel = {name: f"../{d.name}" for name, d in dirs.items()}
    speed = kind_of("speed").analyse(dirs["speed"])
    frames = [V.verdict_c1(speed.trials, speed.trace, f"{rel['speed']}/figures/loss_fe.png")]
    optima = kind_of("optima").analyse(dirs["optima"])
    frames.append(
        V.verdict_c2(
            optima.starts, optima.summary, f"{rel['optima']}/figures/optima_final_losses.png"
        )
    )
    frames.append(
        V.verdict_c3(optima.starts, optima.comparison, f"{rel['optima']}/figures/optima_twins.png")
    )
    la = kind_of("landscape").analyse(dirs["landscape"])
    figs = f"{rel['landscape']}/figures/landscape_roughness_init_vs"
    frames.append(V.verdict_c4(la.trends, f"{figs}_seq_len.png;{figs}_spectral_radius.png"))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=V.COLUMNS)


def _fmt(x: Any) -> str:
    return format_number(x)


def _effect(row: pd.Series, which: str = "") -> str:
    value = row[f"effect{which}"]
    if pd.isna(value):
        return ""
    low, high = row[f"ci_low{which}"], row[f"ci_high{which}"]
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
    return m.reindex(columns=[c for c in STATEMENTS if c in m.columns]).fillna("")


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
    if run:
        secs = run["seconds"]
        lines += [
            f"Profile **{run['profile']}**, {run['jobs']} workers ({run['executor']}) on "
            f"{run['machine']}: {secs['total'] / 60:.1f} min in all ("
            + ", ".join(f"{k} {secs[k] / 60:.1f} min" for k in EXPERIMENTS if k in secs)
            + f"), finished {run['finished']}.",
            "",
        ]
    lines += ["## Verdict matrix", "", to_markdown(matrix), ""]
    lines += reproduction_lines(v, reference, target)
    for claim, statement in STATEMENTS.items():
        rows = v[v["claim"] == claim]
        lines += [f"## {claim}: {statement}", "", f"**Rule.** {V.RULES[claim]}", ""]
        if rows.empty:
            lines += ["No data: the experiment that tests it has no usable records.", ""]
            continue
        lines += [to_markdown(display[v["claim"] == claim].drop(columns=["claim"])), ""]
        for ev in dict.fromkeys(e for evs in rows["evidence"] for e in evs.split(";") if e):
            lines += [f"![{claim}]({ev})", ""]
        lines += [f"**Limits.** {V.LIMITS[claim]}", ""]
        tuning = dirs["speed"] / "tables" / "tuning.csv"
        if claim == "C1" and tuning.exists():
            t = pd.read_csv(tuning)
            lines += [
                f"**Tuning cost.** {len(t)} grid points x problems, {t['fe'].sum():.3g} fe and "
                f"{t['seconds'].sum():.0f} s of trial time on seeds not used in the evaluation; "
                f"choices in [`{dirs['speed'].name}/tables/tuning.md`](../{dirs['speed'].name}/"
                "tables/tuning.md).",
                "",
            ]
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
