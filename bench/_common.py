"""Set-up shared by the bench scripts: one BLAS thread and the repository on ``sys.path``.

A bench script runs as ``python bench/<name>.py``, so this folder is first on ``sys.path`` and
the script's ``import _common`` finds this module; it must come before numpy is imported.
Importing it sets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` to 1
unless they are already set (worker processes inherit them) and puts the repository root on
``sys.path``, so that ``suite`` and ``tasks`` import without installing the package.

It also holds what the scripts share: the optional PyTorch (:func:`optional_torch`), the
``--quick`` option and table header (:func:`bench_options`), the paired timing
(:func:`paired`) and the printed result :class:`Table`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def optional_torch() -> Any:
    """PyTorch limited to one thread, or None when ``import torch`` fails (it is optional)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - environment dependent
        return None
    torch.set_num_threads(1)
    return torch


def bench_options(description: str, argv: list[str] | None, torch: Any) -> tuple[bool, int]:
    """Parse ``[--quick]``, print the versions and the table header; returns (quick, repeats):
    5 repeats for a quick smoke run, 15 otherwise."""
    import numpy as np

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args(argv)
    print(f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}")
    print(f"  {'benchmark':<66} {'ratio':>9} {'target':>8} {'met':>4}")
    return args.quick, 5 if args.quick else 15


def paired(fa: Callable[[], object], fb: Callable[[], object], repeats: int, na=1, nb=1):
    """Median over ``repeats`` of time(fa) / time(fb), each the mean of ``na`` / ``nb`` calls,
    measured alternately so that both see the same machine load (after one warm-up each).
    Returns (median time of fa, median time of fb, median ratio)."""
    fa()
    fb()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, n, out in ((fa, na, ta), (fb, nb, tb)):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            out.append((time.perf_counter() - t0) / n)
    ratio = statistics.median(a / b for a, b in zip(ta, tb, strict=True))
    return statistics.median(ta), statistics.median(tb), ratio


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, name: str, value: float, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("yes" if ok else "NO")
        self.rows.append((name, f"{value:.3g}", target, verdict))
        print(f"  {name:<66} {value:>9.3g} {target:>8} {verdict:>4}", flush=True)

    def note(self, text: str) -> None:
        print(f"  {text}", flush=True)
