"""Composable gradient update rules in the style of optax.

An update rule is a :class:`Transform`, a pair of pure functions::

    state = t.init(params)
    updates, state = t.update(grads, state, params)
    params = apply_updates(params, updates)        # params + updates

Rules compose with :func:`chain`; e.g. Adam with Pascanu clipping is
``chain(clip_by_global_norm(1.0), scale_by_adam(0.9, 0.999, 1e-8), scale(-lr))``. Nothing is
modified in place: every call returns new arrays and a new state (NamedTuples).

Shapes: ``params``/``grads`` are one vector ``theta[P]`` or a batch ``theta[N, P]`` of
independent parameter vectors (multi-start training); every rule acts row by row, in
particular :func:`clip_by_global_norm` clips each row to its own norm. The step counter of
Adam is shared by all rows (they step together).

Example::

    >>> import numpy as np
    >>> t = adam(lr=0.1)
    >>> theta = np.array([1.0, -2.0]); state = t.init(theta)
    >>> for _ in range(200):
    ...     updates, state = t.update(2 * theta, state, theta)   # gradient of |theta|^2
    ...     theta = apply_updates(theta, updates)
    >>> bool(np.abs(theta).max() < 1e-2)
    True

Reference: the optax API (``optax/_src/base.py``, ``transform.py``, ``alias.py``); Adam from
Kingma & Ba (2015), "Adam: a method for stochastic optimization"; heavy-ball momentum from
Polyak (1964) and Nesterov's variant as in Sutskever et al. (2013); clipping from Pascanu,
Mikolov & Bengio (2013).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

Array = np.ndarray


class Transform(NamedTuple):
    """An update rule: ``init(params) -> state``, ``update(grads, state, params) -> (u, s)``."""

    init: Callable[[Array], Any]
    update: Callable[[Array, Any, Array | None], tuple[Array, Any]]


class EmptyState(NamedTuple):
    """State of a stateless rule."""


class TraceState(NamedTuple):
    """Momentum buffer of :func:`trace`."""

    trace: Array


class AdamState(NamedTuple):
    """Step count and first/second moment estimates of :func:`scale_by_adam`."""

    count: int  # type: ignore[assignment]  # shadows tuple.count, as optax's ScaleByAdamState
    mu: Array
    nu: Array


def apply_updates(params: Array, updates: Array) -> Array:
    """``params + updates`` (a new array)."""
    return np.asarray(params, dtype=np.float64) + updates


def identity() -> Transform:
    """Pass the gradient through unchanged."""

    def init(params: Array) -> EmptyState:
        return EmptyState()

    def update(g: Array, state: Any, params: Array | None = None) -> tuple[Array, Any]:
        return g, state

    return Transform(init, update)


def scale(step: float) -> Transform:
    """``u = step * g``; ``scale(-lr)`` turns a direction into a descent step."""

    def update(g: Array, state: EmptyState, params: Array | None = None) -> tuple[Array, Any]:
        return step * np.asarray(g, dtype=np.float64), state

    return Transform(lambda params: EmptyState(), update)


def scale_by_learning_rate(lr: float) -> Transform:
    """``u = -lr * g`` (descent)."""
    return scale(-lr)


def trace(decay: float, nesterov: bool = False) -> Transform:
    """Heavy-ball momentum: ``m <- g + decay m``; ``u = m`` (or ``g + decay m`` if Nesterov).

    With ``scale(-lr)`` after it this is SGD with momentum as in PyTorch and optax.
    """

    def init(params: Array) -> TraceState:
        return TraceState(np.zeros_like(params, dtype=np.float64))

    def update(g: Array, state: TraceState, params: Array | None = None) -> tuple[Array, Any]:
        m = g + decay * state.trace
        u = g + decay * m if nesterov else m
        return u, TraceState(m)

    return Transform(init, update)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Transform:
    """Adam's direction ``m_hat / (sqrt(v_hat) + eps)`` (Kingma & Ba 2015, Algorithm 1).

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``, ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)``.
    """

    def init(params: Array) -> AdamState:
        zeros = np.zeros_like(params, dtype=np.float64)
        return AdamState(0, zeros, zeros.copy())

    def update(g: Array, state: AdamState, params: Array | None = None) -> tuple[Array, Any]:
        count = state.count + 1
        mu = b1 * state.mu + (1.0 - b1) * g
        nu = b2 * state.nu + (1.0 - b2) * (g * g)
        mu_hat = mu / (1.0 - b1**count)
        nu_hat = nu / (1.0 - b2**count)
        return mu_hat / (np.sqrt(nu_hat) + eps), AdamState(count, mu, nu)

    return Transform(init, update)


def clip_by_global_norm(max_norm: float) -> Transform:
    """Pascanu et al.'s rule per row: if ``||g|| > c`` then ``g <- c g / ||g||``.

    For a batch ``G[N, P]`` each row is clipped to its own norm. Non-finite gradients pass
    through unchanged (the Problem records the divergence).
    """

    def update(g: Array, state: EmptyState, params: Array | None = None) -> tuple[Array, Any]:
        g = np.asarray(g, dtype=np.float64)
        norm = np.linalg.norm(g, axis=-1, keepdims=True)
        over = norm > max_norm
        factor = np.where(over, max_norm / np.where(over, norm, 1.0), 1.0)
        return g * factor, state

    return Transform(lambda params: EmptyState(), update)


def chain(*transforms: Transform) -> Transform:
    """Apply ``transforms`` in order; the state is the tuple of their states."""

    def init(params: Array) -> tuple:
        return tuple(t.init(params) for t in transforms)

    def update(g: Array, state: tuple, params: Array | None = None) -> tuple[Array, Any]:
        new_states = []
        for t, s in zip(transforms, state, strict=True):
            g, s = t.update(g, s, params)
            new_states.append(s)
        return g, tuple(new_states)

    return Transform(init, update)


# ---------------------------------------------------------------------------------- aliases


def _clipped(clip: float | None, *rest: Transform) -> Transform:
    return chain(clip_by_global_norm(clip), *rest) if clip is not None else chain(*rest)


def sgd(lr: float, clip: float | None = None) -> Transform:
    """Plain gradient descent ``theta <- theta - lr g`` (optionally clipped first)."""
    return _clipped(clip, scale(-lr))


def momentum(
    lr: float, beta: float = 0.9, nesterov: bool = False, clip: float | None = None
) -> Transform:
    """Gradient descent with heavy-ball (or Nesterov) momentum ``beta``."""
    return _clipped(clip, trace(beta, nesterov), scale(-lr))


def adam(
    lr: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    clip: float | None = None,
) -> Transform:
    """Adam (Kingma & Ba 2015): ``chain(scale_by_adam(b1, b2, eps), scale(-lr))``."""
    return _clipped(clip, scale_by_adam(b1, b2, eps), scale(-lr))


RULES: tuple[str, ...] = ("sgd", "momentum", "adam")
"""Names accepted by :func:`make_rule`."""


def make_rule(
    rule: str,
    lr: float,
    *,
    clip: float | None = None,
    beta: float = 0.9,
    nesterov: bool = False,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> Transform:
    """The update rule named ``rule`` (one of :data:`RULES`) with its hyper-parameters."""
    if rule == "sgd":
        return sgd(lr, clip)
    if rule == "momentum":
        return momentum(lr, beta, nesterov, clip)
    if rule == "adam":
        return adam(lr, b1, b2, eps, clip)
    raise ValueError(f"unknown update rule {rule!r}; allowed: {', '.join(RULES)}")
