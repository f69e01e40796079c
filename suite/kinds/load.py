"""Experiments through their kinds: a TOML file or dict -> :class:`~suite.experiment.Experiment`,
and a results folder -> the kinds that report it.

:mod:`suite.experiment` parses what every experiment shares; the experiment's kind
(:func:`suite.kinds.get_kind`) says which other keys it takes and expands it into work units.
"""

from __future__ import annotations

import os
from typing import Any

from suite.experiment import (
    PROFILES,
    Experiment,
    ExperimentError,
    experiment_kind,
    experiment_path,
    merge_profile,
    read_experiment_file,
)
from suite.kinds import Kind, get_kind, names
from suite.store import Store


def _kind(raw: dict) -> Kind:
    try:
        return get_kind(experiment_kind(raw))
    except ExperimentError:
        raise
    except ValueError as exc:  # an unknown kind: the message lists the known ones
        raise ExperimentError(f"kind: {exc}") from None


def experiment_from_dict(
    raw: dict, profile: str = "default", source: str = "<dict>", default_name: str | None = None
) -> Experiment:
    """Validate a parsed experiment (a TOML document as a dict) and expand it into units.

    The kind (``raw["kind"]``, default ``"compare"``) gives the accepted keys and the expansion;
    every error is an :class:`ExperimentError` prefixed with ``source``.
    """
    if profile not in PROFILES:
        raise ExperimentError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    try:
        return _from_dict(raw, profile, source, default_name)
    except ExperimentError as exc:
        raise ExperimentError(f"{source}: {exc}") from None


def _from_dict(raw: dict, profile: str, source: str, default_name: str | None) -> Experiment:
    kind = _kind(raw)
    merged = merge_profile(raw, profile, kind.keys, default_name)
    where = "" if profile == "default" else f"[{profile}] "
    try:
        units = tuple(kind.expand(merged, profile))
    except (ValueError, TypeError) as exc:  # ExperimentError is a ValueError
        raise ExperimentError(f"{where}{exc}") from None
    if not units:
        raise ExperimentError("the experiment expands to no work units")
    keys = [k for u in units for k in u.keys()]
    if len(set(keys)) != len(keys):
        raise ExperimentError("two work units produce the same record key (duplicate entries?)")
    name = merged["name"]
    spec: dict[str, Any] = {"name": name, "kind": kind.name, "profile": profile, "source": source}
    spec["description"] = merged.get("description", "")
    spec["seed"] = merged["seed"]
    if kind.resolve is not None:
        spec.update(kind.resolve(merged))
    else:
        spec.update({k: v for k, v in merged.items() if k not in spec})
    spec["units"] = len(units)
    return Experiment(
        name=name, kind=kind.name, profile=profile, source=source, spec=spec, units=units
    )


def load_experiment(name_or_path: str | os.PathLike[str], profile: str = "default") -> Experiment:
    """Load and validate an experiment by shipped name or path; ``profile`` is one of
    ``"default"``, ``"quick"``, ``"full"``. Raises :class:`ExperimentError` on any problem."""
    path = experiment_path(name_or_path)
    raw = read_experiment_file(path)
    return experiment_from_dict(raw, profile, source=str(path), default_name=path.stem)


def record_kinds(folder: str | os.PathLike[str]) -> set[str]:
    """The ``kind`` values of the records stored in ``folder``."""
    entries = Store(folder).scan(warn=False).entries.values()
    return {e.kind for e in entries if e.kind is not None}


def kind_of_folder(folder: str | os.PathLike[str]) -> list[Kind]:
    """The kinds that report a results folder: the ``kind`` of its stored ``experiment.json``,
    else every known kind whose ``record_kinds`` it holds (empty for a folder without either)."""
    stored = Store(folder).experiment()
    if stored.get("kind"):
        return [get_kind(str(stored["kind"]))]
    held = record_kinds(folder)
    return [kind for kind in map(get_kind, names()) if held & set(kind.record_kinds)]
