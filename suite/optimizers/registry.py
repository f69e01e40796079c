"""The optimizer registry: names -> configured optimizer classes, plugins and entry points.

A name maps to exactly one class, and a class to exactly one name, so an instance always knows
its registered name (for display names and specs). A configured variant (nevergrad's
``DiagonalCMA``) is a generated subclass whose defaults are the preset values::

    @register_optimizer("cmaes", family="cmaes")
    @dataclass(frozen=True)
    class CMAES(Optimizer): ...

    SepCmaes = register_variant("sep-cmaes", CMAES, diagonal=True)

``get_optimizer("sep-cmaes", sigma0=0.3)`` then builds ``SepCmaes(sigma0=0.3)`` whose display
name is ``sep-cmaes(sigma0=0.3)``.

Plugins register by being imported: ``load_plugins(["pkg.module", "path/to/file.py"])`` or
``load_entry_points()`` for the entry-point group ``rnnbench.optimizers``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from suite.optimizers.base import (
    REGISTERED_NAME,
    TAGS,
    Optimizer,
    defaults,
    hyper_type,
    registered_name,
)
from suite.registry import Registry, check_name

ENTRY_POINT_GROUP = "rnnbench.optimizers"
"""The ``importlib.metadata`` entry-point group that plugin distributions declare."""

OPTIONAL_FAMILIES: dict[str, tuple[str, str]] = {"ng-": ("nevergrad", "nevergrad")}
"""Name prefix -> (package, pip extra) of the families that need an optional dependency."""


@dataclass(frozen=True)
class OptimizerEntry:
    """One registry entry: the registered name, its class and its family."""

    name: str
    cls: type[Optimizer]
    family: str


OPTIMIZERS: Registry[OptimizerEntry] = Registry("optimizer")
"""The registered optimizers, by name. A class is registered under one name only: it carries
that name (:func:`~suite.optimizers.base.registered_name`)."""

OptimizerType = TypeVar("OptimizerType", bound=type[Optimizer])


def _validate_class(name: str, cls: Any) -> None:
    """Refuse a class that cannot be a registered optimizer, saying why."""
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"register_optimizer({name!r}) must decorate a subclass of Optimizer")
    if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"optimizer {name!r} must be a frozen dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    own = cls.__dict__.get("__annotations__", {})
    loose = [
        k
        for k, v in own.items()
        if k not in fields and not str(v).startswith(("ClassVar", "typing.ClassVar"))
    ]
    if loose:
        raise TypeError(
            f"optimizer {name!r}: annotated attribute(s) {', '.join(loose)} are not dataclass "
            "fields; decorate the class with @dataclass(frozen=True) below @register_optimizer"
        )
    hints = typing.get_type_hints(cls)
    for f in fields.values():
        if f.default is dataclasses.MISSING:
            raise TypeError(f"optimizer {name!r}: hyper-parameter {f.name} needs a default value")
        try:
            hyper_type(hints[f.name])
        except TypeError as exc:
            raise TypeError(f"optimizer {name!r}: hyper-parameter {f.name}: {exc}") from None
    tags = cls.tags
    if not isinstance(tags, frozenset) or not tags <= TAGS:
        raise ValueError(
            f"optimizer {name!r}: tags must be a frozenset of {sorted(TAGS)}, got {tags!r}"
        )
    if {"stochastic", "deterministic"} <= tags:
        raise ValueError(
            f"optimizer {name!r}: tags 'stochastic' and 'deterministic' exclude each other"
        )
    unknown = sorted(set(cls.constraints) - set(fields))
    if unknown:
        raise ValueError(
            f"optimizer {name!r}: constraints name unknown hyper-parameter(s) {', '.join(unknown)}"
        )


def register_optimizer(
    name: str, family: str | None = None
) -> Callable[[OptimizerType], OptimizerType]:
    """Class decorator registering an :class:`Optimizer` subclass under ``name``.

    ``family`` groups related optimizers in tables (default: the name). Names are lower-case
    ``[a-z0-9][a-z0-9._-]*``. A name already taken by another class, or a class already
    registered under another name, is refused with a ValueError (register a configured copy
    with :func:`register_variant` instead). The default hyper-parameters are validated now.
    """
    check_name("optimizer", name)

    def decorate(cls: OptimizerType) -> OptimizerType:
        _validate_class(name, cls)
        if name in OPTIMIZERS:
            old = OPTIMIZERS.get(name).cls
            if old is cls:
                return cls
            raise ValueError(
                f"an optimizer named {name!r} is already registered "
                f"({old.__module__}.{old.__qualname__}); choose another name"
            )
        taken = registered_name(cls)
        if taken is not None:
            raise ValueError(
                f"class {cls.__qualname__} is already registered as {taken!r}; use "
                f"register_variant({name!r}, {cls.__qualname__}, ...) for a configured copy"
            )
        OPTIMIZERS.register(name, OptimizerEntry(name, cls, family or name))
        setattr(cls, REGISTERED_NAME, name)
        try:
            cls()  # the defaults must pass the hyper-parameter checks
        except Exception:
            OPTIMIZERS.unregister(name)
            delattr(cls, REGISTERED_NAME)
            raise
        return cls

    return decorate


def _class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_.]", name) if part)


def register_variant(
    name: str,
    base: type[Optimizer],
    *,
    family: str | None = None,
    doc: str | None = None,
    **preset: Any,
) -> type[Optimizer]:
    """Register ``base`` with the hyper-parameters ``preset`` as new defaults under ``name``.

    Returns the generated subclass (its ``__name__`` is ``name`` in CamelCase, its module the
    caller's); assign it to that name at module level so that its instances pickle. ``family``
    defaults to the base's family.
    """
    allowed = defaults(base)
    unknown = sorted(set(preset) - set(allowed))
    if unknown:
        raise ValueError(
            f"register_variant({name!r}): unknown hyper-parameter(s) {', '.join(unknown)} of "
            f"{base.__qualname__}; allowed: {_describe(allowed)}"
        )
    hints = typing.get_type_hints(base)
    caller = inspect.currentframe()
    outer = caller.f_back if caller else None
    module = outer.f_globals.get("__name__", base.__module__) if outer else None
    cls_name = _class_name(name)
    settings = ", ".join(f"{k}={v!r}" for k, v in preset.items())
    summary = (base.__doc__ or "").strip().splitlines()[0] if base.__doc__ else ""
    namespace = {
        "__doc__": doc or f"{summary} Variant of {base.__qualname__} with {settings}.",
        "__module__": module or base.__module__,
        "__qualname__": cls_name,
    }
    cls = dataclasses.make_dataclass(
        cls_name,
        [(k, hints[k], dataclasses.field(default=v)) for k, v in preset.items()],
        bases=(base,),
        frozen=True,
        namespace=namespace,
    )
    base_name = registered_name(base)
    fam = family or (
        OPTIMIZERS.get(base_name).family if base_name and base_name in OPTIMIZERS else None
    )
    return register_optimizer(name, family=fam)(cls)


def unregister_optimizer(name: str) -> None:
    """Remove ``name`` from the registry (for tests and interactive plugin development)."""
    entry = _entry(name)
    OPTIMIZERS.unregister(name)
    if entry.cls.__dict__.get(REGISTERED_NAME) == name:
        delattr(entry.cls, REGISTERED_NAME)


# ---------------------------------------------------------------------------- look-ups


def _entry(name: str) -> OptimizerEntry:
    hint = missing_extra(name)
    if hint is not None:
        raise ValueError(hint)
    try:
        return OPTIMIZERS.get(name)
    except ValueError as exc:
        raise ValueError(
            f"{exc} (plugins register when loaded with --plugin or load_plugins)"
        ) from None


def missing_extra(name: str) -> str | None:
    """For an unregistered name of a family whose optional dependency is not installed
    (:data:`OPTIONAL_FAMILIES`), the one-line message saying which extra to install; else None."""
    for prefix, (package, extra) in OPTIONAL_FAMILIES.items():
        if name not in OPTIMIZERS and name.startswith(prefix):
            if importlib.util.find_spec(package) is None:
                return (
                    f"optimizer {name!r} needs {package}, which is not installed; install the "
                    f'extra: pip install -e ".[{extra}]"'
                )
    return None


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "none"


def optimizer_names() -> list[str]:
    """The sorted registered optimizer names."""
    return OPTIMIZERS.names()


def optimizer_class(name: str) -> type[Optimizer]:
    """The class registered under ``name``."""
    return _entry(name).cls


def get_optimizer(name: str, **hyper: Any) -> Optimizer:
    """Build the optimizer registered as ``name`` with the hyper-parameters ``hyper``.

    Unknown names and keys raise a ValueError listing what is allowed (keys with their
    defaults); wrong types and values (e.g. ``lr <= 0``) raise a ValueError from the class's
    checks naming the allowed type or range.

    >>> get_optimizer("adam", lr=0.03)
    Adam(lr=0.03, ...)  # doctest: +SKIP
    """
    entry = _entry(name)
    allowed = defaults(entry.cls)
    unknown = sorted(set(hyper) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter(s) {', '.join(unknown)} for optimizer {name!r}; "
            f"allowed (with defaults): {_describe(allowed)}"
        )
    return entry.cls(**hyper)


def optimizer_info(name: str) -> dict[str, Any]:
    """``{name, family, tags, defaults, constraints, summary, class}`` of a registered name."""
    entry = _entry(name)
    cls = entry.cls
    doc = inspect.getdoc(cls) or ""
    return {
        "name": entry.name,
        "family": entry.family,
        "tags": sorted(cls.tags),
        "defaults": defaults(cls),
        "constraints": {k: c.text for k, c in cls.constraints.items()},
        "summary": doc.strip().splitlines()[0] if doc.strip() else "",
        "class": f"{cls.__module__}.{cls.__qualname__}",
    }


def _name_of(opt: Optimizer) -> str:
    name = registered_name(type(opt))
    if name is None:
        raise ValueError(
            f"{type(opt).__qualname__} is not a registered optimizer class; register it with "
            "@register_optimizer(name)"
        )
    return name


def _format_value(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def display_name(opt: Optimizer) -> str:
    """Registered name plus the non-default hyper-parameters, sorted: ``adam(lr=0.03)``."""
    name = _name_of(opt)
    base = defaults(type(opt))
    changed = sorted((k, v) for k, v in opt.params().items() if v != base[k])
    if not changed:
        return name
    return f"{name}({', '.join(f'{k}={_format_value(v)}' for k, v in changed)})"


def spec(opt: Optimizer) -> dict[str, Any]:
    """``{"name": registered name, "params": all hyper-parameters}`` (plain JSON data)."""
    return {"name": _name_of(opt), "params": opt.params()}


def from_spec(data: dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer from :func:`spec` output (validating it like :func:`get_optimizer`)."""
    if not isinstance(data, dict) or "name" not in data:
        raise ValueError(f"an optimizer spec is {{'name': ..., 'params': {{...}}}}, got {data!r}")
    extra = sorted(set(data) - {"name", "params"})
    if extra:
        raise ValueError(
            f"unknown key(s) {', '.join(extra)} in optimizer spec; allowed: name, params"
        )
    return get_optimizer(data["name"], **dict(data.get("params") or {}))


# ----------------------------------------------------------------------------- plugins


def _is_path(item: str) -> bool:
    return item.endswith(".py") or os.sep in item or "/" in item


def plugin_module_name(path: str | os.PathLike[str]) -> str:
    """The stable module name a plugin file is imported under (same path, same name)."""
    full = os.path.realpath(os.fspath(path))
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(full))[0])
    digest = hashlib.sha1(full.encode()).hexdigest()[:10]
    return f"rnnbench_plugin_{stem}_{digest}"


