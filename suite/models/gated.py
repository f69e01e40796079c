"""Gated recurrent cells: LSTM (``model = "lstm"``) and GRU (``model = "gru"``).

Both cells are written, like the Elman network, as one matrix acting on the augmented column
v_t = [h_{t-1}; x_t; 1] (K = H + I + 1 rows): a step is one batched GEMM a_t = E v_t with
E[4H, K] (4 row blocks of H), followed by the cell's elementwise gate function.  Read-out,
loss, truncation and online BPTT(h; h') follow the Elman model (see ``suite.models``); the
cell state (LSTM) is cut together with h wherever the window cuts the gradient (stop-gradient
on (h_{s-k}, c_{s-k})).  h_{-1} = 0 and c_{-1} = 0.

LSTM (Hochreiter & Schmidhuber 1997 with the forget gate of Gers, Schmidhuber & Cummins 2000;
no peepholes; the formulation of PyTorch's ``nn.LSTM``)::

    i_t = sigmoid(W_hi h_{t-1} + W_xi x_t + b_i)       input gate
    f_t = sigmoid(W_hf h_{t-1} + W_xf x_t + b_f)       forget gate
    g_t = tanh(W_hg h_{t-1} + W_xg x_t + b_g)          candidate
    o_t = sigmoid(W_ho h_{t-1} + W_xo x_t + b_o)       output gate
    c_t = f_t * c_{t-1} + i_t * g_t,   h_t = o_t * tanh(c_t),   z_t = W_o h_t + c

GRU (Cho et al. 2014) with the reset gate applied *after* the recurrent product, the variant of
PyTorch's ``nn.GRU`` and cuDNN (Cho et al. write r_t * h_{t-1} inside the product instead)::

    r_t = sigmoid(W_hr h_{t-1} + W_xr x_t + b_r)       reset gate
    u_t = sigmoid(W_hu h_{t-1} + W_xu x_t + b_u)       update gate (PyTorch's z)
    n_t = tanh(W_xn x_t + b_n + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - u_t) * n_t + u_t * h_{t-1},   z_t = W_o h_t + c

Flat parameter layouts (row-major blocks, in this order)
------------------------------------------------------
``lstm``  W[4H, K] (row blocks i, f, g, o; row j = W_h[j, :], W_x[j, :], b[j]),  W_o[O, H],  c[O];
          P = 4H (H + I + 1) + O (H + 1).
``gru``   W[3H, K] (row blocks r, u, n; for n, W_h = W_hn and b = b_n),  b_hn[H],  W_o[O, H],
          c[O];  P = 3H (H + I + 1) + H + O (H + 1).
PyTorch mapping (one layer): ``weight_hh_l0 = W[:, :H]``, ``weight_ih_l0 = W[:, H:H+I]``,
``bias_ih_l0 = b`` and ``bias_hh_l0 = 0`` (LSTM) or ``[0, 0, b_hn]`` (GRU).  The GRU's E has
the rows [W_hr W_xr b_r; W_hu W_xu b_u; 0 W_xn b_n; W_hn 0 b_hn], so that a_t carries the
input and the recurrent parts of n separately.

Initialisation: every cell weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch, then the
LSTM forget-gate biases b_f = 1 (Gers et al. 2000; Jozefowicz, Zaremba & Sutskever 2015);
the read-out as Elman's: W_o ~ N(0, 1/H), c = 0.  Drawn in layout order.

Cost accounting
---------------
One cell step is one evaluation of the gated cell for one sequence; ``forward_steps`` and
``backward_steps`` count cell steps by exactly the Elman rule, so the Problem's fe counter
(forward steps + BWD_FE backward steps) treats a gated step like an Elman step.  It costs more
flops: ~4x (LSTM) and ~3x (GRU) an Elman step of the same H (4 resp. 3 gate blocks of the
same GEMM); the class attribute ``step_cost`` (4.0, 3.0) declares the factor, and is not
applied by the counters.  Compare at equal parameter counts with :func:`matched_hidden`.

Precision and speed
-------------------
``dtype`` as Elman.  The forward pass evaluates sigmoid(x) = (1 + tanh(x / 2)) / 2 (the halving
folded into E's sigmoid rows, which is exact) with NumPy's SIMD tanh, about 4x faster than
scipy's expit; a sigmoid below ~1e-16 then comes out as 0 (absolute error ~1e-16).
``bench/bench_gated.py`` measures the speed against PyTorch and the nonlinearity floor.

References
----------
S. Hochreiter & J. Schmidhuber (1997), "Long short-term memory", Neural Computation 9(8).
F. A. Gers, J. Schmidhuber & F. Cummins (2000), "Learning to forget: continual prediction with
LSTM", Neural Computation 12(10).
K. Cho et al. (2014), "Learning phrase representations using RNN encoder-decoder for
statistical machine translation", EMNLP.
R. Jozefowicz, W. Zaremba & I. Sutskever (2015), "An empirical exploration of recurrent network
architectures", ICML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from suite.models.base import (
    DTYPES,
    OnlineState,
    _dtype_option,
    _flat,
    _int_option,
    _quiet,
    _scratch,
    register_model,
)
from suite.models.recurrent import _Recurrent
from suite.registry import param


class _Gated(_Recurrent):
    """Shared machinery: a_t = E v_t (E[N, 4H, K]), gates G_t[N, 4H, B], cell state C (LSTM).

    Trajectories are V[N, n + 1, K, B] (as Elman), G[N, n, 4H, B] (the cell's stored gate
    values at step t) and C[N, n + 1, H, B] (c_{t-1} at index t; None for the GRU).
    """

    h_init = 0.0
    has_readout = True
    has_cell: ClassVar[bool]  # LSTM: carries c_t
    n_blocks: ClassVar[int]  # gate row blocks of the flat W (4 LSTM, 3 GRU)

    @dataclass(frozen=True)
    class Options:
        hidden: int = param(8, low=1, doc="hidden units H")
        dtype: str = param("float64", choices=DTYPES, doc="compute precision")

    def __init__(self, n_in: int, n_out: int, hidden=8, dtype="float64"):
        self.n_in = _int_option("n_in", n_in, 0)
        self.n_out = _int_option("n_out", n_out, 1)
        self.hidden = _int_option("hidden", hidden, 1)
        self.dtype = _dtype_option(dtype)
        self.n_used = self.n_in
        self.options = {"hidden": self.hidden, "dtype": self.dtype.name}
        self.dim = self._n_cell + self.n_out * (self.hidden + 1)

    @property
    def _n_cell(self) -> int:
        """Number of cell parameters (before the read-out) in the flat layout."""
        return self.n_blocks * self.hidden * self._K + (0 if self.has_cell else self.hidden)

    # --- layout
    def block_shapes(self):
        R, H, I, O = self.n_blocks * self.hidden, self.hidden, self.n_in, self.n_out
        shapes = {"W_h": (R, H), "W_x": (R, I), "b": (R,)}
        if not self.has_cell:
            shapes["b_hn"] = (H,)
        return {**shapes, "W_o": (O, H), "c": (O,)}

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named views {W_h[N, R, H], W_x[N, R, I], b[N, R], (b_hn[N, H]), W_o[N, O, H], c[N, O]}
        of theta[N, P], R = 4H (LSTM) or 3H (GRU), gate blocks in layout order."""
        theta = self._theta(theta)
        R, H, I, K, O = self.n_blocks * self.hidden, self.hidden, self.n_in, self._K, self.n_out
        W = theta[:, : R * K].reshape(len(theta), R, K)
        out = {"W_h": W[:, :, :H], "W_x": W[:, :, H : H + I], "b": W[:, :, H + I]}
        if not self.has_cell:
            out["b_hn"] = theta[:, R * K : R * K + H]
        n = self._n_cell
        out["W_o"] = theta[:, n : n + O * H].reshape(len(theta), O, H)
        out["c"] = theta[:, n + O * H :]
        return out

    def _assemble(self, parts, lead):
        R, H, I = self.n_blocks * self.hidden, self.hidden, self.n_in
        Wh, Wx, b, *rest = parts
        W = np.concatenate(
            [Wh.reshape(*lead, R, H), Wx.reshape(*lead, R, I), b.reshape(*lead, R, 1)], axis=-1
        )
        return np.concatenate([W.reshape(*lead, R * self._K), *rest], axis=-1)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """Cell parameters ~ U(-1/sqrt(H), 1/sqrt(H)) in layout order (LSTM forget-gate biases
        then set to 1), W_o ~ N(0, 1/H), c = 0."""
        H, O = self.hidden, self.n_out
        bound = 1.0 / math.sqrt(H)
        cell = rng.uniform(-bound, bound, size=self._n_cell)
        if self.has_cell:
            cell.reshape(4 * H, self._K)[H : 2 * H, -1] = 1.0
        Wo = rng.normal(0.0, 1.0 / math.sqrt(H), size=O * H)
        return np.concatenate([cell, Wo, np.zeros(O)])

    # --- parameters in the compute dtype
    def _expand(self, theta: np.ndarray) -> np.ndarray:
        """E[N, 4H, K] in the compute dtype."""
        raise NotImplementedError

    def _contract(self, dE: np.ndarray) -> np.ndarray:
        """Flat gradient of the cell parameters [N, n_cell] from dL/dE[N, 4H, K]."""
        raise NotImplementedError

    def _weights(self, theta):
        n, H, O = self._n_cell, self.hidden, self.n_out
        Wo = theta[:, n : n + O * H].reshape(len(theta), O, H).astype(self.dtype)
        c = theta[:, n + O * H :].astype(self.dtype)
        return self._expand(theta), Wo, c

    def _gradient(self, dW, dZ, HS) -> np.ndarray:
        parts = [
            self._contract(dW),
            _flat(np.matmul(dZ, HS.transpose(0, 1, 3, 2)).sum(axis=1)),
            dZ.sum(axis=(1, 3)),
        ]
        return np.concatenate(parts, axis=1).astype(np.float64)

    # --- the cell (implemented by LSTM and GRU)
    def _half(self, E: np.ndarray) -> np.ndarray:
        """E with the sigmoid-gate rows halved, for the forward pass: the cell evaluates
        sigmoid(x) = (1 + tanh(x / 2)) / 2 with NumPy's SIMD tanh (about 4x faster than
        scipy's expit; absolute error ~1e-16, so a sigmoid below ~1e-16 comes out as 0)."""
        Ef = E.copy()
        Ef[:, : 2 * self.hidden] *= 0.5
        if self.has_cell:
            Ef[:, 3 * self.hidden :] *= 0.5
        return Ef

    def _cell(self, a, G, h_prev, c_prev, h_out, c_out, tmp) -> None:
        """One step from pre-activations a[N, 4H, B] (sigmoid rows halved, see ``_half``):
        gates into G, h_t into h_out, c_t into c_out (LSTM); tmp[N, H, B] is scratch.  G may be
        a itself; h_out may be h_prev and c_out may be c_prev."""
        raise NotImplementedError

    def _cell_back(self, G, h_prev, c_prev, c_t, dh, dc):
        """Adjoints through one step for arrays [..., rows, B]: given dL/dh_t and dL/dc_t (None:
        zero), returns (dL/da_t[..., 4H, B], the direct part of dL/dh_{t-1} not through E (or
        None), dL/dc_{t-1} (or None))."""
        raise NotImplementedError

    # --- forward
    def _caches(self, N: int, n: int, B: int, scratch: bool = False):
        """Gate store G[N, n, 4H, B] and cell states C[N, n + 1, H, B] (C[:, 0] = c_{-1} = 0)."""
        H = self.hidden
        new = (lambda name, shape: _scratch(name, shape, self.dtype)) if scratch else None
        shape_g, shape_c = (N, n, 4 * H, B), (N, n + 1, H, B)
        G = new("G", shape_g) if new else np.empty(shape_g, self.dtype)
        if not self.has_cell:
            return G, None
        C = new("C", shape_c) if new else np.empty(shape_c, self.dtype)
        C[:, 0] = 0.0
        return G, C

    def _unroll(self, E, V, G, C, t_lo: int, t_hi: int) -> None:
        """Forward steps t_lo .. t_hi - 1 in place (V[:, t + 1, :H] = h_t, G[:, t], C[:, t + 1])."""
        H, Ef = self.hidden, self._half(E)
        a = np.empty((E.shape[0], 4 * H, V.shape[3]), self.dtype)
        tmp = np.empty((E.shape[0], H, V.shape[3]), self.dtype)
        for t in range(t_lo, t_hi):
            np.matmul(Ef, V[:, t], out=a)
            cp, co = (C[:, t], C[:, t + 1]) if C is not None else (None, None)
            self._cell(a, G[:, t], V[:, t, :H], cp, V[:, t + 1, :H], co, tmp)

    def _states_at(self, E, XC, steps):
        """h_t at the given sorted steps, HS[N, m, H, B]; keeps only the running state."""
        H, I = self.hidden, self.n_used
        N, B = E.shape[0], XC.shape[2]
        v = np.empty((N, self._K, B), self.dtype)
        v[:, :H] = 0.0
        v[:, H + I] = 1.0
        a = np.empty((N, 4 * H, B), self.dtype)
        tmp = np.empty((N, H, B), self.dtype)
        c = np.zeros((N, H, B), self.dtype) if self.has_cell else None
        E = self._half(E)
        HS = np.empty((N, len(steps), H, B), self.dtype)
        j = 0
        for t in range(int(steps[-1]) + 1):
            v[:, H : H + I] = XC[t]
            np.matmul(E, v, out=a)
            self._cell(a, a, v[:, :H], c, v[:, :H], c, tmp)
            if t == steps[j]:
                HS[:, j] = v[:, :H]
                j += 1
        return HS

    def _all_hidden(self, theta, X):
        E = self._expand(theta)
        XC = self._columns(X)
        N, (n, _, B) = theta.shape[0], XC.shape
        V = self._new_states(N, XC)
        G, C = self._caches(N, n, B)
        self._unroll(E, V, G, C, 0, n)
        return V[:, 1:, : self.hidden]

    # --- backward
    def _bptt(self, E, V, G, C, dH, steps, t_lo: int, t_hi: int) -> np.ndarray:
        """BPTT over steps t_hi - 1 down to t_lo; returns dL/dE[N, 4H, K] = sum_t da_t v_t^T.
        dH[:, j] is dL/dh at step steps[j] (through the read-out); nothing flows into
        (h, c)_{t_lo - 1}."""
        H = self.hidden
        EhT = np.ascontiguousarray(E[:, :, :H].transpose(0, 2, 1))  # [N, H, 4H]
        at = {int(s): j for j, s in enumerate(steps)}
        dE = np.zeros(E.shape, self.dtype)
        dE_t = np.empty(E.shape, self.dtype)
        g = np.zeros((E.shape[0], H, V.shape[3]), self.dtype)  # dL/dh_t from later steps
        dc = None
        for t in range(t_hi - 1, t_lo - 1, -1):
            j = at.get(t)
            if j is not None:
                g += dH[:, j]
            cp, ct = (C[:, t], C[:, t + 1]) if C is not None else (None, None)
            da, direct, dc = self._cell_back(G[:, t], V[:, t, :H], cp, ct, g, dc)
            np.matmul(da, V[:, t].transpose(0, 2, 1), out=dE_t)
            dE += dE_t
            if t > t_lo:
                np.matmul(EhT, da, out=g)
                if direct is not None:
                    g += direct
        return dE

    def _window_bptt(self, E, V, G, C, dH, steps, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Window-k adjoints lag by lag, all loss terms in parallel (as Elman's): returns
        (times, dA[N, len(times), 4H, B]) with dA the sum of the da's landing on each time."""
        H, m = self.hidden, len(steps)
        EhT = np.ascontiguousarray(E[:, :, :H].transpose(0, 2, 1))[:, None]
        times = np.unique(steps[:, None] - np.arange(k))
        times = times[times >= 0]
        dA = _scratch("dA", (dH.shape[0], len(times), 4 * H, dH.shape[3]), self.dtype)
        dA.fill(0.0)
        dh, dc, da, direct = dH, None, None, None
        first = 0  # the adjoints hold the terms steps[first:]
        for j in range(k):
            live = int(np.searchsorted(steps, j))  # first term with s >= j
            if live == m:
                break
            if j > 0:
                cut = live - first
                assert da is not None  # set by the first pass (j = 0)
                dh = np.matmul(EhT, da[:, cut:])
                if direct is not None:
                    dh += direct[:, cut:]
                dc = dc[:, cut:] if dc is not None else None
            first = live
            tt = steps[first:] - j
            cp, ct = (C[:, tt], C[:, tt + 1]) if C is not None else (None, None)
            da, direct, dc = self._cell_back(G[:, tt], V[:, tt, :H], cp, ct, dh, dc)
            dA[:, np.searchsorted(times, tt)] += da
        return times, dA

    # --- public methods
    def _loss_and_grad(self, theta, data, kind, truncate):
        E, Wo, c = self._weights(theta)
        last = data.last
        XC = self._columns(data.X[:, :last])
        N, B = theta.shape[0], XC.shape[2]
        V = self._new_states(N, XC, scratch=True)
        G, C = self._caches(N, last, B, scratch=True)
        self._unroll(E, V, G, C, 0, last)

        def backward(dH, steps, lo, hi):
            return self._bptt(E, V, G, C, dH, steps, lo, hi)

        def window(dH, steps, k):
            return self._window_bptt(E, V, G, C, dH, steps, k)

        return self._batch_result(V, Wo, c, data, kind, truncate, backward, window)

    def online_init(self, split: Any) -> OnlineState:
        data = self._data(split)
        B, T = data.X.shape[:2]
        states = self._new_states(1, np.zeros((T, self.n_used, B), self.dtype))
        return OnlineState(0, T, B, data.weight, states, cache=self._caches(1, T, B))

    @_quiet
    def online_chunk(self, theta, split, kind, state, h, h_prime):
        """One BPTT(h; h') chunk, as Elman's ``online_chunk``: the backward pass uses the stored
        trajectory (states, gates, cell states of earlier chunks) and the current weights."""
        theta, (X, Y, M), h, h_prime = self._check_chunk(theta, split, kind, state, h, h_prime)
        H, I = self.hidden, self.n_used
        E, Wo, c = self._weights(theta[None])
        V, (G, C), t0 = state.states, state.cache, state.t
        t1 = min(state.n_steps, t0 + h_prime)
        V[:, t0:t1, H : H + I] = self._columns(X[:, t0:t1])
        self._unroll(E, V, G, C, t0, t1)

        def backward(dH, steps, lo, hi):
            return self._bptt(E, V, G, C, dH, steps, lo, hi)

        return self._chunk_result(V, Y, M, Wo, c, kind, state, t0, t1, h, backward)


def _sig_prime(s):
    return s * (1.0 - s)


@register_model("lstm")
class LSTM(_Gated):
    """LSTM with a forget gate, no peepholes (Gers et al. 2000; PyTorch's ``nn.LSTM``); see the
    module docstring for the equations, layout and initialisation."""

    has_cell = True
    n_blocks = 4
    step_cost = 4.0

    def _expand(self, theta):
        R, K = 4 * self.hidden, self._K
        return theta[:, : R * K].reshape(len(theta), R, K).astype(self.dtype)

    def _contract(self, dE):
        return _flat(dE)

    def _cell(self, a, G, h_prev, c_prev, h_out, c_out, tmp):
        H = self.hidden
        np.tanh(a, out=G)  # g; tanh(x / 2) for i, f, o
        for rows in (slice(0, 2 * H), slice(3 * H, 4 * H)):
            G[:, rows] *= 0.5
            G[:, rows] += 0.5  # i, f, o = (1 + tanh(x / 2)) / 2
        np.multiply(G[:, H : 2 * H], c_prev, out=c_out)  # c_t = f c_{t-1} + i g
        np.multiply(G[:, :H], G[:, 2 * H : 3 * H], out=tmp)
        c_out += tmp
        np.tanh(c_out, out=h_out)  # h_t = o tanh(c_t)
        h_out *= G[:, 3 * H :]

    def _cell_back(self, G, h_prev, c_prev, c_t, dh, dc):
        H = self.hidden
        i, f = G[..., :H, :], G[..., H : 2 * H, :]
        g, o = G[..., 2 * H : 3 * H, :], G[..., 3 * H :, :]
        tc = np.tanh(c_t)
        dct = dh * o * (1.0 - tc * tc)  # dL/dc_t
        if dc is not None:
            dct += dc
        da = np.empty(G.shape, self.dtype)
        np.multiply(dct * g, _sig_prime(i), out=da[..., :H, :])
        np.multiply(dct * c_prev, _sig_prime(f), out=da[..., H : 2 * H, :])
        np.multiply(dct * i, 1.0 - g * g, out=da[..., 2 * H : 3 * H, :])
        np.multiply(dh * tc, _sig_prime(o), out=da[..., 3 * H :, :])
        return da, None, dct * f


@register_model("gru")
class GRU(_Gated):
    """GRU (Cho et al. 2014) with the reset gate after the recurrent product (PyTorch's
    ``nn.GRU``); see the module docstring for the equations, layout and initialisation."""

    has_cell = False
    n_blocks = 3
    step_cost = 3.0

    def _expand(self, theta):
        """E = [W_r; W_u; (0, W_xn, b_n); (W_hn, 0, b_hn)] from W[3H, K] and b_hn."""
        N, H, K = len(theta), self.hidden, self._K
        W = theta[:, : 3 * H * K].reshape(N, 3 * H, K)
        E = np.zeros((N, 4 * H, K), self.dtype)
        E[:, : 3 * H] = W
        E[:, 2 * H : 3 * H, :H] = 0.0
        E[:, 3 * H :, :H] = W[:, 2 * H :, :H]
        E[:, 3 * H :, -1] = theta[:, 3 * H * K : 3 * H * K + H]
        return E

    def _contract(self, dE):
        H = self.hidden
        dW = dE[:, : 3 * H].copy()
        dW[:, 2 * H :, :H] = dE[:, 3 * H :, :H]
        return np.concatenate([_flat(dW), dE[:, 3 * H :, -1]], axis=1)

    def _cell(self, a, G, h_prev, c_prev, h_out, c_out, tmp):
        H = self.hidden
        ru = G[:, : 2 * H]
        np.tanh(a[:, : 2 * H], out=ru)
        ru *= 0.5
        ru += 0.5  # r, u = (1 + tanh(x / 2)) / 2
        if G is not a:
            G[:, 2 * H :] = a[:, 2 * H :]  # W_xn x + b_n, W_hn h + b_hn
        n = G[:, 2 * H : 3 * H]
        np.multiply(G[:, :H], G[:, 3 * H :], out=tmp)
        n += tmp
        np.tanh(n, out=n)
        np.subtract(h_prev, n, out=h_out)  # h_t = n + u (h_{t-1} - n)
        h_out *= G[:, H : 2 * H]
        h_out += n

    def _cell_back(self, G, h_prev, c_prev, c_t, dh, dc):
        H = self.hidden
        r, u = G[..., :H, :], G[..., H : 2 * H, :]
        n, anh = G[..., 2 * H : 3 * H, :], G[..., 3 * H :, :]
        da = np.empty(G.shape, self.dtype)
        dan = da[..., 2 * H : 3 * H, :]
        np.multiply(dh * (1.0 - u), 1.0 - n * n, out=dan)  # dL/d(pre-tanh of n)
        np.multiply(dan * anh, _sig_prime(r), out=da[..., :H, :])
        np.multiply(dh * (h_prev - n), _sig_prime(u), out=da[..., H : 2 * H, :])
        np.multiply(dan, r, out=da[..., 3 * H :, :])
        return da, dh * u, None
