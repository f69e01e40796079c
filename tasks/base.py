"""The task contract: splits, datasets, the loss formula, parameters and the task registry.

A task is a named, parameterised data source. ``tasks.get("adding", seq_len=50)`` returns a
frozen :class:`Task`; ``task.generate(rng)`` returns a :class:`Dataset` of a train and a test
:class:`Split` (inputs ``X[B, T, I]``, targets ``Y[B, T, O]``, step weights ``M[B, T]``), the
train loss of the task's trivial predictor and the task's success target.

The loss of a model output ``Z[B, T, O]`` on a split (docs/architecture.md) is

    L = sum_{b,t} M[b,t] sum_o l(Z[b,t,o], Y[b,t,o]) / (O sum_{b,t} M[b,t]),

with ``l(z, y) = (z - y)^2`` ("mse") or ``l(z, y) = log(1 + e^z) - y z`` ("bce", binary
cross-entropy on logits). :func:`loss_value` is the numpy reference implementation of it.

A task module defines a frozen, keyword-only dataclass whose fields are its parameters (each
declared with :func:`param`, which records the allowed range), and registers it with
:func:`register`. Parameter values are checked when the task is built, so a bad value fails in
:func:`get` with a message that names the allowed range.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from suite.registry import Registry, check_params, param, param_specs

LOSS_KINDS: tuple[str, ...] = ("mse", "bce")


# --------------------------------------------------------------------------- data containers


def _frozen_array(a: Any, name: str, ndim: int) -> np.ndarray:
    """Return ``a`` as a read-only float64 array with ``ndim`` dimensions and finite entries."""
    arr = np.array(a, dtype=np.float64)  # a copy: the split owns its data
    if arr.ndim != ndim:
        raise ValueError(f"Split.{name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Split.{name} must be finite")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: inputs, targets and which steps count in the loss.

    ``X[B, T, I]`` inputs, ``Y[B, T, O]`` targets (0/1 for the "bce" loss), ``M[B, T]`` 0/1
    step weights. The arrays are stored as read-only float64 copies.
    """

    X: np.ndarray
    Y: np.ndarray
    M: np.ndarray

    def __post_init__(self) -> None:
        X = _frozen_array(self.X, "X", 3)
        Y = _frozen_array(self.Y, "Y", 3)
        M = _frozen_array(self.M, "M", 2)
        if X.shape[:2] != Y.shape[:2] or X.shape[:2] != M.shape:
            raise ValueError(
                f"Split shapes disagree: X {X.shape}, Y {Y.shape}, M {M.shape}; "
                "expected X[B, T, I], Y[B, T, O], M[B, T]"
            )
        if X.shape[0] < 1 or X.shape[1] < 1 or X.shape[2] < 1 or Y.shape[2] < 1:
            raise ValueError(f"Split must be non-empty, got X {X.shape}, Y {Y.shape}")
        if np.any(M < 0) or not M.sum() > 0:
            raise ValueError("Split.M must be non-negative with at least one positive weight")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "Y", Y)
        object.__setattr__(self, "M", M)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A generated dataset: train and test splits, the trivial baseline and the target.

    ``baseline_loss`` is the train loss of the task's trivial predictor and ``target_loss``
    the train loss that counts as success; each task's docstring says how both are set.
    ``validation`` is an optional held-out split for model selection (None unless the task
    was asked for one), disjoint from train and test.
    """

    train: Split
    test: Split
    baseline_loss: float
    target_loss: float
    validation: Split | None = None

    def __post_init__(self) -> None:
        names = ("train", "test") if self.validation is None else ("train", "test", "validation")
        for name in names:
            split = getattr(self, name)
            if not isinstance(split, Split):
                raise ValueError(f"Dataset.{name} must be a Split")
            if split.X.shape[2] != self.train.X.shape[2]:
                raise ValueError(f"train and {name} splits have different numbers of inputs")
            if split.Y.shape[2] != self.train.Y.shape[2]:
                raise ValueError(f"train and {name} splits have different numbers of outputs")
        for name in ("baseline_loss", "target_loss"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and float(value) >= 0):
                raise ValueError(f"Dataset.{name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))


# --------------------------------------------------------------------------------- the loss


def check_loss_kind(kind: str) -> str:
    """Return ``kind`` if it is a known loss kind, else raise a ValueError naming them."""
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; allowed: {', '.join(LOSS_KINDS)}")
    return kind


def loss_value(Z: np.ndarray, split: Split, kind: str) -> float:
    """The loss of one model output ``Z[B, T, O]`` on ``split`` (numpy reference).

    ``L = sum_{b,t} M[b,t] sum_o l(Z[b,t,o], Y[b,t,o]) / (O sum_{b,t} M[b,t])`` with
    ``l = (z - y)^2`` for "mse" and ``l = log(1 + exp(z)) - y z`` for "bce" (computed as
    ``logaddexp(0, z) - y z``, exact for large ``|z|``). ``Z`` may also be ``[O]`` or
    ``[1, 1, O]``-shaped (it is broadcast), e.g. a constant predictor.
    """
    check_loss_kind(kind)
    Z = np.asarray(Z, dtype=np.float64)
    try:
        Z = np.broadcast_to(Z, split.Y.shape)
    except ValueError:
        raise ValueError(
            f"Z of shape {Z.shape} does not match the split's targets Y{list(split.Y.shape)}"
        ) from None
    if kind == "mse":
        per = (Z - split.Y) ** 2
    else:
        per = np.logaddexp(0.0, Z) - split.Y * Z
    weighted = np.einsum("bt,bto->", split.M, per)
    return float(weighted / (split.Y.shape[2] * split.M.sum()))


def masked_mean(split: Split) -> np.ndarray:
    """The mask-weighted mean target ``Y_bar[O]``: the best constant predictor for "mse"."""
    return np.einsum("bt,bto->o", split.M, split.Y) / split.M.sum()


def washout_mask(n: int, T: int, washout: int) -> np.ndarray:
    """Step weights ``M[n, T]`` that score every step but the first ``washout``.

    ``M[b, t] = 1`` for ``t >= washout`` and 0 before: the leading steps only drive the network
    out of its start-up transient.
    """
    M = np.zeros((n, T))
    M[:, washout:] = 1.0
    return M


def window_fit_mse(split: Split, window: int, ridge: float = 0.0) -> float:
    """Train MSE of an affine least-squares fit of ``Y[b,t]`` on the last ``window`` inputs.

    Features at a scored step ``(b, t)`` are ``1, X[b,t], X[b,t-1], ..., X[b,t-window+1]``
    (zeros before ``t = 0``); the fit minimises the mask-weighted squared error plus
    ``ridge * ||coefficients||^2`` (the intercept is not penalised). It is the linear
    time-delay reference that some tasks set their target from (the returned value is the loss
    of the fitted predictor on the same split, computed by :func:`loss_value`).
    """
    if window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window}")
    if not ridge >= 0:
        raise ValueError(f"ridge must be a number >= 0, got {ridge}")
    B, T, n_in = split.X.shape
    padded = np.concatenate([np.zeros((B, window - 1, n_in)), split.X], axis=1)
    lags = np.stack([padded[:, window - 1 - k : window - 1 - k + T] for k in range(window)], 2)
    feats = np.concatenate([np.ones((B, T, 1)), lags.reshape(B, T, window * n_in)], axis=2)
    keep = split.M > 0
    A = feats[keep]
    y = split.Y[keep]
    w = np.sqrt(split.M[keep])[:, None]
    reg = np.sqrt(ridge) * np.eye(A.shape[1])[1:]
    lhs = np.concatenate([A * w, reg])
    rhs = np.concatenate([y * w, np.zeros((reg.shape[0], y.shape[1]))])
    coef = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    return loss_value(feats @ coef, split, "mse")


# --------------------------------------------------------------------------------- the task


@dataclass(frozen=True, kw_only=True)
class Task:
    """Base class of every task: a frozen dataclass whose fields are the task's parameters.

    Subclasses set the class attributes ``n_in``, ``n_out``, ``loss`` and (optionally)
    ``model`` and ``fixed_data``, declare their parameters with :func:`param`, and implement
    :meth:`generate` (usually through :meth:`_dataset`). ``name`` is set by :func:`register`.
    Cross-parameter constraints go in :meth:`_check`. Tasks that draw ``n_train`` and
    ``n_test`` sequences derive from :class:`SampledTask`.

    ``fixed_data`` declares that the data do not depend on the generator (a real series, a
    fixed problem): ``generate`` then returns the same arrays for every seed.
    """

    name: ClassVar[str] = ""
    n_in: ClassVar[int]
    n_out: ClassVar[int]
    loss: ClassVar[str]
    model: ClassVar[str | None] = None
    fixed_data: ClassVar[bool] = False

    def __post_init__(self) -> None:
        specs = param_specs(type(self))
        given = {name: getattr(self, name) for name in specs}
        for name, value in check_params(f"task {self.name!r}", specs, given).items():
            object.__setattr__(self, name, value)
        self._check()

    def _check(self) -> None:
        """Check constraints between parameters; raise ValueError naming what is allowed."""

    @property
    def params(self) -> dict[str, Any]:
        """The resolved parameters (defaults filled in) as a JSON-serialisable dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def spec(self) -> dict[str, Any]:
        """``{"task": name, **params}``: enough to rebuild the task with :func:`get`."""
        return {"task": self.name, **self.params}

    def generate(self, rng: np.random.Generator) -> Dataset:
        """Draw a dataset; deterministic given the state of ``rng``, the only randomness used."""
        raise NotImplementedError

    def trivial_prediction(self, train: Split) -> np.ndarray:
        """The trivial predictor's constant output ``Z[O]``; its train loss is the baseline.

        Default: the mask-weighted mean target (the best constant) for "mse", logit 0
        (probability 1/2, loss ``log 2``) for "bce". Tasks may override it.
        """
        if self.loss == "bce":
            return np.zeros(train.Y.shape[2])
        return masked_mean(train)

    def _dataset(
        self, train: Split, test: Split, target_loss: float, validation: Split | None = None
    ) -> Dataset:
        """Assemble the dataset, with ``baseline_loss`` the train loss of the trivial predictor."""
        baseline = loss_value(self.trivial_prediction(train), train, self.loss)
        return Dataset(
            train, test, baseline_loss=baseline, target_loss=target_loss, validation=validation
        )


