"""A task plugin: recall the input ``delay`` steps later (``y_t = x_{t - delay}``).

Reference: the copy/delay tasks of Hochreiter & Schmidhuber (1997). Trivial baseline: the best
constant (the train mean of the scored targets), loss about 1. Target: 1% of that.
"""

from dataclasses import dataclass

import numpy as np

from tasks.base import SampledTask, Split, param, register


@register("delayed-copy")
@dataclass(frozen=True, kw_only=True)
class DelayedCopy(SampledTask):
    """y_t = x_{t-delay} with x_t ~ N(0, 1); the steps t >= delay are scored (mse)."""

    n_in = 1
    n_out = 1
    loss = "mse"

    seq_len: int = param(12, low=2, doc="steps per sequence")
    delay: int = param(2, low=1, doc="how many steps back to recall")

    def _check(self) -> None:
        if self.delay >= self.seq_len:
            raise ValueError(f"delay must be < seq_len, got {self.delay} >= {self.seq_len}")

    def _split(self, rng: np.random.Generator, n: int) -> Split:
        x = rng.standard_normal((n, self.seq_len, 1))
        y = np.zeros_like(x)
        y[:, self.delay :] = x[:, : -self.delay]
        mask = np.zeros((n, self.seq_len))
        mask[:, self.delay :] = 1.0
        return Split(X=x, Y=y, M=mask)

    def generate(self, rng: np.random.Generator):
        train, test = self._draw_splits(rng)
        dataset = self._dataset(train, test, target_loss=0.0)
        return self._dataset(train, test, target_loss=0.01 * dataset.baseline_loss)
