"""One-step-ahead prediction of the chaotic Mackey-Glass series (tau = 17).

References: M. C. Mackey and L. Glass, "Oscillation and chaos in physiological control
systems", Science 197, 287-289, 1977; the tau = 17 prediction benchmark of A. S. Lapedes and
R. M. Farber (1987) and H. Jaeger and H. Haas, "Harnessing nonlinearity", Science 304, 2004.

Series: the delay differential equation

    dx/dt = 0.2 x(t - tau) / (1 + x(t - tau)^10) - 0.1 x(t),    tau = 17,

integrated by Heun's method (explicit trapezoid, second order) with step ``dt = 0.1``, so the
delayed values ``x(t - tau)`` and ``x(t + dt - tau)`` fall on the grid (``tau / dt = 170``).
Each sequence is an independent trajectory (integrated together, vectorised over sequences):
its initial history on ``[-tau, 0]`` is i.i.d. ``U[0.5, 1.3]`` at the grid points, drawn from
the task's generator, and the first ``TRANSIENT = 200`` time units are discarded. The series
is then sampled every ``sample_every`` time units (default 1).

Normalisation: ``x' = (x - mu) / sd`` with ``mu`` and ``sd`` the mean and standard deviation
of all sampled train values (so the train inputs have mean 0 and standard deviation 1; the
test split uses the train constants). On the attractor ``x`` has mean about 0.93, standard
deviation about 0.22 and range about [0.42, 1.32] (measured on a run of 4 x 20000 time units).

A sequence has ``T = washout + seq_len`` steps; at step ``t`` the input is ``x'_t`` and the
target is ``x'_{t+1}`` (one sample ahead); the first ``washout`` steps carry mask 0.

Loss "mse". Trivial baseline: predicting the train mean of the scored targets (the best
constant); measured with the defaults over 200 seeds: mean 0.973, range 0.935-1.008 (normalised
units).

Target: ``target_loss = r``, the train MSE of the linear AR(3) reference: an affine
least-squares fit of the target on the last 3 inputs (:func:`tasks.base.window_fit_mse`),
computed on each generated train split. Sampled every time unit the series is smooth, so simple
predictors are already good: measured (defaults, 50 seeds) the last-input fit (close to
persistence) leaves 0.024 of the baseline, the 2-, 3-, 5- and 10-input fits 5.3e-4, 9.2e-5,
5.0e-6 and 4.4e-7. The target is thus 9.2e-5 of the baseline (range 8.4e-5 - 1.0e-4 over 200
seeds): it asks for a real dynamical model (260 times below persistence) yet is reached
quickly. Reachability (throw-away Elman net, H = 8, full-batch BPTT and scipy's L-BFGS-B, 2
datasets x 4 random starts): all 8 runs reached it after 39-63 loss-and-gradient evaluations
and went on to 1.0e-6 - 1.6e-6 of the baseline within 2200. With ``sample_every = 6`` the task
is harder for linear models (the 3-input fit leaves 0.21 of the baseline, the 10-input one
0.15) while the Elman net reached about 1e-4 of the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.base import (
    Dataset,
    SampledTask,
    Split,
    check_rng,
    param,
    register,
    washout_mask,
    window_fit_mse,
)

TAU = 17.0
DT = 0.1
TRANSIENT = 200.0
HISTORY_LOW, HISTORY_HIGH = 0.5, 1.3
REF_WINDOW = 3
TARGET_FACTOR = 1.0


def mackey_glass(
    rng: np.random.Generator,
    n: int,
    n_samples: int,
    *,
    sample_every: int = 1,
    tau: float = TAU,
    dt: float = DT,
    transient: float = TRANSIENT,
    history: tuple[float, float] = (HISTORY_LOW, HISTORY_HIGH),
) -> np.ndarray:
    """``n`` independent Mackey-Glass trajectories sampled ``n_samples`` times: ``x[n, S]``.

    Heun integration of ``dx/dt = 0.2 x(t-tau) / (1 + x(t-tau)^10) - 0.1 x(t)`` with step
    ``dt`` (``tau / dt`` and ``sample_every / dt`` must be whole numbers), from an i.i.d.
    ``U[history]`` history on the grid of ``[-tau, 0]`` (equal bounds give a constant
    history); the first ``transient`` time units are dropped and the rest sampled every
    ``sample_every`` time units, ``x[:, 0]`` being ``x(transient + sample_every)``. The loop
    runs over time steps only, vectorised over trajectories.
    """
    delay = round(tau / dt)
    per = round(sample_every / dt)
    if not (np.isclose(delay * dt, tau) and np.isclose(per * dt, sample_every)):
        raise ValueError(
            f"tau/dt and sample_every/dt must be whole numbers, got {tau}, {sample_every}, {dt}"
        )
    skip = round(transient / dt)
    steps = skip + n_samples * per
    buf = np.empty((delay + 1 + steps, n))  # buf[delay + k] = x(k dt); rows before are history
    buf[: delay + 1] = rng.uniform(*history, size=(delay + 1, n))

    def rate(x: np.ndarray, x_delayed: np.ndarray) -> np.ndarray:
        return 0.2 * x_delayed / (1.0 + x_delayed**10) - 0.1 * x

    for k in range(delay, delay + steps):
        x = buf[k]
        k1 = rate(x, buf[k - delay])
        k2 = rate(x + dt * k1, buf[k - delay + 1])
        buf[k + 1] = x + 0.5 * dt * (k1 + k2)
    start = delay + skip + per
    return buf[start : start + n_samples * per : per].T.copy()


@register("mackey_glass")
@dataclass(frozen=True, kw_only=True)
class MackeyGlass(SampledTask):
    """Mackey-Glass (tau = 17) one-step-ahead prediction: input x_t, target x_{t+1}."""

    n_in = 1
    n_out = 1
    loss = "mse"

    seq_len: int = param(40, low=1, doc="scored steps per sequence")
    washout: int = param(10, low=0, doc="unscored leading steps per sequence")
    sample_every: int = param(1, low=1, high=50, doc="time units between samples")

    def generate(self, rng: np.random.Generator) -> Dataset:
        check_rng(rng)
        T = self.washout + self.seq_len
        n = self.n_train + self.n_test
        x = mackey_glass(rng, n, T + 1, sample_every=self.sample_every)
        mu = x[: self.n_train].mean()
        sd = x[: self.n_train].std()
        x = (x - mu) / sd
        M = washout_mask(n, T, self.washout)
        X, Y = x[:, :T, None], x[:, 1:, None]
        train = Split(X[: self.n_train], Y[: self.n_train], M[: self.n_train])
        test = Split(X[self.n_train :], Y[self.n_train :], M[self.n_train :])
        return self._dataset(train, test, TARGET_FACTOR * window_fit_mse(train, REF_WINDOW))
