"""Multi-start studies: many starts of one gradient method on one problem, as one batch.

A *study* trains ``N`` starts (hundreds to thousands) of one method on one problem (one task,
one model, one dataset) and keeps every end point, for the local-optimum statistics of
:mod:`suite.analysis.optima` (statements C2 and C3 of ``SCIENCE.md``). All starts of a chunk are
trained together as one batch ``theta[N, P]`` through ``problem.loss_and_grad``: one vectorised
call per step, whatever ``N`` is.

Starts and data. Start ``i`` is drawn from the *init stream of seed index i*
(:func:`suite.seeding.init_stream`), exactly the start of seed index ``i`` of a compare trial on
the same problem. Every start of a study sees the same dataset, the one of the data stream of seed
index ``data_seed`` (default 0), so they all descend the same loss surface. The data stream does
not depend on the model, so an Elman study and its TDNN-twin study use the same data and the same
seed indices.

Training, per start (rows stop individually; stopped rows are masked out of later calls):

1. *Method phase*: ``gd`` (plain gradient descent), ``momentum`` (heavy ball) or ``adam``, the
   batched update rules of :mod:`suite.optimizers.updates` (optionally clipped), on the full
   training set or on minibatches of ``batch_size`` sequences (one minibatch per step, shared by
   all rows, drawn from a stream keyed by the study so a start's path does not depend on the
   chunk it is run in). A row stops when its full-batch gradient norm is at most
   ``gtol = gtol_rel * baseline_loss`` (checked every step on full batches, every
   ``check_every`` steps on minibatches), when its loss or parameters turn non-finite
   (``diverged``), or after ``max_steps`` steps.
2. *Polishing phase* (``polish = "lbfgs"``, the default): rows not yet converged continue with a
   batched limited-memory BFGS (two-loop recursion, memory ``memory``; Armijo backtracking line
   search per row, Nocedal & Wright 2006, Algorithms 7.4 and 3.1) on the full training set for
   up to ``polish_steps`` iterations, stopping at the same gradient tolerance. The method picks
   the basin; L-BFGS, a monotone descent method, finds its bottom quickly, where plain GD or Adam
   would crawl (the ``SCIENCE.md`` pitfall: unconverged end points measure plateau escape speed,
   not minima). ``polish = "none"`` turns it off.
3. *Newton phase* (with L-BFGS polishing, for models of at most ``newton_max_params``
   parameters): rows still not converged and without clearly negative curvature take up to
   ``newton_steps`` pseudo-inverse Newton steps on the dense finite-difference Hessian
   (quadratic convergence where L-BFGS stalls in ill-conditioned valleys); indefinite rows are
   left alone, so Newton is never drawn to a saddle.

Status of a start: ``converged`` (``||g|| <= gtol``, or a loss below ``1e-12`` of the
baseline: a global minimum at float64 resolution, where the gradient of a cliff edge can stay
large), ``max_steps`` (not converged within the caps: counted separately by the analysis) or
``diverged``.

Cost. Every call goes through the Problem's counters; a call on ``n`` rows costs ``n`` times a
row, and each row is charged its own share, so a start's ``counters.fe`` is exactly the work done
for it (``fe_share`` is the chunk's total divided by its starts, the two agree on average).
Curvature at the end points (:func:`suite.analysis.optima.curvature`, on by default) is
measured afterwards and recorded as ``analysis_fe``, not charged to the start.

Records: one per start, kind ``"start"``; see :func:`run_chunk`.

Experiment file (``kind = "multistart"``)::

    name = "optima_demo"
    kind = "multistart"
    seed = 0
    starts = 256           # seed indices 0..255 (or an array of indices)
    chunk = 128            # starts per work unit (the runner parallelises units)
    data_seed = 0          # seed index whose data stream every start shares
    tdnn_twin = true       # add, for every elman problem, the TDNN of matched parameter count
    hessian = true         # extreme Hessian eigenvalues at every end point that did not diverge

    [[problems]]           # as in a compare experiment
    task = "adding"
    seq_len = 10           # any task/model key may be an array: the grid of their product
    hidden = 4

    [[methods]]            # name = "gd" | "momentum" | "adam"; hyper-parameters as in Method
    name = "adam"
    lr = 0.01

Measured (``bench/bench_multistart.py``, 2 shared cores): see the numbers in that file's
output; batching pays most where a single call is dominated by Python overhead (the cliff).

References: L-BFGS from Liu & Nocedal (1989) and Nocedal & Wright (2006); the stopping rules
follow the ``SCIENCE.md`` pitfall on unconverged end points.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from suite import seeding

METHODS: tuple[str, ...] = ("gd", "momentum", "adam")
POLISH: tuple[str, ...] = ("lbfgs", "none")
STATUSES: tuple[str, ...] = ("converged", "max_steps", "diverged")


# ------------------------------------------------------------------------------ method
@dataclass(frozen=True)
class Method:
    """A multi-start training method: update rule, step caps, tolerance and polishing.

    ``name``: ``"gd"``, ``"momentum"`` or ``"adam"``; ``lr`` its learning rate; ``beta`` the
    momentum; ``b1``, ``b2``, ``eps`` Adam's constants; ``clip``: clip each row's gradient to this
    norm first (None: no clipping); ``batch_size``: minibatch size (None: full batch);
    ``max_steps``: cap of the method phase; ``gtol_rel``: converged when the full-batch gradient
    norm is ``<= gtol_rel * baseline_loss``; ``check_every``: steps between full-gradient checks
    on minibatches; ``polish``: ``"lbfgs"`` or ``"none"``; ``polish_steps``: cap of L-BFGS
    iterations; ``memory``: L-BFGS pairs kept; ``newton_steps``: cap of the final Newton
    iterations (used only for models with at most ``newton_max_params`` parameters, where the
    dense Hessian is affordable); ``label``: display label (default: ``name`` plus
    the non-default fields).
    """

    name: str = "adam"
    lr: float = 0.01
    beta: float = 0.9
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    clip: float | None = None
    batch_size: int | None = None
    max_steps: int = 5000
    gtol_rel: float = 1e-5
    check_every: int = 50
    polish: str = "lbfgs"
    polish_steps: int = 3000
    memory: int = 10
    newton_steps: int = 10
    newton_max_params: int = 300
    label: str | None = None

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise ValueError(f"method name must be one of {', '.join(METHODS)}, got {self.name!r}")
        if self.polish not in POLISH:
            raise ValueError(f"polish must be one of {', '.join(POLISH)}, got {self.polish!r}")
        for name in ("lr", "eps", "gtol_rel"):
            _positive(name, getattr(self, name))
        for name in ("beta", "b1", "b2"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < 1):
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.clip is not None:
            _positive("clip", self.clip)
        for name in ("max_steps", "check_every", "polish_steps", "memory", "newton_steps"):
            low = 0 if name in ("max_steps", "polish_steps", "newton_steps") else 1
            _count(name, getattr(self, name), low)
        _count("newton_max_params", self.newton_max_params, 0)
        if self.batch_size is not None:
            _count("batch_size", self.batch_size, 1)
        if self.label is not None and (not isinstance(self.label, str) or not self.label.strip()):
            raise ValueError(f"label must be a non-empty string, got {self.label!r}")

    @classmethod
    def from_dict(cls, d: dict) -> Method:
        """A Method from a plain dict (unknown keys raise a ValueError naming the allowed)."""
        allowed = [f.name for f in fields(cls)]
        unknown = [k for k in d if k not in allowed]
        if unknown:
            raise ValueError(
                f"unknown method key(s) {', '.join(map(repr, unknown))}; allowed: "
                f"{', '.join(allowed)}"
            )
        return cls(**d)

    def spec(self) -> dict:
        """All fields as plain data (the label resolved)."""
        d = asdict(self)
        d["label"] = self.display()
        return d

    def display(self) -> str:
        """The label: given, or ``name(key=value, ...)`` for non-default hyper-parameters."""
        if self.label:
            return self.label
        default = Method(name=self.name)
        parts = [
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if f.name not in ("name", "label") and getattr(self, f.name) != getattr(default, f.name)
        ]
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    def rule(self) -> Any:
        """The batched update rule (:mod:`suite.optimizers.updates`)."""
        from suite.optimizers import updates

        if self.name == "gd":
            return updates.sgd(self.lr, self.clip)
        if self.name == "momentum":
            return updates.momentum(self.lr, self.beta, clip=self.clip)
        return updates.adam(self.lr, self.b1, self.b2, self.eps, clip=self.clip)


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _count(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


# ------------------------------------------------------------------------------ result
@dataclass
class MultiStartResult:
    """End points of a batch of starts (row ``i`` is start ``i``).

    ``theta[N, P]`` end points; ``loss[N]`` full train loss; ``grad_norm[N]`` full-batch gradient
    norm; ``status[N]`` (:data:`STATUSES`); ``steps[N]`` method steps; ``polish_steps[N]``
    L-BFGS iterations; ``newton_steps[N]`` Newton iterations; ``fe[N]`` cost charged to each
    start; ``trace_steps[N, K]`` and
    ``trace_loss[N, K]`` a log-spaced trace of the full-batch loss (slot ``k``: the first loss
    seen after ``u`` updates with ``u + 1`` in ``[2^k, 2^(k+1))``, NaN if none); ``total_fe``;
    ``seconds`` wall time; ``gtol`` the absolute gradient tolerance used.
    """

    theta: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    polish_steps: np.ndarray
    newton_steps: np.ndarray
    fe: np.ndarray
    trace_steps: np.ndarray
    trace_loss: np.ndarray
    total_fe: float = 0.0
    seconds: float = 0.0
    gtol: float = 0.0


class _Charger:
    """Calls the problem in row blocks, charges each call's cost equally to its rows and keeps
    a log-spaced loss trace per row.

    Blocks hold at most ``max(1, block_steps // forward_steps_per_row)`` rows: per-row cost of a
    batched call grows once a block's working set leaves the CPU caches, so a 256-row batch is
    evaluated as a few vectorised calls rather than one.
    """

    def __init__(self, problem: Any, n: int, n_slots: int, block_steps: int = 1 << 16) -> None:
        self.problem = problem
        self.fe = np.zeros(n)
        self.block_steps = block_steps
        self.trace_steps = np.full((n, n_slots), np.nan)
        self.trace_loss = np.full((n, n_slots), np.nan)
        self._rows_per_call: dict[int | None, int] = {}

    def _block(self, batch: np.ndarray | None) -> int:
        key = None if batch is None else int(len(batch))
        if key not in self._rows_per_call:
            split = self.problem.dataset.train
            if batch is not None:
                split = type(split)(X=split.X[batch], Y=split.Y[batch], M=split.M[batch])
            per_row = max(int(self.problem.model.forward_steps(split)), 1)
            self._rows_per_call[key] = max(1, self.block_steps // per_row)
        return self._rows_per_call[key]

    def loss_and_grad(
        self, idx: np.ndarray, theta: np.ndarray, batch: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        block = self._block(batch)
        losses, grads = [], []
        for b0 in range(0, len(idx), block):
            before = self.problem.counters.fe
            loss, grad = self.problem.loss_and_grad(theta[b0 : b0 + block], batch=batch)
            rows = idx[b0 : b0 + block]
            self.fe[rows] += (self.problem.counters.fe - before) / max(len(rows), 1)
            losses.append(np.atleast_1d(np.asarray(loss, dtype=np.float64)))
            grads.append(np.asarray(grad, dtype=np.float64).reshape(len(rows), -1))
        if not losses:
            return np.zeros(0), np.zeros((0, theta.shape[1]))
        return np.concatenate(losses), np.concatenate(grads)

    def record(self, idx: np.ndarray, updates_done: np.ndarray, loss: np.ndarray) -> None:
        """Trace: the first full-batch loss seen with ``u`` updates done, ``u + 1`` in
        ``[2^k, 2^(k+1))``, goes to slot ``k``."""
        slot = np.floor(np.log2(updates_done + 1.0)).astype(np.int64)
        slot = np.minimum(slot, self.trace_steps.shape[1] - 1)
        empty = np.isnan(self.trace_steps[idx, slot])
        rows, slots = idx[empty], slot[empty]
        self.trace_steps[rows, slots] = updates_done[empty]
        self.trace_loss[rows, slots] = loss[empty]


def _take(state: Any, keep: np.ndarray, n: int) -> Any:
    """Rows ``keep`` of every ``[n, ...]`` array in an update-rule state (a NamedTuple tree)."""
    if isinstance(state, np.ndarray):
        return state[keep] if state.ndim >= 1 and state.shape[0] == n else state
    if isinstance(state, tuple):
        items = [_take(s, keep, n) for s in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    return state


def train_batch(
    problem: Any,
    theta0: np.ndarray,
    method: Method,
    rng: np.random.Generator | None = None,
) -> MultiStartResult:
    """Train the starts ``theta0[N, P]`` on ``problem`` with ``method`` as one batch.

    See the module docstring for the three phases and the stopping rules. ``rng`` draws the
    minibatches (required when ``method.batch_size`` is set; every row gets the same minibatch
    at a step). The problem's counters keep running (call ``problem.start()`` first to reset
    them); no budget is needed -- the step caps bound the work.
    """
    t0 = time.perf_counter()
    theta = np.array(theta0, dtype=np.float64, copy=True)
    if theta.ndim != 2 or theta.shape[1] != problem.dim:
        raise ValueError(f"theta0 must have shape (N, {problem.dim}), got {theta.shape}")
    if method.batch_size is not None and rng is None:
        raise ValueError("a minibatch method needs an rng (numpy.random.Generator)")
    if method.batch_size is not None and method.batch_size > problem.n_train:
        raise ValueError(
            f"batch_size {method.batch_size} exceeds the {problem.n_train} training sequences"
        )
    n = theta.shape[0]
    gtol = _Tol(
        method.gtol_rel * float(problem.baseline_loss),
        ZERO_LOSS_REL * float(problem.baseline_loss),
    )
    n_slots = int(math.floor(math.log2(method.max_steps + method.polish_steps + 2))) + 1
    charger = _Charger(problem, n, n_slots)
    fe0 = problem.counters.fe
    loss = np.full(n, np.inf)
    gnorm = np.full(n, np.inf)
    status = np.full(n, "max_steps", dtype=object)
    steps = np.zeros(n, dtype=np.int64)
    polish_steps = np.zeros(n, dtype=np.int64)
    finite0 = np.isfinite(theta).all(axis=1)
    status[~finite0] = "diverged"
    active = np.flatnonzero(finite0)
    active = _method_phase(charger, theta, active, method, gtol, rng, loss, gnorm, status, steps)
    if method.polish == "lbfgs" and active.size:
        active = _lbfgs_phase(
            charger, theta, active, method, gtol, loss, gnorm, status, polish_steps, steps
        )
    # Final full-batch loss and gradient of rows whose last values came from minibatches or
    # from before their last update.
    newton_steps = np.zeros(n, dtype=np.int64)
    if (
        method.polish == "lbfgs"
        and method.newton_steps > 0
        and problem.dim <= method.newton_max_params
    ):
        pending = np.flatnonzero(status == "max_steps")
        if pending.size:
            _newton_phase(charger, theta, pending, method, gtol, loss, gnorm, status, newton_steps)
    stale = active if method.polish == "none" else active[:0]
    if stale.size:
        L, G = charger.loss_and_grad(stale, theta[stale])
        loss[stale], gnorm[stale] = L, _norm(G)
        charger.record(stale, steps[stale], L)
        conv = np.isfinite(L) & gtol.ok(L, gnorm[stale])
        status[stale[conv]] = "converged"
        status[stale[~np.isfinite(L)]] = "diverged"
    return MultiStartResult(
        theta=theta,
        loss=loss,
        grad_norm=gnorm,
        status=status.astype(str),
        steps=steps,
        polish_steps=polish_steps,
        newton_steps=newton_steps,
        fe=charger.fe,
        trace_steps=charger.trace_steps,
        trace_loss=charger.trace_loss,
        total_fe=float(problem.counters.fe - fe0),
        seconds=time.perf_counter() - t0,
        gtol=gtol.grad,
    )


ZERO_LOSS_REL = 1e-12
"""A loss below this fraction of the baseline counts as converged (a global minimum at float64
resolution: the losses are non-negative, and at a cliff edge the gradient of a zero loss can
stay large, see the cliff task)."""


class _Tol(NamedTuple):
    grad: float
    loss: float

    def ok(self, loss: np.ndarray, gnorm: np.ndarray) -> np.ndarray:
        return (np.asarray(gnorm) <= self.grad) | (np.asarray(loss) <= self.loss)


def _norm(g: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.linalg.norm(g, axis=1)
    return np.where(np.isfinite(out), out, np.inf)


def _method_phase(
    charger: _Charger,
    theta: np.ndarray,
    active: np.ndarray,
    method: Method,
    gtol: _Tol,
    rng: np.random.Generator | None,
    loss: np.ndarray,
    gnorm: np.ndarray,
    status: np.ndarray,
    steps: np.ndarray,
) -> np.ndarray:
    """The update-rule phase; returns the rows still active (not converged, not diverged)."""
    from suite.optimizers.updates import apply_updates

    problem = charger.problem
    rule = method.rule()
    state = rule.init(theta[active])
    mini = method.batch_size is not None
    for step in range(method.max_steps):
        if active.size == 0:
            break
        check = not mini or step % method.check_every == 0
        if mini and check:
            L, G = charger.loss_and_grad(active, theta[active])
            gn = _norm(G)
            loss[active], gnorm[active] = L, gn
            charger.record(active, steps[active], L)
            done = np.isfinite(L) & gtol.ok(L, gn)
            bad = ~np.isfinite(L)
            active, state = _retire(active, state, done, bad, status)
            if active.size == 0:
                break
        if mini:
            batch = problem.minibatch(rng, method.batch_size)
            L, G = charger.loss_and_grad(active, theta[active], batch=batch)
            bad = ~np.isfinite(L) | ~np.isfinite(G).all(axis=1)
            done = np.zeros(active.size, dtype=bool)
        else:
            L, G = charger.loss_and_grad(active, theta[active])
            gn = _norm(G)
            loss[active], gnorm[active] = L, gn
            charger.record(active, steps[active], L)
            bad = ~np.isfinite(L)
            done = ~bad & gtol.ok(L, gn)
        if done.any() or bad.any():
            keep = ~(done | bad)
            G = G[keep]
            active, state = _retire(active, state, done, bad, status)
            if active.size == 0:
                break
        updates, state = rule.update(G, state, theta[active])
        new = apply_updates(theta[active], updates)
        steps[active] += 1
        finite = np.isfinite(new).all(axis=1)
        theta[active[finite]] = new[finite]
        if not finite.all():
            active, state = _retire(active, state, np.zeros_like(finite), ~finite, status)
    return active


def _retire(
    active: np.ndarray, state: Any, done: np.ndarray, bad: np.ndarray, status: np.ndarray
) -> tuple[np.ndarray, Any]:
    status[active[done]] = "converged"
    status[active[bad]] = "diverged"
    keep = ~(done | bad)
    return active[keep], _take(state, keep, active.size)


def _lbfgs_phase(
    charger: _Charger,
    theta: np.ndarray,
    active: np.ndarray,
    method: Method,
    gtol: _Tol,
    loss: np.ndarray,
    gnorm: np.ndarray,
    status: np.ndarray,
    polish_steps: np.ndarray,
    steps_before: np.ndarray,
    c1: float = 1e-4,
    max_backtracks: int = 40,
) -> np.ndarray:
    """Batched L-BFGS with per-row Armijo backtracking; returns rows still not converged.

    Two-loop recursion (Nocedal & Wright 2006, Alg. 7.4) with the scaling
    ``gamma = s'y / y'y`` of the newest pair; a pair is stored only if ``s'y > 1e-10 |s||y|``
    (keeps the inverse-Hessian estimate positive definite); a non-descent direction resets the
    row's memory. The first step of a row (or after a reset) is ``-g`` scaled to length at most 1.
    A row whose line search fails ``max_backtracks`` halvings (no decrease at round-off level)
    stops where it is.
    """
    m = method.memory
    p = theta.shape[1]
    L, G = charger.loss_and_grad(active, theta[active])
    gn = _norm(G)
    loss[active], gnorm[active] = L, gn
    charger.record(active, steps_before[active], L)
    done = np.isfinite(L) & gtol.ok(L, gn)
    bad = ~np.isfinite(L)
    status[active[done]] = "converged"
    status[active[bad]] = "diverged"
    keep = ~(done | bad)
    active, L, G = active[keep], L[keep], G[keep]
    k = active.size
    S = np.zeros((k, m, p))
    Y = np.zeros((k, m, p))
    rho = np.zeros((k, m))
    count = np.zeros(k, dtype=np.int64)  # pairs stored (<= m), newest at slot (count-1) % m
    head = np.zeros(k, dtype=np.int64)  # next slot to write
    for _ in range(method.polish_steps):
        if active.size == 0:
            break
        d = _two_loop(G, S, Y, rho, count, head)
        gd = np.einsum("np,np->n", G, d)
        reset = ~(gd < 0) | ~np.isfinite(gd)
        if reset.any():
            count[reset] = 0
            gnr = np.maximum(_norm(G[reset]), 1e-300)
            d[reset] = -G[reset] / np.maximum(gnr, 1.0)[:, None]
            gd[reset] = np.einsum("np,np->n", G[reset], d[reset])
        t, accepted, new_L, new_G = _backtrack(
            charger, theta, active, L, G, d, gd, c1, max_backtracks, skip_nonfinite=True
        )
        polish_steps[active] += 1
        acc = np.flatnonzero(accepted)
        s = t[acc, None] * d[acc]
        y = new_G[acc] - G[acc]
        theta[active[acc]] += s
        sy = np.einsum("np,np->n", s, y)
        good = sy > 1e-10 * np.linalg.norm(s, axis=1) * np.linalg.norm(y, axis=1)
        rows = acc[good]
        slot = head[rows]
        S[rows, slot], Y[rows, slot], rho[rows, slot] = s[good], y[good], 1.0 / sy[good]
        head[rows] = (head[rows] + 1) % m
        count[rows] = np.minimum(count[rows] + 1, m)
        L[acc], G[acc] = new_L[acc], new_G[acc]
        gn = _norm(G)
        loss[active], gnorm[active] = L, gn
        charger.record(active, steps_before[active] + polish_steps[active], L)
        done = accepted & gtol.ok(L, gn)
        stuck = ~accepted  # no decrease found: stop, keep the point
        status[active[done]] = "converged"
        keep = ~(done | stuck)
        active, L, G = active[keep], L[keep], G[keep]
        S, Y, rho, count, head = S[keep], Y[keep], rho[keep], count[keep], head[keep]
    return active


def _newton_phase(
    charger: _Charger,
    theta: np.ndarray,
    active: np.ndarray,
    method: Method,
    gtol: _Tol,
    loss: np.ndarray,
    gnorm: np.ndarray,
    status: np.ndarray,
    newton_steps: np.ndarray,
    noise_rel: float = 1e-9,
    c1: float = 1e-4,
    max_backtracks: int = 20,
) -> None:
    """Batched Newton polishing of rows with no clearly negative curvature.

    At each iteration the dense Hessian (central differences of the gradient,
    :func:`suite.analysis.optima.hessian_fd`) is decomposed, ``H = V diag(w) V^T``. A row whose
    smallest eigenvalue is below ``-c`` (``c = noise_rel * max(w)``) is indefinite: Newton would
    be drawn to the saddle, so the row leaves the phase. Otherwise the step is the
    pseudo-inverse Newton step ``d = -sum_{w_i > c} v_i (v_i' g) / w_i`` (directions with
    curvature at the noise level are left alone), accepted by backtracking when it decreases
    both the loss (Armijo) and the gradient norm (so the phase never leaves a row with a larger
    gradient than L-BFGS did, e.g. after a step out of the quadratic region). Rows stop
    when converged, when no decrease is found, or after ``method.newton_steps`` iterations.
    """
    from suite.curvature import hessian_fd

    p = theta.shape[1]
    for _ in range(method.newton_steps):
        if active.size == 0:
            return
        L, G = charger.loss_and_grad(active, theta[active])
        before = charger.problem.counters.fe
        H = hessian_fd(
            lambda rows: charger.problem.loss_and_grad(rows),
            theta[active],
            max_rows=max(charger._block(None), 2 * p),
        )
        charger.fe[active] += (charger.problem.counters.fe - before) / active.size
        ok = np.isfinite(H).all(axis=(1, 2)) & np.isfinite(L)
        w = np.full((active.size, p), np.nan)
        V = np.zeros((active.size, p, p))
        if ok.any():
            w[ok], V[ok] = np.linalg.eigh(H[ok])
        cut = noise_rel * np.nanmax(np.abs(w), axis=1, initial=0.0)
        convex = ok & (w[:, 0] >= -cut)
        vg = np.einsum("npk,np->nk", V, G)
        inv = np.where(w > cut[:, None], 1.0 / np.where(w > cut[:, None], w, 1.0), 0.0)
        d = -np.einsum("npk,nk->np", V, inv * vg)
        gd = np.einsum("np,np->n", G, d)
        convex &= gd < 0
        active, L, G, d, gd = active[convex], L[convex], G[convex], d[convex], gd[convex]
        t, accepted, new_L, new_G = _backtrack(
            charger, theta, active, L, G, d, gd, c1, max_backtracks, shrink_grad=True
        )
        acc = np.flatnonzero(accepted)
        rows = active[acc]
        theta[rows] += t[acc, None] * d[acc]
        newton_steps[rows] += 1
        loss[rows], gnorm[rows] = new_L[acc], _norm(new_G[acc])
        done = gtol.ok(loss[rows], gnorm[rows])
        status[rows[done]] = "converged"
        active = rows[~done]


def _backtrack(
    charger: _Charger,
    theta: np.ndarray,
    active: np.ndarray,
    L: np.ndarray,
    G: np.ndarray,
    d: np.ndarray,
    gd: np.ndarray,
    c1: float,
    max_backtracks: int,
    *,
    skip_nonfinite: bool = False,
    shrink_grad: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched per-row backtracking from ``theta[active]`` along the directions ``d``.

    Row ``i`` tries ``t_i = 1, 1/2, 1/4, ...`` (at most ``max_backtracks`` tries) and accepts
    the first step whose loss and gradient are finite and that satisfies Armijo's condition
    ``L(theta + t d) <= L + c1 t g'd`` (Nocedal & Wright 2006, eq. 3.4; ``gd`` holds ``g'd``),
    and, with ``shrink_grad``, also decreases the gradient norm. With ``skip_nonfinite`` a
    trial point with a non-finite entry is rejected without being evaluated. Returns the step
    sizes ``t`` (the last one tried for rows never accepted), which rows accepted, and the loss
    and gradient at the accepted points (``inf`` and 0 elsewhere).
    """
    t = np.ones(active.size)
    pending = np.arange(active.size)
    new_L = np.full(active.size, np.inf)
    new_G = np.zeros_like(G)
    accepted = np.zeros(active.size, dtype=bool)
    for _bt in range(max_backtracks):
        if pending.size == 0:
            break
        trial = theta[active[pending]] + t[pending, None] * d[pending]
        if skip_nonfinite:
            ok_rows = np.isfinite(trial).all(axis=1)
            Lt = np.full(pending.size, np.inf)
            Gt = np.zeros((pending.size, theta.shape[1]))
            if ok_rows.any():
                Lt[ok_rows], Gt[ok_rows] = charger.loss_and_grad(
                    active[pending[ok_rows]], trial[ok_rows]
                )
        else:
            Lt, Gt = charger.loss_and_grad(active[pending], trial)
        good = np.isfinite(Lt) & (Lt <= L[pending] + c1 * t[pending] * gd[pending])
        good &= np.isfinite(Gt).all(axis=1)
        if shrink_grad:
            good &= _norm(Gt) < _norm(G[pending])
        acc = pending[good]
        new_L[acc], new_G[acc] = Lt[good], Gt[good]
        accepted[acc] = True
        pending = pending[~good]
        t[pending] *= 0.5
    return t, accepted, new_L, new_G


