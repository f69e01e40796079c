"""rnnbench: a comparative optimization benchmark for training small recurrent networks.

The public API is re-exported here (imported on first use, so ``import suite`` stays cheap)::

    import suite
    p = suite.make_problem("adding", model="elman", hidden=8, seq_len=20)
    opt = suite.get_optimizer("adam", lr=0.01)
    results = suite.load_results("results/speed")

``suite`` and ``tasks`` are generic import names: a ``tasks.py`` in the working directory (the
convention of invoke and celery) would be imported in place of the shipped ``tasks`` package.
Importing ``suite`` refuses that with one line saying which file shadows it (see
:func:`check_sibling`); ``tasks/__init__.py`` does the same for ``suite``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
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
    # one run of an optimizer on a problem
    "run": "suite.trial",
    "RunResult": "suite.trial",
    # experiments and their kinds, runner, store
    "Kind": "suite.kinds",
    "register_kind": "suite.kinds",
    "get_kind": "suite.kinds",
    "load_experiment": "suite.kinds.load",
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


def check_sibling(name: str) -> None:
    """Raise ImportError (one line) unless the top-level module ``name`` resolves to the package
    shipped beside this one (``tasks`` next to ``suite``), e.g. when a ``tasks.py`` in the
    working directory comes first on ``sys.path``."""
    expected = Path(__file__).resolve().parent.parent / name / "__init__.py"
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module else None
    if module is None:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
    if origin is None or Path(origin).resolve() != expected:
        found = origin or f"no module {name!r}"
        raise ImportError(
            f"rnnbench: {found} shadows the package {name!r} shipped at {expected.parent} (it "
            "comes first on sys.path); rename it or run from another folder"
        )


check_sibling("tasks")
