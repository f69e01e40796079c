"""Pascanu, Mikolov & Bengio's single-unit cliff model (``model = "cliff"``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import expit

from suite.models.base import DTYPES, _dtype_option, _int_option, register_model
from suite.models.recurrent import _Recurrent
from suite.registry import param


@register_model("cliff")
class Cliff(_Recurrent):
    """Pascanu et al.'s single unit x_t = w sigmoid(x_{t-1}) + b, x_0 = 0.5, z_t = sigmoid(x_t).

    Reference: Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural
    networks", ICML, section 2.3 (the loss surface over w in [-2, 10], b in [-8, 2] has cliffs).
    """

    @dataclass(frozen=True)
    class Options:
        dtype: str = param("float64", choices=DTYPES, doc="compute precision")

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
