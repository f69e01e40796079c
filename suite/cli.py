"""The ``rnnbench`` command line (argparse).

::

    rnnbench list tasks|models|optimizers|experiments [--plugin M ...]
    rnnbench run EXPERIMENT [--quick|--full] [--jobs N] [--dask ADDRESS|local] [--out DIR]
                 [--plugin M ...] [--no-progress]
    rnnbench status EXPERIMENT [--quick|--full] [--out DIR] [--plugin M ...]
    rnnbench report EXPERIMENT_OR_DIR [--quick|--full] [--out DIR] [--latex] [--pdf]
    rnnbench reproduce claims [--full] [--jobs N] [--dask ADDRESS|local] [--out DIR]
    rnnbench --version

Bad input (malformed TOML, unknown names, bad values) prints one line on stderr naming what was
wrong and the valid choices, and exits with status 2 before anything is stored. ``run`` exits 0
when every unit is stored (records with status ``error`` included: they are results), 1 when
units remain pending (raised, lost with their worker), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class _BadInput(Exception):
    """Bad user input: reported as one line, exit status 2."""


def _version() -> str:
    from suite.provenance import rnnbench_version

    return rnnbench_version()


def _profile(args: argparse.Namespace) -> str:
    if getattr(args, "quick", False):
        return "quick"
    if getattr(args, "full", False):
        return "full"
    return "default"


def _load_plugins(plugins: Sequence[str]) -> None:
    from suite.optimizers import load_entry_points, load_plugins

    try:
        load_entry_points()
    except ImportError as exc:
        raise _BadInput(str(exc)) from None
    if plugins:
        try:
            load_plugins(list(plugins))
        except (ValueError, ImportError, SyntaxError) as exc:
            raise _BadInput(f"--plugin: {exc}") from None


def _load(args: argparse.Namespace) -> Any:
    from suite.experiment import ExperimentError, load_experiment

    _load_plugins(args.plugin)
    try:
        return load_experiment(args.experiment, profile=_profile(args))
    except ExperimentError as exc:
        raise _BadInput(str(exc)) from None


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return "\n".join(lines)


def _fmt_params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


# -------------------------------------------------------------------------- commands
def cmd_list(args: argparse.Namespace) -> int:
    """``rnnbench list WHAT``."""
    what = args.what
    if what == "tasks":
        import tasks

        rows = []
        for name in tasks.names():
            task = tasks.get(name)
            rows.append([name, task.loss, task.model or "-", _fmt_params(task.params)])
        print(_table(rows, ["task", "loss", "model", "parameters (defaults)"]))
    elif what == "models":
        from suite.models import MODEL_NAMES, make_model

        rows = []
        for name in MODEL_NAMES:
            try:
                spec = make_model(name, 1, 1).spec()
                options = _fmt_params({k: v for k, v in spec.items() if k != "model"})
            except (ValueError, TypeError):
                options = "-"
            rows.append([name, options])
        print(_table(rows, ["model", "options (defaults)"]))
    elif what == "optimizers":
        from suite.optimizers import optimizer_info, optimizer_names

        _load_plugins(args.plugin)
        rows = []
        for name in optimizer_names():
            info = optimizer_info(name)
            rows.append(
                [
                    name,
                    str(info.get("family", "")),
                    ",".join(info.get("tags", [])),
                    _fmt_params(dict(info.get("defaults", {}))),
                ]
            )
        print(_table(rows, ["optimizer", "family", "tags", "hyper-parameters (defaults)"]))
    else:
        from suite.experiment import list_experiments, load_experiment

        rows = []
        for name in list_experiments():
            try:
                exp = load_experiment(name)
                rows.append([name, exp.kind, str(len(exp)), exp.spec.get("description", "")])
            except ValueError as exc:
                rows.append([name, "?", "?", f"(invalid: {exc})"])
        print(_table(rows, ["experiment", "kind", "units", "description"]))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``rnnbench run EXPERIMENT``."""
    from suite.runner import run_experiment

    if args.jobs is not None and args.jobs < 1:
        raise _BadInput(f"--jobs: must be a positive integer, got {args.jobs}")
    experiment = _load(args)
    options = {
        "out": args.out,
        "jobs": args.jobs,
        "dask": args.dask,
        "plugins": args.plugin,
        "progress": not args.no_progress and sys.stderr.isatty(),
    }
    try:
        if "tuning" in experiment.spec:  # tuning run first, then the tuned evaluation
            from suite.tuning import run_tuned

            summaries = run_tuned(args.experiment, _profile(args), **options)
        else:
            summaries = [run_experiment(experiment, **options)]
    except ValueError as exc:  # e.g. dask not installed, a bad scheduler address
        raise _BadInput(str(exc)) from None
    except RuntimeError as exc:  # worker processes cannot start
        print(f"rnnbench: error: {exc}", file=sys.stderr)
        return 1
    for summary in summaries:
        print(summary)
    if any(s.interrupted for s in summaries):
        return 130
    return 0 if all(s.pending == 0 for s in summaries) else 1


