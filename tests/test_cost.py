"""The cost split of a trial (where the seconds go) and the speed-ups that must not change
results: the memoised split data of a model, the lean pycma bookkeeping, ``cmaes-auto``."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import suite.optimizers.cmaes as cmaes_module
from suite.optimizers import get_optimizer
from suite.problem import Budget, make_problem
from suite.report.tables import OVERHEAD_PARTS, overhead_section, overhead_table
from suite.trial import TIME_PARTS, Trial, run, run_trial


class _SleepyGD:
    """Gradient steps with ``pause`` seconds of the optimizer's own work between calls."""

    tags = frozenset({"gradient"})

    def __init__(self, pause: float, steps: int) -> None:
        self.pause, self.steps = pause, steps

    def minimize(self, problem, x0, rng):
        x = x0
        for _ in range(self.steps):
            time.sleep(self.pause)
            _, g = problem.loss_and_grad(x)
            x = x - 0.01 * g
        return x


def _problem():
    return make_problem("adding", model="elman", hidden=4, seq_len=8, n_train=16, n_test=8)


def test_optimizer_time_is_what_happens_between_the_problems_calls():
    problem = _problem()
    result = run(problem, _SleepyGD(0.02, 5), Budget(fe=1e9))
    c = problem.counters
    assert result.times["optimizer"] >= 5 * 0.02 * 0.9
    assert c.wall_grad < 5 * 0.02 * 0.5  # the sleeps are not charged to the model
    assert c.wall_loss == 0.0 and c.wall_grad == pytest.approx(c.wall_inside)
    assert c.wall_calls >= c.wall_inside
    total = c.wall_calls + c.wall_checkpoint + result.times["optimizer"]
    assert total == pytest.approx(result.times["minimize"], rel=1e-6, abs=1e-6)


def test_model_time_dominates_a_plain_loop_and_checkpoints_are_counted():
    problem = _problem()
    run(problem, _SleepyGD(0.0, 200), Budget(fe=1e9), checkpoints_per_decade=10)
    c = problem.counters
    assert c.wall_checkpoint > 0.0  # the log grid put checkpoints in the run
    assert c.wall_inside > 0.3 * c.wall_calls


def test_trial_record_splits_wall_time_into_parts_that_add_up():
    trial = Trial(
        "cost",
        {"task": "adding", "seq_len": 8, "n_train": 16, "n_test": 8},
        {"model": "elman", "hidden": 4},
        {"name": "adam", "params": {}},
        {"fe": 2e4, "seconds": None},
        0,
        0,
    )
    t = run_trial(trial)["time"]
    assert set(TIME_PARTS) <= set(t)
    assert all(t[p] >= 0.0 for p in TIME_PARTS)
    assert sum(t[p] for p in TIME_PARTS) == pytest.approx(t["wall"], rel=1e-9)
    assert t["model_loss"] + t["model_grad"] == pytest.approx(t["inside_wall"])
    assert t["model_grad"] > 0.0 and t["setup"] > 0.0


def test_overhead_table_shares_add_up_and_old_records_are_left_out():
    cols = {c: [1.0, 2.0, np.nan] for parts in OVERHEAD_PARTS.values() for c in parts}
    frame = pd.DataFrame(
        {
            "optimizer": ["a", "a", "b"],
            "family": ["x", "x", "y"],
            "wall": [6.0, 12.0, 5.0],
            "fe": [70.0, 140.0, 50.0],
            **cols,
        }
    )
    table = overhead_table(frame)
    assert list(table["optimizer"]) == ["a"]  # b has no split (an old record)
    shares = table[[f"share_{p}" for p in OVERHEAD_PARTS]].sum(axis=1)
    assert shares.iloc[0] == pytest.approx(1.0)
    assert table["x_model_bound"].iloc[0] == pytest.approx(18.0 / 6.0)
    assert table["model_fe_per_s"].iloc[0] == pytest.approx(210.0 / 6.0)
    assert overhead_table(frame.drop(columns=["time_setup"])).empty


def test_overhead_by_task_sums_its_trials_and_gives_the_per_trial_p90():
    parts = [c for cols in OVERHEAD_PARTS.values() for c in cols]
    frame = pd.DataFrame({c: [0.0] * 4 for c in parts})
    frame["task"] = ["u", "u", "u", "v"]
    frame["optimizer"], frame["family"] = "a", "x"
    frame["wall"] = [10.0, 10.0, 20.0, 4.0]
    frame["fe"] = 1.0
    frame["time_model_grad"] = [9.0, 8.0, 19.0, 3.0]
    frame["time_harness"] = [1.0, 1.0, 0.0, 0.5]
    frame["time_checkpoint"] = [0.0, 1.0, 1.0, 0.5]
    table = overhead_table(frame, by="task").set_index("task")
    assert "family" not in table
    assert list(table["runs"]) == [3, 1]
    assert table.loc["u", "share_harness"] == pytest.approx(2.0 / 40.0)
    assert table.loc["u", "share_checkpoint"] == pytest.approx(2.0 / 40.0)
    # per-trial shares 0.1, 0.2, 0.05: the 90th percentile (linear) is 0.18
    assert table.loc["u", "harness_checkpoint_p90"] == pytest.approx(0.18)
    assert table.loc["v", "harness_checkpoint_p90"] == pytest.approx(0.25)


