"""The command line: list, run, status, bad input (exit 2), and a run killed part-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import adding_problem

from suite.cli import main
from suite.kinds.load import load_experiment
from suite.store import INDEX, Store, load_results

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENT = """
name = "clitest"
seeds = {seeds}
budget = {{ fe = {fe} }}

[[problems]]
task = "adding"
seq_len = 6
hidden = 3
n_train = 16
n_test = 16

[[optimizers]]
name = "{optimizer}"

[[optimizers]]
name = "random-search"
"""


def experiment(tmp_path: Path, seeds: int = 2, fe: str = "1e4", optimizer: str = "adam") -> Path:
    path = tmp_path / "clitest.toml"
    path.write_text(EXPERIMENT.format(seeds=seeds, fe=fe, optimizer=optimizer))
    return path


def snapshot(directory: Path) -> dict:
    return {
        p.relative_to(directory): (p.stat().st_mtime_ns, p.read_bytes())
        for p in directory.rglob("*")
        if p.is_file()
    }


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_commands(capsys):
    code, out, _ = run_cli(capsys, "list", "optimizers")
    assert code == 0
    for name in ("adam", "cmaes", "random-search"):
        assert name in out
    assert "gradient" in out and "lr=" in out  # tags and defaults
    code, out, _ = run_cli(capsys, "list", "tasks")
    assert code == 0 and "adding" in out and "seq_len=" in out
    code, out, _ = run_cli(capsys, "list", "models")
    assert code == 0 and "elman" in out and "hidden=" in out
    code, out, _ = run_cli(capsys, "list", "experiments")
    assert code == 0 and "demo" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("rnnbench ")


def test_run_then_status(tmp_path, capsys):
    path = experiment(tmp_path)
    code, out, _ = run_cli(
        capsys, "run", str(path), "--jobs", "1", "--out", str(tmp_path), "--no-progress"
    )
    assert code == 0 and "4 run" in out
    code, out, _ = run_cli(capsys, "status", str(path), "--out", str(tmp_path))
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[3:]}
    assert rows["adam"] == ["2", "0", "0", "0"]
    assert rows["total"] == ["4", "0", "0", "0"]
    code, out, _ = run_cli(capsys, "status", str(path), "--out", str(tmp_path), "--quick")
    assert code == 0 and out.splitlines()[-1].split() == ["total", "0", "0", "0", "4"]


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (lambda t: t.replace("seeds = 2", "seeds = [1,"), ["malformed TOML"]),
        (lambda t: t.replace('"adam"', '"adamm"'), ["adamm", "allowed", "adam", "sgd"]),
        (lambda t: t.replace('"adding"', '"adder"'), ["adder", "allowed", "adding"]),
        (lambda t: t.replace("hidden = 3", "hiden = 3"), ["hiden", "hidden"]),
        (lambda t: t.replace("fe = 1e4", "fe = -5.0"), ["budget.fe", "positive"]),
    ],
)
def test_bad_input_exits_2_and_touches_nothing(tmp_path, capsys, mutate, fragments):
    path = experiment(tmp_path)
    argv = ["run", str(path), "--jobs", "1", "--out", str(tmp_path / "r"), "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    before = snapshot(tmp_path / "r")
    path.write_text(mutate(path.read_text()))
    code, out, err = run_cli(capsys, "run", str(path), "--jobs", "1", "--out", str(tmp_path / "r"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert snapshot(tmp_path / "r") == before


def test_bad_names_exit_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", "no-such-experiment")
    assert code == 2 and "demo" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "run", "demo", "--plugin", "no_such_module_abc")
    assert code == 2 and "no_such_module_abc" in err
    code, _, err = run_cli(capsys, "run", "demo", "--jobs", "0")
    assert code == 2 and "--jobs" in err
    code, _, err = run_cli(capsys, "report", "no-such-experiment", "--out", str(tmp_path))
    assert code == 2 and "no-such-experiment" in err
    with pytest.raises(SystemExit) as info:
        main(["list", "widgets"])
    assert info.value.code == 2
    assert "tasks" in capsys.readouterr().err


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    path = experiment(tmp_path, optimizer="adamw")
    proc = subprocess.run(
        [sys.executable, "-m", "suite.cli", "run", str(path), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("rnnbench: error:") and "Traceback" not in proc.stderr
    assert "adamw" in proc.stderr and "adam" in proc.stderr
    assert not (tmp_path / "clitest").exists()


def test_sigkill_then_rerun_stores_every_trial_once(tmp_path):
    # 24 trials of ~0.05-0.2 s each: killed after a few records, then resumed
    path = experiment(tmp_path, seeds=12, fe="5e4")
    keys = set(load_experiment(path).keys())
    records = tmp_path / "clitest" / "records"
    cmd = [sys.executable, "-m", "suite.cli", "run", str(path), "--jobs", "1"]
    cmd += ["--out", str(tmp_path), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if records.is_dir() and len(list(records.glob("*.json"))) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    first = {p.name: p.read_bytes() for p in records.glob("*.json")}
    assert 3 <= len(first) < len(keys)
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(first)} already stored" in rerun.stdout
    files = sorted(p.stem for p in records.glob("*.json"))
    assert set(files) == keys and len(files) == len(keys)
    for name, data in first.items():  # records from before the kill were not rerun
        assert (records / name).read_bytes() == data
    trials = load_results(tmp_path / "clitest").trials
    assert len(trials) == len(keys) and set(trials["key"]) == keys
    lines = (tmp_path / "clitest" / INDEX).read_text().splitlines()
    assert len(lines) == len(keys)  # one index line per trial after the resumed run


def test_ctrl_c_on_a_process_pool_keeps_records_and_exits_130(tmp_path):
    path = experiment(tmp_path, seeds=20, fe="3e5")
    records = tmp_path / "clitest" / "records"
    cmd = [sys.executable, "-m", "suite.cli", "run", str(path), "--jobs", "2"]
    cmd += ["--out", str(tmp_path), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a session of its own, so that SIGINT goes to the whole group as Ctrl-C in a terminal does;
    # SIGINT's default action restored, since a shell's background job (`.ci/run &`) starts with
    # SIGINT ignored, and Python then keeps ignoring it (it would never see the Ctrl-C)
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if records.is_dir() and len(list(records.glob("*.json"))) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert b"interrupted" in out and b"Traceback" not in err
    stored = sorted(p.stem for p in records.glob("*.json"))
    trials = load_results(tmp_path / "clitest").trials
    assert sorted(trials["key"]) == stored and 2 <= len(stored) < 40


MULTISTART = (
    """