def _two_loop(
    G: np.ndarray,
    S: np.ndarray,
    Y: np.ndarray,
    rho: np.ndarray,
    count: np.ndarray,
    head: np.ndarray,
) -> np.ndarray:
    """L-BFGS direction ``-H g`` for every row (rows with fewer pairs use what they have)."""
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
    # rows without pairs: steepest descent scaled to length <= 1
    none = count == 0
    if none.any():
        gn = np.maximum(np.linalg.norm(G[none], axis=1), 1.0)
        r[none] = G[none] / gn[:, None]
    return -r


# --------------------------------------------------------------------------- the study
def initial_points(
    experiment_seed: int, task_spec: dict, model: Any, seeds: Sequence[int]
) -> np.ndarray:
    """Starts ``theta0[len(seeds), P]``: start ``i`` from the init stream of seed index ``i``
    (the same ``x0`` as seed index ``i`` of a compare trial on this task and model)."""
    rows = [
        np.asarray(
            model.init(
                np.random.default_rng(
                    seeding.init_stream(experiment_seed, task_spec, model.spec(), int(s))
                )
            ),
            dtype=np.float64,
        )
        for s in seeds
    ]
    return np.stack(rows) if rows else np.zeros((0, model.dim))


def study_problem(experiment_seed: int, task: dict, model: dict, data_seed: int = 0) -> Any:
    """The Problem of a study: the task's data from the data stream of seed index
    ``data_seed`` (what a compare trial with that seed index sees) and the model."""
    from suite.problem import make_problem

    task_params = {k: v for k, v in task.items() if k != "task"}
    model_options = {k: v for k, v in model.items() if k != "model"}
    stream = seeding.data_stream(experiment_seed, task, data_seed)
    return make_problem(
        task["task"], model=model["model"], seed=stream, **task_params, **model_options
    )


