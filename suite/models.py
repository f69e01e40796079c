"""The models of the benchmark: Elman RNN, its time-delay twin (TDNN) and Pascanu's cliff unit.

Every model maps a *batch* of flat parameter vectors ``theta[N, P]`` and a split
(``X[B, T, I]``, ``Y[B, T, O]``, mask ``M[B, T]``) to losses ``L[N]`` and gradients
``G[N, P]`` in one vectorised pass: no Python loop over parameter sets (N) or sequences (B),
only over time.  Forward pass and back-propagation through time (BPTT) sit side by side.

Models
------
``elman``  h_t = tanh(W_h h_{t-1} + W_x x_t + b),  h_{-1} = 0,  z_t = W_o h_t + c
           (Elman 1990).  Written as one matrix acting on the augmented vector
           v_t = [h_{t-1}; x_t; 1]:  a_t = W v_t,  W = [W_h | W_x | b]  (H x (H + I + 1)).
``cliff``  x_t = w sigmoid(x_{t-1}) + b,  x_0 = 0.5,  z_t = sigmoid(x_t); theta = (w, b)
           (Pascanu, Mikolov & Bengio 2013, section 2.3).  The same recurrence as ``elman``
           with H = 1, no input, a logistic activation and no read-out: the hidden "activation"
           is h_t = sigmoid(x_{t+1}), so a_t = w h_{t-1} + b, h_{-1} = sigmoid(0.5), z_t = h_t.
           The inputs X are ignored (only their shape B, T is used).
``tdnn``   z_t = W_o tanh(W_x [x_t; x_{t-1}; ...; x_{t-w+1}] + b) + c, zeros before t = 0
           (Waibel et al. 1989): the feed-forward twin of ``elman`` seeing a window of w inputs.
           It is evaluated only at the steps that carry loss.

Flat parameter layouts (row-major blocks, in this order)
---------------------------------------------------------
``elman``  W[H, H + I + 1] (row j = W_h[j, :], W_x[j, :], b[j]),  W_o[O, H],  c[O];
           P = H (H + I + 1) + O (H + 1).  A hidden unit's incoming weights are contiguous.
``cliff``  (w, b);  P = 2.
``tdnn``   W[H, w I + 1] (row j = W_x[j, :], b[j]; column block l I ... (l + 1) I - 1 of W_x
           multiplies x_{t-l}),  W_o[O, H],  c[O];  P = H (w I + 1) + O (H + 1).
``model.unpack(theta)`` returns these blocks by name as views with a leading N axis and
``model.pack(blocks)`` is its inverse.

Loss
----
L = sum_{b,t} M[b,t] sum_o l(Z[b,t,o], Y[b,t,o]) / (O sum_{b,t} M[b,t]),
l = (z - y)^2 ("mse") or l = log(1 + e^z) - y z ("bce", binary cross-entropy on logits).

Truncation
----------
``truncate=k``: the gradient of each loss term flows back at most k steps: the term at step s
reaches the pre-activations a_s, ..., a_{s-k+1} (not below 0); the forward states are the
untruncated ones (stop-gradient on h_{s-k}).  k = 1 keeps only the local step.  When
k > (last loss step) no term is cut and the standard O(T) BPTT is used, so ``k >= T`` is exactly
the full gradient.  Otherwise the window gradient is computed lag by lag, all loss terms in
parallel: lag j moves every live term's adjoint one step back (cost sum_s min(k, s + 1)).

Online truncated BPTT (Williams & Peng 1990, BPTT(h; h'))
---------------------------------------------------------
``online_chunk`` runs h' steps forward from the carried state with the current theta, then
back-propagates the loss terms of those steps through the last h steps, ending at the
chunk's end t1: a term at step s reaches steps max(0, t1 - h) ... s.  States of steps before
the chunk come from the history (computed under the earlier thetas); the backward Jacobians
use the current theta, as in Williams & Peng.  With a fixed theta, one pass with h' = 1 sums to
the ``truncate=h`` gradient and one chunk with h >= T, h' = T is the full gradient.

Cost accounting
---------------
A "cell step" is one step of one sequence.  Recurrent models run the forward pass up to the
last step s_last whose mask is non-zero in some sequence: ``forward_steps = B (s_last + 1)``
(= B T whenever the last step carries loss).  Full BPTT runs back from s_last to 0:
``backward_steps = B (s_last + 1)``; the window-k gradient costs ``B sum_{s in S} min(k, s + 1)``
where S is the set of steps whose mask is non-zero in some sequence.  The TDNN evaluates one
window per sequence and loss step, ``B |S|`` forward and backward, whatever ``truncate`` is.

Precision and speed
-------------------
``dtype="float32"`` computes in float32 and returns float64 losses and gradients (the loss
reduction itself is done in float64).  A step is one batched GEMM ``W @ v`` over the N axis
plus NumPy's SIMD ``np.tanh``; the loss-only path keeps just the running state.
``bench/bench_models.py`` measures the speed.

Example
-------
>>> from types import SimpleNamespace
>>> model = make_model("elman", n_in=2, n_out=1, hidden=4)
>>> theta = np.stack([model.init(np.random.default_rng(s)) for s in range(3)])  # [N, P]
>>> split = SimpleNamespace(X=np.ones((5, 10, 2)), Y=np.ones((5, 10, 1)), M=np.ones((5, 10)))
>>> L, G = model.loss_and_grad(theta, split, "mse", truncate=3)
>>> L.shape, G.shape
((3,), (3, 33))

References
----------
J. L. Elman (1990), "Finding structure in time", Cognitive Science 14(2).
R. J. Williams & J. Peng (1990), "An efficient gradient-based algorithm for on-line training of
recurrent network trajectories", Neural Computation 2(4).
A. Waibel et al. (1989), "Phoneme recognition using time-delay neural networks", IEEE TASSP 37(3).
R. Pascanu, T. Mikolov & Y. Bengio (2013), "On the difficulty of training recurrent neural
networks", ICML.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit

MODEL_NAMES: tuple[str, ...] = ("cliff", "elman", "tdnn")
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
    ``None`` for the TDNN, which carries nothing but the time index.
    """

    t: int  # next step to run
    n_steps: int  # T of the split
    n_seq: int  # B of the split
    total_weight: float  # sum of the split's mask: normalises every chunk's gradient
    states: np.ndarray | None
    last_fwd_steps: int = 0  # sequence-steps run forward by the last chunk (B * steps)
    last_bwd_steps: int = 0  # sequence-steps run backward by the last chunk

    @property
    def done(self) -> bool:
        return self.t >= self.n_steps


