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

# Refuse a shadowed `suite` (e.g. a suite.py in the working directory) in one line; suite does
# the same for `tasks` (see suite.check_sibling).
import importlib.util as _util
import pathlib as _pathlib

_origin = getattr(_util.find_spec("suite"), "origin", None)
_expected = _pathlib.Path(__file__).resolve().parent.parent / "suite" / "__init__.py"
if _origin is None or _pathlib.Path(_origin).resolve() != _expected:
    raise ImportError(
        f"rnnbench: {_origin or 'no module suite'} shadows the package 'suite' shipped at "
        f"{_expected.parent} (it comes first on sys.path); rename it or run from another folder"
    )

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
