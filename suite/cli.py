"""The ``rnnbench`` command line (argparse).

::

    rnnbench list tasks|models|optimizers|experiments [--plugin M ...]
    rnnbench run EXPERIMENT [--quick|--full] [--jobs N] [--dask ADDRESS|local] [--out DIR]
                 [--plugin M ...] [--no-progress] [--retry failed]
    rnnbench status EXPERIMENT [--quick|--full] [--out DIR] [--plugin M ...]
    rnnbench report EXPERIMENT_OR_DIR [--quick|--full] [--out DIR] [--latex] [--pdf]
                    [--plugin M ...]
    rnnbench reproduce claims [--full] [--report-only] [--jobs N] [--dask ADDRESS|local]
                              [--out DIR] [--no-progress]
    rnnbench check OPTIMIZER [--plugin M ...] [--thorough]
    rnnbench --version

Bad input (malformed TOML, unknown names, bad values) prints one line on stderr naming what was
wrong and the valid choices, and exits with status 2 before anything is stored; so does an
``--out`` folder that cannot be written. ``run`` exits 0 when every unit is stored without error,
3 when every unit is stored but some trials errored (status ``error``, e.g. a plugin that raised:
the first message is printed; fix the cause and rerun with ``--retry failed``), 1 when units
remain pending (raised, lost with their worker), 130 when interrupted. ``check`` exits 0 when
every conformance check passes, 1 otherwise.

``report`` and ``reproduce`` dispatch on experiment kinds (:mod:`suite.kinds`), never on a
kind's name. The commands import the heavy modules (numpy, pandas, matplotlib through the
suite) when they run: importing them all up front makes ``rnnbench --help`` take 2.4-4.5 s
instead of 0.1 s (measured on the development machine), and lets :func:`main` set the BLAS
thread variables before numpy is first imported.
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

from suite import workerpool
from suite.kinds import ReportOptions
from suite.listing import fmt_params, table, task_notes
from suite.provenance import rnnbench_version

PROFILES = ("default", "quick", "full")
EXIT_BAD_INPUT = 2
EXIT_ERRORED = 3  # run: everything stored, but some trials errored (rerun with --retry failed)
EXIT_HELP = (
    "exit status: 0 done; 1 units left pending (rerun to resume); 2 bad input; 3 done, but some "
    "trials errored (status error: the first message is printed; fix the cause and rerun with "
    "--retry failed); 130 interrupted"
)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class _BadInput(Exception):
    """Bad user input: reported as one line, exit status 2."""


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


def _load(args: argparse.Namespace, runs: bool = False) -> Any:
    """The experiment of ``args`` (plugins loaded first); ``runs``: refuse a profile the file
    has no table for (it would run the default profile into a ``-quick`` / ``-full`` folder)."""
    from suite.experiment import ExperimentError, experiment_path, read_experiment_file
    from suite.kinds.load import load_experiment

    _load_plugins(args.plugin)
    profile = _profile(args)
    try:
        path = experiment_path(args.experiment)
        raw = read_experiment_file(path)
        experiment = load_experiment(args.experiment, profile=profile)
    except ExperimentError as exc:
        raise _BadInput(str(exc)) from None
    if runs and profile != "default" and profile not in raw:
        raise _BadInput(
            f"--{profile}: {path} has no [{profile}] table, so the {profile} profile would be the "
            f"default one stored under a '-{profile}' folder; add a [{profile}] table or drop "
            f"--{profile}"
        )
    _warn_seed_typo(raw, experiment.spec, path)
    return experiment


def _warn_seed_typo(raw: dict, spec: dict, path: Path) -> None:
    """Warn when ``seed`` (the experiment seed) is given but ``seeds`` (how many) is not."""
    tables: list[dict] = [raw, *(t for p in ("quick", "full") if isinstance(t := raw.get(p), dict))]
    if "seeds" not in spec or any("seeds" in t for t in tables):
        return
    seed = next((t["seed"] for t in tables if "seed" in t), None)
    if seed is not None:
        n = spec["seeds"]
        count = len(n) if isinstance(n, list) else n
        print(
            f"rnnbench: warning: {path}: 'seed = {seed}' sets the experiment seed (the root of "
            f"every random stream), not the number of seeds; this runs {count} seed(s) (the "
            "default of 'seeds'); write 'seeds = N' for N seeds",
            file=sys.stderr,
        )


def _writable(out: str) -> Path:
    """``out`` as a folder this process can write into (created), else :class:`_BadInput`."""
    root = Path(out)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".rnnbench-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _BadInput(f"--out {out}: cannot write results there ({reason})") from None
    return root


# -------------------------------------------------------------------------- commands
def cmd_list(args: argparse.Namespace) -> int:
    """``rnnbench list WHAT``."""
    what = args.what
    if what == "tasks":
        import tasks

        _load_plugins(args.plugin)
        rows, notes = [], []
        for name in tasks.names():
            task = tasks.get(name)
            rows.append([name, task.loss, task.model or "-", fmt_params(task.params)])
            notes += task_notes(name, sys.modules[type(task).__module__].__doc__ or "")
        print(table(rows, ["task", "loss", "model", "parameters (defaults)"]))
        print()
        print("\n".join(notes))
    elif what == "models":
        from suite.models import make_model, model_names

        rows = []
        for name in model_names():
            try:
                spec = make_model(name, 1, 1).spec()
                options = fmt_params({k: v for k, v in spec.items() if k != "model"})
            except (ValueError, TypeError):
                options = "-"
            rows.append([name, options])
        print(table(rows, ["model", "options (defaults)"]))
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
                    fmt_params(dict(info.get("defaults", {}))),
                ]
            )
        print(table(rows, ["optimizer", "family", "tags", "hyper-parameters (defaults)"]))
    else:
        from suite.experiment import list_experiments
        from suite.kinds.load import load_experiment

        rows = []
        for name in list_experiments():
            try:
                exp = load_experiment(name)
                rows.append([name, exp.kind, str(len(exp)), exp.spec.get("description", "")])
            except ValueError as exc:
                rows.append([name, "?", "?", f"(invalid: {exc})"])
        print(table(rows, ["experiment", "kind", "units", "description"]))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``rnnbench run EXPERIMENT``."""
    if args.jobs is not None and args.jobs < 1:
        raise _BadInput(f"--jobs: must be a positive integer, got {args.jobs}")
    workerpool.prestart(args.jobs, args.dask)  # imports while this process loads the experiment
    from suite.runner import run_experiment

    experiment = _load(args, runs=True)
    _writable(args.out)
    options = {
        "out": args.out,
        "jobs": args.jobs,
        "dask": args.dask,
        "plugins": args.plugin,
        "progress": not args.no_progress and sys.stderr.isatty(),
        "retry": args.retry == "failed",
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
    if any(s.pending for s in summaries):
        return 1
    errored = [s for s in summaries if s.errored]
    if errored:
        first = errored[0]
        n = sum(s.errored for s in errored)
        print(
            f"rnnbench: {n} trial(s) stored with status error; first: {first.first_error}\n"
            f"rnnbench: fix the cause, then rerun them: rnnbench run {args.experiment}"
            + ("" if _profile(args) == "default" else f" --{_profile(args)}")
            + (f" --out {args.out}" if args.out != "results" else "")
            + "".join(f" --plugin {p}" for p in args.plugin)
            + " --retry failed",
            file=sys.stderr,
        )
        return EXIT_ERRORED
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``rnnbench status EXPERIMENT``: done / diverged / failed / pending per group."""
    from suite.store import Store

    try:
        experiment = _load(args)
    except _BadInput as exc:
        stored = _stored_status(args, exc)
        if stored is None:
            raise
        return stored
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
    print(table(rows, ["group", *columns]))
    return 0


def _stored_status(args: argparse.Namespace, exc: _BadInput) -> int | None:
    """``status`` of an experiment that does not load (e.g. its plugin was not given) but whose
    results folder exists: the stored records' statuses, pending units unknown."""
    from suite.store import Store

    try:
        directory = _results_dir(args)
    except _BadInput:
        return None
    found = Counter(s or "done" for s in Store(directory).statuses().values())
    counts = {
        "done": found["ok"] + found["budget"] + found["done"],
        "diverged": found["diverged"],
        "failed": found["error"],
    }
    print(f"{args.experiment} in {directory} (stored records only: {exc})")
    print(table([["stored", *map(str, counts.values())]], ["records", *counts]))
    print("pending units are counted when the experiment loads (a plugin? give --plugin)")
    return 0


def _results_dir(args: argparse.Namespace) -> Path:
    """The results folder of ``args.experiment``: a folder given as such, else the folder the
    experiment's ``name`` (not its file name) and the profile give under ``--out``."""
    path = Path(args.experiment)
    if path.is_dir():
        return path
    from suite.experiment import ExperimentError, experiment_path, read_experiment_file

    try:
        source = experiment_path(args.experiment)
        raw = read_experiment_file(source)
    except ExperimentError as exc:
        raise _BadInput(f"{exc}; or give a results folder") from None
    name = raw.get("name", source.stem)
    name = name if isinstance(name, str) else source.stem
    profile = _profile(args)
    folder = {p: Path(args.out) / (name if p == "default" else f"{name}-{p}") for p in PROFILES}
    if folder[profile].is_dir():
        return folder[profile]
    flag = {"default": "", "quick": " --quick", "full": " --full"}
    others = [p for p in PROFILES if p != profile and folder[p].is_dir()]
    hint = "".join(
        f"; the {p} profile has results at {folder[p]}: rnnbench report {args.experiment}{flag[p]}"
        for p in others
    )
    raise _BadInput(
        f"no results for {args.experiment!r} ({profile} profile) at {folder[profile]}; run "
        f"`rnnbench run {args.experiment}{flag[profile]}` first (or give the results folder)" + hint
    )


def cmd_report(args: argparse.Namespace) -> int:
    """``rnnbench report EXPERIMENT_OR_DIR``: the report of each kind the folder belongs to.

    The kinds come from :func:`suite.kinds.load.kind_of_folder` (the stored experiment's
    ``kind``, else the record kinds the folder holds); each writes its tables, figures and
    ``REPORT.md`` (``Kind.report``). Prints the folders written into and the ``REPORT.md``
    paths.
    """
    from suite.kinds.load import kind_of_folder, record_kinds

    _load_plugins(args.plugin)  # a plugin may register the folder's kind
    directory = _results_dir(args)
    held = record_kinds(directory)
    if not held:
        raise _BadInput(f"{directory} holds no records: run the experiment first")
    try:
        kinds = kind_of_folder(directory)
    except ValueError as exc:  # experiment.json names a kind nobody registered
        raise _BadInput(f"{directory}: {exc} (a plugin kind? give --plugin)") from None
    if not kinds:
        raise _BadInput(
            f"{directory}: no experiment kind reports records of kind {', '.join(sorted(held))}"
        )
    options = ReportOptions(latex=args.latex, pdf=args.pdf)
    for kind in kinds:
        if args.latex and not kind.writes_latex:
            print(
                f"rnnbench: warning: --latex: the {kind.name} report writes no LaTeX tables",
                file=sys.stderr,
            )
    written: list[Path] = []
    try:
        for kind in kinds:
            written += kind.report(directory, options)
    except ValueError as exc:  # the folder lacks the records its writer needs
        raise _BadInput(str(exc)) from None
    for path in dict.fromkeys(p if p.name == "REPORT.md" else p.parent for p in written):
        print(path)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``rnnbench check OPTIMIZER``: the conformance checks (:mod:`suite.checks`), one line
    each; exit 0 when all pass, 1 otherwise."""
    from suite.checks import check_optimizer
    from suite.optimizers import optimizer_names

    _load_plugins(args.plugin)
    if args.optimizer not in optimizer_names():
        raise _BadInput(
            f"unknown optimizer {args.optimizer!r}; known: {', '.join(optimizer_names())}"
            " (a plugin? give --plugin)"
        )
    results = check_optimizer(args.optimizer, quick=not args.thorough, raise_on_failure=False)
    for r in results:
        first = r.message.strip().splitlines()[0] if r.message.strip() else ""
        print(
            f"{'PASS' if r.passed else 'FAIL'}  {r.name:<26} {r.seconds:6.2f} s  {first}".rstrip()
        )
    failed = [r for r in results if not r.passed]
    print(
        f"{args.optimizer}: {len(results) - len(failed)} of {len(results)} checks passed"
        + (f"; failed: {', '.join(r.name for r in failed)}" if failed else "")
    )
    return 1 if failed else 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``rnnbench reproduce claims``."""
    if args.jobs is not None and args.jobs < 1:
        raise _BadInput(f"--jobs: must be a positive integer, got {args.jobs}")
    if not args.report_only:
        workerpool.prestart(args.jobs, args.dask)
    from suite.reproduce import reproduce_claims

    _writable(args.out)
    result = reproduce_claims(
        quick=not args.full,
        jobs=args.jobs,
        out=Path(args.out),
        dask=args.dask,
        progress=not args.no_progress and sys.stderr.isatty(),
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
    parser.add_argument("--version", action="version", version=f"rnnbench {rnnbench_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def plugin_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="M",
            help="import module M (or a .py file) that registers optimizers, tasks, models or "
            "experiment kinds; repeatable",
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

    p = sub.add_parser(
        "run", help="run an experiment (a shipped name or a TOML path)", epilog=EXIT_HELP
    )
    p.add_argument("experiment", metavar="EXPERIMENT")
    profile_args(p)
    executor_args(p)
    p.add_argument("--out", default="results", metavar="DIR", help="results root (results)")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (none when not on a terminal)"
    )
    p.add_argument(
        "--retry",
        choices=["failed"],
        default=None,
        help="'failed': also rerun the trials stored with status error (each old record is "
        "replaced only when its rerun finishes)",
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
    plugin_arg(p)
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
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (none when not on a terminal)"
    )
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser(
        "check",
        help="run the conformance checks on an optimizer (one line per check)",
        epilog="exit status: 0 every check passed, 1 some failed, 2 bad input",
    )
    p.add_argument("optimizer", metavar="OPTIMIZER")
    p.add_argument(
        "--thorough", action="store_true", help="ten times the budget per check (slower)"
    )
    plugin_arg(p)
    p.set_defaults(func=cmd_check)
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
    except OSError as exc:  # a file that cannot be read or written: one line, not a traceback
        print(f"rnnbench: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
