"""The Problem: task data + model + loss, and the one place that counts cost.

Every optimizer reaches the model only through a :class:`Problem` (COCO's idea: the logger wraps
the problem, so every algorithm is measured the same way). The Problem

* evaluates ``loss(theta)`` and ``loss_and_grad(theta, truncate=None)`` on one parameter vector
  ``theta[P]`` or a batch ``theta[N, P]`` (one vectorised pass);
* counts forward and backward cell steps, loss and gradient calls, parameter rows evaluated,
  and the wall time spent inside the model, split by kind of call;
* enforces the trial's :class:`Budget`, raising :class:`BudgetExhausted` at the call that would
  pass it; optimizers that plan with their budget read it (never change it) through
  ``budget``, ``remaining_fe()``, ``remaining_seconds()`` and ``fe_per_loss``;
* keeps the incumbent (best full-train loss seen) and records the trace: at checkpoints on a
  log grid of cost it evaluates the incumbent's train and test loss with the clocks stopped and
  nothing charged;
* turns non-finite losses into ``+inf`` (never a best value) and non-finite parameters into a
  recorded divergence (:class:`Diverged`).

Cost unit. One forward-equivalent (fe) is one forward cell step of one sequence (for the TDNN
twin, one window evaluation). A backward cell step costs ``BWD_FE = 2`` fe, the customary ratio of
reverse- to forward-mode cost (``bench/bench_models.py`` prints the measured ratio).

Example::

    >>> import numpy as np, suite
    >>> p = suite.make_problem("adding", model="elman", hidden=4, seq_len=10, seed=0)
    >>> theta = p.initial_point(np.random.default_rng(0))
    >>> loss, grad = p.loss_and_grad(theta)
    >>> grad.shape == (p.dim,)
    True
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Any

import numpy as np

import tasks as tasks_pkg
from suite.accounting import (
    BWD_FE,
    MAX_NONFINITE_STREAK,
    Budget,
    BudgetExhausted,
    Counters,
    Diverged,
    GradientNotAllowed,
    ProblemResult,
    Trace,
    all_finite,
)
from suite.models import make_model, model_options
from suite.seeding import canonical_json

__all__ = [
    "BWD_FE",
    "MAX_NONFINITE_STREAK",
    "Budget",
    "BudgetExhausted",
    "Counters",
    "Diverged",
    "GradientNotAllowed",
    "OnlineSession",
    "Problem",
    "ProblemResult",
    "Trace",
    "make_problem",
    "problem_from_spec",
]


class OnlineSession:
    """One online pass along the training sequences for truncated BPTT(h; h').

    ``step(theta, h, h_prime)`` runs the next ``h'`` steps forward from the carried hidden state
    with the current ``theta``, backpropagates their loss terms through the last ``h`` steps
    (Williams & Peng 1990) and returns ``(chunk loss, gradient, done)``.
    """

    def __init__(self, problem: Problem, split: Any) -> None:
        self._problem = problem
        self._split = split
        self._n_seq = int(split.X.shape[0])
        self._state = problem.model.online_init(split)
        self.done = False

    def step(self, theta: np.ndarray, h: int, h_prime: int) -> tuple[float, np.ndarray, bool]:
        """Advance one chunk; charge its forward and backward steps."""
        if self.done:
            raise RuntimeError("this online pass is finished; start another with problem.online()")
        if h < 1 or h_prime < 1:
            raise ValueError(f"h and h_prime must be >= 1, got h={h}, h_prime={h_prime}")
        return self._problem._online_step(self, theta, int(h), int(h_prime))


class Problem:
    """A task's data, a model and its loss, behind cost counters, a budget and a trace.

    Build one with :func:`make_problem`. Calls are free of budget until :meth:`start` is called.
    """

    def __init__(self, task: Any, model: Any, dataset: Any) -> None:
        self.task = task
        self.model = model
        self.dataset = dataset
        self.kind: str = task.loss
        self.dim: int = int(model.dim)
        self.target_loss: float = float(dataset.target_loss)
        self.baseline_loss: float = float(dataset.baseline_loss)
        self.n_train: int = int(dataset.train.X.shape[0])
        self.bounds: tuple[np.ndarray, np.ndarray] | None = getattr(model, "bounds", None)
        self._split_cache: dict[bytes, Any] = {}
        self._steps_cache: dict[tuple[int, int | None], tuple[Any, Any, int, int]] = {}
        self.start()

    # ------------------------------------------------------------------ set-up
    def spec(self) -> dict[str, Any]:
        """Plain-data description of the problem: task spec and model spec."""
        return {"task": self.task.spec(), "model": self.model.spec()}

    def initial_point(self, rng: np.random.Generator) -> np.ndarray:
        """A random initial parameter vector drawn from ``rng`` (the model's initialisation)."""
        return np.asarray(self.model.init(rng), dtype=np.float64)

    def start(
        self,
        budget: Budget | None = None,
        allow_gradients: bool = True,
        checkpoints_per_decade: int = 10,
    ) -> None:
        """Reset counters, trace and incumbent; set the budget and start the clocks."""
        if checkpoints_per_decade < 1:
            raise ValueError("checkpoints_per_decade must be >= 1")
        self._budget = budget or Budget()
        self.allow_gradients = allow_gradients
        self.counters = Counters()
        self.trace = Trace()
        self.stop_reason: str | None = None
        self._cpd = int(checkpoints_per_decade)
        self._next_checkpoint = 0.0
        self._incumbent: np.ndarray | None = None
        self._incumbent_loss = math.inf
        self._incumbent_test: float | None = None
        self.first_hit: dict[str, float] | None = None
        self._last: np.ndarray | None = None
        self._nonfinite_streak = 0
        self._all_finite = True  # whether the last call's losses were all finite
        self._paused = 0.0
        self._t0 = time.perf_counter()

    @property
    def budget(self) -> Budget:
        """The trial's :class:`Budget` as set by :meth:`start` (read-only; ``Budget()`` = none)."""
        return self._budget

    @property
    def fe_per_loss(self) -> float:
        """Forward-equivalents charged by one full-training-set ``loss(theta[P])``.

        A batch ``loss(theta[N, P])`` costs ``N`` times this; ``loss_and_grad`` costs more.
        """
        return float(self.model.forward_steps(self.dataset.train))

    def remaining_fe(self) -> float:
        """Forward-equivalents left in the budget (``inf`` without an fe budget).

        ``remaining_fe() // fe_per_loss`` is how many more full-training-set loss evaluations
        fit, which is what an optimizer that plans with its budget (nevergrad's ``budget``)
        needs. Never negative.
        """
        if self._budget.fe is None:
            return math.inf
        return max(0.0, self._budget.fe - self.counters.fe)

    def remaining_seconds(self) -> float:
        """Wall-clock seconds left in the budget (``inf`` without a time budget); never < 0."""
        if self._budget.seconds is None:
            return math.inf
        return max(0.0, self._budget.seconds - self.seconds)

    def set_stop_reason(self, reason: str) -> None:
        """Record the optimizer's own stopping rule (e.g. scipy's convergence message)."""
        self.stop_reason = str(reason)

    @property
    def seconds(self) -> float:
        """Wall time since :meth:`start`, checkpoint evaluations excluded."""
        return time.perf_counter() - self._t0 - self._paused

    @property
    def incumbent(self) -> np.ndarray | None:
        """The best parameter vector seen so far (by full training loss), or None."""
        return None if self._incumbent is None else self._incumbent.copy()

    @property
    def incumbent_loss(self) -> float:
        """Full training loss of the incumbent (``inf`` before any finite evaluation)."""
        return self._incumbent_loss

    # --------------------------------------------------------------- evaluation
    def loss(self, theta: np.ndarray, batch: np.ndarray | None = None) -> float | np.ndarray:
        """Training loss of ``theta[P]`` (a float) or ``theta[N, P]`` (an array ``L[N]``).

        ``batch`` (indices from :meth:`minibatch`) restricts the loss to those sequences.
        Non-finite losses come back as ``+inf``.
        """
        t_enter, ck0 = time.perf_counter(), self.counters.wall_checkpoint
        try:
            rows, single = self._rows(theta)
            split = self._split(batch)
            cost_fwd = rows.shape[0] * self._steps(split, None)[0]
            self._check_budget(cost_fwd)
            t_wall = time.perf_counter()
            losses = np.asarray(self.model.loss(rows, split, self.kind), dtype=np.float64)
            self._charge(t_wall, fwd=cost_fwd, bwd=0, rows=rows.shape[0], grad=False)
            losses = self._after_call(rows, losses, full=batch is None)
            return float(losses[0]) if single else losses
        finally:
            self._leave(t_enter, ck0)

    def loss_and_grad(
        self,
        theta: np.ndarray,
        truncate: int | None = None,
        batch: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray] | tuple[np.ndarray, np.ndarray]:
        """Loss and BPTT gradient of ``theta[P]`` or ``theta[N, P]``.

        ``truncate=k`` lets the gradient of each loss term flow back at most ``k`` steps
        (``k >= T`` is the exact gradient). Rows with a non-finite loss or gradient get loss
        ``+inf`` and a NaN gradient.
        """
        if not self.allow_gradients:
            raise GradientNotAllowed(
                "this optimizer is declared gradient-free (no 'gradient' tag) and may only call "
                "problem.loss(); add the 'gradient' tag to use loss_and_grad()"
            )
        t_enter, ck0 = time.perf_counter(), self.counters.wall_checkpoint
        try:
            if truncate is not None and (int(truncate) != truncate or truncate < 1):
                raise ValueError(f"truncate must be None or an integer >= 1, got {truncate!r}")
            rows, single = self._rows(theta)
            split = self._split(batch)
            n = rows.shape[0]
            fwd, bwd = self._steps(split, truncate)
            cost_fwd, cost_bwd = n * fwd, n * bwd
            self._check_budget(cost_fwd + BWD_FE * cost_bwd)
            t_wall = time.perf_counter()
            losses, grads = self.model.loss_and_grad(rows, split, self.kind, truncate=truncate)
            losses = np.asarray(losses, dtype=np.float64)
            grads = np.asarray(grads, dtype=np.float64)
            self._charge(t_wall, fwd=cost_fwd, bwd=cost_bwd, rows=n, grad=True)
            grads_ok = all_finite(grads)
            if not grads_ok:
                bad_grad = ~np.isfinite(grads).all(axis=1)
                losses = losses.copy()
                losses[bad_grad] = np.nan
            losses = self._after_call(rows, losses, full=batch is None)
            if not (grads_ok and self._all_finite):
                grads = grads.copy()
                grads[~np.isfinite(losses)] = np.nan
            if single:
                return float(losses[0]), grads[0]
            return losses, grads
        finally:
            self._leave(t_enter, ck0)

    def minibatch(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Sorted indices of ``size`` training sequences drawn without replacement from ``rng``."""
        if not 1 <= size <= self.n_train:
            raise ValueError(f"minibatch size must be in 1..{self.n_train}, got {size}")
        return np.sort(rng.choice(self.n_train, size=size, replace=False))

    def online(self, batch: np.ndarray | None = None) -> OnlineSession:
        """Start an online truncated-BPTT pass along the (selected) training sequences."""
        return OnlineSession(self, self._split(batch))

    def evaluate(self, theta: np.ndarray, which: str = "train") -> float | np.ndarray:
        """Loss on the full train or test split, free of charge (for analysis, not optimizers)."""
        if which not in ("train", "test"):
            raise ValueError(f"which must be 'train' or 'test', got {which!r}")
        rows, single = self._rows(theta, check_finite=False)
        split = self.dataset.train if which == "train" else self.dataset.test
        losses = np.asarray(self.model.loss(rows, split, self.kind), dtype=np.float64)
        losses = np.where(np.isfinite(losses), losses, np.inf)
        return float(losses[0]) if single else losses

    def finish(self, theta: np.ndarray | None = None) -> ProblemResult:
        """Close the trial: consider the returned ``theta`` (free), record a last checkpoint."""
        pause = time.perf_counter()
        seconds = self.seconds
        for candidate in (theta, self._last):
            if candidate is None:
                continue
            candidate = np.asarray(candidate, dtype=np.float64)
            if candidate.shape == (self.dim,) and np.isfinite(candidate).all():
                self._consider(candidate, float(self.evaluate(candidate)))
        self._paused += time.perf_counter() - pause
        if self.counters.fe > 0 and (not self.trace.fe or self.trace.fe[-1] != self.counters.fe):
            self._record_checkpoint(seconds)
        elif self.trace.fe:
            self.trace.train_loss[-1] = self._incumbent_loss
            self.trace.test_loss[-1] = self._test_of_incumbent()
        self._test_of_incumbent()
        self.counters.wall_checkpoint += time.perf_counter() - pause
        best = self._incumbent if self._incumbent is not None else np.full(self.dim, np.nan)
        return ProblemResult(
            theta=best.copy(),
            train_loss=self._incumbent_loss,
            test_loss=self._test_of_incumbent(),
            counters=self.counters.as_dict(),
            trace=self.trace.as_dict(),
            seconds=seconds,
            stop_reason=self.stop_reason,
            first_hit=None if self.first_hit is None else dict(self.first_hit),
        )

    # ---------------------------------------------------------------- internals
    def _rows(self, theta: np.ndarray, check_finite: bool = True) -> tuple[np.ndarray, bool]:
        arr = np.asarray(theta, dtype=np.float64)
        single = arr.ndim == 1
        rows = arr[None, :] if single else arr
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(
                f"theta must have shape ({self.dim},) or (N, {self.dim}), got {arr.shape}"
            )
        if check_finite and not all_finite(rows):
            raise Diverged("the optimizer asked for the loss at non-finite parameters")
        return rows, single

    def _steps(self, split: Any, truncate: int | None) -> tuple[int, int]:
        """Forward and backward steps of one row on ``split`` (memoised per split object and
        ``truncate``: the model's step counts cost microseconds, a fifth of the per-call work)."""
        key = (id(split), truncate)
        hit = self._steps_cache.get(key)
        if hit is not None and hit[0] is split and hit[1] is self.model:
            return hit[2], hit[3]
        fwd = int(self.model.forward_steps(split))
        bwd = int(self.model.backward_steps(split, truncate))
        if len(self._steps_cache) > 256:
            self._steps_cache.clear()
        self._steps_cache[key] = (split, self.model, fwd, bwd)
        return fwd, bwd

    def _split(self, batch: np.ndarray | None) -> Any:
        train = self.dataset.train
        if batch is None:
            return train
        idx = np.asarray(batch)
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= self.n_train:
            raise ValueError(
                f"batch must be a non-empty 1-D array of indices in 0..{self.n_train - 1}"
            )
        key = idx.tobytes()
        split = self._split_cache.get(key)
        if split is None:
            split = type(train)(X=train.X[idx], Y=train.Y[idx], M=train.M[idx])
            if len(self._split_cache) > 64:
                self._split_cache.clear()
            self._split_cache[key] = split
        return split

    def _check_budget(self, cost: float) -> None:
        b = self._budget
        if b.fe is not None and self.counters.fe + cost > b.fe:
            raise BudgetExhausted(
                f"the next call costs {cost:.4g} fe; {self.counters.fe:.4g} of {b.fe:.4g} spent"
            )
        if b.seconds is not None and self.seconds >= b.seconds:
            raise BudgetExhausted(f"{self.seconds:.3g} s of {b.seconds:.3g} s spent")

    def _charge(self, t_wall: float, *, fwd: float, bwd: float, rows: int, grad: bool) -> None:
        c = self.counters
        wall = time.perf_counter() - t_wall
        c.wall_inside += wall
        if grad:
            c.wall_grad += wall
        else:
            c.wall_loss += wall
        c.fwd_steps += int(fwd)
        c.bwd_steps += int(bwd)
        c.evaluations += rows
        if grad:
            c.grad_calls += 1
        else:
            c.loss_calls += 1

    def _leave(self, t_enter: float, checkpoint_before: float) -> None:
        """Charge the time since ``t_enter`` to ``wall_calls``, checkpoints excluded."""
        c = self.counters
        c.wall_calls += time.perf_counter() - t_enter - (c.wall_checkpoint - checkpoint_before)

    def _after_call(self, rows: np.ndarray, losses: np.ndarray, full: bool) -> np.ndarray:
        one = losses.shape[0] == 1
        ok = math.isfinite(losses[0]) if one else all_finite(losses)
        self._all_finite = ok
        if not ok:
            finite = np.isfinite(losses)
            self.counters.nonfinite += int((~finite).sum())
            losses = np.where(finite, losses, np.inf)
        if ok or finite.any():
            self._nonfinite_streak = 0
            best = 0 if one else int(np.argmin(losses))
            if full:
                self._consider(rows[best], float(losses[best]))
                self._last = None
            else:
                self._last = rows[best].copy()
        else:
            self._nonfinite_streak += 1
        self._maybe_checkpoint()
        if self._nonfinite_streak >= MAX_NONFINITE_STREAK:
            raise Diverged(f"{MAX_NONFINITE_STREAK} consecutive calls gave only non-finite losses")
        return losses

    def _consider(self, theta: np.ndarray, loss: float) -> None:
        if math.isfinite(loss) and loss < self._incumbent_loss:
            self._incumbent = np.array(theta, dtype=np.float64, copy=True)
            self._incumbent_loss = loss
            self._incumbent_test = None
            if self.first_hit is None and loss <= self.target_loss:
                # exact hitting cost: the counters after the call that evaluated theta
                self.first_hit = {
                    "fe": float(self.counters.fe),
                    "seconds": float(self.seconds),
                    "evaluations": float(self.counters.evaluations),
                }

    def _test_of_incumbent(self) -> float:
        if self._incumbent is None:
            return math.inf
        if self._incumbent_test is None:
            self._incumbent_test = float(self.evaluate(self._incumbent, "test"))
        return self._incumbent_test

    def _maybe_checkpoint(self) -> None:
        fe = self.counters.fe
        if fe < self._next_checkpoint:
            return
        pause = time.perf_counter()
        seconds = pause - self._t0 - self._paused
        if self._last is not None:
            self._consider(self._last, float(self.evaluate(self._last)))
        self._record_checkpoint(seconds)
        # next grid point strictly above the current cost: 10 ** (k / cpd)
        k = math.floor(math.log10(max(fe, 1.0)) * self._cpd + 1e-9) + 1
        self._next_checkpoint = 10.0 ** (k / self._cpd)
        spent = time.perf_counter() - pause
        self._paused += spent
        self.counters.wall_checkpoint += spent

    def _record_checkpoint(self, seconds: float) -> None:
        t = self.trace
        t.fe.append(float(self.counters.fe))
        t.seconds.append(float(seconds))
        t.evaluations.append(int(self.counters.evaluations))
        t.train_loss.append(float(self._incumbent_loss))
        t.test_loss.append(float(self._test_of_incumbent()))

    def _online_step(
        self, session: OnlineSession, theta: np.ndarray, h: int, h_prime: int
    ) -> tuple[float, np.ndarray, bool]:
        # the lean path of the harness: 14,285 chunks per cliff trial, so no _rows round trip
        t_enter, ck0 = time.perf_counter(), self.counters.wall_checkpoint
        try:
            if not self.allow_gradients:
                raise GradientNotAllowed("online truncated BPTT needs gradients")
            x = np.asarray(theta, dtype=np.float64)
            if x.shape != (self.dim,):
                raise ValueError(
                    f"an online chunk takes one parameter vector of shape ({self.dim},), "
                    f"got {x.shape}"
                )
            if not all_finite(x):
                raise Diverged("the optimizer asked for a chunk at non-finite parameters")
            self._check_budget(session._n_seq * (h_prime + BWD_FE * h))
            t_wall = time.perf_counter()
            loss, _weight, grad, state = self.model.online_chunk(
                x, session._split, self.kind, session._state, h, h_prime
            )
            session._state = state
            self._charge(
                t_wall, fwd=state.last_fwd_steps, bwd=state.last_bwd_steps, rows=1, grad=True
            )
            session.done = bool(state.done)
            grad = np.asarray(grad, dtype=np.float64)
            loss = float(loss)
            if not (math.isfinite(loss) and all_finite(grad)):
                self.counters.nonfinite += 1
                self._nonfinite_streak += 1
                loss, grad = math.inf, np.full_like(grad, np.nan)
            else:
                self._nonfinite_streak = 0
                self._last = x.copy()
            self._maybe_checkpoint()
            if self._nonfinite_streak >= MAX_NONFINITE_STREAK:
                raise Diverged(f"{MAX_NONFINITE_STREAK} consecutive chunks gave non-finite values")
            return loss, grad, session.done

        finally:
            self._leave(t_enter, ck0)


def make_problem(
    task: str | Any,
    model: str | None = None,
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
    *,
    dataset: Any = None,
    **options: Any,
) -> Problem:
    """Build a :class:`Problem` from a task (name or Task) and a model name.

    Options named in ``suite.models.model_options()`` (``hidden``, ``window``,
    ``spectral_radius``, ``dtype``, ...) go to the model, all others to the task (e.g.
    ``seq_len``). ``seed`` seeds the data stream (an int, a ``SeedSequence`` or a
    ``Generator``). Tasks that fix their model (``cliff``) use it when ``model`` is None.
    ``dataset``: the task's dataset for that seed, generated before (then ``seed`` is unused).

    >>> p = make_problem("adding", model="tdnn", hidden=8, window=10, seq_len=20)
    >>> p.model.name, p.task.params["seq_len"]
    ('tdnn', 20)
    """
    names = model_options()
    model_opts = {k: v for k, v in options.items() if k in names}
    task_opts = {k: v for k, v in options.items() if k not in names}
    task_obj = tasks_pkg.get(task, **task_opts) if isinstance(task, str) else task
    fixed = getattr(task_obj, "model", None)
    if model is None:
        model = fixed or "elman"
    elif fixed is not None and model != fixed:
        raise ValueError(f"task {task_obj.name!r} requires model {fixed!r}, got model={model!r}")
    if dataset is None:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        dataset = task_obj.generate(rng)
    model_obj = make_model(model, task_obj.n_in, task_obj.n_out, **model_opts)
    return Problem(task_obj, model_obj, dataset)


DATASETS_KEPT = 8
"""How many generated datasets :func:`problem_from_spec` keeps per process (``reuse_data``)."""

_datasets: OrderedDict[tuple, Any] = OrderedDict()


def problem_from_spec(
    task: dict,
    model: dict,
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
    *,
    reuse_data: bool = False,
) -> Problem:
    """The one way from stored specs to a :class:`Problem`.

    ``task`` is a task spec ``{"task": name, **params}``, ``model`` a model spec
    ``{"model": name, **options}`` (as records store them); ``seed`` seeds the data stream
    (a trial passes its data stream, so seed index i gives every optimizer the same data).

    ``reuse_data``: keep the last :data:`DATASETS_KEPT` datasets of this process, keyed by task
    spec and data stream (a ``SeedSequence``: its entropy, spawn key and pool size), and reuse
    one instead of generating it again. A dataset is a deterministic function of that key and
    its arrays are read-only, so this changes nothing but the set-up time: the 15 optimizers of
    a compare experiment share each seed's data, and generating it (integrating Mackey-Glass,
    say) took 18% of a mackey_glass speed trial's wall time.
    """
    task_params = {k: v for k, v in task.items() if k != "task"}
    model_options = {k: v for k, v in model.items() if k != "model"}
    key = None
    if reuse_data and isinstance(seed, np.random.SeedSequence):
        key = (canonical_json(task), repr(seed.entropy), seed.spawn_key, seed.pool_size)
    dataset = None if key is None else _datasets.get(key)
    problem = make_problem(
        task["task"],
        model=model["model"],
        seed=seed,
        dataset=dataset,
        **task_params,
        **model_options,
    )
    if key is not None:
        _datasets[key] = problem.dataset
        _datasets.move_to_end(key)
        while len(_datasets) > DATASETS_KEPT:
            _datasets.popitem(last=False)
    return problem
