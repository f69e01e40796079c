"""The model contract, its shared helpers (validation, loss, scratch memory) and the registry.

A model is a class derived from :class:`Model`, registered under a name with
:func:`register_model`; its options are the ``param(...)`` fields of its ``Options`` dataclass
(declared types and ranges, checked by :func:`suite.registry.check_params`).
:func:`make_model` builds one by name; :func:`model_names` and :func:`model_options` list the
registered names and the union of their option names.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
from scipy.special import expit

from suite.registry import Registry, check_params, param_specs

LOSS_KINDS: tuple[str, ...] = ("mse", "bce")
DTYPES: tuple[str, ...] = ("float64", "float32")


# ----------------------------------------------------------------------------- validation


def _int_option(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
    return int(value)


def _float_option(name: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a number >= {minimum} (got {value!r})")
    value = float(value)
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum} (got {value!r})")
    return value


def _dtype_option(value: Any) -> np.dtype:
    if value not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES} (got {value!r})")
    return np.dtype(value)


def _check_kind(kind: str) -> str:
    if kind not in LOSS_KINDS:
        raise ValueError(f"loss kind must be one of {LOSS_KINDS} (got {kind!r})")
    return kind


def _check_truncate(truncate: Any) -> int | None:
    if truncate is None:
        return None
    return _int_option("truncate", truncate, 1)


# ----------------------------------------------------------------------------- data and loss


@dataclass(frozen=True)
class _Data:
    """A validated split plus the steps that carry loss."""

    X: np.ndarray  # [B, T, I] float64
    Y: np.ndarray  # [B, T, O] float64
    M: np.ndarray  # [B, T] float64
    steps: np.ndarray  # sorted steps whose mask is non-zero in some sequence
    weight: float  # sum of M

    @property
    def n_seq(self) -> int:
        return self.X.shape[0]

    @property
    def last(self) -> int:
        """One past the last loss step: the recurrent models run steps 0 .. last - 1."""
        return int(self.steps[-1]) + 1


def _loss_sums(Z: np.ndarray, Y: np.ndarray, Mo: np.ndarray, kind: str):
    """Unnormalised loss sum M l(Z, Y) (summed over everything but the N axis) and its gradient.

    Z[N, ...] are outputs; the targets Y and the mask weights Mo (with a length-1 output axis)
    broadcast against Z[n].  Returns (S[N], dS/dZ) in float64.  "bce" uses the stable softplus
    log(1 + e^z) = logaddexp(0, z) and d/dz = sigmoid(z) - y.
    """
    Z = Z.astype(np.float64, copy=False)
    if kind == "mse":
        R = Z - Y
        terms = R * R
        dZ = 2.0 * Mo * R
    else:
        terms = np.logaddexp(0.0, Z) - Y * Z
        dZ = Mo * (expit(Z) - Y)
    S = (terms * Mo).sum(axis=tuple(range(1, Z.ndim)))
    return S, dZ


def _flat(A: np.ndarray) -> np.ndarray:
    """A[N, ...] -> [N, prod(...)] (also for N = 0)."""
    return A.reshape(A.shape[0], math.prod(A.shape[1:]))


def _quiet(method):
    """Run a compute method without floating-point warnings: huge or non-finite parameters give
    inf / nan losses, which the Problem records (as +inf) and counts; that is not an error."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return method(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------- scratch memory

