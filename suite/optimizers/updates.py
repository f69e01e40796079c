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
Adam is shared by all rows (they step together). :func:`take_rows` keeps some rows of any
rule's state (a batched trainer drops the rows that stopped).

Second-order directions: :func:`scale_by_lbfgs` (two-loop recursion, one memory per row) and
:func:`scale_by_newton` (pseudo-inverse Newton); :mod:`suite.optimizers.linesearch` follows
them with a backtracking line search into the ``lbfgs`` and ``newton`` rules.

Names: the aliases and their hyper-parameters are those of the registered optimizers
(:mod:`suite.optimizers.gradient`): ``sgd(lr, clip)``, ``momentum(lr, momentum, nesterov,
clip)``, ``adam(lr, b1, b2, eps, clip)``.

Example::

    >>> import numpy as np
    >>> t = adam(lr=0.1)
    >>> theta = np.array([1.0, -2.0]); state = t.init(theta)
    >>> for _ in range(200):
    ...     updates, state = t.update(2 * theta, state, theta)   # gradient of |theta|^2
    ...     theta = apply_updates(theta, updates)
    >>> bool(np.abs(theta).max() < 1e-2)
    True

Reference: the optax API (``optax/_src/base.py``, ``transform.py``, ``alias.py``); L-BFGS from
Liu & Nocedal (1989) and Nocedal & Wright (2006), Algorithm 7.4; Adam from
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
    """An update rule: ``init(params) -> state``, ``update(grads, state, params) -> (u, s)``.

    Second-order directions and line searches take extra keyword arguments (``value``,
    ``grad``, ``value_and_grad``, ``hessian``), as optax's ``GradientTransformationExtraArgs``.
    """

    init: Callable[[Array], Any]
    update: Callable[..., tuple[Array, Any]]


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
    lr: float, momentum: float = 0.9, nesterov: bool = False, clip: float | None = None
) -> Transform:
    """Gradient descent with heavy-ball (or Nesterov) momentum coefficient ``momentum``."""
    return _clipped(clip, trace(momentum, nesterov), scale(-lr))


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
    momentum: float = 0.9,
    nesterov: bool = False,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> Transform:
    """The update rule named ``rule`` (one of :data:`RULES`) with its hyper-parameters."""
    if rule == "sgd":
        return sgd(lr, clip)
    if rule == "momentum":
        return _clipped(clip, trace(momentum, nesterov), scale(-lr))
    if rule == "adam":
        return adam(lr, b1, b2, eps, clip)
    raise ValueError(f"unknown update rule {rule!r}; allowed: {', '.join(RULES)}")


# ------------------------------------------------------------------ second-order directions
#
# The directions below are the first half of a second-order step; the second half is a line
# search (:mod:`suite.optimizers.linesearch`), which also builds the two into the ``lbfgs`` and
# ``newton`` rules. They work on a batch ``G[N, P]`` only (one start is a batch of one row):
# every row keeps its own memory, and rows can be dropped from the state with :func:`take_rows`.


class LbfgsState(NamedTuple):
    """Per-row memory of :func:`scale_by_lbfgs`.

    ``S[N, m, P]``, ``Y[N, m, P]`` the stored pairs ``s = theta_{k+1} - theta_k``,
    ``y = g_{k+1} - g_k``, ``rho[N, m] = 1 / s'y``; ``count[N]`` pairs stored (``<= m``),
    ``head[N]`` next slot to write (the newest pair is at ``(head - 1) % m``);
    ``prev_grad[N, P]`` the gradient of the last call; ``step[N, P]`` the step taken since it
    and ``stepped[N]`` which rows took one (set by the line search of the ``lbfgs`` rule): the
    pair they make is stored at the next call.
    """

    S: Array
    Y: Array
    rho: Array
    count: Array  # type: ignore[assignment]  # a NamedTuple field named like tuple.count
    head: Array
    prev_grad: Array
    step: Array
    stepped: Array


