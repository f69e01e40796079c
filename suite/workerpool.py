"""Where local worker processes come from: a fork server, started once per command.

Worker processes of ``--jobs N`` fork from a ``forkserver`` process that has imported
:data:`PRELOAD` once, so a (re)started worker is ready in milliseconds and inherits no threads
or locks from the client. Starting that server costs what importing the suite, scipy and pycma
costs (about a second); :func:`prestart` starts it without waiting, so the command line can let
it import while the client loads the experiment and scans the store. This module imports
nothing of the suite, so calling it first costs nothing.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os

PRELOAD = ("suite.trial", "suite.problem", "suite.optimizers")
"""Modules the fork server imports once, so that a (re)started worker is ready in milliseconds."""


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