def _import_path(path: str) -> types.ModuleType:
    if not os.path.isfile(path):
        raise ValueError(f"plugin file {path!r} does not exist (give a .py file or a module name)")
    name = plugin_module_name(path)
    if name in sys.modules:
        return sys.modules[name]
    spec_ = importlib.util.spec_from_file_location(name, path)
    if spec_ is None or spec_.loader is None:
        raise ValueError(f"cannot import plugin file {path!r}: not a Python source file")
    module = importlib.util.module_from_spec(spec_)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec_.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_plugins(modules: Iterable[str | os.PathLike[str]]) -> list[types.ModuleType]:
    """Import plugin modules (dotted names or paths to ``.py`` files); importing registers.

    A file is imported by location under the stable name :func:`plugin_module_name`, so
    loading it again (in this or a worker process) finds the same module and classes. Loading is
    idempotent.
    """
    if isinstance(modules, str | os.PathLike):
        modules = [modules]
    loaded = []
    for item in modules:
        item = os.fspath(item)
        if _is_path(item):
            loaded.append(_import_path(item))
            continue
        try:
            loaded.append(importlib.import_module(item))
        except ModuleNotFoundError as exc:
            if exc.name != item and not item.startswith(f"{exc.name}."):
                raise
            raise ValueError(
                f"plugin module {item!r} not found; give an importable module name or a path "
                "to a .py file"
            ) from exc
    return loaded


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Load every entry point of ``group`` (importing registers); return their names."""
    names = []
    for ep in importlib.metadata.entry_points(group=group):
        try:
            ep.load()
        except Exception as exc:
            raise ImportError(
                f"loading optimizer plugin entry point {ep.name!r} ({ep.value}) of group "
                f"{group!r} failed: {exc}"
            ) from exc
        names.append(ep.name)
    return names