def lbfgs_direction(G: Array, state: LbfgsState) -> Array:
    """The L-BFGS direction ``-H g`` of every row by the two-loop recursion.

    Nocedal & Wright (2006), Algorithm 7.4, with the initial scaling ``gamma = s'y / y'y`` of
    the newest pair; rows with fewer than ``m`` pairs use what they have; a row without pairs
    gets steepest descent scaled to length at most 1, ``-g / max(||g||, 1)``.
    """
    S, Y, rho, count, head = state.S, state.Y, state.rho, state.count, state.head
    k, m, _ = S.shape
    q = G.copy()
    alpha = np.zeros((k, m))
    rows = np.arange(k)
    for j in range(m):  # newest to oldest
        slot = (head - 1 - j) % m
        live = j < count
        s, y, r = S[rows, slot], Y[rows, slot], rho[rows, slot]
        a = np.where(live, r * np.einsum("np,np->n", s, q), 0.0)
        alpha[:, j] = a
        q -= a[:, None] * y
    newest = (head - 1) % m
    s, y = S[rows, newest], Y[rows, newest]
    yy = np.einsum("np,np->n", y, y)
    gamma = np.where(
        (count > 0) & (yy > 0), np.einsum("np,np->n", s, y) / np.maximum(yy, 1e-300), 1.0
    )
    r = gamma[:, None] * q
    for j in reversed(range(m)):  # oldest to newest
        slot = (head - 1 - j) % m
        live = j < count
        s, y, rr = S[rows, slot], Y[rows, slot], rho[rows, slot]
        b = np.where(live, rr * np.einsum("np,np->n", y, r), 0.0)
        r += np.where(live, alpha[:, j] - b, 0.0)[:, None] * s
    none = count == 0
    if none.any():
        gn = np.maximum(np.linalg.norm(G[none], axis=1), 1.0)
        r[none] = G[none] / gn[:, None]
    return -r


def row_norm(g: Array) -> Array:
    """Euclidean norm of every row, ``inf`` where it is not finite."""
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.linalg.norm(g, axis=1)
    return np.where(np.isfinite(out), out, np.inf)


def scale_by_lbfgs(memory: int = 10) -> Transform:
    """Limited-memory BFGS direction (Liu & Nocedal 1989), one memory per row.

    ``update(G, state)``: first stores the pair ``(s, y)`` of every row that stepped since the
    last call (``s`` = ``state.step``, ``y = G - prev_grad``), only if ``s'y > 1e-10 |s||y|``
    (curvature condition: keeps the inverse-Hessian estimate positive definite); then returns
    the two-loop direction :func:`lbfgs_direction`. A row whose direction is not a descent
    direction (``g'd >= 0`` or not finite) forgets its pairs and takes ``-g / max(||g||, 1)``.

    Unlike optax's ``scale_by_lbfgs`` (which differences the parameters of successive calls),
    the step is handed over exactly by the line search, so ``s`` is the step taken to the bit.
    """
    m = memory

    def init(params: Array) -> LbfgsState:
        n, p = np.shape(params)
        return LbfgsState(
            S=np.zeros((n, m, p)),
            Y=np.zeros((n, m, p)),
            rho=np.zeros((n, m)),
            count=np.zeros(n, dtype=np.int64),
            head=np.zeros(n, dtype=np.int64),
            prev_grad=np.zeros((n, p)),
            step=np.zeros((n, p)),
            stepped=np.zeros(n, dtype=bool),
        )

    def update(G: Array, state: LbfgsState, params: Array | None = None) -> tuple[Array, Any]:
        S, Y, rho = state.S.copy(), state.Y.copy(), state.rho.copy()
        count, head = state.count.copy(), state.head.copy()
        acc = np.flatnonzero(state.stepped)
        if acc.size:
            s = state.step[acc]
            y = G[acc] - state.prev_grad[acc]
            sy = np.einsum("np,np->n", s, y)
            good = sy > 1e-10 * np.linalg.norm(s, axis=1) * np.linalg.norm(y, axis=1)
            rows = acc[good]
            slot = head[rows]
            S[rows, slot], Y[rows, slot], rho[rows, slot] = s[good], y[good], 1.0 / sy[good]
            head[rows] = (head[rows] + 1) % m
            count[rows] = np.minimum(count[rows] + 1, m)
        state = LbfgsState(
            S, Y, rho, count, head, G.copy(), np.zeros_like(G), np.zeros(len(G), dtype=bool)
        )
        d = lbfgs_direction(G, state)
        gd = np.einsum("np,np->n", G, d)
        reset = ~(gd < 0) | ~np.isfinite(gd)
        if reset.any():
            count[reset] = 0
            gnr = np.maximum(row_norm(G[reset]), 1e-300)
            d[reset] = -G[reset] / np.maximum(gnr, 1.0)[:, None]
        return d, state

    return Transform(init, update)


