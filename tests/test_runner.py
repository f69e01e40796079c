"""The runner: statuses, resume, executors giving identical records, dead workers, Ctrl-C."""

from __future__ import annotations

import importlib.util
import multiprocessing
import textwrap
from pathlib import Path

import pytest
from helpers import adding_problem, normalised_records

from suite.experiment import ExperimentError
from suite.kinds import KINDS, Kind, register_kind
from suite.kinds.load import load_experiment
from suite.runner import run_experiment
from suite.store import Store, load_results

PLUGIN = '''
"""Test optimizers: one raises, one kills its worker, one presses Ctrl-C."""
import os
import signal
from dataclasses import dataclass

from suite.optimizers import Optimizer, register_optimizer


@register_optimizer("test-runner-raiser", family="test")
@dataclass(frozen=True)
class Raiser(Optimizer):
    """Evaluates once, then raises."""

    tags = frozenset({"deterministic"})

    def minimize(self, problem, x0, rng):
        problem.loss(x0)
        raise RuntimeError("boom from the test plugin")


@register_optimizer("test-runner-killer", family="test")
@dataclass(frozen=True)
class Killer(Optimizer):
    """Kills its own process (first time only, unless always); then returns x0."""

    marker: str = ""
    always: bool = False
    tags = frozenset({"deterministic"})

    def minimize(self, problem, x0, rng):
        if self.always or not os.path.exists(self.marker):
            if self.marker:
                open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        problem.loss(x0)
        return x0


@register_optimizer("test-runner-interrupt", family="test")
@dataclass(frozen=True)
class Interrupt(Optimizer):
    """Acts as if the user pressed Ctrl-C."""

    tags = frozenset({"deterministic"})

    def minimize(self, problem, x0, rng):
        raise KeyboardInterrupt
'''

PROBLEM = "\n" + adding_problem(hidden=3)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("plugin") / "runner_test_plugin.py"
    path.write_text(PLUGIN)
    return str(path)


def experiment_file(directory: Path, optimizers: str, seeds: int = 2, budget: str = "fe = 2e4"):
    path = directory / "exp.toml"
    text = f'name = "rt"\nseeds = {seeds}\nbudget = {{ {budget} }}\n{PROBLEM}\n'
    path.write_text(text + textwrap.dedent(optimizers))
    return path


MAIN = """
[[optimizers]]
name = "adam"
lr = 0.05
[[optimizers]]
name = "random-search"
[[optimizers]]
name = "sgd"
lr = 1e6
[[optimizers]]
name = "test-runner-raiser"
"""


def test_statuses_errors_divergence_and_resume(tmp_path, plugin):
    path = experiment_file(tmp_path, MAIN)
    summary = run_experiment(path, out=tmp_path / "res", jobs=1, plugins=[plugin], progress=False)
    assert summary.completed == 8 and summary.pending == 0 and not summary.interrupted
    trials = load_results(tmp_path / "res" / "rt").trials
    assert len(trials) == 8 and trials["key"].is_unique
    by_opt = trials.groupby("optimizer_name")["status"].agg(set).to_dict()
    assert by_opt["sgd"] == {"diverged"}
    assert by_opt["test-runner-raiser"] == {"error"}
    assert by_opt["adam"] <= {"ok", "budget"} and by_opt["random-search"] <= {"ok", "budget"}
    errors = trials.loc[trials["status"] == "error", "error"]
    assert all("RuntimeError: boom from the test plugin" in e for e in errors)
    assert trials.loc[trials["status"] != "error", "final_train_loss"].notna().all()
    assert (trials["fe"] <= trials["budget_fe"]).all()
    assert summary.statuses["error"] == 2 and summary.statuses["diverged"] == 2
    about = {
        r["spec"]["optimizer"]["name"]: r["optimizer"]
        for r in load_results(tmp_path / "res" / "rt").records("trial")
    }
    assert about["test-runner-raiser"] == {"family": "test", "tags": ["deterministic"]}
    assert about["adam"] == {"family": "gradient", "tags": ["gradient", "stochastic"]}
    rs = trials[trials["optimizer_name"] == "random-search"]
    assert set(rs["family"]) == {"random"} and set(rs["tags"]) == {"population,stochastic"}

    records = sorted((tmp_path / "res" / "rt" / "records").iterdir())
    before = {p.name: p.stat().st_mtime_ns for p in records}
    again = run_experiment(path, out=tmp_path / "res", jobs=1, plugins=[plugin], progress=False)
    assert again.skipped == 8 and again.completed == 0
    assert {p.name: p.stat().st_mtime_ns for p in records} == before


def test_time_budget_is_flagged(tmp_path):
    path = experiment_file(tmp_path, '[[optimizers]]\nname = "adam"\n', 1, "fe = 1e4, seconds = 30")
    run_experiment(path, out=tmp_path, jobs=1, progress=False)
    (record,) = Store(tmp_path / "rt").records("trial")
    assert record["time_budgeted"] is True and record["spec"]["budget"]["seconds"] == 30.0
    path = experiment_file(tmp_path, '[[optimizers]]\nname = "adam"\n', 1, "fe = 1e4")
    run_experiment(path, out=tmp_path / "b", jobs=1, progress=False)
    (record,) = Store(tmp_path / "b" / "rt").records("trial")
    assert record["time_budgeted"] is False


