"""rnnbench: a comparative optimization benchmark for training small recurrent networks.

The public API is re-exported here (imported on first use, so ``import suite`` stays cheap)::

    import suite
    p = suite.make_problem("adding", model="elman", hidden=8, seq_len=20)
    opt = suite.get_optimizer("adam", lr=0.01)
    results = suite.load_results("results/speed")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # problem
    "make_problem": "suite.problem",
    "Problem": "suite.problem",
    "Budget": "suite.problem",
    "BudgetExhausted": "suite.problem",
    "Diverged": "suite.problem",
    "GradientNotAllowed": "suite.problem",
    "BWD_FE": "suite.problem",
    # models
    "make_model": "suite.models",
    "model_names": "suite.models",
    "register_model": "suite.models",
    "matched_tdnn_hidden": "suite.models",
    "matched_hidden": "suite.models",
    # optimizers
    "Optimizer": "suite.optimizers",
    "register_optimizer": "suite.optimizers",
    "get_optimizer": "suite.optimizers",
    "optimizer_names": "suite.optimizers",
    "optimizer_info": "suite.optimizers",
    "load_plugins": "suite.optimizers",
    "load_entry_points": "suite.optimizers",
    "check_optimizer": "suite.checks",
    # experiments, runner, store
    "load_experiment": "suite.experiment",
    "list_experiments": "suite.experiment",
    "run_experiment": "suite.runner",
    "load_results": "suite.store",
    # reports
    "write_report": "suite.report",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'suite' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