def test_split_data_is_memoised_per_split_object_only():
    problem = _problem()
    model, train = problem.model, problem.dataset.train
    assert model._data(train) is model._data(train)
    copy = type(train)(X=train.X.copy(), Y=train.Y.copy(), M=train.M.copy())
    assert model._data(copy) is not model._data(train)


@pytest.mark.parametrize("name", ["cmaes", "sep-cmaes", "ipop-cmaes"])
@pytest.mark.parametrize("task", ["adding", "cliff"])
def test_lean_pycma_bookkeeping_gives_the_same_run(monkeypatch, name, task):
    def once(lean: bool):
        monkeypatch.setattr(cmaes_module, "LEAN", lean)
        kw = {"seq_len": 8, "hidden": 4, "n_train": 16} if task == "adding" else {}
        problem = make_problem(task, seed=0, **kw)
        result = run(problem, get_optimizer(name), Budget(fe=3e4), seed=1, init_seed=2)
        return result, problem.finish(result.theta)

    (a, fa), (b, fb) = once(True), once(False)
    assert a.status == b.status and a.counters["fe"] == b.counters["fe"]
    assert np.array_equal(a.incumbent, b.incumbent)
    for name in ("fe", "evaluations", "train_loss", "test_loss"):  # seconds aside
        assert fa.trace[name] == fb.trace[name]


def test_cmaes_auto_goes_separable_above_its_dimension():
    small = make_problem("adding", seq_len=8, hidden=4)
    large = make_problem("adding", seq_len=8, hidden=16)
    opt = get_optimizer("cmaes-auto")
    assert small.dim <= cmaes_module.SEPARABLE_ABOVE < large.dim
    assert opt.options(small, 10, np.random.default_rng(0))["CMA_diagonal"] is False
    assert opt.options(large, 10, np.random.default_rng(0))["CMA_diagonal"] is True
    low = get_optimizer("cmaes-auto", separable_above=10)
    assert low.options(small, 10, np.random.default_rng(0))["CMA_diagonal"] is True
    assert (
        get_optimizer("cmaes").options(large, 10, np.random.default_rng(0))["CMA_diagonal"] is False
    )


def test_overhead_section_writes_a_table_with_distinct_headers(tmp_path):
    cols = {c: [1.0, 2.0] for parts in OVERHEAD_PARTS.values() for c in parts}
    frame = pd.DataFrame(
        {"optimizer": ["a", "b"], "family": ["x", "y"], "wall": [6.0, 12.0], "fe": [1.0, 2.0]}
        | cols
    )
    frame["task"] = ["t1", "t2"]
    lines = overhead_section(frame, tmp_path, latex=False)
    assert lines and lines[0] == "### Where the time went"
    by_task = (tmp_path / "overhead_by_task.md").read_text()
    assert by_task.splitlines()[0].strip("| ").startswith("task") and "| t2 |" in by_task
    header = (tmp_path / "overhead.md").read_text().splitlines()[0]
    names = [h.strip() for h in header.strip("|").split("|")]
    assert len(set(names)) == len(names) and names[0] == "optimizer"
    assert "| a |" in (tmp_path / "overhead.md").read_text()
    assert overhead_section(frame.drop(columns=["time_setup"]), tmp_path, latex=False) == []
    assert not (tmp_path / "overhead.md").exists()  # a stale table is removed
    assert not (tmp_path / "overhead_by_task.md").exists()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 16, 17, 97, 4000])
def test_all_finite_agrees_with_the_exact_check(dtype, n):
    """The one-pass check (Python sum, or a sum of squares) must never call a finite array
    non-finite or miss a NaN or infinity, overflow of finite values included."""
    from suite.accounting import all_finite

    rng = np.random.default_rng(n)
    big = np.finfo(dtype).max / 2  # finite, but its square and sums of a few overflow
    cases = [rng.standard_normal(n).astype(dtype), np.full(n, big, dtype=dtype)]
    for bad in (np.nan, np.inf, -np.inf):
        a = rng.standard_normal(n).astype(dtype)
        a[rng.integers(n)] = bad
        cases.append(a)
    if n >= 2:
        mixed = np.full(n, big, dtype=dtype)
        mixed[0] = np.inf
        mixed[1] = -np.inf  # inf - inf: a NaN sum, and a non-finite array
        cases.append(mixed)
        wide = rng.standard_normal((2, n)).astype(dtype)
        cases += [wide, wide[:, ::2], wide.T]  # 2-D, strided, transposed
        strided = wide.copy()
        strided[1, -1] = np.nan
        cases.append(strided[:, ::-1])
    for a in cases:
        assert all_finite(a) == bool(np.isfinite(a).all()), (a.dtype, a.shape, a.ravel()[:3])