@dataclass(frozen=True)
class MultiStartChunk:
    """A work unit: a chunk of the starts of one study (one problem, one method).

    ``task``/``model`` are resolved specs, ``method`` a :meth:`Method.spec` dict, ``seeds`` the
    seed indices of the chunk, ``study_seeds`` the number of starts in the whole study (for the
    label only). Records: kind ``"start"``, one per seed index (see :func:`run_chunk`).
    """

    experiment: str
    task: dict
    model: dict
    method: dict
    seeds: tuple[int, ...]
    experiment_seed: int = 0
    data_seed: int = 0
    hessian: bool = True
    labels: dict = field(default_factory=dict, compare=False)

    def study_content(self) -> dict:
        """What identifies the study (every field but the chunk's seeds and labels)."""
        return {
            "task": self.task,
            "model": self.model,
            "method": self.method,
            "experiment_seed": self.experiment_seed,
            "data_seed": self.data_seed,
            "hessian": self.hessian,
        }

    @cached_property
    def study_key(self) -> str:
        """Hash of :meth:`study_content`."""
        return seeding.content_hash(self.study_content())

    def key(self, seed: int) -> str:
        """Record key of seed index ``seed``: hash of the study content and the seed."""
        return seeding.content_hash({**self.study_content(), "seed": int(seed)})

    @property
    def group(self) -> str:
        """Status label: the study."""
        return str(self.labels.get("study") or self.study_key)

    def keys(self) -> list[str]:
        """One key per seed index of the chunk."""
        return [self.key(s) for s in self.seeds]

    def run(self) -> list[dict]:
        """Train the chunk and return its records."""
        return run_chunk(self)


