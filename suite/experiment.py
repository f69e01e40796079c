"""Experiments: a TOML file -> a validated :class:`Experiment` -> a list of work units.

An experiment file (shipped ones live in ``suite/experiments/*.toml`` and run by name)::

    name = "demo"                      # default: the file's stem
    description = "..."                # optional
    kind = "compare"                   # default; other kinds are registered (see register_kind)
    seed = 0                           # the experiment seed (every stream derives from it)
    seeds = 5                          # seed indices 0..4, paired across optimizers (or a list)
    budget = { fe = 2e6, seconds = 60 }   # per trial; at least one, both positive
    checkpoints_per_decade = 10

    [[problems]]                       # task name, then task parameters and model options
    task = "adding"
    seq_len = 20
    model = "elman"                    # default: the task's fixed model, else "elman"
    hidden = 8
    label = "adding-20"                # optional display label
    budget = { fe = 1e6 }              # optional: replaces the top-level budget here

    [[optimizers]]                     # registered name; every other key is a hyper-parameter
    name = "adam"
    lr = 0.01
    problems = ["adding-20"]           # optional: the problem labels it runs on (default all)

    [tuning]                           # optional: a tuning phase, see suite.tuning

    [quick]                            # profile overrides: whole-value replacement of the
    seeds = 2                          # top-level keys (seeds, budget, problems, ...)
    budget = { fe = 1e5 }

    [full]
    seeds = 20

The top level is the ``"default"`` profile; ``load_experiment(name, profile="quick")`` applies the
``[quick]`` table over it (a missing table means no override). Everything is validated before
anything runs; a problem raises :class:`ExperimentError` (a ValueError) whose message names the
file, the key and what is allowed.

Kinds. ``kind = "compare"`` (the default) expands to problem x optimizer x seed
:class:`~suite.trial.Trial` units. Other kinds are registered by other modules with
:func:`register_kind` (``expand_fn(experiment_dict, profile) -> list[Unit]``); the modules of the
known kinds (:data:`KIND_MODULES`) are imported on demand, so ``kind = "multistart"`` works
without importing anything first. ``experiment_dict`` is the file's content with the profile's
table merged over the top level (and the ``quick``/``full`` tables removed), ``name``, ``kind``
and ``seed`` filled in; ``expand_fn`` validates its own keys (the helpers :func:`parse_problems`,
:func:`parse_optimizers`, :func:`parse_budget`, :func:`parse_seeds` and :func:`check_keys` are
there to share) and raises :class:`ExperimentError` naming the key; the file name is prefixed.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.trial import Trial, Unit

EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"
PROFILES: tuple[str, ...] = ("default", "quick", "full")
KIND_MODULES: dict[str, str] = {
    "multistart": "suite.multistart",
    "landscape": "suite.analysis.landscape",
}
"""Modules that register the non-default kinds, imported when an experiment names the kind."""

COMMON_KEYS = ("name", "description", "kind", "seed", "quick", "full")
COMPARE_KEYS = (
    "seeds",
    "budget",
    "checkpoints_per_decade",
    "problems",
    "optimizers",
    "tuning",
    "tuned",
)
"""Top-level keys of a compare experiment besides :data:`COMMON_KEYS`. ``tuning`` is read by
:mod:`suite.tuning` (the tuning phase); ``tuned`` lists the entries it tuned (informational)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

ExpandFn = Callable[[dict, str], Sequence[Unit]]
_KINDS: dict[str, ExpandFn] = {}


class ExperimentError(ValueError):
    """An experiment file or spec is invalid; the message names the file, the key and the fix."""


# ------------------------------------------------------------------------------ kinds
def register_kind(kind: str, expand_fn: ExpandFn) -> None:
    """Register ``expand_fn(experiment_dict, profile) -> list[Unit]`` for ``kind = "<kind>"``.

    Registering the same function again is a no-op; another function under a taken kind is
    refused with a ValueError.
    """
    if not isinstance(kind, str) or not _NAME.match(kind):
        raise ValueError(f"kind must be a name of letters, digits, '_', '.', '-', got {kind!r}")
    old = _KINDS.get(kind)
    if old is not None and old is not expand_fn:
        raise ValueError(f"experiment kind {kind!r} is already registered ({old!r})")
    _KINDS[kind] = expand_fn


