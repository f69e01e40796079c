"""Experiment files, the parsing layer: a TOML file -> a dict -> validated specs.

An experiment file (shipped ones live in ``suite/experiments/*.toml`` and run by name)::

    name = "demo"                      # default: the file's stem
    description = "..."                # optional
    kind = "compare"                   # default; the kinds live in suite/kinds/
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

The top level is the ``"default"`` profile; the ``[quick]`` table is merged over it for the
``"quick"`` profile (a missing table means no override), see :func:`apply_profile`.

This module knows no experiment kind. It reads files (:func:`read_experiment_file`), checks the
keys every kind shares (:func:`parse_header`: name, seed, description, profile tables) and
resolves the pieces kinds share (:func:`parse_problems`, :func:`parse_optimizers`,
:func:`parse_budget`, :func:`parse_seeds`, :func:`check_keys`), raising
:class:`ExperimentError` naming the key and what is allowed. The kinds
(``suite/kinds/<name>.py``) expand a merged dict into work units; ``suite.kinds.load`` puts the
two together (``load_experiment``, ``experiment_from_dict``) and returns an :class:`Experiment`.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tasks
from suite.models import make_model, model_names
from suite.models import model_options as all_model_options
from suite.optimizers import display_name, get_optimizer, missing_extra, optimizer_names, spec
from suite.trial import Unit

EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"
PROFILES: tuple[str, ...] = ("default", "quick", "full")
COMMON_KEYS = ("name", "description", "kind", "seed", "quick", "full")
"""Top-level keys every experiment may have, whatever its kind."""
PROFILE_KEYS = ("seed", "description")
"""Keys every profile table may override, besides its kind's own keys."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""An experiment (and kind) name: usable as a folder name."""


class ExperimentError(ValueError):
    """An experiment file or spec is invalid; the message names the file, the key and the fix."""


# ---------------------------------------------------------------------- value checks
def type_name(value: Any) -> str:
    """The TOML name of a value's type, for messages (\"an integer\", \"a table\")."""
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


def parse_int(value: Any, where: str, low: int) -> int:
    """``value`` as an integer >= ``low``, else :class:`ExperimentError` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExperimentError(f"{where}: must be an integer >= {low}, got {type_name(value)}")
    if value < low:
        raise ExperimentError(f"{where}: must be an integer >= {low}, got {value}")
    return int(value)


def _table(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ExperimentError(f"{where}: must be a table, got {type_name(value)}")
    return value


def _tables(value: Any, where: str) -> list[dict]:
    if not isinstance(value, list) or not value:
        got = "an empty array" if isinstance(value, list) else type_name(value)
        raise ExperimentError(
            f"{where}: must be a non-empty array of tables ([[{where}]] entries), got {got}"
        )
    return [_table(v, f"{where}[{i}]") for i, v in enumerate(value)]


def parse_seeds(value: Any, where: str = "seeds") -> list[int]:
    """``seeds = n`` (indices ``0..n-1``) or an array of distinct non-negative indices."""
    if isinstance(value, list):
        if not value:
            raise ExperimentError(f"{where}: must not be empty")
        seeds = [parse_int(v, f"{where}[{i}]", 0) for i, v in enumerate(value)]
        if len(set(seeds)) != len(seeds):
            raise ExperimentError(f"{where}: seed indices must be distinct, got {seeds}")
        return seeds
    return list(range(parse_int(value, where, 1)))


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
            raise ExperimentError(f"{where}.{name}: must be a positive number, got {type_name(v)}")
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
    spec = make_model(model, n_in, n_out).spec()
    return {k: v for k, v in spec.items() if k != "model"}


def parse_problem(entry: dict, where: str) -> ProblemSpec:
    """Resolve one ``[[problems]]`` entry (see :func:`parse_problems`)."""
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
        not isinstance(model_name, str) or model_name not in model_names()
    ):
        raise ExperimentError(
            f"{where}.model: unknown model {model_name!r}; allowed: {', '.join(model_names())}"
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
    task_params = {k: v for k, v in entry.items() if k not in all_model_options()}
    model_options = {k: v for k, v in entry.items() if k in all_model_options()}
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
    and the model's options (``suite.models.model_options()``).

    Labels must be unique (the default label lists the keys given in the file).
    """
    problems = [parse_problem(e, f"{where}[{i}]") for i, e in enumerate(_tables(value, where))]
    _unique([p.label for p in problems], where, "problem labels (set 'label' to tell them apart)")
    return problems


def parse_optimizer(entry: dict, where: str) -> OptimizerSpec:
    """Resolve one ``[[optimizers]]`` entry (see :func:`parse_optimizers`)."""
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
    dup = sorted(x for x, n in Counter(labels).items() if n > 1)
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


def experiment_kind(raw: dict) -> str:
    """The ``kind`` an experiment names (``"compare"`` when it names none); not checked against
    the registered kinds here (that is ``suite.kinds.get_kind``)."""
    kind = raw.get("kind", "compare")
    if not isinstance(kind, str) or not NAME.match(kind):
        raise ExperimentError(f"kind: must be the name of an experiment kind, got {kind!r}")
    return kind


def merge_profile(
    raw: dict, profile: str, keys: Sequence[str], default_name: str | None = None
) -> dict:
    """Check the keys every experiment shares and return its ``profile`` view.

    ``keys`` are the top-level keys the experiment's kind accepts besides :data:`COMMON_KEYS`;
    the profile tables may override them and :data:`PROFILE_KEYS`. Returns the top level with
    the profile's table merged over it (:func:`apply_profile`) and ``name``, ``kind`` and
    ``seed`` filled in.
    """
    if profile not in PROFILES:
        raise ExperimentError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    kind = experiment_kind(raw)
    check_keys(raw, (*COMMON_KEYS, *keys), "")
    name = raw.get("name", default_name)
    if name is None:
        raise ExperimentError("missing key 'name'")
    if not isinstance(name, str) or not NAME.match(name):
        raise ExperimentError(
            f"name: must be letters, digits, '_', '.', '-' (a folder name), got {name!r}"
        )
    seed = parse_int(raw.get("seed", 0), "seed", 0)
    if "description" in raw and not isinstance(raw["description"], str):
        raise ExperimentError(f"description: must be a string, got {type_name(raw['description'])}")
    for prof in ("quick", "full"):
        if prof in raw:
            check_keys(_table(raw[prof], prof), (*PROFILE_KEYS, *keys), prof)
    merged = apply_profile(raw, profile)
    merged.update(name=name, kind=kind, seed=parse_int(merged.get("seed", seed), "seed", 0))
    return merged


def read_experiment_file(path: str | os.PathLike[str]) -> dict:
    """The TOML document at ``path`` as a dict; :class:`ExperimentError` naming the file if it
    cannot be read or parsed."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: malformed TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"{path}: cannot read: {exc}") from None


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