name = "climulti"
kind = "multistart"
seed = 0
starts = 4
chunk = 4
tdnn_twin = true

"""
    + adding_problem(hidden=2)
    + """
[[methods]]
name = "adam"
lr = 0.01
max_steps = 30
polish_steps = 30
"""
)

LANDSCAPE_WITH_CLIFF = """
name = "clicliff"
kind = "landscape"
seed = 0
reference = ["cliff"]

[cliff]
seeds = 2
budget = { fe = 2000 }
optimizers = [{ name = "adam" }, { name = "random-search" }]
"""


def test_report_routes_multistart_and_landscape_folders(tmp_path, capsys):
    """`report` writes the optima figures of a multistart folder (no trial records), and both
    the landscape figures and the trial report of a landscape folder holding cliff trials."""
    multi = tmp_path / "multi.toml"
    multi.write_text(MULTISTART)
    argv = ["--jobs", "1", "--out", str(tmp_path), "--no-progress"]
    assert run_cli(capsys, "run", str(multi), *argv)[0] == 0
    folder = tmp_path / "climulti"
    code, out, err = run_cli(capsys, "report", str(folder), "--pdf", "--latex")
    assert code == 0, err
    assert out.split() == [
        str(folder / "tables"),
        str(folder / "figures"),
        str(folder / "REPORT.md"),
    ]
    assert "--latex" in err  # said once that LaTeX is for trial records only
    for name in ("optima_final_losses", "optima_classes", "optima_twins"):
        for ext in ("png", "pdf"):
            assert (folder / "figures" / f"{name}.{ext}").stat().st_size > 1000
    summary = (folder / "tables" / "optima_summary.csv").read_text().splitlines()
    assert len(summary) == 3  # header, the Elman study and its TDNN twin
    # the optima report of the multistart kind (no trial records: no trial report)
    assert "## C2: trap rates (all starts)" in (folder / "REPORT.md").read_text()

    cliff = tmp_path / "cliff.toml"
    cliff.write_text(LANDSCAPE_WITH_CLIFF)
    assert run_cli(capsys, "run", str(cliff), *argv)[0] == 0
    folder = tmp_path / "clicliff"
    code, out, err = run_cli(capsys, "report", str(folder))
    assert code == 0, err
    assert out.split() == [str(folder / p) for p in ("tables", "figures", "REPORT.md")]
    assert (folder / "figures" / "landscape_cliff.png").stat().st_size > 1000
    assert (folder / "figures" / "loss_fe.png").stat().st_size > 1000
    assert "random-search" in (folder / "REPORT.md").read_text()

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "report", str(empty))
    assert code == 2 and "no records" in err and "Traceback" not in err


def test_report_dispatches_on_the_folder_kind(tmp_path, capsys):
    """A compare folder gets the trial report (LaTeX too); a folder whose kind or records no
    registered kind knows is bad input, named in one line."""
    path = experiment(tmp_path)
    argv = ["--jobs", "1", "--out", str(tmp_path), "--no-progress"]
    assert run_cli(capsys, "run", str(path), *argv)[0] == 0
    folder = tmp_path / "clitest"
    code, out, err = run_cli(capsys, "report", str(path), "--out", str(tmp_path), "--latex")
    assert code == 0, err
    assert out.split() == [str(folder / "REPORT.md")] and "--latex" not in err
    assert list((folder / "tables").glob("*.tex"))

    alien = tmp_path / "alien"
    Store(alien).write({"key": "k1", "kind": "no-kind-writes-this", "experiment": "alien"})
    code, _, err = run_cli(capsys, "report", str(alien))
    assert code == 2 and "no-kind-writes-this" in err and "Traceback" not in err
    Store(alien).write_experiment({"name": "alien", "kind": "plugin-kind-xyz"})
    code, _, err = run_cli(capsys, "report", str(alien))
    assert code == 2 and "plugin-kind-xyz" in err and "--plugin" in err


# ----------------------------------------------------------------- issue 15: the user's path
FLAKY = '''
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.optimizers import Optimizer, register_optimizer

FLAG = Path({flag!r})


@register_optimizer("flaky-search", family="plugins")
@dataclass(frozen=True)
class Flaky(Optimizer):
    """Random search that raises while FLAG exists (a plugin bug, then its fix)."""

    tags = frozenset({{"stochastic"}})

    def minimize(self, problem, x0, rng):
        if FLAG.exists():
            raise RuntimeError("flaky plugin is broken")
        x = np.array(x0, dtype=float)
        while True:
            problem.loss(x + 0.1 * rng.standard_normal(x.shape))
'''


@pytest.fixture
def forget_flaky():
    """Unregister the test plugin's optimizer afterwards (each test writes its own file)."""
    from suite.optimizers.registry import OPTIMIZERS

    yield OPTIMIZERS
    OPTIMIZERS.unregister("flaky-search")