def kinds() -> list[str]:
    """Known experiment kinds: registered ones and those importable on demand."""
    return sorted(set(_KINDS) | set(KIND_MODULES))


def _expander(kind: str) -> ExpandFn:
    if kind not in _KINDS and kind in KIND_MODULES:
        try:
            importlib.import_module(KIND_MODULES[kind])
        except ImportError as exc:
            raise ExperimentError(
                f"kind: {kind!r} needs the module {KIND_MODULES[kind]}, which failed to import "
                f"({exc})"
            ) from None
    if kind not in _KINDS:
        raise ExperimentError(f"kind: unknown kind {kind!r}; allowed: {', '.join(kinds())}")
    return _KINDS[kind]


# ---------------------------------------------------------------------- value checks
def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def check_keys(table: dict, allowed: Sequence[str], where: str) -> None:
    """Raise :class:`ExperimentError` for keys of ``table`` not in ``allowed``."""
    unknown = [k for k in table if k not in allowed]
    if unknown:
        place = f"{where}: " if where else ""
        raise ExperimentError(
            f"{place}unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
        )


def _int(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExperimentError(f"{where}: must be an integer >= {low}, got {_type_name(value)}")
    if value < low:
        raise ExperimentError(f"{where}: must be an integer >= {low}, got {value}")
    return int(value)


def _table(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ExperimentError(f"{where}: must be a table, got {_type_name(value)}")
    return value


def _tables(value: Any, where: str) -> list[dict]:
    if not isinstance(value, list) or not value:
        got = "an empty array" if isinstance(value, list) else _type_name(value)
        raise ExperimentError(
            f"{where}: must be a non-empty array of tables ([[{where}]] entries), got {got}"
        )
    return [_table(v, f"{where}[{i}]") for i, v in enumerate(value)]


def parse_seeds(value: Any, where: str = "seeds") -> list[int]:
    """``seeds = n`` (indices ``0..n-1``) or an array of distinct non-negative indices."""
    if isinstance(value, list):
        if not value:
            raise ExperimentError(f"{where}: must not be empty")
        seeds = [_int(v, f"{where}[{i}]", 0) for i, v in enumerate(value)]
        if len(set(seeds)) != len(seeds):
            raise ExperimentError(f"{where}: seed indices must be distinct, got {seeds}")
        return seeds
    return list(range(_int(value, where, 1)))


def parse_budget(value: Any, where: str = "budget") -> dict[str, float | None]:
    """``{fe = ..., seconds = ...}``: at least one, each a positive finite number."""
    table = _table(value, where)
    check_keys(table, ("fe", "seconds"), where)
    budget: dict[str, float | None] = {"fe": None, "seconds": None}
    for name in ("fe", "seconds"):
        if name not in table:
            continue
        v = table[name]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ExperimentError(f"{where}.{name}: must be a positive number, got {_type_name(v)}")
        if not (math.isfinite(v) and v > 0):
            raise ExperimentError(f"{where}.{name}: must be a positive finite number, got {v}")
        budget[name] = float(v)
    if budget["fe"] is None and budget["seconds"] is None:
        raise ExperimentError(
            f"{where}: give at least one of fe (forward-equivalents) and seconds (wall time)"
        )
    return budget


@dataclass(frozen=True)
class ProblemSpec:
    """A resolved problem entry: task spec, model spec (defaults filled in), a label and an
    optional budget of its own (``None``: the experiment's)."""

    task: dict
    model: dict
    label: str
    budget: dict | None = None


@dataclass(frozen=True)
class OptimizerSpec:
    """A resolved optimizer entry: registered name, all hyper-parameters, a label and the
    problem labels it runs on (``None``: all)."""

    name: str
    params: dict
    label: str
    problems: tuple[str, ...] | None = None

    def spec(self) -> dict:
        """``{"name": ..., "params": {...}}`` as in a record."""
        return {"name": self.name, "params": dict(self.params)}


def _call(fn: Callable[..., Any], where: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ExperimentError(f"{where}: {exc}") from None


def _label(name: str, params: dict) -> str:
    inner = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"{name}({inner})" if inner else name


def _model_defaults(model: str, n_in: int, n_out: int) -> dict:
    from suite.models import make_model

    spec = make_model(model, n_in, n_out).spec()
    return {k: v for k, v in spec.items() if k != "model"}


def parse_problem(entry: dict, where: str) -> ProblemSpec:
    """Resolve one ``[[problems]]`` entry (see :func:`parse_problems`)."""
    import tasks
    from suite.models import MODEL_NAMES, make_model
    from suite.problem import MODEL_OPTIONS

    entry = dict(entry)
    if "task" not in entry:
        raise ExperimentError(
            f"{where}: missing key 'task'; allowed tasks: {', '.join(tasks.names())}"
        )
    task_name = entry.pop("task")
    model_name = entry.pop("model", None)
    label = entry.pop("label", None)
    budget = parse_budget(entry.pop("budget"), f"{where}.budget") if "budget" in entry else None
    if not isinstance(task_name, str) or task_name not in tasks.names():
        raise ExperimentError(
            f"{where}.task: unknown task {task_name!r}; allowed: {', '.join(tasks.names())}"
        )
    if model_name is not None and (
        not isinstance(model_name, str) or model_name not in MODEL_NAMES
    ):
        raise ExperimentError(
            f"{where}.model: unknown model {model_name!r}; allowed: {', '.join(MODEL_NAMES)}"
        )
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise ExperimentError(f"{where}.label: must be a non-empty string, got {label!r}")
    default_task = tasks.get(task_name)
    task_keys = list(default_task.params)
    fixed = getattr(default_task, "model", None)
    if model_name is None:
        model_name = fixed or "elman"
    elif fixed is not None and model_name != fixed:
        raise ExperimentError(
            f"{where}.model: task {task_name!r} requires model {fixed!r}, got {model_name!r}"
        )
    model_keys = list(_model_defaults(model_name, default_task.n_in, default_task.n_out))
    task_params = {k: v for k, v in entry.items() if k not in MODEL_OPTIONS}
    model_options = {k: v for k, v in entry.items() if k in MODEL_OPTIONS}
    unknown = [k for k in task_params if k not in task_keys] + [
        k for k in model_options if k not in model_keys
    ]
    if unknown:
        raise ExperimentError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} for task {task_name!r} "
            f"with model {model_name!r}; allowed: task, model, label, budget, task parameters "
            f"({', '.join(task_keys) or 'none'}), model options ({', '.join(model_keys) or 'none'})"
        )
    task = _call(tasks.get, where, task_name, **task_params)
    model = _call(make_model, where, model_name, task.n_in, task.n_out, **model_options)
    if label is None:
        label = f"{_label(task_name, task_params)} / {_label(model_name, model_options)}"
    return ProblemSpec(task=dict(task.spec()), model=dict(model.spec()), label=label, budget=budget)


def parse_problems(value: Any, where: str = "problems") -> list[ProblemSpec]:
    """Resolve a ``[[problems]]`` array: task, optional model, label and budget (a table like the
    top-level one, replacing it for this problem), the rest split between the task's parameters
    and the model's options (``suite.problem.MODEL_OPTIONS``).

    Labels must be unique (the default label lists the keys given in the file).
    """
    problems = [parse_problem(e, f"{where}[{i}]") for i, e in enumerate(_tables(value, where))]
    _unique([p.label for p in problems], where, "problem labels (set 'label' to tell them apart)")
    return problems


def parse_optimizer(entry: dict, where: str) -> OptimizerSpec:
    """Resolve one ``[[optimizers]]`` entry (see :func:`parse_optimizers`)."""
    from suite.optimizers import display_name, get_optimizer, missing_extra, optimizer_names, spec

    entry = dict(entry)
    name = entry.pop("name", None)
    label = entry.pop("label", None)
    problems = entry.pop("problems", None)
    if problems is not None and (
        not isinstance(problems, list)
        or not problems
        or not all(isinstance(p, str) for p in problems)
    ):
        raise ExperimentError(
            f"{where}.problems: must be a non-empty array of problem labels, got {problems!r}"
        )
    if isinstance(name, str) and missing_extra(name):  # e.g. ng-* without nevergrad
        raise ExperimentError(f"{where}.name: {missing_extra(name)}")
    if not isinstance(name, str) or name not in optimizer_names():
        what = "missing key 'name'" if name is None else f"unknown optimizer {name!r}"
        raise ExperimentError(
            f"{where}.name: {what}; allowed: {', '.join(optimizer_names())} (plugins: --plugin)"
        )
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise ExperimentError(f"{where}.label: must be a non-empty string, got {label!r}")
    opt = _call(get_optimizer, where, name, **entry)
    resolved = spec(opt)
    return OptimizerSpec(
        name=resolved["name"],
        params=dict(resolved["params"]),
        label=label or display_name(opt),
        problems=None if problems is None else tuple(problems),
    )


def parse_optimizers(value: Any, where: str = "optimizers") -> list[OptimizerSpec]:
    """Resolve an ``[[optimizers]]`` array: ``name``, optional ``label`` and ``problems`` (the
    problem labels the entry runs on; default all), hyper-parameters.

    Labels (by default the display name, e.g. ``adam(lr=0.03)``) must be unique among the
    entries that run on the same problem (see :func:`plan`).
    """
    return [parse_optimizer(e, f"{where}[{i}]") for i, e in enumerate(_tables(value, where))]


def plan(
    problems: list[ProblemSpec], optimizers: list[OptimizerSpec], where: str = "optimizers"
) -> list[tuple[ProblemSpec, list[OptimizerSpec]]]:
    """Which optimizer entries run on which problem; checks the ``problems`` restrictions name
    known problem labels and that no problem gets two entries with the same label."""
    labels = [p.label for p in problems]
    for i, o in enumerate(optimizers):
        unknown = [x for x in o.problems or () if x not in labels]
        if unknown:
            raise ExperimentError(
                f"{where}[{i}].problems: unknown problem label(s) {', '.join(map(repr, unknown))};"
                f" allowed: {', '.join(labels)}"
            )
    pairs = []
    for p in problems:
        entries = [o for o in optimizers if o.problems is None or p.label in o.problems]
        _unique(
            [o.label for o in entries],
            where,
            f"optimizer entries on problem {p.label!r} (same configuration twice?)",
        )
        pairs.append((p, entries))
    return pairs


def _unique(labels: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    dup = sorted({x for x in labels if x in seen or seen.add(x)})  # type: ignore[func-returns-value]
    if dup:
        raise ExperimentError(f"{where}: duplicate {what}: {', '.join(dup)}")


# ------------------------------------------------------------------------- profiles
def apply_profile(raw: dict, profile: str) -> dict:
    """The top level with the profile's table merged over it (whole-value replacement)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    merged = {k: v for k, v in raw.items() if k not in ("quick", "full")}
    if profile != "default":
        merged.update(raw.get(profile) or {})
    return merged


# -------------------------------------------------------------------------- compare
def expand_compare(d: dict, profile: str) -> list[Unit]:
    """Units of a ``compare`` experiment: every problem x optimizer x seed index, seed-major."""
    check_keys(d, COMMON_KEYS + COMPARE_KEYS, "")
    for key in ("budget", "problems", "optimizers"):
        if key not in d:
            raise ExperimentError(f"missing key {key!r} (a compare experiment needs it)")
    seeds = parse_seeds(d.get("seeds", 1))
    budget = parse_budget(d["budget"])
    cpd = _int(d.get("checkpoints_per_decade", 10), "checkpoints_per_decade", 1)
    _check_tuning_keys(d)
    pairs = plan(parse_problems(d["problems"]), parse_optimizers(d["optimizers"]))
    units: list[Unit] = []
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


def _check_tuning_keys(d: dict) -> None:
    if "tuning" in d and not isinstance(d["tuning"], dict):
        raise ExperimentError(f"tuning: must be a table, got {_type_name(d['tuning'])}")
    tuned = d.get("tuned", [])
    if not isinstance(tuned, list) or not all(isinstance(t, str) for t in tuned):
        raise ExperimentError(f"tuned: must be an array of optimizer labels, got {tuned!r}")


def _compare_spec(d: dict) -> dict:
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


register_kind("compare", expand_compare)


# ---------------------------------------------------------------------- experiment
@dataclass(frozen=True)
class Experiment:
    """A validated experiment: its resolved spec and its work units."""

    name: str
    kind: str
    profile: str
    source: str
    spec: dict = field(repr=False)
    units: tuple[Unit, ...] = field(repr=False)

    @property
    def dirname(self) -> str:
        """Folder name under the results root: ``name``, or ``name-quick`` / ``name-full``."""
        return self.name if self.profile == "default" else f"{self.name}-{self.profile}"

    def keys(self) -> list[str]:
        """Every record key the experiment produces."""
        return [k for u in self.units for k in u.keys()]

    def __len__(self) -> int:
        return len(self.units)


def experiment_from_dict(
    raw: dict, profile: str = "default", source: str = "<dict>", default_name: str | None = None
) -> Experiment:
    """Validate a parsed experiment (a TOML document as a dict) and expand it into units."""
    if profile not in PROFILES:
        raise ExperimentError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    try:
        return _from_dict(raw, profile, source, default_name)
    except ExperimentError as exc:
        raise ExperimentError(f"{source}: {exc}") from None


def _from_dict(raw: dict, profile: str, source: str, default_name: str | None) -> Experiment:
    kind = raw.get("kind", "compare")
    if not isinstance(kind, str):
        raise ExperimentError(f"kind: must be a string; allowed: {', '.join(kinds())}")
    expand = _expander(kind)
    name = raw.get("name", default_name)
    if name is None:
        raise ExperimentError("missing key 'name'")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ExperimentError(
            f"name: must be letters, digits, '_', '.', '-' (a folder name), got {name!r}"
        )
    seed = _int(raw.get("seed", 0), "seed", 0)
    if "description" in raw and not isinstance(raw["description"], str):
        raise ExperimentError(
            f"description: must be a string, got {_type_name(raw['description'])}"
        )
    for prof in ("quick", "full"):
        if prof in raw:
            table = _table(raw[prof], prof)
            if kind == "compare":
                check_keys(table, ("seed", "description", *COMPARE_KEYS), prof)
    merged = apply_profile(raw, profile)
    merged.update(name=name, kind=kind, seed=_int(merged.get("seed", seed), "seed", 0))
    where = "" if profile == "default" else f"[{profile}] "
    try:
        units = tuple(expand(merged, profile))
    except ExperimentError as exc:
        raise ExperimentError(f"{where}{exc}") from None
    except (ValueError, TypeError) as exc:
        raise ExperimentError(f"{where}{exc}") from None
    if not units:
        raise ExperimentError("the experiment expands to no work units")
    keys = [k for u in units for k in u.keys()]
    if len(set(keys)) != len(keys):
        raise ExperimentError("two work units produce the same record key (duplicate entries?)")
    spec: dict[str, Any] = {"name": name, "kind": kind, "profile": profile, "source": source}
    spec["description"] = merged.get("description", "")
    spec["seed"] = merged["seed"]
    if kind == "compare":
        spec.update(_compare_spec(merged))
    else:
        spec.update({k: v for k, v in merged.items() if k not in spec})
    spec["units"] = len(units)
    return Experiment(name=name, kind=kind, profile=profile, source=source, spec=spec, units=units)


def list_experiments() -> list[str]:
    """Names of the shipped experiments (``suite/experiments/*.toml``)."""
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.toml"))


def experiment_path(name_or_path: str | os.PathLike[str]) -> Path:
    """The TOML file of a shipped experiment name or a path."""
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.is_file():
        return path
    if text.endswith(".toml") or os.sep in text or "/" in text:
        raise ExperimentError(f"{text}: no such experiment file")
    shipped = EXPERIMENTS_DIR / f"{text}.toml"
    if shipped.is_file():
        return shipped
    raise ExperimentError(
        f"unknown experiment {text!r}; shipped experiments: {', '.join(list_experiments())} "
        "(or give a path to a .toml file)"
    )


def load_experiment(name_or_path: str | os.PathLike[str], profile: str = "default") -> Experiment:
    """Load and validate an experiment by shipped name or path; ``profile`` is one of
    ``"default"``, ``"quick"``, ``"full"``. Raises :class:`ExperimentError` on any problem."""
    path = experiment_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: malformed TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"{path}: cannot read: {exc}") from None
    return experiment_from_dict(raw, profile, source=str(path), default_name=path.stem)
