"""How a ``reproduce claims`` run compares and accounts for itself: the reference verdicts it
reproduced, the quick profile's warning, the printed verdict matrix, and how many units an
interrupted run had already stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from suite.report.tables import format_number, to_markdown, write_table
from suite.runner import RunSummary
from suite.store import Store


def resumed_units(summaries: list[RunSummary]) -> int:
    """Units that were stored before this command and so were skipped untimed.

    A tuning folder is run once per grid round, each round's units a superset of the last's,
    so a later round skips what the earlier rounds of this same command stored. Per folder this
    is the last round's ``skipped`` less what the earlier rounds completed.
    """
    completed: dict[Path, int] = {}  # per folder, by the rounds so far
    resumed: dict[Path, int] = {}  # per folder, as its latest round counts it
    for s in summaries:
        before = completed.get(s.directory, 0)
        resumed[s.directory] = max(0, s.skipped - before)
        completed[s.directory] = before + s.completed
    return sum(resumed.values())


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
