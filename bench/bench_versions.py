"""Old code vs new code on a sample of committed trials, side by side.

Run ``python bench/bench_versions.py OLD_TREE NEW_TREE [--study speed] [--seeds 2]``: picks the
committed trial records of ``results/<study>/records`` with seed index < ``--seeds`` (so every
optimizer x problem is sampled with the same budgets), runs each trial once with each source
tree in two long-lived worker processes (one BLAS thread each, imports paid once), alternating
which tree goes first, one trial at a time, and prints per optimizer and in total the ratio of
summed trial wall times new / old, plus whether the records agree (status, losses, theta, trace
apart from its seconds). A machine shared with other jobs makes absolute times noisy; the
ratios are paired (same trial, back to back).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

WORKER = r"""
import json, sys
from threadpoolctl import threadpool_limits
threadpool_limits(1)
from suite.trial import Trial, run_trial
for line in sys.stdin:
    spec = json.loads(line)
    rec = run_trial(Trial(**spec))
    trace = {k: v for k, v in rec["trace"].items() if k != "seconds"}
    same = [rec["status"], repr(rec["final_train_loss"]), repr(rec["final_test_loss"]),
            rec["theta"], trace, rec["counters"]]
    print(json.dumps({"time": rec["time"], "same": json.dumps(same)}), flush=True)
"""


def worker(tree: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": tree, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tree,
    )


def ask(proc: subprocess.Popen, spec: dict) -> dict:
    proc.stdin.write(json.dumps(spec) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def sample(root: Path, study: str, seeds: int) -> list[dict]:
    out = []
    for path in sorted((root / "results" / study / "records").glob("*.json")):
        r = json.loads(path.read_text())
        if r.get("kind") != "trial" or r["spec"]["seed"] >= seeds:
            continue
        s = r["spec"]
        out.append(
            {
                "experiment": r["experiment"],
                "task": s["task"],
                "model": s["model"],
                "optimizer": s["optimizer"],
                "budget": s["budget"],
                "seed": s["seed"],
                "experiment_seed": s["experiment_seed"],
                "checkpoints_per_decade": s["checkpoints_per_decade"],
                "labels": r.get("labels") or {},
                "_wall": r["time"]["wall"],
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--study", default="speed")
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    specs = sample(Path(args.new), args.study, args.seeds)
    print(f"{len(specs)} trials of results/{args.study} (seed index < {args.seeds})", flush=True)
    procs = {"old": worker(args.old), "new": worker(args.new)}
    walls: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"old": [], "new": []})
    committed: dict[str, float] = defaultdict(float)
    differ = 0
    for i, spec in enumerate(specs):
        committed_wall = spec.pop("_wall")
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        got = {v: ask(procs[v], spec) for v in order}
        name = spec["labels"].get("optimizer") or spec["optimizer"]["name"]
        for v in ("old", "new"):
            walls[name][v].append(got[v]["time"]["wall"])
        committed[name] += committed_wall
        if got["old"]["same"] != got["new"]["same"]:
            differ += 1
            print(f"  records differ: {name} on {spec['labels'].get('problem')}", flush=True)
        if (i + 1) % 20 == 0:
            print(f"  {i + 1}/{len(specs)} done", flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait()
    print(
        f"{'optimizer':24s} {'n':>4s} {'old s':>8s} {'new s':>8s} {'new/old':>8s} "
        f"{'median pair':>11s}"
    )
    tot_old = tot_new = 0.0
    for name, w in walls.items():
        o, n = sum(w["old"]), sum(w["new"])
        tot_old, tot_new = tot_old + o, tot_new + n
        med = statistics.median(b / a for a, b in zip(w["old"], w["new"], strict=True) if a > 0)
        print(f"{name:24s} {len(w['old']):4d} {o:8.2f} {n:8.2f} {n / o:8.3f} {med:11.3f}")
    print(
        f"{'total':24s} {sum(len(w['old']) for w in walls.values()):4d} {tot_old:8.2f} "
        f"{tot_new:8.2f} {tot_new / tot_old:8.3f}"
    )
    print(
        f"committed wall of the same trials: {sum(committed.values()):.2f} s; "
        f"records differing between old and new: {differ}"
    )


if __name__ == "__main__":
    main()