class NewtonState(NamedTuple):
    """Which rows of the last :func:`scale_by_newton` call had a usable Newton direction."""

    usable: Array


def newton_direction(G: Array, H: Array, noise_rel: float = 1e-9) -> tuple[Array, Array]:
    """Pseudo-inverse Newton directions of every row and which rows may take them.

    ``H[N, P, P] = V diag(w) V'`` per row; ``c = noise_rel * max |w|``. The direction is
    ``d = -sum_{w_i > c} v_i (v_i' g) / w_i`` (directions with curvature at the noise level are
    left alone). A row is *usable* if its Hessian and gradient are finite, its smallest
    eigenvalue is ``>= -c`` (not indefinite: Newton would be drawn to a saddle) and ``d`` is a
    descent direction; other rows get ``d = NaN``. Reference: Nocedal & Wright (2006), 3.4.
    """
    n, p = G.shape
    ok = np.isfinite(H).all(axis=(1, 2)) & np.isfinite(G).all(axis=1)
    w = np.full((n, p), np.nan)
    V = np.zeros((n, p, p))
    if ok.any():
        w[ok], V[ok] = np.linalg.eigh(H[ok])
    cut = noise_rel * np.nanmax(np.abs(w), axis=1, initial=0.0)
    usable = ok & (w[:, 0] >= -cut)
    vg = np.einsum("npk,np->nk", V, G)
    inv = np.where(w > cut[:, None], 1.0 / np.where(w > cut[:, None], w, 1.0), 0.0)
    d = -np.einsum("npk,nk->np", V, inv * vg)
    gd = np.einsum("np,np->n", G, d)
    usable &= gd < 0
    d[~usable] = np.nan
    return d, usable


def scale_by_newton(noise_rel: float = 1e-9) -> Transform:
    """Pseudo-inverse Newton direction :func:`newton_direction`; ``update(G, state, params,
    hessian=H)`` needs the Hessians ``H[N, P, P]`` of the rows. Rows without a usable
    direction get ``NaN`` (a line search leaves them where they are)."""

    def init(params: Array) -> NewtonState:
        return NewtonState(np.ones(len(params), dtype=bool))

    def update(
        G: Array, state: NewtonState, params: Array | None = None, *, hessian: Array
    ) -> tuple[Array, Any]:
        d, usable = newton_direction(G, hessian, noise_rel)
        return d, NewtonState(usable)

    return Transform(init, update)


def take_rows(state: Any, keep: Array, n: int) -> Any:
    """Rows ``keep`` of every ``[n, ...]`` array in a rule's state (a tree of NamedTuples and
    tuples); other leaves (Adam's shared step count) are kept as they are."""
    if isinstance(state, np.ndarray):
        return state[keep] if state.ndim >= 1 and state.shape[0] == n else state
    if isinstance(state, tuple):
        items = [take_rows(s, keep, n) for s in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    return state
