"""Experiment kinds: each says, in one module, how it expands, runs, analyses and reports.

A kind is a :class:`Kind` registered in :data:`KINDS`. The built-in kinds live in
``suite/kinds/<name>.py`` (``compare``, ``multistart``, ``landscape``) and are imported on first
lookup, so ``import suite.kinds`` stays cheap. ``suite.kinds.load`` turns a TOML file into an
:class:`~suite.experiment.Experiment` through its kind and finds the kinds of a results folder;
the CLI and ``reproduce`` dispatch through :func:`get_kind` /
:func:`suite.kinds.load.kind_of_folder`, never on a kind's name.

Data flow: TOML -> ``Kind.expand`` -> work units (each ``unit.run()`` returns plain records) ->
store -> ``Kind.analyse`` (stored records -> frames) -> ``Kind.report`` (tables, figures,
REPORT.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.registry import Registry

BUILTIN: tuple[str, ...] = ("compare", "multistart", "landscape")
"""Built-in kinds, each in ``suite.kinds.<name>``."""


@dataclass(frozen=True)
class ReportOptions:
    """What a report writer may be asked for besides the folder.

    ``latex``/``pdf``: also write LaTeX tables / PDF figures; ``reference``: the label of the
    optimizer the trial report compares the others with (``None``: the writer's default);
    ``trial_results``: other results folders whose trial records a report may draw on (the
    landscape report places the cliff trials of a compare folder on its surface).
    """

    latex: bool = False
    pdf: bool = False
    reference: str | None = None
    trial_results: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Kind:
    """One experiment kind.

    ``expand(spec, profile)`` turns the merged experiment dict (profile applied; ``name``,
    ``kind`` and ``seed`` resolved) into work units, raising ValueError with the key and the
    allowed values on bad input. ``keys`` are the top-level TOML keys it accepts (besides
    ``name``, ``kind``, ``seed``, ``description`` and the profile tables). ``record_kinds``
    are the ``kind`` values of the records its units write. ``analyse(folder)`` reads a
    results folder into its analysis object (frames); ``report(folder, options)`` writes the
    tables, figures and REPORT.md and returns the paths written. Optional: ``resolve(d)``
    gives the resolved spec stored in ``experiment.json`` (default: the merged dict as written);
    ``writes_latex`` says whether ``report`` honours ``ReportOptions.latex``.
    """

    name: str
    expand: Callable[[dict, str], Sequence[Any]]
    keys: tuple[str, ...]
    record_kinds: tuple[str, ...]
    analyse: Callable[[Path], Any]
    report: Callable[[Path, ReportOptions], list[Path]]
    doc: str = ""
    resolve: Callable[[dict], dict] | None = None
    writes_latex: bool = False


KINDS: Registry[Kind] = Registry("experiment kind")


def register_kind(kind: Kind) -> Kind:
    """Register ``kind`` under ``kind.name`` (a plugin may add kinds too)."""
    return KINDS.register(kind.name, kind, same=lambda a, b: a == b)


def get_kind(name: str) -> Kind:
    """The kind registered as ``name``, importing a built-in kind's module on first use."""
    if name not in KINDS and name in BUILTIN:
        importlib.import_module(f"suite.kinds.{name}")
    if name not in KINDS:
        raise ValueError(f"unknown experiment kind {name!r}; allowed kinds: {', '.join(names())}")
    return KINDS.get(name)


def names() -> list[str]:
    """Every known kind: the built-in ones and any registered by plugins."""
    return sorted(set(BUILTIN) | set(KINDS.names()))