def run_chunk(unit: MultiStartChunk) -> list[dict]:
    """Train one chunk of starts and return one record of kind ``"start"`` per start.

    Record fields: ``key``, ``kind``, ``experiment``, ``study`` (label), ``study_key``, ``spec``
    (task, model, method, seed, experiment_seed, data_seed), ``status`` (:data:`STATUSES` or
    ``"error"`` with ``error`` the traceback), ``final_train_loss``, ``final_test_loss``,
    ``grad_norm``, ``gtol``, ``steps``, ``polish_steps``, ``counters`` (``fe`` charged to this
    start, ``fe_share`` = chunk total / starts), ``analysis_fe``, ``lambda_min``,
    ``lambda_max`` (NaN if diverged or without ``hessian``), ``baseline_loss``, ``target_loss``,
    ``theta`` (the end point), ``time`` (``wall`` = chunk wall time / starts), ``provenance``.
    """
    import traceback

    from suite.curvature import curvature
    from suite.provenance import provenance

    method = Method.from_dict(unit.method)
    label = (
        unit.labels.get("study")
        or f"{unit.task['task']} / {unit.model['model']} / {method.display()}"
    )
    base = {
        "kind": "start",
        "experiment": unit.experiment,
        "study": label,
        "study_key": unit.study_key,
    }

    def spec(seed: int) -> dict:
        return {
            "task": unit.task,
            "model": unit.model,
            "method": method.spec(),
            "seed": int(seed),
            "experiment_seed": unit.experiment_seed,
            "data_seed": unit.data_seed,
        }

    t0 = time.perf_counter()
    try:
        problem = study_problem(unit.experiment_seed, unit.task, unit.model, unit.data_seed)
        theta0 = initial_points(unit.experiment_seed, unit.task, problem.model, unit.seeds)
        rng = np.random.default_rng(
            seeding.optimizer_stream(unit.experiment_seed, unit.study_content())
        )
        problem.start()
        res = train_batch(problem, theta0, method, rng)
        eigs = np.full((len(unit.seeds), 2), np.nan)
        fe_before = problem.counters.fe
        # curvature at every end point that did not diverge: converged ones are classified by
        # it, unconverged ones can be recognised as plateaus (see suite.analysis.optima)
        conv = res.status != "diverged"
        if unit.hessian and conv.any():
            eigs[conv] = curvature(problem.loss_and_grad, res.theta[conv])
        analysis_fe = (problem.counters.fe - fe_before) / max(int(conv.sum()), 1)
        test = np.full(len(unit.seeds), np.nan)
        ok = np.isfinite(res.theta).all(axis=1)
        if ok.any():
            test[ok] = problem.evaluate(res.theta[ok], "test")
    except Exception:  # noqa: BLE001 -- a chunk's failure becomes error records
        error = traceback.format_exc()
        return [
            {**base, "key": unit.key(s), "spec": spec(s), "status": "error", "error": error}
            for s in unit.seeds
        ]
    wall = (time.perf_counter() - t0) / max(len(unit.seeds), 1)
    prov = provenance()
    keep = ~np.isnan(res.trace_steps)
    records = []
    for i, s in enumerate(unit.seeds):
        records.append(
            {
                **base,
                "key": unit.key(s),
                "spec": spec(s),
                "status": str(res.status[i]),
                "error": None,
                "final_train_loss": float(res.loss[i]),
                "final_test_loss": float(test[i]),
                "grad_norm": float(res.grad_norm[i]),
                "gtol": float(res.gtol),
                "steps": int(res.steps[i]),
                "polish_steps": int(res.polish_steps[i]),
                "counters": {"fe": float(res.fe[i]), "fe_share": res.total_fe / len(unit.seeds)},
                "analysis_fe": float(analysis_fe if conv[i] else 0.0),
                "lambda_min": float(eigs[i, 0]),
                "lambda_max": float(eigs[i, 1]),
                "baseline_loss": float(problem.baseline_loss),
                "target_loss": float(problem.target_loss),
                "trace": {
                    "steps": [int(v) for v in res.trace_steps[i][keep[i]]],
                    "loss": [float(v) for v in res.trace_loss[i][keep[i]]],
                },
                "theta": [float(v) for v in res.theta[i]],
                "time": {"wall": wall},
                "provenance": prov,
            }
        )
    return records