def cmd_status(args: argparse.Namespace) -> int:
    """``rnnbench status EXPERIMENT``: done / diverged / failed / pending per group."""
    from suite.store import Store

    experiment = _load(args)
    if "tuning" in experiment.spec:  # the evaluation as tuned by the stored tuning run
        from suite.experiment import ExperimentError
        from suite.tuning import resolve

        try:
            experiment = resolve(args.experiment, _profile(args), args.out)
        except ExperimentError as exc:
            print(exc)
            return 0
    directory = Path(args.out) / experiment.dirname
    statuses = Store(directory).statuses() if directory.is_dir() else {}
    counts: dict[str, Counter] = defaultdict(Counter)
    for unit in experiment.units:
        group = str(getattr(unit, "group", experiment.kind))
        keys = unit.keys()
        if not all(k in statuses for k in keys):
            counts[group]["pending"] += 1
            continue
        found = {statuses[k] for k in keys}
        if "error" in found:
            counts[group]["failed"] += 1
        elif "diverged" in found:
            counts[group]["diverged"] += 1
        else:
            counts[group]["done"] += 1
    columns = ["done", "diverged", "failed", "pending"]
    rows = [[g, *(str(c[k]) for k in columns)] for g, c in counts.items()]
    total = sum(counts.values(), Counter())
    rows.append(["total", *(str(total[k]) for k in columns)])
    print(f"{experiment.name} ({experiment.profile}) in {directory}")
    print(_table(rows, ["group", *columns]))
    return 0


def _results_dir(args: argparse.Namespace) -> Path:
    path = Path(args.experiment)
    if path.is_dir():
        return path
    from suite.experiment import ExperimentError, experiment_path

    name = path.stem if path.suffix == ".toml" else args.experiment
    profile = _profile(args)
    candidate = Path(args.out) / (name if profile == "default" else f"{name}-{profile}")
    if candidate.is_dir():
        return candidate
    try:
        experiment_path(args.experiment)
    except ExperimentError as exc:
        raise _BadInput(f"{exc}; or give a results folder") from None
    raise _BadInput(
        f"no results for {args.experiment!r} at {candidate}; run `rnnbench run "
        f"{args.experiment}` first (or give the results folder)"
    )


def _folder_kinds(directory: Path) -> tuple[str | None, Counter]:
    """The stored experiment's ``kind`` (None without a spec) and ``record kind -> number``."""
    from suite.store import Store

    store = Store(directory)
    spec = store.experiment()
    kinds = Counter(e.kind for e in store.scan(warn=False).entries.values())
    return (str(spec.get("kind", "compare")) if spec else None), kinds


