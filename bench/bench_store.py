"""How long loading a results folder of many trial records takes (``load_results(...).trials``).

Builds a store of ``--n`` trial records (default 100,000) by copying the committed records of
``results/speed`` under new keys and seeds (so traces, thetas and field sizes are real ones),
written through :class:`suite.store.Store` as a run writes them, then times, in fresh
processes: the first load after the run (which writes the consolidated columnar frames) and a
second load (which reads them). The target of issue 15 is <= 3 s for 100,000 records.

Run: ``python bench/bench_store.py [--n 100000] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # first: one BLAS thread, repository on sys.path

from suite.columnar import FRAMES
from suite.store import Store, load_results

LOAD = (
    "import sys, time; sys.path.insert(0, {root!r});"
    "from suite.store import load_results; t = time.perf_counter();"
    "n = len(load_results({path!r}).trials); print(n, time.perf_counter() - t)"
)


def build(folder: Path, n: int) -> float:
    """Write ``n`` trial records into ``folder``; return the seconds it took."""
    source = load_results(_common.ROOT / "results" / "speed").records("trial")
    t0 = time.perf_counter()
    with Store(folder) as store:
        store.write_experiment({"name": "bench", "kind": "compare"})
        for i in range(n):
            record = copy.copy(source[i % len(source)])
            record["key"] = f"bench{i:07d}"
            record["spec"] = {**record["spec"], "seed": i}
            store.write(record)
    return time.perf_counter() - t0


def timed_load(folder: Path) -> tuple[int, float]:
    """``(rows, seconds)`` of ``load_results(folder).trials`` in a fresh interpreter (after
    ``import suite.store``: the call alone)."""
    code = LOAD.format(root=str(_common.ROOT), path=str(folder))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    rows, seconds = out.stdout.split()
    return int(rows), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="trial records (100000)")
    parser.add_argument("--keep", default=None, help="build in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp) / "bench-store"
        if not (folder / "index.jsonl").exists():
            print(f"writing {args.n} trial records: {build(folder, args.n):.1f} s")
        with contextlib.suppress(FileNotFoundError):
            (folder / FRAMES).unlink()  # as a folder written before the columnar frames
        for label in ("first load (builds the columnar frames)", "second load"):
            rows, seconds = timed_load(folder)
            print(f"{label}: {rows} trials in {seconds:.2f} s")


if __name__ == "__main__":
    main()
