"""The ``compare`` kind: every problem x optimizer x seed index as one :class:`~suite.trial.Trial`.

Keys (besides :data:`suite.experiment.COMMON_KEYS`): ``seeds`` (n, or an array of indices,
paired across optimizers), ``budget`` (``{fe, seconds}``, per trial), ``checkpoints_per_decade``,
``problems`` and ``optimizers`` (see :func:`suite.experiment.parse_problems` and
:func:`~suite.experiment.parse_optimizers`), ``tuning`` (a tuning phase, read by
:mod:`suite.tuning`) and ``tuned`` (the entries it tuned, informational). Its records have
``kind = "trial"``; it analyses them with :func:`suite.store.load_results` (trial and trace
frames) and reports them with :func:`suite.report.write_report`.
"""

from __future__ import annotations

from pathlib import Path

from suite import store
from suite.experiment import (
    COMMON_KEYS,
    ExperimentError,
    check_keys,
    parse_budget,
    parse_int,
    parse_optimizers,
    parse_problems,
    parse_seeds,
    plan,
    type_name,
)
from suite.kinds import Kind, ReportOptions, register_kind
from suite.trial import Trial

COMPARE_KEYS = (
    "seeds",
    "budget",
    "checkpoints_per_decade",
    "problems",
    "optimizers",
    "tuning",
    "tuned",
)
"""Top-level keys of a compare experiment besides :data:`~suite.experiment.COMMON_KEYS`.
``tuning`` is read by :mod:`suite.tuning` (the tuning phase); ``tuned`` lists the entries it
tuned (informational)."""


def expand_compare(d: dict, profile: str) -> list[Trial]:
    """Units of a ``compare`` experiment: every problem x optimizer x seed index, seed-major.

    ``d`` is the merged experiment dict (``name`` and ``seed`` filled in); ``profile`` is not
    used (the profile is already merged into ``d``).
    """
    check_keys(d, COMMON_KEYS + COMPARE_KEYS, "")
    for key in ("budget", "problems", "optimizers"):
        if key not in d:
            raise ExperimentError(f"missing key {key!r} (a compare experiment needs it)")
    seeds = parse_seeds(d.get("seeds", 1))
    budget = parse_budget(d["budget"])
    cpd = parse_int(d.get("checkpoints_per_decade", 10), "checkpoints_per_decade", 1)
    check_tuning_keys(d)
    pairs = plan(parse_problems(d["problems"]), parse_optimizers(d["optimizers"]))
    units: list[Trial] = []
    for seed in seeds:
        for p, entries in pairs:
            for o in entries:
                units.append(
                    Trial(
                        experiment=d["name"],
                        task=p.task,
                        model=p.model,
                        optimizer=o.spec(),
                        budget=p.budget or budget,
                        seed=seed,
                        experiment_seed=d["seed"],
                        checkpoints_per_decade=cpd,
                        labels={"problem": p.label, "optimizer": o.label},
                    )
                )
    return units


def check_tuning_keys(d: dict) -> None:
    """``tuning`` must be a table and ``tuned`` an array of optimizer labels (if given)."""
    if "tuning" in d and not isinstance(d["tuning"], dict):
        raise ExperimentError(f"tuning: must be a table, got {type_name(d['tuning'])}")
    tuned = d.get("tuned", [])
    if not isinstance(tuned, list) or not all(isinstance(t, str) for t in tuned):
        raise ExperimentError(f"tuned: must be an array of optimizer labels, got {tuned!r}")


def compare_spec(d: dict) -> dict:
    """The resolved spec of a compare experiment (for ``experiment.json``)."""
    problems = parse_problems(d["problems"])
    optimizers = parse_optimizers(d["optimizers"])
    spec = {
        "seeds": parse_seeds(d.get("seeds", 1)),
        "budget": parse_budget(d["budget"]),
        "checkpoints_per_decade": d.get("checkpoints_per_decade", 10),
        "problems": [
            {"label": p.label, "task": p.task, "model": p.model}
            | ({} if p.budget is None else {"budget": p.budget})
            for p in problems
        ],
        "optimizers": [
            {"label": o.label, **o.spec()}
            | ({} if o.problems is None else {"problems": list(o.problems)})
            for o in optimizers
        ],
    }
    for key in ("tuning", "tuned"):
        if key in d:
            spec[key] = d[key]
    return spec


def write_compare_report(folder: Path, options: ReportOptions) -> list[Path]:
    """The trial report of a results folder (:func:`suite.report.write_report`): tables,
    figures and ``REPORT.md``; returns ``[REPORT.md]``. The report modules (matplotlib,
    scipy.stats) are imported here, so that a run imports only what it runs."""
    from suite import report

    if options.reference is None:
        return [report.write_report(folder, latex=options.latex, pdf=options.pdf)]
    path = report.write_report(folder, options.latex, options.pdf, reference=options.reference)
    return [path]


COMPARE = register_kind(
    Kind(
        name="compare",
        expand=expand_compare,
        keys=COMPARE_KEYS,
        record_kinds=("trial",),
        analyse=lambda folder: store.load_results(folder),
        report=write_compare_report,
        doc="problem x optimizer x seed trials under a budget: speed and success per optimizer",
        resolve=compare_spec,
        writes_latex=True,
    )
)
