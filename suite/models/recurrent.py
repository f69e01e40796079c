"""The recurrent core shared by the Elman network and the cliff unit: a_t = W v_t on the
augmented column v_t = [h_{t-1}; x_t; 1], h_t = act(a_t), an optional linear read-out; forward
pass, full BPTT, window-truncated BPTT and online BPTT(h; h') (see ``suite.models``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from suite.models.base import (
    Model,
    OnlineState,
    _check_truncate,
    _flat,
    _loss_sums,
    _quiet,
    _scratch,
)


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
        last = data.last
        XC = self._columns(data.X[:, :last])
        V = self._new_states(theta.shape[0], XC, scratch=True)
        self._run(W, V, 0, last)

        def backward(dH, steps, lo, hi):
            return self._backward(W, V, dH, steps, lo, hi)

        def window(dH, steps, k):
            return self._window_backward(W, V, dH, steps, k)

        return self._batch_result(V, Wo, c, data, kind, truncate, backward, window)

    def _batch_result(self, V, Wo, c, data, kind, truncate, backward, window):
        """The end of ``_loss_and_grad`` once the forward pass has filled the states ``V``: the
        loss terms' read-out and loss, then their gradient, by ``backward(dH, steps, lo, hi) ->
        dW`` through every step when ``truncate`` cuts no loss term, else by the truncated
        ``window(dH, steps, truncate) -> (times, dA)``. Returns (losses, gradients)."""
        steps, last = data.steps, data.last
        HS = V[:, steps + 1, : self.hidden]
        Z = self._readout(Wo, c, HS)
        S, dZ = _loss_sums(Z, self._at(data.Y, steps), self._at(data.M, steps), kind)
        norm = self.n_out * data.weight
        dZ = (dZ / norm).astype(self.dtype)
        dH = self._readout_back(Wo, dZ)
        if truncate is None or truncate >= last:  # no loss term is cut: standard BPTT
            dW = backward(dH, steps, 0, last)
        else:
            times, dA = window(dH, steps, truncate)
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

        def backward(dH, steps, lo, hi):
            return self._backward(W, V, dH, steps, lo, hi)

        return self._chunk_result(V, Y, M, Wo, c, kind, state, t0, t1, h, backward)

    def _chunk_result(self, V, Y, M, Wo, c, kind, state, t0, t1, h, backward):
        """The end of ``online_chunk`` once steps t0 .. t1 - 1 have run forward into ``V``:
        advance ``state``, take the chunk's loss terms, back-propagate them with
        ``backward(dH, steps, lo, hi) -> dW`` through steps max(0, t1 - h) .. s_max and return
        (mean loss of the chunk's terms, their mask weight, gradient, state)."""
        H = self.hidden
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
        dW = backward(self._readout_back(Wo, dZ), steps, lo, hi)
        G = self._gradient(dW, dZ, HS)
        state.last_bwd_steps = state.n_seq * (hi - lo)
        weight = float(Ms.sum())
        return float(S[0]) / (self.n_out * weight), weight, G[0], state
