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


@pytest.fixture
def execute_notebook(monkeypatch: pytest.MonkeyPatch):
    """Execute a notebook with nbclient (cwd = its folder, ``suite`` importable); returns it.

    ``env`` adds environment variables for the kernel. Skips when the dev extra is missing.
    """
    import pathlib

    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (dev extra)")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (dev extra)")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (dev extra)")
    root = pathlib.Path(__file__).resolve().parents[1]

    def run(path: pathlib.Path, env: dict[str, str]):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
        )
        monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        nb = nbformat.read(path, as_version=4)
        client = nbclient.NotebookClient(
            nb,
            kernel_name="python3",
            timeout=120,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
        return nb

    return run