def test_report_finds_results_by_experiment_name_not_file_name(tmp_path, capsys):
    # item 1: the TOML's name ("clitest") differs from its file name
    path = tmp_path / "my_experiment.toml"
    path.write_text(EXPERIMENT.format(seeds=1, fe="2e3", optimizer="adam"))
    out = str(tmp_path / "res")
    assert main(["run", str(path), "--out", out, "--jobs", "1"]) == 0
    code, stdout, err = run_cli(capsys, "report", str(path), "--out", out)
    assert code == 0, err
    assert "clitest" in stdout and "REPORT.md" in stdout


def test_report_names_the_profile_that_has_results(tmp_path, capsys):
    # item 6: results of the quick profile only; the default report says where they are
    path = tmp_path / "q.toml"
    path.write_text(
        EXPERIMENT.format(seeds=2, fe="2e3", optimizer="adam") + "\n[quick]\nseeds = 1\n"
    )
    out = str(tmp_path / "res")
    assert main(["run", str(path), "--quick", "--out", out, "--jobs", "1"]) == 0
    capsys.readouterr()
    code, _, err = run_cli(capsys, "report", str(path), "--out", out)
    assert code == 2
    assert "clitest-quick" in err and "--quick" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("where", ["file", "proc"])
def test_unwritable_out_is_one_line(tmp_path, capsys, where):
    # item 3: --out that cannot be written: one line, exit 2, no traceback
    path = experiment(tmp_path, seeds=1, fe="2e3")
    if where == "file":
        target = tmp_path / "a_file"
        target.write_text("x")
    else:
        target = Path("/proc/rnnbench-x")
    for argv in (["run", str(path)], ["reproduce", "claims"]):
        code, _, err = run_cli(capsys, *argv, "--out", str(target))
        assert code == 2
        assert err.count("\n") == 1 and "Traceback" not in err and "--out" in err


