"""Set-up shared by the bench scripts: one BLAS thread and the repository on ``sys.path``.

A bench script runs as ``python bench/<name>.py``, so this folder is first on ``sys.path`` and
the script's ``import _common`` finds this module; it must come before numpy is imported.
Importing it sets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` to 1
unless they are already set (worker processes inherit them) and puts the repository root on
``sys.path``, so that ``suite`` and ``tasks`` import without installing the package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # must happen before numpy is imported

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding ``suite`` and ``tasks``)."""

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def limit_blas_threads() -> None:
    """Limit the BLAS/OpenMP libraries loaded so far to one thread (needs threadpoolctl).

    Call it after the imports: it acts on the libraries already loaded, and does nothing when
    threadpoolctl is not installed (the environment variables set above still apply).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - environment dependent
        return
    threadpool_limits(1)
