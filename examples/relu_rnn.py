"""A model plugin: the Elman RNN with a ReLU hidden layer, h_t = max(0, W_h h_{t-1} + W_x x_t + b).

Reference: Q. V. Le, N. Jaitly and G. E. Hinton (2015), "A simple way to initialize recurrent
networks of rectified linear units" (without their identity initialisation). Everything but the
activation (forward pass, exact BPTT, truncation, batching over theta[N, P]) comes from Elman.
"""

import numpy as np

from suite.models import register_model
from suite.models.elman import Elman


@register_model("relu-rnn")
class ReluRNN(Elman):
    """Elman RNN with h = relu(a); relu'(a) = 1 where h > 0."""

    def _act(self, a, out):
        np.maximum(a, 0.0, out=out)

    def _dact(self, h, out=None):
        d = np.greater(h, 0.0).astype(h.dtype)
        if out is None:
            return d
        out[...] = d
        return out
