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