def test_slow_imports_an_optimizer_declares_are_paid_in_set_up_not_on_its_clock(
    tmp_path, monkeypatch
):
    """``Optimizer.imports``: run() imports them before the Problem's clocks start."""
    import sys

    (tmp_path / "slow_module_for_rnnbench_test.py").write_text("import time\ntime.sleep(0.3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_module_for_rnnbench_test", raising=False)
    seen = []

    class _Importer(_SleepyGD):
        imports = ("slow_module_for_rnnbench_test",)

        def minimize(self, problem, x0, rng):
            import slow_module_for_rnnbench_test  # noqa: F401  (free: already imported)

            seen.append(problem.seconds)
            return super().minimize(problem, x0, rng)

    result = run(_problem(), _Importer(0.0, 2), Budget(fe=1e6))
    assert result.status == "ok" and "slow_module_for_rnnbench_test" in sys.modules
    assert seen[0] < 0.1 and result.seconds < 0.25  # the 0.3 s import is not on the clock
    assert get_optimizer("cmaes").imports == ("cma",)
    assert get_optimizer("sep-cmaes").imports == ("cma",)


def test_trials_of_one_seed_share_its_data_and_their_records_do_not_change():
    """``problem_from_spec(reuse_data=True)``: the same key gives the same read-only dataset
    object, another seed index or task another dataset, and a trial's record is the same
    whether its data was generated or reused."""
    import json

    from suite import problem as problem_module
    from suite.problem import problem_from_spec

    task = {"task": "mackey_glass", "n_train": 8, "n_test": 8, "seq_len": 12}
    model = {"model": "elman", "hidden": 3}

    def stream(i: int) -> np.random.SeedSequence:
        return (
            Trial("c", task, model, {"name": "adam", "params": {}}, {"fe": 1e4}, i, 0)
            .streams()
            .data
        )

    problem_module._datasets.clear()
    first = problem_from_spec(task, model, stream(0), reuse_data=True)
    again = problem_from_spec(task, {**model, "hidden": 5}, stream(0), reuse_data=True)
    other = problem_from_spec(task, model, stream(1), reuse_data=True)
    fresh = problem_from_spec(task, model, stream(0))
    assert again.dataset is first.dataset and fresh.dataset is not first.dataset
    assert np.array_equal(fresh.dataset.train.X, first.dataset.train.X)
    assert not np.array_equal(other.dataset.train.X, first.dataset.train.X)
    assert not first.dataset.train.X.flags.writeable

    def record(name: str, seed: int) -> str:
        trial = Trial("c", task, model, {"name": name, "params": {}}, {"fe": 2e4}, seed, 0)
        r = run_trial(trial)
        for part in ("time", "peak_mem_mb", "provenance"):
            r.pop(part)
        r["trace"].pop("seconds")
        return json.dumps(r, sort_keys=True, default=str)

    runs = [("adam", 0), ("cmaes", 0), ("adam", 1)]
    reused = []
    for name, seed in runs:  # the second trial of seed 0 reuses the first's data
        reused.append(record(name, seed))
    generated = []
    for name, seed in runs:
        problem_module._datasets.clear()
        generated.append(record(name, seed))
    assert reused == generated
    for _ in range(problem_module.DATASETS_KEPT + 2):  # the cache stays bounded
        problem_from_spec(task, model, stream(_ + 2), reuse_data=True)
    assert len(problem_module._datasets) == problem_module.DATASETS_KEPT


def test_cmaes_silences_only_pycmas_diagonal_decoding_warning(monkeypatch):
    """pycma's "elements of z2[k] are larger than 55" (dozens per study from the separable
    variants) is filtered inside minimize; any other warning still reaches the user."""
    import warnings

    import cma

    original = cma.CMAEvolutionStrategy.tell

    def noisy_tell(self, *args, **kwargs):
        text = f"elements of z2[k] are larger than 55: {self.countiter}"
        warnings.warn(text, UserWarning, stacklevel=2)
        if self.countiter == 2:
            warnings.warn("something else", UserWarning, stacklevel=2)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cma.CMAEvolutionStrategy, "tell", noisy_tell)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(_problem(), get_optimizer("sep-cmaes"), Budget(fe=2e4), seed=0)
    messages = [str(w.message) for w in caught]
    assert messages == ["something else"], messages
