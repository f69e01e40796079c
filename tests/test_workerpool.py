"""The fork server local workers start from: started early, only when local workers will run."""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver

import pytest

from suite import workerpool


def test_prestart_only_for_local_worker_processes(monkeypatch):
    started = []
    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", lambda: started.append(1))
    assert workerpool.prestart(1) is False  # in-process
    assert workerpool.prestart(4, dask="local") is False  # Dask starts its own workers
    assert started == []
    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no forkserver on this platform")
    assert workerpool.prestart(2) is True
    assert started == [1]


def test_the_fork_server_preloads_what_a_worker_needs():
    ctx = workerpool.context()
    if ctx.get_start_method() == "forkserver":
        assert "suite.trial" in workerpool.PRELOAD
    else:
        assert ctx.get_start_method() == "spawn"


CMA_RUN = r"""
import json, sys
import numpy as np
if sys.argv[1] == "lean":
    from suite.workerpool import import_cma_lean
    import_cma_lean()
from suite.optimizers import get_optimizer
from suite.problem import Budget, make_problem
from suite.trial import run
out = {}
for task, opts in (("adding", {"hidden": 4, "seq_len": 10}), ("cliff", {})):
    for name in ("cmaes", "sep-cmaes", "ipop-cmaes"):
        p = make_problem(task, seed=1, **opts)
        r = run(p, get_optimizer(name), Budget(fe=3e4), seed=2)
        out[f"{task} {name}"] = [r.status, p.incumbent_loss, p.incumbent.tolist()]
out["modules"] = sorted(m for m in ("matplotlib", "scipy.stats") if m in sys.modules)
print(json.dumps(out))
"""


def test_lean_pycma_import_leaves_out_plots_and_stats_and_gives_the_same_runs():
    """The fork server's pycma (no matplotlib, no scipy.stats) runs CMA-ES bit-identically."""
    import json
    import subprocess
    import sys

    got = {}
    for how in ("lean", "plain"):
        proc = subprocess.run(
            [sys.executable, "-c", CMA_RUN, how], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        got[how] = json.loads(proc.stdout)
    assert got["lean"].pop("modules") == []
    assert got["plain"].pop("modules") == ["matplotlib", "scipy.stats"]  # pycma's own imports
    assert got["lean"] == got["plain"]
    # the marks are gone (a later import of a blocked module works), pycma's own warning
    # filters are in place as after a plain import, and its warning about plots is not shown
    code = (
        "import warnings; from suite.workerpool import import_cma_lean; import_cma_lean(); "
        "print(any(f[1] is not None and f[1].pattern.startswith('using exponential smoothing') "
        "for f in warnings.filters)); "
        "import matplotlib.pyplot, scipy.stats; print(scipy.stats.norm.cdf(0.0))"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout.split() == ["True", "0.5"], proc.stderr
    assert "Could not import matplotlib" not in proc.stderr, proc.stderr
