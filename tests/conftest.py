"""Shared test set-up: one BLAS thread per process.

numpy and scipy each load an OpenBLAS; with several threads each, small problems (L-BFGS-B's
core, 8-unit RNNs) run many times slower and timings get noisy on the 2-core CI machine.
"""

from __future__ import annotations

import os

import pytest
from threadpoolctl import threadpool_limits

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    with threadpool_limits(1):
        yield
