"""The ``landscape`` experiment kind (statement C4): error-surface probes over a grid of problems.

A landscape experiment expands (:func:`expand`) into one :class:`LandscapeUnit` per problem
(every Elman problem with its matched TDNN twin by default), the references
(:class:`LyapunovReferenceUnit`: Sompolinsky's random networks; :class:`CliffUnit`: Pascanu et
al.'s cliff) and, optionally, compare trials on the cliff task. A unit trains its starts with
full-batch Adam (:func:`suite.optimizers.batched.rule_path` with the Adam rule of
:mod:`suite.optimizers.updates`) and runs the probes of :mod:`suite.probes` at the start and
at the trained point; its records (kinds
:data:`suite.analysis.landscape.RECORD_KINDS`) are analysed by
:func:`suite.analysis.landscape.analyse_landscape` and reported by
:func:`suite.report.landscape.write_landscape_report`.
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suite import seeding
from suite.analysis.landscape import (
    RECORD_KINDS,
    LandscapeAnalysis,
    analyse_landscape,
    landscape_records,
)
from suite.experiment import (
    COMMON_KEYS,
    ExperimentError,
    check_keys,
    parse_problems,
    parse_seeds,
)
from suite.kinds import Kind, ReportOptions, register_kind
from suite.kinds.compare import expand_compare, write_compare_report
from suite.kinds.multistart import expand_problem_grid, twin_spec
from suite.optimizers.batched import rule_path
from suite.optimizers.updates import adam
from suite.probes import (
    cliff_summary,
    filter_normalized_direction,
    fixed_radius_direction,
    gradient_spread,
    interpolation,
    rnn_lyapunov,
    roughness,
    slice_1d,
    slice_2d,
    sompolinsky_reference,
    spectral_radius,
    truncation_cosines,
)
from suite.problem import problem_from_spec
from suite.store import load_results

__all__ = [
    "LANDSCAPE_KEYS",
    "MEASUREMENTS",
    "REFERENCES",
    "SETTINGS",
    "CliffUnit",
    "LandscapeUnit",
    "LyapunovReferenceUnit",
    "analyse",
    "expand",
    "report",
]

SETTINGS: dict[str, Any] = {
    "data_seed": 0,
    "n_directions": 4,
    "n_alphas": 101,
    "alpha_max": 1.0,
    "abs_radius": 1.0,
    "bias": "zero",
    "n_interp": 61,
    "n_2d": 41,
    "seeds_2d": 1,
    "spread_points": 64,
    "spread_radius": 0.5,
    "train_lr": 0.01,
    "train_steps": 1000,
    "checkpoints": 5,
    "truncate": [1, 2, 5, 10, 20, 50, 100],
    "lyapunov_steps": 1000,
    "lyapunov_transient": 200,
    "block_steps": 1 << 20,
}
"""Default settings of a landscape unit (override in the experiment's ``[settings]`` table)."""

MEASUREMENTS: tuple[str, ...] = ("slices", "lyapunov", "truncation")
REFERENCES: tuple[str, ...] = ("sompolinsky", "cliff")


def _checkpoint_steps(total: int, n: int) -> list[int]:
    """``n`` checkpoint step counts from 0 to ``total``, log-spaced in between."""
    if n <= 1 or total <= 0:
        return [int(total)]
    inner = np.unique(np.round(np.geomspace(1, total, n - 1)).astype(int))
    return sorted({0, *inner.tolist(), int(total)})


def _rows_per_call(problem: Any, block_steps: int) -> int:
    return max(
        1, int(block_steps) // max(int(problem.model.forward_steps(problem.dataset.train)), 1)
    )


@dataclass(frozen=True)
class LandscapeUnit:
    """Landscape measurements of one problem for a set of seed indices (one batch).

    Seed index ``i`` gives the start of a compare trial's seed ``i`` (init stream); every seed
    uses the data of seed index ``settings["data_seed"]``. Slices are taken along
    filter-normalised lines and along lines of the fixed absolute radius
    ``settings["abs_radius"]`` (``block["fixed"]``), both stored raw so minima can be recounted
    at any prominence. ``measurements`` is a subset of
    :data:`MEASUREMENTS`. One record per (measurement, seed); kinds ``"landscape"`` (one record
    per seed holding both the start and the trained point), ``"lyapunov"`` and
    ``"truncation"`` (Elman only).
    """

    experiment: str
    task: dict
    model: dict
    seeds: tuple[int, ...]
    measurements: tuple[str, ...]
    settings: dict
    experiment_seed: int = 0
    labels: dict = field(default_factory=dict, compare=False)

    def _kinds(self) -> list[str]:
        kinds = []
        if "slices" in self.measurements:
            kinds.append("landscape")
        if self.model["model"] == "elman":
            kinds += [k for k in ("lyapunov", "truncation") if k in self.measurements]
        return kinds

    def key(self, kind: str, seed: int) -> str:
        """Record key: hash of (kind, task, model, settings, seed, experiment seed)."""
        return seeding.content_hash(
            {
                "kind": kind,
                "task": self.task,
                "model": self.model,
                "settings": self.settings,
                "seed": int(seed),
                "experiment_seed": self.experiment_seed,
            }
        )

    @property
    def group(self) -> str:
        """Status label: the problem."""
        return str(self.labels.get("problem") or self.model["model"])

    def keys(self) -> list[str]:
        """One key per (kind, seed)."""
        return [self.key(k, s) for k in self._kinds() for s in self.seeds]

    def run(self) -> list[dict]:
        """Measure; failures become records with status ``"error"``."""
        try:
            return _run_landscape(self)
        except Exception:  # noqa: BLE001 -- a unit's failure becomes error records
            err = traceback.format_exc()
            return [
                {**self._base(k, s), "status": "error", "error": err}
                for k in self._kinds()
                for s in self.seeds
            ]

    def _base(self, kind: str, seed: int) -> dict:
        model = self.model
        return {
            "key": self.key(kind, seed),
            "kind": kind,
            "experiment": self.experiment,
            "problem": self.labels.get("problem", ""),
            "spec": {
                "task": self.task,
                "model": model,
                "seed": int(seed),
                "experiment_seed": self.experiment_seed,
                "settings": self.settings,
            },
            "task": self.task["task"],
            "model": model["model"],
            "seq_len": self.task.get("seq_len", self.task.get("steps")),
            "spectral_radius": model.get("spectral_radius"),
            "hidden": model.get("hidden"),
            "seed": int(seed),
        }


def _run_landscape(unit: LandscapeUnit) -> list[dict]:
    s = unit.settings
    t_start = time.perf_counter()
    data = seeding.data_stream(unit.experiment_seed, unit.task, int(s["data_seed"]))
    problem = problem_from_spec(unit.task, unit.model, data)
    model = problem.model
    seeds = list(unit.seeds)
    theta0 = seeding.initial_points(unit.experiment_seed, unit.task, model, seeds)
    rows = _rows_per_call(problem, s["block_steps"])
    marks = _checkpoint_steps(int(s["train_steps"]), int(s["checkpoints"]))
    rule = adam(float(s["train_lr"]))
    path = rule_path(problem, rule, theta0, int(s["train_steps"]), marks, rows)
    trained = path[-1]
    rng = np.random.default_rng(
        seeding.optimizer_stream(
            unit.experiment_seed, {"landscape": [unit.task, unit.model, unit.settings]}
        )
    )

    def evaluate(rows: np.ndarray) -> np.ndarray:
        """Train loss of ``rows``, free of charge: measurements, not optimisation."""
        return np.asarray(problem.evaluate(rows), dtype=np.float64)

    records: list[dict] = []
    if "slices" in unit.measurements:
        alphas = np.linspace(-s["alpha_max"], s["alpha_max"], int(s["n_alphas"]))
        interp_a = np.linspace(-0.25, 1.25, int(s["n_interp"]))
        for i, seed in enumerate(seeds):
            rec = unit._base("landscape", seed)
            rec.update(
                status="ok",
                error=None,
                alphas=alphas.tolist(),
                baseline_loss=float(problem.baseline_loss),
            )
            for where, theta in (("init", theta0[i]), ("trained", trained[i])):
                dirs = filter_normalized_direction(
                    model, np.repeat(theta[None], int(s["n_directions"]), 0), rng, s["bias"]
                )
                slices = np.stack([slice_1d(evaluate, theta, d, alphas, rows) for d in dirs])
                rough = [roughness(alphas, sl).as_dict() for sl in slices]
                spread = gradient_spread(
                    problem.loss_and_grad,
                    model,
                    theta,
                    rng,
                    float(s["spread_radius"]),
                    int(s["spread_points"]),
                    rows,
                )
                block = {
                    "loss": float(evaluate(theta)),
                    "slices": slices.tolist(),
                    "roughness": rough,
                    "n_minima": float(np.mean([r["n_minima"] for r in rough])),
                    "minima_per_unit": float(np.mean([r["minima_per_unit"] for r in rough])),
                    "tv_norm": float(np.nanmean([r["tv_norm"] for r in rough]))
                    if any(np.isfinite(r["tv_norm"]) for r in rough)
                    else math.nan,
                    "grad_spread": spread,
                }
                fixed_dirs = fixed_radius_direction(
                    model,
                    np.repeat(theta[None], int(s["n_directions"]), 0),
                    rng,
                    float(s["abs_radius"]),
                )
                fixed = np.stack([slice_1d(evaluate, theta, d, alphas, rows) for d in fixed_dirs])
                block["fixed"] = {"radius": float(s["abs_radius"]), "slices": fixed.tolist()}
                if i < int(s["seeds_2d"]):
                    d1, d2 = filter_normalized_direction(
                        model, np.repeat(theta[None], 2, 0), rng, s["bias"]
                    )
                    a2 = np.linspace(-s["alpha_max"], s["alpha_max"], int(s["n_2d"]))
                    block["slice2d"] = {
                        "alphas": a2.tolist(),
                        "loss": slice_2d(evaluate, theta, d1, d2, a2, a2, rows).tolist(),
                    }
                if model.name == "elman":
                    block["radius"] = float(spectral_radius(model.unpack(theta[None])["W_h"])[0])
                rec[where] = block
            ia, il = interpolation(evaluate, theta0[i], trained[i], interp_a, rows)
            rec["interpolation"] = {
                "alphas": ia.tolist(),
                "loss": il.tolist(),
                **roughness(ia, il).as_dict(),
            }
            records.append(rec)
    if model.name == "elman" and "lyapunov" in unit.measurements:
        X = problem.dataset.train.X
        steps, transient = int(s["lyapunov_steps"]), int(s["lyapunov_transient"])
        lam0 = rnn_lyapunov(model, theta0, X, rng, steps, transient)
        lam1 = rnn_lyapunov(model, trained, X, rng, steps, transient)
        lamfree = rnn_lyapunov(model, theta0, None, rng, steps, transient)
        lamfree1 = rnn_lyapunov(model, trained, None, rng, steps, transient)
        r0 = spectral_radius(model.unpack(theta0)["W_h"])
        r1 = spectral_radius(model.unpack(trained)["W_h"])
        for i, seed in enumerate(seeds):
            rec = unit._base("lyapunov", seed)
            rec.update(
                status="ok",
                error=None,
                lambda_init=float(lam0[i]),
                lambda_trained=float(lam1[i]),
                lambda_init_autonomous=float(lamfree[i]),
                lambda_trained_autonomous=float(lamfree1[i]),
                radius_init=float(r0[i]),
                radius_trained=float(r1[i]),
                loss_init=float(evaluate(theta0[i])),
                loss_trained=float(evaluate(trained[i])),
            )
            records.append(rec)
    if model.name == "elman" and "truncation" in unit.measurements:
        T = int(problem.dataset.train.X.shape[1])
        ks = sorted({min(int(k), T) for k in s["truncate"]})
        C = path.shape[0]
        flat = path.reshape(-1, path.shape[-1])  # [C * S, P], checkpoint-major
        cos = truncation_cosines(problem.loss_and_grad, flat, ks).reshape(C, len(seeds), -1)
        for i, seed in enumerate(seeds):
            rec = unit._base("truncation", seed)
            rec.update(
                status="ok",
                error=None,
                ks=ks,
                checkpoints=marks,
                cosine=cos[:, i, :].tolist(),
                loss=[float(v) for v in evaluate(path[:, i, :])],
            )
            records.append(rec)
    wall = (time.perf_counter() - t_start) / max(len(records), 1)
    for r in records:
        r["time"] = {"wall": wall}
    return records


@dataclass(frozen=True)
class LyapunovReferenceUnit:
    """The Sompolinsky check: one ``"lyapunov_reference"`` record per gain."""

    experiment: str
    gains: tuple[float, ...] = (0.5, 0.9, 1.0, 1.5, 2.0)
    n: int = 200
    networks: int = 8
    steps: int = 2000
    transient: int = 500
    experiment_seed: int = 0

    def key(self, gain: float) -> str:
        """Record key of one gain."""
        return seeding.content_hash(
            {
                "kind": "lyapunov_reference",
                "lambdas": True,  # records hold every exponent (C4a's calibration shares)
                "gain": float(gain),
                "n": self.n,
                "networks": self.networks,
                "steps": self.steps,
                "transient": self.transient,
                "experiment_seed": self.experiment_seed,
            }
        )

    group = "reference"

    def keys(self) -> list[str]:
        """One key per gain."""
        return [self.key(g) for g in self.gains]

    def run(self) -> list[dict]:
        """Measure every gain (each from its own stream)."""
        out = []
        for g in self.gains:
            rng = np.random.default_rng(
                seeding.optimizer_stream(self.experiment_seed, {"sompolinsky": float(g)})
            )
            row = sompolinsky_reference([g], self.n, self.networks, rng, self.steps, self.transient)
            out.append(
                {
                    "key": self.key(g),
                    "kind": "lyapunov_reference",
                    "experiment": self.experiment,
                    "status": "ok",
                    **row.iloc[0].to_dict(),
                }
            )
        return out


@dataclass(frozen=True)
class CliffUnit:
    """The cliff grid statistics and Doya's interval: one ``"cliff_summary"`` record."""

    experiment: str
    steps: int = 50
    group = "reference"

    def key(self) -> str:
        """Record key."""
        return seeding.content_hash({"kind": "cliff_summary", "steps": self.steps})

    def keys(self) -> list[str]:
        """The one key."""
        return [self.key()]

    def run(self) -> list[dict]:
        """Compute :func:`cliff_summary`."""
        return [
            {
                "key": self.key(),
                "kind": "cliff_summary",
                "experiment": self.experiment,
                "status": "ok",
                **cliff_summary(self.steps),
            }
        ]


LANDSCAPE_KEYS = (
    "seeds",
    "measurements",
    "reference",
    "settings",
    "tdnn_twin",
    "problems",
    "cliff",
)


def expand(d: dict, profile: str) -> list[Any]:
    """Units of a ``landscape`` experiment.

    Keys: ``seeds`` (int or array of seed indices), ``measurements`` (subset of
    :data:`MEASUREMENTS`, default all), ``reference`` (subset of :data:`REFERENCES`, default
    all), ``settings`` (table overriding :data:`SETTINGS`), ``tdnn_twin`` (add the matched TDNN
    of every Elman problem, default true), ``problems`` (as in compare; any task or model key
    may be an array: the grid is their Cartesian product), ``cliff`` (optional table
    ``{seeds, budget, optimizers}``: compare trials on the cliff task whose end points the
    report draws on the surface).
    """
    check_keys(d, COMMON_KEYS + LANDSCAPE_KEYS, "")
    seeds = parse_seeds(d.get("seeds", 3), "seeds")
    meas = d.get("measurements", list(MEASUREMENTS))
    refs = d.get("reference", list(REFERENCES))
    for key, value, allowed in (
        ("measurements", meas, MEASUREMENTS),
        ("reference", refs, REFERENCES),
    ):
        if not isinstance(value, list) or any(v not in allowed for v in value):
            raise ExperimentError(f"{key}: must be an array of {', '.join(allowed)}; got {value!r}")
    settings = dict(SETTINGS)
    extra = d.get("settings", {})
    if not isinstance(extra, dict):
        raise ExperimentError("settings: must be a table")
    check_keys(extra, tuple(SETTINGS), "settings")
    for k, v in extra.items():
        default = SETTINGS[k]
        ok = (
            isinstance(v, list)
            if isinstance(default, list)
            else (
                isinstance(v, type(default)) or (isinstance(default, float) and isinstance(v, int))
            )
            and not isinstance(v, bool)
        )
        if not ok:
            raise ExperimentError(f"settings.{k}: must be like {default!r}, got {v!r}")
        settings[k] = v
    if settings["bias"] not in ("zero", "normalize"):
        raise ExperimentError(
            f"settings.bias: must be 'zero' or 'normalize', got {settings['bias']!r}"
        )
    units: list[Any] = []
    if "problems" in d:
        problems = parse_problems(expand_problem_grid(d["problems"]))
        if d.get("tdnn_twin", True):
            twins = [twin_spec(p) for p in problems if p.model["model"] == "elman"]
            seen = {canonical(p) for p in problems}
            for t in twins:
                if canonical(t) not in seen:
                    seen.add(canonical(t))
                    problems.append(t)
        for p in problems:
            units.append(
                LandscapeUnit(
                    experiment=d["name"],
                    task=p.task,
                    model=p.model,
                    seeds=tuple(seeds),
                    measurements=tuple(meas),
                    settings=settings,
                    experiment_seed=d["seed"],
                    labels={"problem": p.label},
                )
            )
    if "sompolinsky" in refs:
        units.append(LyapunovReferenceUnit(experiment=d["name"], experiment_seed=d["seed"]))
    if "cliff" in refs:
        units.append(CliffUnit(experiment=d["name"]))
    if "cliff" in d:
        table = d["cliff"]
        if not isinstance(table, dict):
            raise ExperimentError("cliff: must be a table {seeds, budget, optimizers}")
        check_keys(table, ("seeds", "budget", "optimizers", "steps"), "cliff")
        problem = {"task": "cliff", "label": "cliff"}
        if "steps" in table:
            problem["steps"] = table["steps"]
        compare = {
            "name": d["name"],
            "kind": "compare",
            "seed": d["seed"],
            "seeds": table.get("seeds", 25),
            "budget": table.get("budget", {"fe": 2e5}),
            "problems": [problem],
            "optimizers": table.get("optimizers", [{"name": "adam"}]),
        }
        try:
            units.extend(expand_compare(compare, profile))
        except ExperimentError as exc:
            raise ExperimentError(f"cliff: {exc}") from None
    return units


def canonical(p: Any) -> str:
    """Canonical JSON of a problem's task and model specs (to find duplicates)."""
    return seeding.canonical_json({"task": p.task, "model": p.model})


def current_keys(results: Any) -> set[str] | None:
    """The record keys the folder's stored experiment spec expands to, or None when the folder
    has no spec or it no longer expands (then every record is used). Records under other keys
    are stale: written by an earlier version of the experiment (other settings), they must not
    be mixed with the current ones."""
    spec = results.experiment or {}
    if spec.get("kind") != "landscape":
        return None
    merged = {k: v for k, v in spec.items() if k not in ("profile", "source", "units")}
    try:
        units = expand(merged, str(spec.get("profile", "default")))
    except (ValueError, TypeError, KeyError):
        return None
    return {k for u in units for k in u.keys()}


def current_records(folder: str | Path) -> list[dict]:
    """The landscape records of ``folder`` that its stored experiment spec produces
    (:func:`current_keys`); a warning names how many stale records were left out."""
    results = load_results(folder)
    records = landscape_records(results)
    keys = current_keys(results)
    if keys is None:
        return records
    kept = [r for r in records if r.get("key") in keys]
    if len(kept) < len(records):
        warnings.warn(
            f"{folder}: {len(records) - len(kept)} stale landscape records (not produced by the "
            "stored experiment spec) left out",
            stacklevel=2,
        )
    return kept


def analyse(folder: str | Path) -> LandscapeAnalysis:
    """The frames of the current landscape records of a results folder (:func:`current_records`)."""
    return analyse_landscape(current_records(folder))


def report(folder: str | Path, options: ReportOptions) -> list[Path]:
    """The trial report of the cliff trials the folder holds, if any (moved to ``TRIALS.md``,
    which ``REPORT.md`` links; not in the returned list), then the landscape tables, figures and
    ``REPORT.md`` of its current records (:func:`write_landscape_report`, with the cliff trials of
    ``options.trial_results`` drawn too)."""
    from suite.report.landscape import write_landscape_report  # matplotlib: when reporting

    if load_results(folder).records("trial"):
        trial_md = write_compare_report(Path(folder), options)[0]
        trial_md.replace(trial_md.with_name("TRIALS.md"))
    return write_landscape_report(
        folder,
        pdf=options.pdf,
        trial_results=options.trial_results,
        records=current_records(folder),
    )


KIND = register_kind(
    Kind(
        name="landscape",
        expand=expand,
        keys=LANDSCAPE_KEYS,
        record_kinds=RECORD_KINDS,
        analyse=analyse,
        report=report,
        writes_latex=False,
        doc="C4: slices, roughness, gradient spread, Lyapunov exponents, truncation, the cliff",
    )
)