# -------------------------------------------------------------------------- expansion
MULTISTART_KEYS = (
    "starts",
    "chunk",
    "data_seed",
    "tdnn_twin",
    "tdnn_window",
    "hessian",
    "problems",
    "methods",
)


def expand_problem_grid(entries: Any) -> Any:
    """Expand ``[[problems]]`` entries whose task or model keys are arrays into their Cartesian
    product (``seq_len = [10, 20]`` with ``spectral_radius = [0.5, 1.5]`` gives 4 entries).

    A ``label`` is kept only for entries without arrays (it would not be unique otherwise).
    Anything that is not a list of tables is returned unchanged (``parse_problems`` reports it).
    """
    import itertools

    if not isinstance(entries, list):
        return entries
    out: list[Any] = []
    for entry in entries:
        if not isinstance(entry, dict):
            out.append(entry)
            continue
        grid = {k: v for k, v in entry.items() if isinstance(v, list) and k != "label"}
        if not grid:
            out.append(entry)
            continue
        fixed = {k: v for k, v in entry.items() if k not in grid and k != "label"}
        for combo in itertools.product(*grid.values()):
            out.append({**fixed, **dict(zip(grid, combo, strict=True))})
    return out


def twin_spec(problem: Any, window: int | None = None) -> Any:
    """The :class:`~suite.experiment.ProblemSpec` of the TDNN twin of an Elman problem:
    same task, hidden size from ``matched_tdnn_hidden`` (closest parameter count), window
    ``window`` or the task's ``seq_len`` (the whole sequence), else 10."""
    import tasks
    from suite.experiment import ProblemSpec
    from suite.models import make_model, matched_tdnn_hidden

    task = tasks.get(problem.task["task"], **{k: v for k, v in problem.task.items() if k != "task"})
    if window is None:
        window = int(task.params.get("seq_len", 10))
    hidden = matched_tdnn_hidden(int(problem.model["hidden"]), task.n_in, task.n_out, window)
    model = make_model(
        "tdnn", task.n_in, task.n_out, hidden=hidden, window=window, dtype=problem.model["dtype"]
    )
    head = problem.label.split(" / ")[0]
    return ProblemSpec(
        task=problem.task,
        model=model.spec(),
        label=f"{head} / tdnn(hidden={hidden}, window={window})",
    )