def test_retry_failed_reruns_errored_trials(tmp_path, capsys, forget_flaky):
    # item 4: errored trials give a distinct exit code and their first message, and
    # `--retry failed` reruns them once the plugin is fixed
    flag = tmp_path / "broken"
    flag.write_text("")
    plugin = tmp_path / "flaky_plugin.py"
    plugin.write_text(FLAKY.format(flag=str(flag)))
    path = experiment(tmp_path, seeds=2, fe="2e3", optimizer="flaky-search")
    out = str(tmp_path / "res")
    argv = ["run", str(path), "--out", out, "--jobs", "1", "--plugin", str(plugin)]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 3  # EXIT_ERRORED
    assert "flaky plugin is broken" in err and "--retry failed" in err
    assert "2 stored with status error" in stdout
    folder = tmp_path / "res" / "clitest"
    before = Store(folder).statuses()
    assert sorted(before.values()).count("error") == 2
    # still broken: the rerun replaces nothing it did not finish, and says so again
    code, stdout, _ = run_cli(capsys, *argv)
    assert code == 3 and "0 run" in stdout
    flag.unlink()  # the fix
    code, stdout, err = run_cli(capsys, *argv, "--retry", "failed")
    assert code == 0, err
    assert "2 run" in stdout
    after = Store(folder).statuses()
    assert set(after) == set(before) and "error" not in after.values()
    assert "--retry" in main_help(capsys, "run") and "3" in main_help(capsys, "run")


def main_help(capsys, command: str) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


def test_seed_typo_warns_and_missing_quick_table_is_refused(tmp_path, capsys):
    # item 7: `seed = 3` without `seeds`; `--quick` on a TOML without [quick]
    text = EXPERIMENT.format(seeds=1, fe="2e3", optimizer="adam").replace("seeds = 1", "seed = 3")
    path = tmp_path / "typo.toml"
    path.write_text(text)
    code, _, err = run_cli(capsys, "status", str(path), "--out", str(tmp_path))
    assert code == 0
    assert "seed = 3" in err and "seeds = N" in err
    code, _, err = run_cli(capsys, "run", str(path), "--quick", "--out", str(tmp_path))
    assert code == 2 and "[quick]" in err
    assert not (tmp_path / "clitest-quick").exists()


def test_status_of_a_plugin_experiment_without_plugin(tmp_path, capsys, forget_flaky):
    # item 6: report accepts a plugin experiment's folder; status does too now
    plugin = tmp_path / "flaky_plugin.py"
    plugin.write_text(FLAKY.format(flag=str(tmp_path / "nothing")))
    path = experiment(tmp_path, seeds=1, fe="2e3", optimizer="flaky-search")
    out = str(tmp_path / "res")
    assert main(["run", str(path), "--out", out, "--jobs", "1", "--plugin", str(plugin)]) == 0
    capsys.readouterr()
    forget_flaky.unregister("flaky-search")  # forget the plugin, as a new process would
    code, stdout, err = run_cli(capsys, "status", str(path), "--out", out)
    assert code == 0, err
    assert "stored" in stdout and "--plugin" in stdout


def test_check_command_prints_one_line_per_check(capsys):
    # item 8 / `rnnbench check`: the conformance suite from the command line
    code, stdout, _ = run_cli(capsys, "check", "random-search")
    assert code == 0
    lines = stdout.strip().splitlines()
    assert sum(line.startswith("PASS") for line in lines) >= 8
    assert "checks passed" in lines[-1]
    code, _, err = run_cli(capsys, "check", "no-such-optimizer")
    assert code == 2 and "unknown optimizer" in err


def test_list_tasks_shows_reference_baseline_and_target(capsys):
    # item 11
    code, stdout, _ = run_cli(capsys, "list", "tasks")
    assert code == 0
    assert "reference: S. Hochreiter" in stdout
    assert stdout.count("baseline:") >= 5 and stdout.count("target:") >= 5