@dataclass(frozen=True, kw_only=True)
class SampledTask(Task):
    """A task whose train and test splits are ``n_train`` and ``n_test`` drawn sequences.

    Declares the two size parameters (first among the task's parameters). Subclasses that draw
    each split independently implement :meth:`_split` and get both from :meth:`_draw_splits`.
    """

    n_train: int = param(128, low=1, doc="number of training sequences")
    n_test: int = param(256, low=1, doc="number of test sequences")

    def _split(self, rng: np.random.Generator, n: int) -> Split:
        """Draw one split of ``n`` sequences from ``rng``."""
        raise NotImplementedError

    def _draw_splits(self, rng: np.random.Generator) -> tuple[Split, Split]:
        """Check ``rng`` and draw the train split, then the test split, from it."""
        check_rng(rng)
        return self._split(rng, self.n_train), self._split(rng, self.n_test)


def check_rng(rng: Any) -> np.random.Generator:
    """Return ``rng`` if it is a ``numpy.random.Generator``, else raise a TypeError."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


# ------------------------------------------------------------------------------ registry

TASKS: Registry[type[Task]] = Registry("task")
"""The registered task classes, by name."""

TaskType = TypeVar("TaskType", bound=type[Task])


def register(name: str) -> Callable[[TaskType], TaskType]:
    """Class decorator registering a Task subclass under ``name`` (refuses duplicates)."""

    def decorate(cls: TaskType) -> TaskType:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"register({name!r}) must decorate a Task subclass")
        # __dataclass_params__ is set by @dataclass at run time; typeshed does not declare it
        if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise TypeError(f"task {name!r} must be a frozen dataclass")
        for f in dataclasses.fields(cls):
            if "param" not in f.metadata:
                raise TypeError(f"task {name!r}: field {f.name} must be declared with param()")
        check_loss_kind(cls.loss)
        TASKS.register(name, cls)
        cls.name = name
        return cls

    return decorate


def names() -> list[str]:
    """The sorted names of the registered tasks."""
    return TASKS.names()


def get(name: str, **params: Any) -> Task:
    """Build the registered task ``name`` with ``params`` (defaults for the rest).

    Raises ValueError naming the allowed task names for an unknown name, the allowed
    parameters for an unknown keyword, and the allowed range for a bad value.
    """
    cls = TASKS.get(name)
    check_params(f"task {name!r}", param_specs(cls), params)
    return cls(**params)
