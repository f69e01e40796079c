"""Imported first by the local fork server (:data:`suite.workerpool.PRELOAD`): pycma without
its plotting and surrogate-model imports (:func:`suite.workerpool.import_cma_lean`), so that the
suite's later imports find it loaded. Also a lean ``--preload`` for Dask workers."""

from suite.workerpool import import_cma_lean

import_cma_lean()

import suite.trial  # noqa: E402, F401  (the rest of what a worker runs)