def test_plugin_help_names_tasks_and_models(capsys):
    # item 11: --plugin registers tasks and models too
    text = main_help(capsys, "run")
    assert "tasks" in text and "models" in text


@pytest.fixture
def example_plugins():
    """Forget the example plugins' task, model and optimizer afterwards (other tests list the
    registries), and their modules, so that a later load registers them again."""
    from suite.models.base import MODELS
    from suite.optimizers.registry import OPTIMIZERS, plugin_module_name
    from tasks.base import TASKS

    before = {r: set(r.names()) for r in (MODELS, OPTIMIZERS, TASKS)}
    modules = set(sys.modules)
    yield
    for registry, names in before.items():
        for name in set(registry.names()) - names:
            registry.unregister(name)
    for name in ("delayed_copy.py", "relu_rnn.py", "armijo_gd.py", "one_plus_one_es.py"):
        module = plugin_module_name(ROOT / "examples" / name)
        if module not in modules:
            sys.modules.pop(module, None)


def test_task_model_and_optimizer_plugins_one_file_each(tmp_path, capsys, example_plugins):
    """item 11: a new task, a new model and a new optimizer each take one file (examples/),
    loaded with --plugin, exactly as README shows."""
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\nseeds = 2\nbudget = { fe = 1e4 }\n\n[[problems]]\n'
        'task = "delayed-copy"\ndelay = 2\nmodel = "relu-rnn"\nhidden = 3\nn_train = 16\n'
        'n_test = 16\n\n[[optimizers]]\nname = "adam"\nlr = 0.01\n\n'
        '[[optimizers]]\nname = "one-plus-one-es"\n'
    )
    plugins = []
    for name in ("delayed_copy.py", "relu_rnn.py", "one_plus_one_es.py"):
        plugins += ["--plugin", str(ROOT / "examples" / name)]
    out = str(tmp_path / "res")
    code, stdout, err = run_cli(capsys, "run", str(path), "--out", out, "--jobs", "1", *plugins)
    assert code == 0, err
    assert "4 run" in stdout
    code, stdout, err = run_cli(capsys, "report", str(path), "--out", out, *plugins)
    assert code == 0, err
    code, stdout, _ = run_cli(capsys, "list", "tasks", *plugins)
    assert "delayed-copy" in stdout and "reference: the copy/delay tasks" in stdout
    code, stdout, _ = run_cli(capsys, "check", "one-plus-one-es", *plugins)
    assert code == 0 and "9 of 9 checks passed" in stdout
    # a gradient method: loss_and_grad, set_stop_reason and the deterministic tag
    gd = str(ROOT / "examples" / "armijo_gd.py")
    code, stdout, _ = run_cli(capsys, "check", "armijo-gd", "--plugin", gd)
    assert code == 0 and "uses_gradients" in stdout and "10 of 10 checks passed" in stdout


def test_relu_rnn_example_gradient_is_exact(example_plugins):
    """The model plugin of examples/relu_rnn.py: its BPTT gradient matches finite differences."""
    import numpy as np

    import suite

    suite.load_plugins([str(ROOT / "examples" / "delayed_copy.py")])
    suite.load_plugins([str(ROOT / "examples" / "relu_rnn.py")])
    p = suite.make_problem(
        "delayed-copy", model="relu-rnn", hidden=3, seq_len=8, n_train=8, n_test=8, seed=0
    )
    theta = p.initial_point(np.random.default_rng(0))
    p.start(suite.Budget(fe=1e7))
    _, grad = p.loss_and_grad(theta)
    eps = 1e-6
    fd = [
        (p.loss(theta + eps * u) - p.loss(theta - eps * u)) / (2 * eps) for u in np.eye(theta.size)
    ]
    assert np.max(np.abs(np.array(fd) - grad)) <= 1e-7 * np.max(np.abs(grad))


def test_user_results_folders_are_not_untracked_files():
    """item 11: results of the user's own experiments (and the derived frames.npz) are ignored
    by git; the committed reference folders are not."""
    import shutil

    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        proc = subprocess.run([git, "check-ignore", "-q", path], cwd=ROOT, check=False)
        return proc.returncode == 0

    assert ignored("results/mine/records/x.json") and ignored("results/demo-quick/REPORT.md")
    assert ignored("results/speed/frames.npz")
    assert not ignored("results/speed/REPORT.md") and not ignored("results/claims/REPORT.md")