def cmd_report(args: argparse.Namespace) -> int:
    """``rnnbench report EXPERIMENT_OR_DIR``: route a folder to its report writer.

    Start records (``kind = "multistart"``) go to
    :func:`suite.report.optima.write_optima_report`, landscape records to
    :func:`~suite.report.landscape.write_landscape_report`, trial records (``compare``, and the
    cliff trials a landscape experiment may hold) to :func:`suite.report.write_report`. Prints the
    folders written into and the ``REPORT.md`` path.
    """
    directory = _results_dir(args)
    try:
        from suite.analysis.landscape import RECORD_KINDS
        from suite.report import write_report
        from suite.report.landscape import write_landscape_report
        from suite.report.optima import write_optima_report
    except ImportError as exc:
        print(f"rnnbench: the report module is not available ({exc})", file=sys.stderr)
        return 1
    experiment_kind, kinds = _folder_kinds(directory)
    if not kinds:
        raise _BadInput(f"{directory} holds no records: run the experiment first")
    optima = bool(kinds["start"]) or experiment_kind == "multistart"
    landscape = any(kinds[k] for k in RECORD_KINDS) or experiment_kind == "landscape"
    trials = bool(kinds["trial"]) or not (optima or landscape)
    if args.latex and (optima or landscape):
        print(
            "rnnbench: warning: --latex: LaTeX tables are written for trial records only",
            file=sys.stderr,
        )
    written: list[Path] = []
    try:
        if optima:
            written += write_optima_report(directory, pdf=args.pdf)
        if landscape:
            written += write_landscape_report(directory, pdf=args.pdf)
        report = write_report(directory, latex=args.latex, pdf=args.pdf) if trials else None
    except ValueError as exc:  # the folder lacks the records its writer needs
        raise _BadInput(str(exc)) from None
    for folder in dict.fromkeys(p.parent for p in written):
        print(folder)
    if report is not None:
        print(report)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``rnnbench reproduce claims``."""
    if args.jobs is not None and args.jobs < 1:
        raise _BadInput(f"--jobs: must be a positive integer, got {args.jobs}")
    try:
        from suite.reproduce import reproduce_claims
    except ImportError as exc:
        print(
            f"rnnbench: `reproduce claims` is not available in this version ({exc})",
            file=sys.stderr,
        )
        return 1
    result = reproduce_claims(
        quick=not args.full,
        jobs=args.jobs,
        out=Path(args.out),
        dask=args.dask,
        report_only=args.report_only,
    )
    if result is not None:
        print(result)
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnnbench``."""
    parser = argparse.ArgumentParser(
        prog="rnnbench",
        description="Compare optimizers for training small recurrent networks.",
    )
    parser.add_argument("--version", action="version", version=f"rnnbench {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def plugin_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="M",
            help="import module M (or a .py file) that registers optimizers; repeatable",
        )

    def profile_args(p: argparse.ArgumentParser) -> None:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--quick", action="store_true", help="use the [quick] profile")
        g.add_argument("--full", action="store_true", help="use the [full] profile")

    def executor_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--jobs", type=int, default=None, metavar="N", help="workers (default: CPU count)"
        )
        p.add_argument(
            "--dask", default=None, metavar="ADDRESS", help="'local' or a scheduler address"
        )

    p = sub.add_parser("list", help="list tasks, models, optimizers or experiments")
    p.add_argument("what", choices=["tasks", "models", "optimizers", "experiments"])
    plugin_arg(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run an experiment (a shipped name or a TOML path)")
    p.add_argument("experiment", metavar="EXPERIMENT")
    profile_args(p)
    executor_args(p)
    p.add_argument("--out", default="results", metavar="DIR", help="results root (results)")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (none when not on a terminal)"
    )
    plugin_arg(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="done / failed / pending units of an experiment")
    p.add_argument("experiment", metavar="EXPERIMENT")
    profile_args(p)
    p.add_argument("--out", default="results", metavar="DIR", help="results root (results)")
    plugin_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="tables, figures and REPORT.md of stored results")
    p.add_argument("experiment", metavar="EXPERIMENT_OR_DIR")
    profile_args(p)
    p.add_argument("--out", default="results", metavar="DIR", help="results root (results)")
    p.add_argument("--latex", action="store_true", help="also write LaTeX tables")
    p.add_argument("--pdf", action="store_true", help="also write PDF figures")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("reproduce", help="run the shipped experiments and judge SCIENCE.md")
    p.add_argument("target", choices=["claims"])
    p.add_argument(
        "--full", action="store_true", help="reference profile, results/claims (default: quick)"
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rebuild every report and the verdicts from stored records",
    )
    executor_args(p)
    p.add_argument("--out", default="results", metavar="DIR", help="results root (results)")
    p.set_defaults(func=cmd_reproduce)
    return parser


def _format_warning(message: Any, category: type, *args: Any, **kwargs: Any) -> str:
    return f"rnnbench: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnnbench`` console script; returns the exit status."""
    # One BLAS thread unless the user says otherwise: the benchmark's matrices are small, extra
    # threads only contend (and on a busy machine slow a run down several-fold); set before
    # numpy is first imported, which happens below, lazily.
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.formatwarning = _format_warning  # one readable line per warning
    try:
        return int(args.func(args))
    except _BadInput as exc:
        print(f"rnnbench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("rnnbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnnbench list optimizers | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
