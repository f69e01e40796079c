"""The time-delay network (``model = "tdnn"``), the feed-forward twin of the Elman network, and
``matched_tdnn_hidden``, its parameter-matched hidden size."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from suite.models.base import (
    DTYPES,
    Model,
    OnlineState,
    _check_truncate,
    _dtype_option,
    _flat,
    _int_option,
    _loss_sums,
    _quiet,
    register_model,
)
from suite.registry import param


@register_model("tdnn")
class TDNN(Model):
    """Time-delay network: z_t = W_o tanh(W_x [x_t; ...; x_{t-w+1}] + b) + c, zeros before t = 0.

    Reference: Waibel, Hanazawa, Hinton, Shikano & Lang (1989), "Phoneme recognition using
    time-delay neural networks".  With one hidden layer over a window it is the feed-forward
    twin of the Elman network (``matched_tdnn_hidden`` matches the parameter count).
    It has no recurrence, so ``truncate`` does not change its gradient.
    """

    @dataclass(frozen=True)
    class Options:
        hidden: int = param(8, low=1, doc="hidden units H")
        window: int = param(10, low=1, doc="inputs seen: x_t, ..., x_{t-w+1}")
        dtype: str = param("float64", choices=DTYPES, doc="compute precision")

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