_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array reused across calls (one store per thread, grown on demand).

    The gradient pass writes every state of every row: tens of MB for a large batch.  Fresh
    memory costs a page fault per page on first touch, which measured about 9x the cost of
    writing memory already mapped, so the big internal arrays live here.  Never return a
    view of it to the caller.
    """
    key = (name, np.dtype(dtype))
    size = math.prod(shape)
    buffers: dict[tuple[str, np.dtype], np.ndarray] = _SCRATCH.__dict__.setdefault("buffers", {})
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype)
        buffers[key] = buf
    return buf[:size].reshape(shape)


# ----------------------------------------------------------------------------- online state


@dataclass
class OnlineState:
    """Run state of an online BPTT(h; h') pass over one split (updated in place by a chunk).

    For the recurrent models ``states[0, t]`` holds the columns v_t = [h_{t-1}; x_t; 1] (shape
    [K, B]), so ``states[0, t + 1, :H]`` is h_t as computed by the chunk that ran step t: the
    history of Williams & Peng (the whole pass is kept; a chunk reads only its last h steps).
    ``None`` for the TDNN, which carries nothing but the time index.  The gated cells keep
    their gate activations and cell states in ``cache`` (see ``suite.models.gated``).
    """

    t: int  # next step to run
    n_steps: int  # T of the split
    n_seq: int  # B of the split
    total_weight: float  # sum of the split's mask: normalises every chunk's gradient
    states: np.ndarray | None
    last_fwd_steps: int = 0  # sequence-steps run forward by the last chunk (B * steps)
    last_bwd_steps: int = 0  # sequence-steps run backward by the last chunk
    cache: Any = None  # model-specific history besides ``states`` (gated cells)

    @property
    def done(self) -> bool:
        return self.t >= self.n_steps


# ----------------------------------------------------------------------------- base class


class Model:
    """Common interface (see docs/architecture.md); subclasses implement the maths."""

    name: ClassVar[str]
    Options: ClassVar[type]  # a dataclass of param(...) fields: the model's options
    step_cost: ClassVar[float] = 1.0  # flops of one cell step / those of an Elman step, same H

    n_in: int
    n_out: int
    dim: int
    dtype: np.dtype
    options: dict[str, Any]

    def spec(self) -> dict[str, Any]:
        """``{"model": name, **options}`` with every option resolved."""
        return {"model": self.name, **self.options}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}(n_in={self.n_in}, n_out={self.n_out}, {opts})"

    # --- validation helpers
    def _theta(self, theta: Any) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim != 2 or theta.shape[1] != self.dim:
            raise ValueError(
                f"theta must have shape [N, {self.dim}] for {self!r} (got {theta.shape})"
            )
        return theta

    def _inputs(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[2] != self.n_in:
            raise ValueError(f"X must have shape [B, T, {self.n_in}] (got {X.shape})")
        return X

    def _arrays(self, split: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The split's (X, Y, M) as float64 arrays of consistent shapes."""
        X = self._inputs(split.X)
        Y = np.asarray(split.Y, dtype=np.float64)
        M = np.asarray(split.M, dtype=np.float64)
        B, T, _ = X.shape
        if Y.shape != (B, T, self.n_out) or M.shape != (B, T):
            raise ValueError(
                f"split shapes must be X[B, T, {self.n_in}], Y[B, T, {self.n_out}], M[B, T] "
                f"(got X{X.shape}, Y{Y.shape}, M{M.shape})"
            )
        return X, Y, M

    def _data(self, split: Any) -> _Data:
        """The validated split; memoised per split object (a Problem asks for the same split
        three times per call: forward steps, backward steps, the pass), so repeated calls skip
        the shape checks, the mask scan and the float64 conversions.  Splits are treated as
        immutable (the tasks build them once; the Problem caches its minibatch splits)."""
        cache = self.__dict__.setdefault("_data_cache", {})
        hit = cache.get(id(split))
        if hit is not None and hit[0] is split:
            return hit[1]
        X, Y, M = self._arrays(split)
        steps = np.flatnonzero(M.any(axis=0))
        if steps.size == 0:
            raise ValueError("the split's mask M is zero everywhere: the loss is undefined")
        data = _Data(X, Y, M, steps, float(M.sum()))
        if len(cache) >= 16:
            cache.clear()
        cache[id(split)] = (split, data)  # the split is kept alive, so its id stays unique
        return data

    def _check_chunk(self, theta, split, kind, state, h, h_prime):
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (self.dim,):
            raise ValueError(f"online_chunk takes one theta[{self.dim}] (got {theta.shape})")
        _check_kind(kind)
        h = _int_option("h", h, 1)
        h_prime = _int_option("h_prime", h_prime, 1)
        if h_prime > h:
            raise ValueError(f"BPTT(h; h') needs h >= h' (got h={h}, h'={h_prime})")
        if not isinstance(state, OnlineState):
            raise ValueError("state must be the OnlineState returned by online_init")
        if state.done:
            raise ValueError("this online pass is done; start a new one with online_init")
        X, Y, M = self._arrays(split)
        if X.shape[:2] != (state.n_seq, state.n_steps):
            raise ValueError(
                f"split has B, T = {X.shape[:2]} but the online state was made for "
                f"B, T = {(state.n_seq, state.n_steps)}"
            )
        return theta, (X, Y, M), h, h_prime

    # --- public interface shared by all models
    @_quiet
    def loss(self, theta: np.ndarray, split: Any, kind: str) -> np.ndarray:
        """Loss L[N] (float64) of every row of theta[N, P] on the split."""
        return self._loss(self._theta(theta), self._data(split), _check_kind(kind))

    @_quiet
    def loss_and_grad(
        self, theta: np.ndarray, split: Any, kind: str, truncate: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(L[N], G[N, P]) in float64; ``truncate=k`` gives the window-k gradient."""
        return self._loss_and_grad(
            self._theta(theta), self._data(split), _check_kind(kind), _check_truncate(truncate)
        )

    def pack(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """Inverse of ``unpack``: theta[N, P] from blocks with a leading N axis (theta[P] if the
        blocks have none)."""
        names = self.block_shapes()
        if set(blocks) != set(names):
            raise ValueError(f"pack needs exactly the blocks {list(names)} (got {list(blocks)})")
        first = next(iter(names))
        lead = np.shape(blocks[first])[: np.ndim(blocks[first]) - len(names[first])]
        parts = []
        for key, shape in names.items():
            arr = np.asarray(blocks[key], dtype=np.float64)
            if arr.shape != (*lead, *shape):
                raise ValueError(
                    f"block {key!r} must have shape {(*lead, *shape)} (got {arr.shape})"
                )
            parts.append(arr.reshape(*lead, math.prod(shape)))
        return self._assemble(parts, lead)

    # --- to implement
    def block_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-row shape of every named parameter block, in flat-layout order."""
        raise NotImplementedError

    def _assemble(self, parts: list[np.ndarray], lead: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of the parameter blocks of theta[N, P], each with a leading N axis."""
        raise NotImplementedError

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """A random initial theta[P] (float64) drawn from ``rng``."""
        raise NotImplementedError

    def forward(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Outputs Z[N, B, T, O] (float64) of every row of theta[N, P] at every step."""
        raise NotImplementedError

    def forward_steps(self, split: Any) -> int:
        """Cell steps (sequence-steps) of one loss evaluation, per theta row."""
        raise NotImplementedError

    def backward_steps(self, split: Any, truncate: int | None = None) -> int:
        """Backward cell steps of one ``loss_and_grad`` call, per theta row."""
        raise NotImplementedError

    def online_init(self, split: Any) -> OnlineState:
        """Start an online BPTT(h; h') pass over ``split`` at step 0."""
        raise NotImplementedError

    def online_chunk(
        self, theta: np.ndarray, split: Any, kind: str, state: OnlineState, h: int, h_prime: int
    ) -> tuple[float, float, np.ndarray, OnlineState]:
        """One chunk of h' steps: (chunk mean loss, chunk mask weight, gradient, state)."""
        raise NotImplementedError

    def _loss(self, theta: np.ndarray, data: _Data, kind: str) -> np.ndarray:
        raise NotImplementedError

    def _loss_and_grad(self, theta, data, kind, truncate) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


# ----------------------------------------------------------------------------- registry

MODELS: Registry[type[Model]] = Registry("model")
"""Registered model classes by name (the built-ins: cliff, elman, gru, lstm, tdnn)."""

M = TypeVar("M", bound=type[Model])


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`Model` subclass under ``name`` (sets ``cls.name``).

    The class declares its options as ``param(...)`` fields of a dataclass ``Options`` (types,
    ranges and defaults; the field order is the order of ``model.spec()``) and takes them as
    keyword arguments after ``n_in, n_out``.  It implements the methods of :class:`Model`
    (``block_shapes``, ``unpack``, ``_assemble``, ``init``, ``forward``, ``_loss``,
    ``_loss_and_grad``, ``forward_steps``, ``backward_steps``, ``online_init``,
    ``online_chunk``) on a batch theta[N, P].  Registering the same class twice is a no-op; a
    different class under a taken name is an error.  Example (a read-out-only "model")::

        from dataclasses import dataclass
        from suite.models import Model, register_model
        from suite.registry import param

        @register_model("linear")
        class Linear(Model):
            @dataclass(frozen=True)
            class Options:
                dtype: str = param("float64", choices=("float64", "float32"))

            def __init__(self, n_in, n_out, dtype="float64"):
                ...

        make_model("linear", 2, 1)  # -> Linear(n_in=2, n_out=1, dtype='float64')

    Import the module that defines it (e.g. with ``--plugin module``) before naming the model
    in an experiment.
    """

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise TypeError(f"register_model({name!r}) decorates a Model subclass, got {cls!r}")
        if not dataclasses.is_dataclass(getattr(cls, "Options", None)):
            raise TypeError(f"model class {cls.__name__} needs an Options dataclass of param()s")
        cls.name = name
        MODELS.register(name, cls)
        return cls

    return decorate


def model_names() -> list[str]:
    """The sorted names of the registered models."""
    return MODELS.names()


def model_options() -> frozenset[str]:
    """The option names of all registered models (``hidden``, ``window``, ``dtype``, ...):
    keyword options of ``make_problem`` and keys of a ``[[problems]]`` entry that go to the
    model rather than to the task."""
    return frozenset(k for _, cls in MODELS.items() for k in param_specs(cls.Options))


def make_model(name: str, n_in: int, n_out: int, **options: Any) -> Model:
    """Build the model registered as ``name`` with its options, checked against its declared
    ``Options`` (unknown names and out-of-range values raise one ValueError saying what is
    allowed); options not given take their declared defaults.

    >>> make_model("elman", 2, 1, hidden=4).dim
    33
    """
    cls = MODELS.get(name)
    resolved = check_params(f"model {name!r}", param_specs(cls.Options), options)
    return cls(n_in, n_out, **resolved)  # type: ignore[call-arg]  # subclasses take options


def matched_hidden(
    model_name: str, elman_hidden: int, n_in: int, n_out: int, **options: Any
) -> int:
    """Hidden size of ``model_name`` whose parameter count is closest to that of an Elman
    network with ``elman_hidden`` units (same n_in, n_out; other options of the model, e.g.
    ``window`` for the TDNN, passed through).

    P(H) = ``make_model(model_name, n_in, n_out, hidden=H, **options).dim`` is increasing in H,
    so this scans H = 1, 2, ... up to the first H with P(H) >= P_elman and returns the nearer
    of H - 1 and H (a tie goes to the smaller network; at least 1).  For the TDNN it agrees with
    ``matched_tdnn_hidden``.

    >>> matched_hidden("lstm", 8, 2, 1)  # P_elman = 97; LSTM H = 3: 76, H = 4: 117
    4
    """
    target = make_model("elman", n_in, n_out, hidden=elman_hidden).dim

    def dim(H: int) -> int:
        return make_model(model_name, n_in, n_out, hidden=H, **options).dim

    H = 1
    while dim(H) < target:
        H += 1
    if H > 1 and target - dim(H - 1) <= dim(H) - target:
        return H - 1
    return H
