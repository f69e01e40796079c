"""One-step-ahead prediction of the yearly sunspot numbers (a real series, 1700-2008).

Reference: the classic split of A. S. Weigend, B. A. Huberman and D. E. Rumelhart,
"Predicting the future: a connectionist approach", Int. J. Neural Systems 1(3), 193-209, 1990
(train 1700-1920, test 1921-1955 and 1956-1979), after H. Tong and K. S. Lim's threshold AR
models (JRSS B 42, 1980). Data: ``tasks/data/sunspots.csv``, the yearly numbers shipped with
statsmodels (see ``tasks/data/SOURCE.md``).

Definitions, with ``s_y`` the sunspot number of year ``y``:

* Scaling: ``x_y = s_y / max_{1700 <= y <= 1920} s_y`` (the train maximum, 154.4 in 1778),
  so the train years lie in [0, 1]; later years can exceed 1 (1957: 190.2 -> 1.23).
* At a step whose input is ``x_y`` the target is ``x_{y+1}`` (one year ahead).
* A period's *scored years* are cut into consecutive chunks of ``seq_len`` years; each chunk
  is one sequence of ``T = washout + seq_len`` steps whose first ``washout`` steps feed the
  preceding years as context (mask 0). Every scored year is scored exactly once. A last,
  shorter chunk is padded with zeros (inputs and targets) under mask 0, so no year after the
  period's end is ever shown.
* Train: scored years ``1701 + washout`` .. 1920 (the first ``washout + 1`` years are only
  context); with the defaults (``seq_len = washout = 10``) 210 years in 21 sequences.
* Validation (``validation_years = v > 0``): the last ``v`` train years (``1921 - v`` ..
  1920) are scored in a separate split for model selection and leave the train split (whose
  AR reference, hence the target, is then fitted on the shorter period); ``v = 0`` (default):
  no validation split.
* Test (``test_period``): scored years 1921-1955 (default; 35 years, 4 sequences) or
  1956-1979 (24 years, 3 sequences); their context years come from before the period, as in
  the classic setup.

The data are fixed: ``generate(rng)`` does not use ``rng`` (it is only type-checked), and the
task has no ``n_train``/``n_test`` parameters (the sizes follow from the years).

Loss "mse". Trivial baseline: predicting the mean of the scored train years (the best
constant): 0.0498 with the defaults (the same constant scores 0.0731 on 1921-1955 and 0.178 on
1956-1979).

Target: ``target_loss = 0.8 r`` where ``r`` is the train MSE of the linear AR reference, an
affine least-squares fit of ``x_{y+1}`` on ``x_y, ..., x_{y-8}`` (Tong's AR(9)) over the scored
train years (:func:`tasks.base.window_fit_mse`; the context steps make all nine lags visible
when ``washout >= 8``, otherwise the missing lags are zero, as for the network). With the
defaults ``r = 0.00838`` (0.168 of the baseline; AR(2) leaves 0.189, AR(1) 0.340), so the target
is 0.00671, 0.135 of the baseline: beating the best linear model by 20%, which needs some
nonlinearity (Tong & Lim's threshold AR and Weigend et al.'s network both fit the train years
better than linear AR). Reachability (throw-away Elman net, H = 8,
full-batch BPTT and scipy's L-BFGS-B, 18 random starts): every run reached it, after 24-46
loss-and-gradient evaluations (1.1 r, the factor first considered, took 7-15 and so did not
separate methods). Longer training overfits: after about 2200 evaluations the train loss was
0.027-0.051 of the baseline while the 1921-1955 test loss ranged from 0.0074 to 0.051.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from tasks.base import (
    Dataset,
    Split,
    Task,
    check_rng,
    param,
    register,
    washout_mask,
    window_fit_mse,
)

FIRST_YEAR = 1700
TRAIN_END = 1920
TEST_PERIODS: dict[str, tuple[int, int]] = {"1921-1955": (1921, 1955), "1956-1979": (1956, 1979)}
AR_ORDER = 9
TARGET_FACTOR = 0.8


@functools.cache
def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """The shipped yearly series: ``(years[int], numbers[float])``, 1700-2008, read-only."""
    path = resources.files("tasks") / "data" / "sunspots.csv"
    with resources.as_file(path) as p:
        table = np.loadtxt(p, delimiter=",", skiprows=1)
    years = table[:, 0].astype(int)
    numbers = table[:, 1].astype(np.float64)
    if not np.array_equal(years, np.arange(years[0], years[0] + len(years))):
        raise ValueError(f"{path} must list consecutive years")
    years.flags.writeable = False
    numbers.flags.writeable = False
    return years, numbers


def _windows(x: np.ndarray, first: int, last: int, washout: int, seq_len: int) -> Split:
    """Sequences scoring the target years ``first..last`` of the scaled series ``x``.

    ``x[i]`` is the value of year ``FIRST_YEAR + i``. Sequence ``k`` scores the years
    ``first + k seq_len ...`` and starts ``washout`` years before its first input year
    ``first + k seq_len - 1``.
    """
    n = math.ceil((last - first + 1) / seq_len)
    T = washout + seq_len
    in_year = first - 1 - washout + seq_len * np.arange(n)[:, None] + np.arange(T)[None, :]
    if in_year.min() < FIRST_YEAR:
        raise ValueError(f"not enough years before {first} for a washout of {washout}")
    keep = in_year + 1 <= last  # the target year is inside the period
    idx = np.where(keep, in_year - FIRST_YEAR, 0)
    X = np.where(keep, x[idx], 0.0)
    Y = np.where(keep, x[idx + 1], 0.0)
    M = keep * washout_mask(n, T, washout)
    return Split(X[:, :, None], Y[:, :, None], M)


@register("sunspots")
@dataclass(frozen=True, kw_only=True)
class Sunspots(Task):
    """Yearly sunspot numbers, one year ahead; train 1700-1920, test 1921-1955 or 1956-1979."""

    n_in = 1
    n_out = 1
    loss = "mse"
    fixed_data = True

    seq_len: int = param(10, low=1, high=200, doc="scored years per sequence")
    washout: int = param(10, low=0, high=100, doc="context years before the scored ones")
    test_period: str = param("1921-1955", choices=tuple(TEST_PERIODS), doc="scored test years")
    validation_years: int = param(
        0, low=0, high=100, doc="last train years held out as a validation split (0: none)"
    )

    @property
    def params(self) -> dict[str, Any]:
        """The resolved parameters; ``validation_years`` only when set, so that the spec (and
        the record keys) of a task without a validation split are what they were before it."""
        params = super().params
        if not params.get("validation_years"):
            params.pop("validation_years", None)
        return params

    def generate(self, rng: np.random.Generator) -> Dataset:
        check_rng(rng)  # the data are fixed; rng is accepted for the common interface
        years, numbers = load_sunspots()
        x = numbers / numbers[years <= TRAIN_END].max()
        train_end = TRAIN_END - self.validation_years
        if train_end < FIRST_YEAR + self.washout + 1 + AR_ORDER:
            raise ValueError(f"validation_years={self.validation_years} leaves too few train years")
        train = _windows(x, FIRST_YEAR + self.washout + 1, train_end, self.washout, self.seq_len)
        validation = None
        if self.validation_years:
            validation = _windows(x, train_end + 1, TRAIN_END, self.washout, self.seq_len)
        first, last = TEST_PERIODS[self.test_period]
        test = _windows(x, first, last, self.washout, self.seq_len)
        target = TARGET_FACTOR * window_fit_mse(train, AR_ORDER)
        return self._dataset(train, test, target, validation)