def expand(d: dict, profile: str) -> list[MultiStartChunk]:
    """Units of a ``multistart`` experiment: problem (and TDNN twin) x method x chunk of starts.

    Keys (besides the common ones): ``starts`` (int n: seed indices 0..n-1, or an array),
    ``chunk`` (starts per unit, default 128), ``data_seed`` (default 0), ``tdnn_twin``
    (default false), ``tdnn_window`` (default: the task's ``seq_len``), ``hessian`` (default
    true), ``problems`` (as in compare; array values expand to a grid, see
    :func:`expand_problem_grid`), ``methods`` (array of tables: :class:`Method` fields).
    """
    from suite.experiment import (
        COMMON_KEYS,
        ExperimentError,
        check_keys,
        parse_problems,
        parse_seeds,
    )

    check_keys(d, COMMON_KEYS + MULTISTART_KEYS, "")
    for key in ("problems", "methods"):
        if key not in d:
            raise ExperimentError(f"missing key {key!r} (a multistart experiment needs it)")
    seeds = parse_seeds(d.get("starts", 100), "starts")
    chunk = d.get("chunk", 128)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ExperimentError(f"chunk: must be an integer >= 1, got {chunk!r}")
    data_seed = d.get("data_seed", 0)
    if isinstance(data_seed, bool) or not isinstance(data_seed, int) or data_seed < 0:
        raise ExperimentError(f"data_seed: must be an integer >= 0, got {data_seed!r}")
    for flag in ("tdnn_twin", "hessian"):
        if flag in d and not isinstance(d[flag], bool):
            raise ExperimentError(f"{flag}: must be true or false, got {d[flag]!r}")
    window = d.get("tdnn_window")
    if window is not None and (
        isinstance(window, bool) or not isinstance(window, int) or window < 1
    ):
        raise ExperimentError(f"tdnn_window: must be an integer >= 1, got {window!r}")
    problems = parse_problems(expand_problem_grid(d["problems"]))
    if d.get("tdnn_twin", False):
        seen = {seeding.canonical_json([p.task, p.model]) for p in problems}
        for p in list(problems):
            if p.model["model"] != "elman":
                continue
            try:
                twin = twin_spec(p, window)
            except (ValueError, TypeError) as exc:
                raise ExperimentError(f"tdnn_twin: {exc}") from None
            key = seeding.canonical_json([twin.task, twin.model])
            if key not in seen:  # elman problems differing only in spectral radius share a twin
                seen.add(key)
                problems.append(twin)
    methods_raw = d["methods"]
    if not isinstance(methods_raw, list) or not methods_raw:
        raise ExperimentError("methods: must be a non-empty array of tables ([[methods]])")
    methods = []
    for i, m in enumerate(methods_raw):
        if not isinstance(m, dict):
            raise ExperimentError(f"methods[{i}]: must be a table")
        try:
            methods.append(Method.from_dict(m))
        except (ValueError, TypeError) as exc:
            raise ExperimentError(f"methods[{i}]: {exc}") from None
    labels = [m.display() for m in methods]
    if len(set(labels)) != len(labels):
        raise ExperimentError(f"methods: duplicate method entries: {labels}")
    units: list[MultiStartChunk] = []
    for p in problems:
        for m in methods:
            for c0 in range(0, len(seeds), chunk):
                units.append(
                    MultiStartChunk(
                        experiment=d["name"],
                        task=p.task,
                        model=p.model,
                        method=m.spec(),
                        seeds=tuple(seeds[c0 : c0 + chunk]),
                        experiment_seed=d["seed"],
                        data_seed=data_seed,
                        hessian=d.get("hessian", True),
                        labels={"study": f"{p.label} / {m.display()}", "problem": p.label},
                    )
                )
    return units


def _register() -> None:
    from suite.experiment import register_kind

    register_kind("multistart", expand)


_register()
