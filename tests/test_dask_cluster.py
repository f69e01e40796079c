"""Dask beyond one machine: a scheduler and two worker processes started as separate programs
(``dask scheduler`` / ``dask worker``, as on other hosts) on 127.0.0.1, one worker killed by its
PID in the middle of the run; the run must complete with records identical to ``jobs=1``.

Loopback only: the scheduler and the workers listen on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import normalised_records

from suite.kinds.load import experiment_from_dict
from suite.runner import run_experiment

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("distributed") is None, reason="dask.distributed not installed"
    ),
    pytest.mark.slow,
]

ROOT = Path(__file__).resolve().parents[1]

SPEC = {
    "name": "cluster",
    "seed": 0,
    "seeds": 6,
    "budget": {"fe": 2e5},
    "problems": [{"task": "adding", "seq_len": 10, "hidden": 4, "n_train": 32, "n_test": 16}],
    "optimizers": [{"name": "adam"}, {"name": "cmaes"}],
}
"""12 trials of about 0.1-0.3 s each: long enough that a worker dies with work in flight."""


def _dask_cli() -> list[str]:
    exe = shutil.which("dask", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "distributed.cli.dask_spec"]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_remote_workers_survive_a_killed_worker(tmp_path):
    dask = _dask_cli()
    if dask[0] == sys.executable:
        pytest.skip("the dask command-line entry point is not installed")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    sched_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen] = []
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115 -- closed in finally
    try:
        procs.append(
            subprocess.Popen(
                [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0"]
                + ["--no-dashboard", "--scheduler-file", str(sched_file)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        _wait_for(sched_file.exists, 30, "the scheduler file")
        _wait_for(lambda: "address" in sched_file.read_text(), 30, "the address")
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        *dask,
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--preload",
                        "suite.worker_preload",
                    ]
                    + ["--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            pids = set(client.run(os.getpid).values())
        workers = procs[1:]
        assert pids == {p.pid for p in workers}  # --no-nanny: the process is the worker

        exp = experiment_from_dict(SPEC)
        run_experiment(exp, out=tmp_path / "one", jobs=1, progress=False)

        victim = workers[0]
        killed = threading.Event()
        at_kill: list[int] = []
        records = tmp_path / "cluster" / "cluster" / "records"

        def kill_when_running() -> None:
            # mid-run: after the first records arrived, while others are still in flight
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                n = len(list(records.iterdir())) if records.exists() else 0
                if n >= 2:
                    os.kill(victim.pid, signal.SIGKILL)
                    at_kill.append(n)
                    killed.set()
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_when_running, daemon=True)
        killer.start()
        summary = run_experiment(exp, out=tmp_path / "cluster", dask=address, progress=False)
        killer.join(timeout=5)
        assert killed.is_set(), "the worker was not killed during the run"
        assert victim.wait(timeout=10) == -signal.SIGKILL
        assert summary.executor == f"dask {address}"
        assert summary.completed == len(exp) and summary.pending == 0, summary
        assert not summary.lost and not summary.failed
        assert at_kill[0] < len(exp)  # killed with trials still to run
        one = normalised_records(tmp_path / "one" / "cluster")
        assert len(one) == len(exp)
        assert normalised_records(tmp_path / "cluster" / "cluster") == one
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
