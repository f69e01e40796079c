"""The ``ng-*`` family (nevergrad's optimizers), its install hint and the Problem's budget
read-outs. Tests that need nevergrad skip without it; the missing-extra path is simulated by
hiding the package (``sys.modules["nevergrad"] = None``), so it runs with or without it."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import textwrap
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

from suite.checks import check_optimizer, toy_problem
from suite.cli import main
from suite.optimizers import get_optimizer, ng, optimizer_info, optimizer_names
from suite.optimizers import registry as optimizer_registry
from suite.problem import Budget, BudgetExhausted
from suite.trial import Trial, run_trial

ROOT = Path(__file__).resolve().parents[1]
HINT = 'pip install -e ".[nevergrad]"'
HIDE_NEVERGRAD = "import sys; sys.modules['nevergrad'] = None\n"


def _python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports this checkout's ``suite``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


# ------------------------------------------------------------------ budget read-outs


def test_problem_budget_is_the_started_budget_and_read_only() -> None:
    p = toy_problem()
    assert p.budget == Budget()
    budget = Budget(fe=1000.0, seconds=60.0)
    p.start(budget)
    assert p.budget is budget
    with pytest.raises(AttributeError):
        p.budget = Budget(fe=1e9)  # type: ignore[misc]
    assert p.budget is budget


def test_remaining_fe_and_fe_per_loss() -> None:
    p = toy_problem()
    p.start(Budget(fe=1000.0))
    assert p.fe_per_loss == 48.0  # 8 sequences of 6 steps
    assert p.remaining_fe() == 1000.0
    p.loss(np.zeros(4))
    assert p.counters.fe == p.fe_per_loss
    assert p.remaining_fe() == 1000.0 - p.fe_per_loss
    p.loss(np.zeros((3, 4)))
    assert p.remaining_fe() == 1000.0 - 4 * p.fe_per_loss
    assert ng.evaluations_left(p) == int((1000.0 - 4 * 48.0) // 48.0) == 16
    p.loss(np.zeros((16, 4)))
    assert p.remaining_fe() == 1000.0 - 20 * 48.0 == 40.0
    with pytest.raises(BudgetExhausted):
        p.loss(np.zeros(4))
    assert p.remaining_fe() == 40.0 and ng.evaluations_left(p) == 0


def test_unlimited_budgets_read_as_infinite() -> None:
    p = toy_problem()
    p.start(Budget(seconds=100.0))
    assert p.remaining_fe() == math.inf and ng.evaluations_left(p) is None
    assert 0.0 < p.remaining_seconds() <= 100.0
    p.start()
    assert p.remaining_fe() == math.inf and p.remaining_seconds() == math.inf
    p.start(Budget(seconds=1e-9))
    with pytest.raises(BudgetExhausted):
        p.loss(np.zeros(4))
    assert p.remaining_seconds() == 0.0  # never negative


# ---------------------------------------------------------------- without the extra


def test_declared_extra_and_lazy_import() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["nevergrad"] == ["nevergrad>=1.0"]
    assert optimizer_registry.OPTIONAL_FAMILIES["ng-"] == ("nevergrad", "nevergrad")
    # importing the optimizers never imports nevergrad itself (seconds of start-up)
    done = _python("import sys, suite.optimizers; print('nevergrad' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_missing_nevergrad_gives_one_line_with_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "nevergrad", None)  # import nevergrad -> ImportError
    entries = optimizer_registry.OPTIMIZERS._entries
    kept = {k: v for k, v in entries.items() if not k.startswith("ng-")}
    monkeypatch.setattr(optimizer_registry.OPTIMIZERS, "_entries", kept)
    with pytest.raises(ValueError) as info:
        get_optimizer("ng-ngopt")
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert "'ng-ngopt'" in message and "nevergrad" in message and HINT in message
    with pytest.raises(ValueError, match="unknown optimizer 'ngopt'"):  # others: as before
        get_optimizer("ngopt")


def test_cli_without_nevergrad_exits_2_with_the_hint(tmp_path: Path) -> None:
    toml = tmp_path / "ng.toml"
    toml.write_text(
        textwrap.dedent(
            """
            name = "ngmissing"
            seeds = 1
            budget = { fe = 1e4 }
            [[problems]]
            task = "cliff"
            [[optimizers]]
            name = "ng-ngopt"
            """
        )
    )
    out = tmp_path / "out"
    code = HIDE_NEVERGRAD + (
        "from suite.cli import main\n"
        "from suite.optimizers import optimizer_names\n"
        "assert not [n for n in optimizer_names() if n.startswith('ng-')]\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    done = _python(code, "run", str(toml), "--jobs", "1", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "ng-ngopt" in lines[0] and HINT in lines[0] and "Traceback" not in done.stderr
    assert not out.exists()
    listed = _python(HIDE_NEVERGRAD + "from suite.cli import main; main(['list', 'optimizers'])")
    assert listed.returncode == 0, listed.stderr
    assert "cmaes" in listed.stdout and "ng-" not in listed.stdout


# ------------------------------------------------------------------- with nevergrad


@pytest.fixture
def nevergrad():
    return pytest.importorskip("nevergrad")


def test_every_method_is_registered_and_listed(nevergrad, capsys) -> None:
    names = [n for n in optimizer_names() if n.startswith("ng-")]
    assert sorted(names) == sorted(ng.METHODS)
    for name, (method, workers, _) in ng.METHODS.items():
        info = optimizer_info(name)
        assert info["family"] == "nevergrad"
        assert f"nevergrad {method}:" in info["summary"]
        assert method in nevergrad.optimizers.registry
        opt = get_optimizer(name)
        assert opt.method == method and opt.batch() == (workers or 1)
        assert ("population" in opt.tags) == bool(workers and workers > 1)
        assert ("num_workers" in opt.params()) == (workers is not None)
        assert pickle.loads(pickle.dumps(opt)) == opt  # module-level classes: workers get them
    assert main(["list", "optimizers"]) == 0
    out = capsys.readouterr().out
    for name in ng.METHODS:
        assert name in out


def test_one_batched_call_per_round_and_budget_used_exactly(monkeypatch, nevergrad) -> None:
    p = toy_problem()
    p.start(Budget(fe=48.0 * 100 + 20), allow_gradients=False)  # room for 100 evaluations
    rows = []
    loss = p.loss

    def spy(theta, batch=None):
        rows.append(np.atleast_2d(theta).shape[0])
        return loss(theta, batch)

    monkeypatch.setattr(p, "loss", spy)
    with pytest.raises(BudgetExhausted):
        get_optimizer("ng-twopointsde", num_workers=16).minimize(
            p, np.zeros(4), np.random.default_rng(0)
        )
    # 6 full batches, the 7th shrunk to the 4 evaluations left, then one refused row
    assert rows == [16] * 6 + [4, 1]
    assert p.counters.evaluations == 100 and p.counters.loss_calls == 7


def test_nevergrad_is_given_the_remaining_budget(nevergrad) -> None:
    p = toy_problem()
    p.start(Budget(fe=48.0 * 300), allow_gradients=False)
    opt = get_optimizer("ng-ngopt", num_workers=8, sigma=0.2)
    built = opt.build(p, np.zeros(4), np.random.default_rng(0))
    assert built.budget == 300 and built.num_workers == 8
    p.loss(np.zeros((50, 4)))
    assert opt.build(p, np.zeros(4), np.random.default_rng(0)).budget == 250
    p.start(Budget(seconds=10.0), allow_gradients=False)
    assert opt.build(p, np.zeros(4), np.random.default_rng(0)).budget is None
    sequential = get_optimizer("ng-cobyla").build(p, np.zeros(4), np.random.default_rng(0))
    assert sequential.num_workers == 1


def test_scipy_wrappers_end_with_the_budget_not_random_points(nevergrad) -> None:
    p = toy_problem()
    p.start(Budget(fe=48.0 * 60), allow_gradients=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BudgetExhausted):
            get_optimizer("ng-cobyla").minimize(p, np.zeros(4), np.random.default_rng(0))
    assert p.counters.evaluations == 60 and p.counters.loss_calls == 60
    finished = nevergrad.errors.FinishedUnderlyingOptimizerWarning
    assert not [w for w in caught if issubclass(w.category, finished)]
    assert not [w for w in caught if "RHOEND" in str(w.message)]
    assert p.incumbent_loss < 0.5 * p.evaluate(np.zeros(4))


@pytest.mark.parametrize("name", ["ng-twopointsde", "ng-oneplusone", "ng-sqp"])
def test_conformance(name: str, nevergrad) -> None:
    """One population method, one one-point-per-call method, one of nevergrad's scipy wrappers
    (the full table of every ng-* name is in the docstring of suite.optimizers.ng)."""
    check_optimizer(name)


def test_a_crash_inside_nevergrad_is_a_failed_trial(monkeypatch, nevergrad) -> None:
    def broken_tell(self, candidate, loss, *args, **kwargs):
        raise TypeError("only 0-dimensional arrays can be converted to Python scalars")

    monkeypatch.setattr(nevergrad.optimization.base.Optimizer, "tell", broken_tell)
    p = toy_problem()
    p.start(Budget(fe=1e4), allow_gradients=False)
    with pytest.raises(TypeError, match="0-dimensional"):  # minimize does not swallow it
        get_optimizer("ng-pso").minimize(p, np.zeros(4), np.random.default_rng(0))
    trial = Trial(
        experiment="ngcrash",
        task={"task": "cliff", "steps": 50},
        model={"model": "cliff", "dtype": "float64"},
        optimizer={"name": "ng-pso", "params": get_optimizer("ng-pso").params()},
        budget={"fe": 1e4, "seconds": None},
        seed=0,
        experiment_seed=0,
    )
    record = run_trial(trial)
    assert record["status"] == "error"
    assert "TypeError: only 0-dimensional arrays" in record["error"]
    assert "broken_tell" in record["error"]  # the traceback reaches into nevergrad's call


def test_shipped_experiment_mirrors_speed(nevergrad) -> None:
    from suite.kinds.load import load_experiment

    for profile in ("default", "quick"):
        ours, speed = load_experiment("speed-nevergrad", profile), load_experiment("speed", profile)
        assert ours.spec["problems"] == speed.spec["problems"]
        for key in ("seed", "seeds", "budget", "checkpoints_per_decade"):
            assert ours.spec[key] == speed.spec[key], key
        names = [o["name"] for o in ours.spec["optimizers"]]
        assert {n for n in names if n.startswith("ng-")} <= set(ng.METHODS)
        assert {"ng-oneplusone", "ng-cobyla"} <= set(names)
        assert all(n.startswith("ng-") for n in names)  # the built-ins run in speed.toml
        assert ours.spec["tuning"]["seeds"] == speed.spec["tuning"]["seeds"]
