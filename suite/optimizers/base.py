"""The optimizer contract: a frozen dataclass of hyper-parameters with one method, ``minimize``.

Writing an optimizer
--------------------
An optimizer is a frozen dataclass that subclasses :class:`Optimizer`, whose fields are its
hyper-parameters (each with a default, typed ``bool``, ``int``, ``float`` or ``str``, optionally
``| None``), which declares what it needs in the class variable ``tags`` and which implements::

    def minimize(self, problem, x0, rng) -> np.ndarray

``problem`` is a :class:`ProblemLike` (a :class:`suite.problem.Problem` in a trial; the only
path to the model: ``problem.loss``, ``problem.loss_and_grad``, ``problem.minibatch``,
``problem.online``, ``problem.bounds``, ``problem.dim``, ``problem.n_train``), ``x0[P]`` the
start (never modify it) and ``rng`` a
``numpy.random.Generator``, the only source of randomness allowed (never ``np.random.*`` or
``random.*``). ``minimize`` either loops until the Problem raises
:class:`~suite.problem.BudgetExhausted` (let it propagate: the runner catches it and takes the
Problem's incumbent) or returns its final ``theta[P]`` when its own stopping rule fires, after
calling ``problem.set_stop_reason("...")`` to record why. Bookkeeping (cost, budget, best so
far, NaN as ``+inf``, trace) lives in the Problem, not in the optimizer (evosax's and COCO's
lesson).
A method that plans with its budget reads it, never changes it: ``problem.budget`` (the
started :class:`~suite.problem.Budget`), ``problem.remaining_fe()``,
``problem.remaining_seconds()`` (``inf`` when unlimited) and ``problem.fe_per_loss`` (the cost
of one full ``loss(theta[P])``; ``remaining_fe() // fe_per_loss`` evaluations are left).

Tags (sklearn-style capabilities; the conformance checks are selected by them, never by name):

``"gradient"``      calls ``loss_and_grad`` or ``online``. Without it the runner starts the
                    Problem with ``allow_gradients=False`` and any gradient request raises
                    :class:`~suite.problem.GradientNotAllowed`.
``"stochastic"``    draws from ``rng`` (minibatches, samples); same seed, same result.
``"deterministic"`` never draws from ``rng``: the result does not depend on the seed.
``"population"``    evaluates several points per call (``problem.loss(X[N, P])``).
``"truncation"``    uses truncated BPTT (``problem.online`` sessions or ``truncate=k``).

Hyper-parameter values are checked when the object is built (also by direct construction):
types (an ``int`` is accepted for a ``float`` and stored as ``float``; ``bool`` is never taken
for a number) and the per-field :class:`Constraint` s declared in the class variable
``constraints``; cross-field rules go in :meth:`Optimizer._check`. A bad value raises a
ValueError naming the field, what was given and what is allowed.

Example: a complete plugin (see ``examples/one_plus_one_es.py`` for a real one)::

    from dataclasses import dataclass
    import numpy as np
    from suite.optimizers import Optimizer, greater_than, register_optimizer

    @register_optimizer("my-random-walk", family="plugins")
    @dataclass(frozen=True)
    class RandomWalk(Optimizer):
        "Accept a Gaussian step whenever it does not increase the loss."
        sigma: float = 0.1
        tags = frozenset({"stochastic"})
        constraints = {"sigma": greater_than(0)}

        def minimize(self, problem, x0, rng):
            x = np.array(x0, dtype=float)
            fx = problem.loss(x)
            while True:                    # until the Problem raises BudgetExhausted
                y = x + self.sigma * rng.standard_normal(x.shape)
                fy = problem.loss(y)
                if fy <= fx:
                    x, fx = y, fy

Checking a plugin in one call
-----------------------------
``suite.check_optimizer("my-random-walk")`` (or an instance) runs the conformance suite of
:mod:`suite.checks` selected by the tags (budget kept, finite result of the right shape, ``x0``
untouched, same seed -> bit-identical result, no global random state touched, no files written,
no gradient requests without the "gradient" tag, improvement on a convex toy problem, NaN
regions survived, ...) and raises an AssertionError naming the first failed check. In pytest,
parametrise over ``suite.checks.iter_checks(name)`` to get one test per check.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

TAGS: frozenset[str] = frozenset(
    {"gradient", "stochastic", "deterministic", "population", "truncation"}
)
"""The capability tags an optimizer may declare (see the module docstring)."""

HYPER_TYPES: tuple[type, ...] = (bool, int, float, str)
"""The types a hyper-parameter may have (each optionally ``| None``)."""


# ------------------------------------------------------------------------- what a problem offers


class OnlineSessionLike(Protocol):
    """One online truncated-BPTT pass (``problem.online()``): ``step`` runs the next ``h_prime``
    steps and backpropagates through the last ``h``; ``done`` once the sequences are consumed."""

    done: bool

    def step(self, theta: np.ndarray, h: int, h_prime: int) -> tuple[float, np.ndarray, bool]:
        """``(chunk loss, gradient[P], done)``."""
        ...


class ProblemLike(Protocol):
    """What an optimizer may use of the problem it is handed (:class:`suite.problem.Problem`
    implements it; so does the conformance checks' toy problem).

    Every call is counted and charged against the trial's budget by the problem, which raises
    :class:`~suite.problem.BudgetExhausted` when the next call would pass it. ``theta`` is one
    point ``[P]`` or a batch ``[N, P]`` (then losses come back as ``[N]``).
    """

    dim: int
    """Number of parameters ``P``."""
    n_train: int
    """Number of training sequences (the range of :meth:`minibatch` indices)."""
    bounds: tuple[np.ndarray, np.ndarray] | None
    """``(low[P], high[P])`` of a bounded search space, or None."""

    def loss(self, theta: np.ndarray, batch: np.ndarray | None = None) -> Any:
        """Training loss (a float for ``theta[P]``, ``L[N]`` for ``theta[N, P]``); NaN as inf."""
        ...

    def loss_and_grad(
        self, theta: np.ndarray, truncate: int | None = None, batch: np.ndarray | None = None
    ) -> tuple[Any, np.ndarray]:
        """Loss and (truncated, ``truncate=k``) BPTT gradient; only with the "gradient" tag."""
        ...

    def minibatch(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Sorted indices of ``size`` training sequences drawn from ``rng``."""
        ...

    def online(self, batch: np.ndarray | None = None) -> OnlineSessionLike:
        """Start an online truncated-BPTT pass; only with the "gradient" tag."""
        ...

    def set_stop_reason(self, reason: str) -> None:
        """Record why the optimizer's own stopping rule ended the run."""
        ...


# ------------------------------------------------------------------------------ constraints


@dataclass(frozen=True)
class Constraint:
    """A check on one hyper-parameter value: ``test(value) -> bool`` and its description.

    ``None`` values are never passed to ``test`` (a field typed ``X | None`` may always be
    None, which conventionally means "off" or "automatic").
    """

    test: Callable[[Any], bool]
    text: str

    def __call__(self, value: Any) -> bool:
        return bool(self.test(value))


def greater_than(bound: float) -> Constraint:
    """Value ``> bound``."""
    return Constraint(lambda v: v > bound, f"> {bound}")


def at_least(bound: float) -> Constraint:
    """Value ``>= bound``."""
    return Constraint(lambda v: v >= bound, f">= {bound}")


def between(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Constraint:
    """Value in the interval from ``low`` to ``high`` (closed unless ``*_open``)."""

    def test(v: Any) -> bool:
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    text = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    return Constraint(test, text)


def one_of(*choices: Any) -> Constraint:
    """Value is one of ``choices``."""
    return Constraint(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


# ---------------------------------------------------------------------------- type checking


def hyper_type(hint: Any) -> tuple[type, bool]:
    """``(base type, optional)`` of a field annotation such as ``float | None``.

    Raises TypeError if the annotation is not one of :data:`HYPER_TYPES`, optionally
    ``| None``.
    """
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) == 1:
            hint = args[0]
    if hint not in HYPER_TYPES:
        allowed = ", ".join(t.__name__ for t in HYPER_TYPES)
        raise TypeError(f"type {hint!r} is not allowed; use one of {allowed} (optionally | None)")
    return hint, optional


def coerce_hyper(value: Any, kind: type, optional: bool) -> tuple[bool, Any]:
    """``(ok, value)``: ``value`` converted to a plain Python ``kind`` if it is acceptable.

    ints (and integral floats) are accepted for ``int``; ints for ``float`` (stored as float,
    which must be finite); numpy scalars are unwrapped; bools are only accepted for ``bool``.
    """
    if value is None:
        return optional, None
    if isinstance(value, np.generic):
        value = value.item()
    if kind is bool:
        return isinstance(value, bool), value
    if kind is str:
        return isinstance(value, str), value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False, value
    if kind is int:
        if isinstance(value, numbers.Integral):
            return True, int(value)
        if math.isfinite(value) and float(value).is_integer():
            return True, int(float(value))
        return False, value
    value = float(value)
    return math.isfinite(value), value


def _type_text(kind: type, optional: bool) -> str:
    noun = {bool: "a bool", int: "an int", float: "a finite number", str: "a string"}[kind]
    return noun + (" or None" if optional else "")


# ------------------------------------------------------------------------------- base class


_FIELD_KINDS: dict[type, dict[str, tuple[type, bool]]] = {}


def _field_kinds(cls: type) -> dict[str, tuple[type, bool]]:
    """``field name -> hyper_type(annotation)`` of an optimizer class, memoised (resolving the
    annotations takes half a millisecond; a trial builds one optimizer)."""
    kinds = _FIELD_KINDS.get(cls)
    if kinds is None:
        hints = typing.get_type_hints(cls)
        kinds = {f.name: hyper_type(hints[f.name]) for f in dataclasses.fields(cls)}
        _FIELD_KINDS[cls] = kinds
    return kinds


@dataclass(frozen=True)
class Optimizer:
    """Base class of every optimizer: a frozen dataclass of hyper-parameters.

    Subclasses set ``tags`` (a subset of :data:`TAGS`), may set ``constraints`` (field name ->
    :class:`Constraint`) and ``imports`` (modules that :meth:`minimize` imports itself and that
    take long to import: a trial imports them in its set-up, before the Problem's clocks start,
    so that no trial pays an import on its optimizer clock) and implement :meth:`minimize`. See
    the module docstring.
    """

    tags: ClassVar[frozenset[str]] = frozenset()
    constraints: ClassVar[Mapping[str, Constraint]] = {}
    imports: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        label = _label(type(self))
        kinds = _field_kinds(type(self))
        for f in dataclasses.fields(self):
            kind, optional = kinds[f.name]
            value = getattr(self, f.name)
            ok, coerced = coerce_hyper(value, kind, optional)
            if not ok:
                raise ValueError(
                    f"optimizer {label}: hyper-parameter {f.name} must be "
                    f"{_type_text(kind, optional)}, got {value!r}"
                )
            rule = self.constraints.get(f.name)
            if rule is not None and coerced is not None and not rule(coerced):
                raise ValueError(
                    f"optimizer {label}: hyper-parameter {f.name} must be {rule.text}, "
                    f"got {value!r}"
                )
            object.__setattr__(self, f.name, coerced)
        self._check()

    def _check(self) -> None:
        """Check rules between hyper-parameters; raise ValueError saying what is allowed."""

    def minimize(
        self, problem: ProblemLike, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Minimise ``problem.loss`` from ``x0`` using only ``rng`` for randomness.

        Returns ``theta[P]`` when the optimizer's own stopping rule fires (after
        ``problem.set_stop_reason``); may instead let ``BudgetExhausted`` propagate.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement minimize()")

    def params(self) -> dict[str, Any]:
        """All hyper-parameters as a plain dict (field order)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


REGISTERED_NAME = "_rnnbench_registered_name"
"""Class attribute set by the registry on a registered class (its own ``__dict__``, so a
subclass of a registered class is not taken for it)."""


def registered_name(cls: type) -> str | None:
    """The name ``cls`` is registered under, or None."""
    name = vars(cls).get(REGISTERED_NAME) if isinstance(cls, type) else None
    return name if isinstance(name, str) else None


def _label(cls: type) -> str:
    name = registered_name(cls)
    return repr(name) if name is not None else cls.__name__


def defaults(cls: type[Optimizer]) -> dict[str, Any]:
    """The default hyper-parameters of an optimizer class, in field order."""
    return {f.name: f.default for f in dataclasses.fields(cls)}


def set_stop_reason(problem: ProblemLike, reason: str) -> None:
    """Record the optimizer's own stopping rule on ``problem`` (if it supports it)."""
    setter = getattr(problem, "set_stop_reason", None)
    if setter is not None:
        setter(reason)


def check_batch_size(batch_size: int | None, problem: ProblemLike) -> None:
    """Refuse a minibatch larger than the training set (``None``: full batch, always fine)."""
    if batch_size is not None and batch_size > problem.n_train:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {problem.n_train} training sequences"
        )
