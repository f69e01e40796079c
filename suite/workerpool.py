"""Where local worker processes come from: a fork server, started once per command.

Worker processes of ``--jobs N`` fork from a ``forkserver`` process that has imported
:data:`PRELOAD` once, so a (re)started worker is ready in milliseconds and inherits no threads
or locks from the client. Starting that server costs what importing the suite, scipy and pycma
costs (about a second); :func:`prestart` starts it without waiting, so the command line can let
it import while the client loads the experiment and scans the store. This module imports
nothing of the suite, so calling it first costs nothing.

The server imports pycma through :func:`import_cma_lean` (:mod:`suite.worker_preload`): without
the module-level ``matplotlib.pyplot`` and ``scipy.stats`` imports that pycma makes for its plots
and its surrogate models, both of which it guards and falls back from, and neither of which a
trial uses. That halves the server's start-up (``bench/bench_runner.py`` times it), and the
CMA-ES runs are bit-identical (``tests/test_workerpool.py``).
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.context
import os
import sys
import warnings
from types import ModuleType

PRELOAD = ("suite.worker_preload", "suite.trial", "suite.problem", "suite.optimizers")
"""Modules the fork server imports once, so that a (re)started worker is ready in milliseconds."""

CMA_LEAN_BLOCKED = ("matplotlib", "scipy.stats")
"""What :func:`import_cma_lean` keeps pycma from importing (plots, surrogate models)."""


def import_cma_lean() -> ModuleType:
    """Import pycma without :data:`CMA_LEAN_BLOCKED` (unless they are imported already).

    While pycma imports, those modules are marked absent in ``sys.modules`` (an import of them
    raises ImportError, which pycma catches); the marks are removed afterwards, so a later
    ``import matplotlib`` works as usual. pycma's one warning about it (``cma.plot()`` is not
    available) is filtered by its message, and the warning filters pycma sets itself when
    imported stay in place. A pycma whose import does not survive that falls back to the plain
    import. Returns the module.
    """
    if "cma" in sys.modules:
        return sys.modules["cma"]
    blocked = [name for name in CMA_LEAN_BLOCKED if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    warnings.filterwarnings("ignore", message="Could not import matplotlib", category=UserWarning)
    try:
        return importlib.import_module("cma")
    except ImportError:
        for name in [n for n in sys.modules if n == "cma" or n.startswith("cma.")]:
            del sys.modules[name]
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return importlib.import_module("cma")


def context() -> multiprocessing.context.BaseContext:
    """``forkserver`` where available (workers fork from a clean server process that has
    imported :data:`PRELOAD`; no threads or locks are inherited from this process), else
    ``spawn``. Both start from a fresh interpreter, never a ``fork`` of the client."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
        return ctx
    return multiprocessing.get_context("spawn")


def prestart(jobs: int | None, dask: str | None = None) -> bool:
    """Start the fork server now, without waiting for its imports, when a run will use local
    worker processes (``jobs`` None = CPU count, at least 2, no Dask). True if started."""
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if dask is not None or workers < 2:
        return False
    if context().get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return True