# ----------------------------------------------------------------------------- base class


class Model:
    """Common interface (see docs/architecture.md); subclasses implement the maths."""

    name: ClassVar[str]
    DEFAULTS: ClassVar[dict[str, Any]]

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
        X, Y, M = self._arrays(split)
        steps = np.flatnonzero(M.any(axis=0))
        if steps.size == 0:
            raise ValueError("the split's mask M is zero everywhere: the loss is undefined")
        return _Data(X, Y, M, steps, float(M.sum()))

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


# ----------------------------------------------------------------------------- recurrent core


class _Recurrent(Model):
    """a_t = W v_t,  v_t = [h_{t-1}; x_t; 1],  h_t = act(a_t);  optional read-out z = W_o h + c.

    Vectors are columns, one per sequence, so a step is one batched GEMM ``W @ v`` and the hidden
    block of v is contiguous (NumPy's SIMD tanh needs that).  Internal arrays carry the N axis
    first and time second: V[N, t, K, B] holds v_t (K = H + I + 1), so V[:, t + 1, :H] = h_t.
    """

    hidden: int  # H
    n_used: int  # inputs entering the cell (I for elman, 0 for cliff)
    h_init: float  # every component of h_{-1}
    has_readout: bool

    @property
    def _K(self) -> int:
        return self.hidden + self.n_used + 1

    # --- activation and its derivative written in terms of its output
    def _act(self, a: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError

    def _dact(self, h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    # --- parameters and data in the compute dtype
    def _weights(self, theta: np.ndarray):
        """(W[N, H, K], W_o[N, O, H] or None, c[N, O] or None) in the compute dtype."""
        H, K = self.hidden, self._K
        W = theta[:, : H * K].reshape(len(theta), H, K).astype(self.dtype)
        if not self.has_readout:
            return W, None, None
        O = self.n_out
        Wo = theta[:, H * K : H * K + O * H].reshape(len(theta), O, H).astype(self.dtype)
        c = theta[:, H * K + O * H :].astype(self.dtype)
        return W, Wo, c

    def _columns(self, X: np.ndarray) -> np.ndarray:
        """X[B, T, I] -> XC[T, I_used, B]: the inputs of each step as columns."""
        return X[:, :, : self.n_used].transpose(1, 2, 0).astype(self.dtype)

    @staticmethod
    def _at(A: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Targets Y[B, T, O] or mask M[B, T] at the given steps as columns: [m, O or 1, B]."""
        A = A[:, steps]
        return A.transpose(1, 2, 0) if A.ndim == 3 else A.T[:, None, :]

    # --- read-out: Z_t = W_o h_t + c for hidden columns HS[N, m, H, B]
    def _readout(self, Wo, c, HS: np.ndarray) -> np.ndarray:
        if Wo is None:
            return HS
        Z = np.matmul(Wo[:, None], HS)
        Z += c[:, None, :, None]
        return Z

    def _readout_back(self, Wo, dZ: np.ndarray) -> np.ndarray:
        """dL/dh at the loss steps: W_o^T dZ."""
        if Wo is None:
            return dZ
        return np.matmul(Wo.transpose(0, 2, 1)[:, None], dZ)

    def _gradient(self, dW, dZ, HS) -> np.ndarray:
        """Flat G[N, P] in float64 from dL/dW[N, H, K] and the read-out terms
        dL/dW_o = sum dZ h^T, dL/dc = sum dZ."""
        parts = [_flat(dW)]
        if self.has_readout:
            parts.append(_flat(np.matmul(dZ, HS.transpose(0, 1, 3, 2)).sum(axis=1)))
            parts.append(dZ.sum(axis=(1, 3)))
        return np.concatenate(parts, axis=1).astype(np.float64)

    # --- forward pass
    def _states_at(self, W: np.ndarray, XC: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """h_t at the given sorted steps, HS[N, m, H, B]; keeps only the running state."""
        H, I = self.hidden, self.n_used
        N, B = W.shape[0], XC.shape[2]
        v = np.empty((N, self._K, B), self.dtype)
        v[:, :H] = self.h_init
        v[:, H + I] = 1.0
        a = np.empty((N, H, B), self.dtype)
        HS = np.empty((N, len(steps), H, B), self.dtype)
        j = 0
        for t in range(int(steps[-1]) + 1):
            v[:, H : H + I] = XC[t]
            np.matmul(W, v, out=a)  # a_t = W v_t
            self._act(a, out=v[:, :H])  # h_t
            if t == steps[j]:
                HS[:, j] = v[:, :H]
                j += 1
        return HS

    def _new_states(self, N: int, XC: np.ndarray, scratch: bool = False) -> np.ndarray:
        """V[N, n + 1, K, B] with the inputs, the bias row and h_{-1} filled in."""
        H, I = self.hidden, self.n_used
        n, _, B = XC.shape
        shape = (N, n + 1, self._K, B)
        V = _scratch("V", shape, self.dtype) if scratch else np.empty(shape, self.dtype)
        V[:, :n, H : H + I] = XC
        V[:, :n, H + I] = 1.0
        V[:, n, H:] = 0.0
        V[:, 0, :H] = self.h_init
        return V

    def _run(self, W: np.ndarray, V: np.ndarray, t_lo: int, t_hi: int) -> None:
        """Forward steps t_lo .. t_hi - 1 in place: V[:, t + 1, :H] = act(W V[:, t])."""
        a = np.empty((W.shape[0], self.hidden, V.shape[3]), self.dtype)
        for t in range(t_lo, t_hi):
            np.matmul(W, V[:, t], out=a)
            self._act(a, out=V[:, t + 1, : self.hidden])

    # --- backward pass
    def _backward(self, W, V, dH, steps, t_lo: int, t_hi: int) -> np.ndarray:
        """BPTT over steps t = t_hi - 1 down to t_lo; returns dL/dW[N, H, K] = sum_t dA_t v_t^T,

            dA_t = act'(h_t) * (dH_t + W_h^T dA_{t+1}),   dA_{t_hi} = 0,

        where dH[:, j] is dL/dh at step steps[j] (zero at other steps).  Nothing flows into
        h_{t_lo - 1} (that is where a window starts).  dW is accumulated step by step, so the
        pass reads each stored state once and keeps no adjoint history.
        """
        H = self.hidden
        N, B = W.shape[0], V.shape[3]
        WhT = np.ascontiguousarray(W[:, :, :H].transpose(0, 2, 1))
        at = {int(s): j for j, s in enumerate(steps)}
        dW = np.zeros(W.shape, self.dtype)
        dW_t = np.empty(W.shape, self.dtype)
        g = np.zeros((N, H, B), self.dtype)  # dL/dh_t
        dA = np.empty((N, H, B), self.dtype)
        for t in range(t_hi - 1, t_lo - 1, -1):
            if t < t_hi - 1:
                np.matmul(WhT, dA, out=g)  # W_h^T dA_{t+1}
            j = at.get(t)
            if j is not None:
                g += dH[:, j]
            self._dact(V[:, t + 1, :H], out=dA)
            dA *= g  # dA_t
            np.matmul(dA, V[:, t].transpose(0, 2, 1), out=dW_t)  # dA_t v_t^T
            dW += dW_t
        return dW

    def _window_backward(self, W, V, dH, steps, k: int):
        """Window-k adjoints, lag by lag with all loss terms in parallel.

        Lag 0: D_0 = act'(h_s) dH_s at time s; lag j: D_j = act'(h_{s-j}) (W_h^T D_{j-1}) at
        time s - j, for the terms with s >= j.  Returns (times, dA[N, len(times), H, B]) where
        dA sums the D's landing on each time.
        """
        H = self.hidden
        m = len(steps)
        WhT = np.ascontiguousarray(W[:, :, :H].transpose(0, 2, 1))[:, None]
        times = np.unique(steps[:, None] - np.arange(k))
        times = times[times >= 0]
        dA = _scratch("dA", (dH.shape[0], len(times), H, dH.shape[3]), self.dtype)
        dA.fill(0.0)
        D = dH * self._dact(V[:, steps + 1, :H])
        first = 0  # D holds the terms steps[first:]
        for j in range(k):
            live = int(np.searchsorted(steps, j))  # first term with s >= j
            if live == m:
                break
            if j > 0:
                D = np.matmul(WhT, D[:, live - first :])
                D *= self._dact(V[:, steps[live:] - j + 1, :H])
            first = live
            dA[:, np.searchsorted(times, steps[first:] - j)] += D
        return times, dA

    @staticmethod
    def _dW(dA: np.ndarray, Vin: np.ndarray) -> np.ndarray:
        """dL/dW[N, H, K] = sum_{t,b} dA_t v_t^T for matching dA[N, n, H, B], Vin[N, n, K, B]."""
        return np.matmul(dA, Vin.transpose(0, 1, 3, 2)).sum(axis=1)

    # --- public methods
    @_quiet
    def forward(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Outputs Z[N, B, T, O] (float64) at every step."""
        theta = self._theta(theta)
        _, Wo, c = self._weights(theta)
        Z = self._readout(Wo, c, self._all_hidden(theta, self._inputs(X)))
        return Z.transpose(0, 3, 1, 2).astype(np.float64)

    @_quiet
    def hidden_states(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Hidden states Hs[N, B, T, H] (float64) at every step."""
        HS = self._all_hidden(self._theta(theta), self._inputs(X))
        return HS.transpose(0, 3, 1, 2).astype(np.float64)

    def _all_hidden(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """HS[N, T, H, B]: the hidden state at every step."""
        W, _, _ = self._weights(theta)
        XC = self._columns(X)
        V = self._new_states(theta.shape[0], XC)
        self._run(W, V, 0, XC.shape[0])
        return V[:, 1:, : self.hidden]

    def _loss(self, theta, data, kind):
        W, Wo, c = self._weights(theta)
        HS = self._states_at(W, self._columns(data.X[:, : data.last]), data.steps)
        Z = self._readout(Wo, c, HS)
        S, _ = _loss_sums(Z, self._at(data.Y, data.steps), self._at(data.M, data.steps), kind)
        return S / (self.n_out * data.weight)

    def _loss_and_grad(self, theta, data, kind, truncate):
        W, Wo, c = self._weights(theta)
        steps, last = data.steps, data.last
        XC = self._columns(data.X[:, :last])
        V = self._new_states(theta.shape[0], XC, scratch=True)
        self._run(W, V, 0, last)
        HS = V[:, steps + 1, : self.hidden]
        Z = self._readout(Wo, c, HS)
        S, dZ = _loss_sums(Z, self._at(data.Y, steps), self._at(data.M, steps), kind)
        norm = self.n_out * data.weight
        dZ = (dZ / norm).astype(self.dtype)
        dH = self._readout_back(Wo, dZ)
        if truncate is None or truncate >= last:  # no loss term is cut: standard BPTT
            dW = self._backward(W, V, dH, steps, 0, last)
        else:
            times, dA = self._window_backward(W, V, dH, steps, truncate)
            dW = self._dW(dA, V[:, times])
        return S / norm, self._gradient(dW, dZ, HS)

    def forward_steps(self, split: Any) -> int:
        """B (s_last + 1): the forward pass stops at the last step carrying loss."""
        data = self._data(split)
        return data.n_seq * data.last

    def backward_steps(self, split: Any, truncate: int | None = None) -> int:
        """B (s_last + 1) for full BPTT (truncate None or > s_last), else
        B sum_{s in S} min(truncate, s + 1) with S the steps whose mask is non-zero in some
        sequence."""
        data = self._data(split)
        k = _check_truncate(truncate)
        if k is None or k >= data.last:
            return data.n_seq * data.last
        return data.n_seq * int(np.minimum(k, data.steps + 1).sum())

    def online_init(self, split: Any) -> OnlineState:
        data = self._data(split)
        B, T = data.X.shape[:2]
        states = self._new_states(1, np.zeros((T, self.n_used, B), self.dtype))
        return OnlineState(0, T, B, data.weight, states)

    @_quiet
    def online_chunk(self, theta, split, kind, state, h, h_prime):
        """One BPTT(h; h') chunk (Williams & Peng 1990) for a single theta[P].

        Runs steps t0 .. t1 - 1 (t1 = min(T, t0 + h')) from the carried state, then
        back-propagates the chunk's loss terms through steps max(0, t1 - h) .. s_max (s_max the
        chunk's last loss step), using the stored states of earlier chunks.  Returns (mean loss
        of the chunk's terms, the chunk's mask weight, gradient of the chunk's loss terms
        normalised by O times the *whole split's* mask weight, the updated state).  A chunk
        without loss terms returns (0.0, 0.0, zeros, state) and runs nothing backward.
        """
        theta, (X, Y, M), h, h_prime = self._check_chunk(theta, split, kind, state, h, h_prime)
        H, I = self.hidden, self.n_used
        W, Wo, c = self._weights(theta[None])
        V, t0 = state.states, state.t
        t1 = min(state.n_steps, t0 + h_prime)
        V[:, t0:t1, H : H + I] = self._columns(X[:, t0:t1])
        self._run(W, V, t0, t1)
        state.t = t1
        state.last_fwd_steps = state.n_seq * (t1 - t0)
        steps = t0 + np.flatnonzero(M[:, t0:t1].any(axis=0))
        if steps.size == 0:
            state.last_bwd_steps = 0
            return 0.0, 0.0, np.zeros(self.dim), state
        HS = V[:, steps + 1, :H]
        Z = self._readout(Wo, c, HS)
        Ms = self._at(M, steps)
        S, dZ = _loss_sums(Z, self._at(Y, steps), Ms, kind)
        dZ = (dZ / (self.n_out * state.total_weight)).astype(self.dtype)
        lo, hi = max(0, t1 - h), int(steps[-1]) + 1
        dW = self._backward(W, V, self._readout_back(Wo, dZ), steps, lo, hi)
        G = self._gradient(dW, dZ, HS)
        state.last_bwd_steps = state.n_seq * (hi - lo)
        weight = float(Ms.sum())
        return float(S[0]) / (self.n_out * weight), weight, G[0], state


class Elman(_Recurrent):
    """Elman RNN: h_t = tanh(W_h h_{t-1} + W_x x_t + b), h_{-1} = 0, z_t = W_o h_t + c."""

    name = "elman"
    DEFAULTS: ClassVar[dict[str, Any]] = {"hidden": 8, "spectral_radius": 0.9, "dtype": "float64"}
    h_init = 0.0
    has_readout = True

    def __init__(self, n_in: int, n_out: int, hidden=8, spectral_radius=0.9, dtype="float64"):
        self.n_in = _int_option("n_in", n_in, 0)
        self.n_out = _int_option("n_out", n_out, 1)
        self.hidden = _int_option("hidden", hidden, 1)
        self.spectral_radius = _float_option("spectral_radius", spectral_radius, 0.0)
        self.dtype = _dtype_option(dtype)
        self.n_used = self.n_in
        self.options = {
            "hidden": self.hidden,
            "spectral_radius": self.spectral_radius,
            "dtype": self.dtype.name,
        }
        H, K, O = self.hidden, self._K, self.n_out
        self.dim = H * K + O * (H + 1)

    def _act(self, a, out):
        np.tanh(a, out=out)

    def _dact(self, h, out=None):
        d = np.square(h, out=out)  # tanh' = 1 - tanh^2
        np.subtract(1.0, d, out=d)
        return d

    def block_shapes(self):
        H, I, O = self.hidden, self.n_in, self.n_out
        return {"W_h": (H, H), "W_x": (H, I), "b": (H,), "W_o": (O, H), "c": (O,)}

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named views {W_h[N,H,H], W_x[N,H,I], b[N,H], W_o[N,O,H], c[N,O]} of theta[N, P]."""
        theta = self._theta(theta)
        H, I, K, O = self.hidden, self.n_in, self._K, self.n_out
        W = theta[:, : H * K].reshape(len(theta), H, K)
        return {
            "W_h": W[:, :, :H],
            "W_x": W[:, :, H : H + I],
            "b": W[:, :, H + I],
            "W_o": theta[:, H * K : H * K + O * H].reshape(len(theta), O, H),
            "c": theta[:, H * K + O * H :],
        }

    def _assemble(self, parts, lead):
        Wh, Wx, b, Wo, c = parts
        H = self.hidden
        W = np.concatenate(
            [Wh.reshape(*lead, H, H), Wx.reshape(*lead, H, self.n_in), b.reshape(*lead, H, 1)],
            axis=-1,
        )
        return np.concatenate([W.reshape(*lead, H * self._K), Wo, c], axis=-1)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """W_x ~ N(0, 1/I), W_h ~ N(0, 1) rescaled to the exact spectral radius (largest
        |eigenvalue|), W_o ~ N(0, 1/H), biases 0; drawn in that order."""
        H, I, O = self.hidden, self.n_in, self.n_out
        Wx = rng.normal(0.0, 1.0 / math.sqrt(max(I, 1)), size=(H, I))
        Wh = rng.normal(0.0, 1.0, size=(H, H))
        Wo = rng.normal(0.0, 1.0 / math.sqrt(H), size=(O, H))
        radius = float(np.max(np.abs(np.linalg.eigvals(Wh))))
        Wh *= self.spectral_radius / radius
        blocks = {"W_h": Wh, "W_x": Wx, "b": np.zeros(H), "W_o": Wo, "c": np.zeros(O)}
        return self.pack(blocks)


class Cliff(_Recurrent):
    """Pascanu et al.'s single unit x_t = w sigmoid(x_{t-1}) + b, x_0 = 0.5, z_t = sigmoid(x_t).

    Reference: Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural
    networks", ICML, section 2.3 (the loss surface over w in [-2, 10], b in [-8, 2] has cliffs).
    """

    name = "cliff"
    DEFAULTS: ClassVar[dict[str, Any]] = {"dtype": "float64"}
    GRID: ClassVar[dict[str, tuple[float, float]]] = {"w": (-2.0, 10.0), "b": (-8.0, 2.0)}
    h_init = float(expit(0.5))
    has_readout = False
    hidden = 1
    n_used = 0

    def __init__(self, n_in: int, n_out: int, dtype="float64"):
        self.n_in = _int_option("n_in", n_in, 0)
        self.n_out = _int_option("n_out", n_out, 1)
        if self.n_out != 1:
            raise ValueError(f"the cliff unit has one output: n_out must be 1 (got {n_out!r})")
        self.dtype = _dtype_option(dtype)
        self.options = {"dtype": self.dtype.name}
        self.dim = 2

    def _act(self, a, out):
        expit(a, out=out)

    def _dact(self, h, out=None):
        d = np.subtract(1.0, h, out=out)  # sigmoid' = h (1 - h)
        d *= h
        return d

    def block_shapes(self):
        return {"w": (), "b": ()}

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named views {w[N], b[N]} of theta[N, 2]."""
        theta = self._theta(theta)
        return {"w": theta[:, 0], "b": theta[:, 1]}

    def _assemble(self, parts, lead):
        return np.concatenate(parts, axis=-1)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """(w, b) uniform on Pascanu et al.'s grid: w ~ U[-2, 10], then b ~ U[-8, 2]."""
        w = rng.uniform(*self.GRID["w"])
        b = rng.uniform(*self.GRID["b"])
        return np.array([w, b])


# ----------------------------------------------------------------------------- TDNN


class TDNN(Model):
    """Time-delay network: z_t = W_o tanh(W_x [x_t; ...; x_{t-w+1}] + b) + c, zeros before t = 0.

    Reference: Waibel, Hanazawa, Hinton, Shikano & Lang (1989), "Phoneme recognition using
    time-delay neural networks".  With one hidden layer over a window it is the feed-forward
    twin of the Elman network (``matched_tdnn_hidden`` matches the parameter count).
    It has no recurrence, so ``truncate`` does not change its gradient.
    """

    name = "tdnn"
    DEFAULTS: ClassVar[dict[str, Any]] = {"hidden": 8, "window": 10, "dtype": "float64"}

    def __init__(self, n_in: int, n_out: int, hidden=8, window=10, dtype="float64"):
        self.n_in = _int_option("n_in", n_in, 1)
        self.n_out = _int_option("n_out", n_out, 1)
        self.hidden = _int_option("hidden", hidden, 1)
        self.window = _int_option("window", window, 1)
        self.dtype = _dtype_option(dtype)
        self.options = {"hidden": self.hidden, "window": self.window, "dtype": self.dtype.name}
        self.dim = self.hidden * self._K + self.n_out * (self.hidden + 1)

    @property
    def _K(self) -> int:
        return self.window * self.n_in + 1

    def block_shapes(self):
        H, O = self.hidden, self.n_out
        return {"W_x": (H, self._K - 1), "b": (H,), "W_o": (O, H), "c": (O,)}

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named views {W_x[N, H, w I], b[N, H], W_o[N, O, H], c[N, O]} of theta[N, P]."""
        theta = self._theta(theta)
        H, K, O = self.hidden, self._K, self.n_out
        W = theta[:, : H * K].reshape(len(theta), H, K)
        return {
            "W_x": W[:, :, : K - 1],
            "b": W[:, :, K - 1],
            "W_o": theta[:, H * K : H * K + O * H].reshape(len(theta), O, H),
            "c": theta[:, H * K + O * H :],
        }

    def _assemble(self, parts, lead):
        Wx, b, Wo, c = parts
        H = self.hidden
        W = np.concatenate([Wx.reshape(*lead, H, self._K - 1), b.reshape(*lead, H, 1)], axis=-1)
        return np.concatenate([W.reshape(*lead, H * self._K), Wo, c], axis=-1)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """W_x ~ N(0, 1/(w I)) (its fan-in), W_o ~ N(0, 1/H), biases 0; drawn in that order."""
        H, O = self.hidden, self.n_out
        Wx = rng.normal(0.0, 1.0 / math.sqrt(self._K - 1), size=(H, self._K - 1))
        Wo = rng.normal(0.0, 1.0 / math.sqrt(H), size=(O, H))
        return self.pack({"W_x": Wx, "b": np.zeros(H), "W_o": Wo, "c": np.zeros(O)})

    def _windows(self, X: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """U[B * m, w I + 1]: row (b, s) = [x_s; x_{s-1}; ...; x_{s-w+1}; 1] of sequence b."""
        B, T, I = X.shape
        w = self.window
        Xp = np.zeros((B, T + w - 1, I))
        Xp[:, w - 1 :] = X
        lags = steps[:, None] + (w - 1) - np.arange(w)  # column l holds x_{s-l}
        U = np.empty((B, len(steps), self._K), self.dtype)
        U[:, :, :-1] = Xp[:, lags].reshape(B, len(steps), w * I)
        U[:, :, -1] = 1.0
        return U.reshape(B * len(steps), self._K)

    def _weights(self, theta):
        H, K, O = self.hidden, self._K, self.n_out
        W = theta[:, : H * K].reshape(len(theta), H, K).astype(self.dtype)
        Wo = theta[:, H * K : H * K + O * H].reshape(len(theta), O, H).astype(self.dtype)
        c = theta[:, H * K + O * H :].astype(self.dtype)
        return W, Wo, c

    def _outputs(self, theta, X, steps):
        """(W_o, window rows U, hidden Hh[N, R, H], outputs Z[N, R, O]) at the given steps."""
        W, Wo, c = self._weights(theta)
        U = self._windows(X, steps)
        Hh = np.tanh(np.matmul(U, W.transpose(0, 2, 1)))
        Z = np.matmul(Hh, Wo.transpose(0, 2, 1))
        Z += c[:, None, :]
        return Wo, U, Hh, Z

    @_quiet
    def forward(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Outputs Z[N, B, T, O] (float64) at every step."""
        theta, X = self._theta(theta), self._inputs(X)
        B, T, _ = X.shape
        Z = self._outputs(theta, X, np.arange(T))[3]
        return Z.reshape(len(theta), B, T, self.n_out).astype(np.float64)

    def _sums(self, theta, X, Y, M, steps, kind, grad):
        """Unnormalised loss sums of the terms at ``steps`` and, if asked, their gradient:

        dA = (dZ W_o) * (1 - Hh^2),  dW = dA^T U,  dW_o = dZ^T Hh,  dc = sum dZ.
        """
        N, B, m = theta.shape[0], X.shape[0], len(steps)
        Wo, U, Hh, Z = self._outputs(theta, X, steps)
        S, dZ = _loss_sums(Z.reshape(N, B, m, self.n_out), Y[:, steps], M[:, steps, None], kind)
        if not grad:
            return S, None
        dZ = dZ.reshape(N, B * m, self.n_out).astype(self.dtype)
        dA = np.matmul(dZ, Wo)
        dA *= 1.0 - Hh * Hh
        G = [
            _flat(np.matmul(dA.transpose(0, 2, 1), U)),
            _flat(np.matmul(dZ.transpose(0, 2, 1), Hh)),
            dZ.sum(axis=1),
        ]
        return S, np.concatenate(G, axis=1).astype(np.float64)

    def _loss(self, theta, data, kind):
        S, _ = self._sums(theta, data.X, data.Y, data.M, data.steps, kind, grad=False)
        return S / (self.n_out * data.weight)

    def _loss_and_grad(self, theta, data, kind, truncate):
        S, G = self._sums(theta, data.X, data.Y, data.M, data.steps, kind, grad=True)
        norm = self.n_out * data.weight
        return S / norm, G / norm

    def forward_steps(self, split: Any) -> int:
        """B |S|: one window per sequence at every step whose mask is non-zero somewhere."""
        data = self._data(split)
        return data.n_seq * len(data.steps)

    def backward_steps(self, split: Any, truncate: int | None = None) -> int:
        """B |S| whatever ``truncate`` is (no recurrence: nothing to truncate)."""
        _check_truncate(truncate)
        return self.forward_steps(split)

    def online_init(self, split: Any) -> OnlineState:
        data = self._data(split)
        B, T = data.X.shape[:2]
        return OnlineState(0, T, B, data.weight, None)

    @_quiet
    def online_chunk(self, theta, split, kind, state, h, h_prime):
        """Evaluate the windows of the loss steps in t0 .. t0 + h' - 1 (h only validated: the
        TDNN has no recurrence).  Same return values as the recurrent models."""
        theta, (X, Y, M), h, h_prime = self._check_chunk(theta, split, kind, state, h, h_prime)
        t0 = state.t
        t1 = min(state.n_steps, t0 + h_prime)
        state.t = t1
        steps = t0 + np.flatnonzero(M[:, t0:t1].any(axis=0))
        state.last_fwd_steps = state.last_bwd_steps = state.n_seq * len(steps)
        if steps.size == 0:
            return 0.0, 0.0, np.zeros(self.dim), state
        S, G = self._sums(theta[None], X, Y, M, steps, kind, grad=True)
        weight = float(M[:, steps].sum())
        G0 = G[0] / (self.n_out * state.total_weight)
        return float(S[0]) / (self.n_out * weight), weight, G0, state


# ----------------------------------------------------------------------------- factory

_MODELS: dict[str, type[Model]] = {"cliff": Cliff, "elman": Elman, "tdnn": TDNN}


def make_model(name: str, n_in: int, n_out: int, **options: Any) -> Model:
    """Build a model by name ("elman", "tdnn", "cliff") with its options (see the classes).

    >>> make_model("elman", 2, 1, hidden=4).dim
    33
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODEL_NAMES)}")
    cls = _MODELS[name]
    unknown = sorted(set(options) - set(cls.DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for model {name!r}; allowed: {sorted(cls.DEFAULTS)}"
        )
    return cls(n_in, n_out, **options)  # type: ignore[call-arg]  # subclasses take (n_in, n_out, **options)


def matched_tdnn_hidden(elman_hidden: int, n_in: int, n_out: int, window: int) -> int:
    """TDNN hidden size whose parameter count is closest to the Elman network's.

    P_elman = H_e (H_e + I + 1) + O (H_e + 1) and P_tdnn(H) = H (w I + 1) + O (H + 1), linear in
    H, so the answer is round((P_elman - O) / (w I + 1 + O)), at least 1; a tie between the two
    nearest integers goes to the smaller network.
    """
    He = _int_option("elman_hidden", elman_hidden, 1)
    I = _int_option("n_in", n_in, 1)
    O = _int_option("n_out", n_out, 1)
    w = _int_option("window", window, 1)
    target = He * (He + I + 1) + O * (He + 1)
    per_unit = w * I + 1 + O
    lo = max(1, (target - O) // per_unit)
    candidates = (lo, lo + 1)
    return min(candidates, key=lambda H: (abs(H * per_unit + O - target), H))
