"""The Elman network (``model = "elman"``): see the package docstring of ``suite.models``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from suite.models.base import DTYPES, _dtype_option, _float_option, _int_option, register_model
from suite.models.recurrent import _Recurrent
from suite.registry import param


@register_model("elman")
class Elman(_Recurrent):
    """Elman RNN: h_t = tanh(W_h h_{t-1} + W_x x_t + b), h_{-1} = 0, z_t = W_o h_t + c.

    Reference: J. L. Elman (1990), "Finding structure in time", Cognitive Science 14(2).
    """

    @dataclass(frozen=True)
    class Options:
        hidden: int = param(8, low=1, doc="hidden units H")
        spectral_radius: float = param(0.9, low=0.0, doc="|largest eigenvalue| of W_h at init")
        dtype: str = param("float64", choices=DTYPES, doc="compute precision")

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
