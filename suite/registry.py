"""One registry vocabulary for tasks, models, optimizers and experiment kinds.

A :class:`Registry` maps lower-case names to entries and refuses a name taken by another entry;
every lookup error has the same shape: what was asked for and what is allowed::

    MODELS: Registry[type] = Registry("model")
    MODELS.register("elman", Elman)
    MODELS.get("elman")       # -> Elman
    MODELS.get("elmann")      # ValueError: unknown model 'elmann'; allowed models: elman, ...
    MODELS.names()            # sorted names

Declared parameter ranges use :class:`ParamSpec` (a type and an inclusive range or a list of
choices), built with :func:`param` on dataclass fields, and checked by :func:`check_params`,
so tasks, models and optimizers say "what was wrong and what is allowed" in the same words.

This module is a leaf: it imports nothing from ``suite`` or ``tasks``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
"""Allowed registered names: lower-case letters, digits, '.', '_', '-'; no leading punctuation."""


def check_name(what: str, name: Any) -> str:
    """Return ``name`` if it is an allowed registered name, else raise a ValueError saying why."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(
            f"{what} name {name!r} is not allowed; use lower-case letters, digits, '-', '_' "
            "or '.', starting with a letter or digit"
        )
    return name


class Registry(Generic[T]):
    """Names -> entries, for one kind of thing (``what``: "task", "model", ...).

    ``register`` refuses a name already taken by a different entry (re-registering the same
    entry is a no-op, so re-importing a plugin module is harmless). ``get`` raises a ValueError
    that lists the allowed names.
    """

    def __init__(self, what: str, plural: str | None = None) -> None:
        self.what = what
        self.plural = plural or f"{what}s"
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T, *, same: Callable[[T, T], bool] | None = None) -> T:
        """Add ``entry`` under ``name``; ``same(old, new)`` says when a repeat is the same entry
        (default: identity)."""
        check_name(self.what, name)
        old = self._entries.get(name)
        if old is not None and not (same(old, entry) if same else old is entry):
            raise ValueError(f"a {self.what} named {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests and plugin reloads); unknown names are ignored."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry registered under ``name``; ValueError listing the allowed names if none."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.what} {name!r}; allowed {self.plural}: "
                f"{', '.join(self.names()) or 'none registered'}"
            ) from None

    def names(self) -> list[str]:
        """The sorted registered names."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, sorted by name."""
        return sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


# ------------------------------------------------------------------------ declared parameters


@dataclass(frozen=True)
class ParamSpec:
    """Allowed values of one parameter: a type and an inclusive range or a choice list."""

    kind: type  # int, float, str or bool
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    doc: str = ""

    def describe(self) -> str:
        """Human-readable allowed values, e.g. ``an integer >= 2``."""
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return "one of " + ", ".join(repr(c) for c in self.choices or ())
        noun = "an integer" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{noun} in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"{noun} >= {self.low}"
        if self.high is not None:
            return f"{noun} <= {self.high}"
        return noun

    def coerce(self, value: Any) -> Any:
        """``value`` as a plain Python value of the allowed kind, or None if it is not allowed."""
        if self.kind is bool:
            return value if isinstance(value, bool) else None
        if self.kind is str:
            return value if isinstance(value, str) and value in (self.choices or ()) else None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
        if self.kind is int:
            if isinstance(value, numbers.Integral):
                value = int(value)
            elif float(value).is_integer():
                value = int(float(value))
            else:
                return None
        else:
            value = float(value)
            if not math.isfinite(value):
                return None
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            return None
        return value


def param(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[str] | None = None,
    doc: str = "",
) -> Any:
    """Declare a parameter (a dataclass field) with its default and allowed values.

    The parameter's type is the default's type (int, float, str or bool); ``low``/``high``
    bound a number inclusively; ``choices`` lists the allowed strings.
    """
    kind = type(default)
    if kind not in (int, float, str, bool):
        raise TypeError(f"parameters must be int, float, str or bool, got {kind.__name__}")
    spec = ParamSpec(kind, low, high, tuple(choices) if choices is not None else None, doc)
    if spec.coerce(default) is None:
        raise ValueError(f"default {default!r} is not {spec.describe()}")
    return field(default=default, metadata={"param": spec})


def param_specs(cls: Any) -> dict[str, tuple[ParamSpec, Any]]:
    """``name -> (spec, default)`` of the :func:`param` fields of a dataclass."""
    return {
        f.name: (f.metadata["param"], f.default)
        for f in dataclasses.fields(cls)
        if "param" in f.metadata
    }


def describe_params(specs: Mapping[str, tuple[ParamSpec, Any]]) -> str:
    """``name (allowed, default d); ...`` for error messages and listings."""
    return "; ".join(
        f"{name} ({spec.describe()}, default {default!r})"
        for name, (spec, default) in specs.items()
    )


def check_params(
    what: str, specs: Mapping[str, tuple[ParamSpec, Any]], params: Mapping[str, Any]
) -> dict[str, Any]:
    """Resolve ``params`` against ``specs`` (defaults filled in) or raise one ValueError.

    ``what`` names the owner in the message (e.g. ``"model 'elman'"``). Unknown keys list the
    allowed parameters; bad values say the allowed range.
    """
    unknown = sorted(set(params) - set(specs))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for {what}; "
            f"allowed parameters: {describe_params(specs) or 'none'}"
        )
    resolved: dict[str, Any] = {}
    for name, (spec, default) in specs.items():
        value = params.get(name, default)
        coerced = spec.coerce(value)
        if coerced is None:
            raise ValueError(f"{what}: parameter {name} must be {spec.describe()}, got {value!r}")
        resolved[name] = coerced
    return resolved
