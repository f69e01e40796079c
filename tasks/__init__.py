"""rnnbench tasks: a registry of named, parameterised datasets for small recurrent networks.

    >>> import numpy as np, tasks
    >>> task = tasks.get("adding", seq_len=30)
    >>> data = task.generate(np.random.default_rng(0))
    >>> data.train.X.shape
    (128, 30, 2)

Every task module registers one :class:`Task` (see ``tasks/base.py`` and docs/architecture.md
for the contract; each module's docstring gives the task's reference, definitions, trivial
baseline and success target).
"""

from suite.registry import param
from tasks import adding, cliff, mackey_glass, narma10, parity, sunspots  # noqa: F401  (register)
from tasks.base import (
    LOSS_KINDS,
    Dataset,
    Split,
    Task,
    get,
    loss_value,
    masked_mean,
    names,
    register,
    window_fit_mse,
)

__all__ = [
    "LOSS_KINDS",
    "Dataset",
    "Split",
    "Task",
    "get",
    "loss_value",
    "masked_mean",
    "names",
    "param",
    "register",
    "window_fit_mse",
]