def test_processes_match_in_process(tmp_path, plugin):
    path = experiment_file(tmp_path, MAIN)
    run_experiment(path, out=tmp_path / "one", jobs=1, plugins=[plugin], progress=False)
    summary = run_experiment(path, out=tmp_path / "two", jobs=2, plugins=[plugin], progress=False)
    assert summary.executor == "2 processes" and summary.completed == 8
    one, two = (
        normalised_records(tmp_path / "one" / "rt"),
        normalised_records(tmp_path / "two" / "rt"),
    )
    assert len(one) == 8 and one == two
    assert not multiprocessing.active_children()


@pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="dask.distributed not installed"
)
def test_dask_local_cluster_matches_in_process(tmp_path, plugin):
    path = experiment_file(tmp_path, MAIN)
    run_experiment(path, out=tmp_path / "one", jobs=1, plugins=[plugin], progress=False)
    summary = run_experiment(
        path, out=tmp_path / "dask", jobs=2, dask="local", plugins=[plugin], progress=False
    )
    assert summary.executor.startswith("dask") and summary.completed == 8
    assert normalised_records(tmp_path / "one" / "rt") == normalised_records(
        tmp_path / "dask" / "rt"
    )


def test_dead_worker_costs_only_its_unit(tmp_path, plugin):
    marker = tmp_path / "killed-once"
    optimizers = f"""
    [[optimizers]]
    name = "random-search"
    [[optimizers]]
    name = "test-runner-killer"
    marker = "{marker}"
    [[optimizers]]
    name = "test-runner-killer"
    always = true
    """
    path = experiment_file(tmp_path, optimizers, seeds=1)
    summary = run_experiment(path, out=tmp_path, jobs=2, plugins=[plugin], progress=False)
    assert marker.exists()  # the first killer did die once
    assert summary.completed == 2 and len(summary.lost) == 1 and summary.retried >= 2
    trials = load_results(tmp_path / "rt").trials
    assert sorted(trials["optimizer"]) == sorted(
        ["random-search", f"test-runner-killer(marker={marker})"]
    )
    assert not multiprocessing.active_children()
    exp = load_experiment(path)
    always = next(u for u in exp.units if u.optimizer["params"].get("always"))
    assert summary.lost == [always.key]


def test_interrupt_keeps_finished_records(tmp_path, plugin):
    optimizers = """
    [[optimizers]]
    name = "adam"
    [[optimizers]]
    name = "test-runner-interrupt"
    """
    path = experiment_file(tmp_path, optimizers, seeds=2)
    summary = run_experiment(path, out=tmp_path, jobs=1, plugins=[plugin], progress=False)
    assert summary.interrupted and summary.completed == 1 and summary.pending == 3
    trials = load_results(tmp_path / "rt").trials
    assert list(trials["optimizer"]) == ["adam"] and list(trials["seed"]) == [0]


class RaisingUnit:
    """A unit of a test kind whose run() raises (not a trial: nothing catches it)."""

    def __init__(self, key: str, fail: bool) -> None:
        self.key, self.fail = key, fail

    def keys(self) -> list[str]:
        return [self.key]

    def run(self) -> list[dict]:
        if self.fail:
            raise ValueError("unit failure")
        return [{"key": self.key, "kind": "probe", "experiment": "k", "value": 1.5}]


def test_unit_that_raises_is_reported_and_left_pending(tmp_path):
    if "test-raising-kind" not in KINDS:
        register_kind(
            Kind(
                name="test-raising-kind",
                expand=lambda d, p: [RaisingUnit("a", False), RaisingUnit("b", True)],
                keys=(),
                record_kinds=("probe",),
                analyse=lambda folder: None,
                report=lambda folder, options: [],
            )
        )
    path = tmp_path / "k.toml"
    path.write_text('kind = "test-raising-kind"\n')
    summary = run_experiment(path, out=tmp_path, jobs=1, progress=False)
    assert summary.completed == 1 and summary.failed == ["b"] and summary.pending == 1
    res = load_results(tmp_path / "k")
    assert [r["key"] for r in res.records("probe")] == ["a"]
    assert res.experiment["kind"] == "test-raising-kind"


def test_bad_arguments(tmp_path):
    path = experiment_file(tmp_path, '[[optimizers]]\nname = "adam"\n', 1)
    with pytest.raises(ValueError, match="jobs"):
        run_experiment(path, out=tmp_path, jobs=0, progress=False)
    with pytest.raises(ExperimentError, match="unknown experiment"):
        run_experiment("nope-not-here", out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="plugin"):
        run_experiment(path, out=tmp_path, plugins=["no_such_plugin_module_xyz"], progress=False)
