"""Experiment files: parsing, profiles, validation messages, kinds, trial keys and seeding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from suite import seeding
from suite.experiment import ExperimentError, list_experiments
from suite.kinds import KINDS, Kind, get_kind, register_kind
from suite.kinds.load import kind_of_folder, load_experiment
from suite.problem import make_problem
from suite.store import Store
from suite.trial import Trial

ROOT = Path(__file__).resolve().parents[1]

BASE = """
name = "t"
seed = 3
seeds = 2
budget = { fe = 1e4 }
[[problems]]
task = "adding"
seq_len = 6
hidden = 3
n_train = 8
n_test = 8
[[optimizers]]
name = "adam"
lr = 0.05
[[optimizers]]
name = "random-search"
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_compare_expands_problem_x_optimizer_x_seed(tmp_path):
    exp = load_experiment(write(tmp_path, BASE))
    assert exp.kind == "compare" and exp.name == "t" and exp.profile == "default"
    assert len(exp) == 1 * 2 * 2
    trials = exp.units
    assert all(isinstance(t, Trial) for t in trials)
    assert sorted({t.seed for t in trials}) == [0, 1]
    assert {t.optimizer["name"] for t in trials} == {"adam", "random-search"}
    assert len(set(exp.keys())) == 4
    adam = next(t for t in trials if t.optimizer["name"] == "adam")
    # hyper-parameters are resolved in full, labels are readable
    assert adam.optimizer["params"]["lr"] == 0.05 and "b1" in adam.optimizer["params"]
    assert adam.labels == {
        "problem": "adding(seq_len=6, n_train=8, n_test=8) / elman(hidden=3)",
        "optimizer": "adam(lr=0.05)",
    }
    assert adam.task["task"] == "adding" and adam.model == {
        **adam.model,
        "model": "elman",
        "hidden": 3,
    }
    assert exp.spec["seeds"] == [0, 1] and exp.spec["units"] == 4
    json.dumps(exp.spec)  # plain data


def test_profiles_replace_whole_values(tmp_path):
    path = write(
        tmp_path,
        BASE
        + """
[quick]
seeds = 1
budget = { seconds = 5 }
optimizers = [{ name = "sgd" }]
[full]
seeds = [4, 7, 9]
""",
    )
    default, quick, full = (load_experiment(path, p) for p in ("default", "quick", "full"))
    assert len(quick) == 1 and quick.units[0].optimizer["name"] == "sgd"
    assert quick.units[0].budget == {"fe": None, "seconds": 5.0}
    assert quick.dirname == "t-quick" and default.dirname == "t"
    assert sorted({t.seed for t in full.units}) == [4, 7, 9] and len(full) == 6
    assert not set(quick.keys()) & set(default.keys())


def test_problem_budget_and_optimizer_problem_restriction(tmp_path):
    text = BASE.replace("n_test = 8\n", 'n_test = 8\nlabel = "short"\nbudget = { fe = 500 }\n')
    text += (
        '[[problems]]\ntask = "adding"\nseq_len = 7\nlabel = "long"\n'
        '[[optimizers]]\nname = "adam"\nlr = 0.2\nlabel = "tuned"\nproblems = ["long"]\n'
        '[[optimizers]]\nname = "adam"\nlr = 0.3\nlabel = "tuned"\nproblems = ["short"]\n'
    )
    exp = load_experiment(write(tmp_path, text))
    runs = {(t.labels["problem"], t.labels["optimizer"], t.seed): t for t in exp.units}
    assert len(exp) == 2 * 3 * 2
    assert runs[("short", "tuned", 0)].optimizer["params"]["lr"] == 0.3
    assert runs[("long", "tuned", 0)].optimizer["params"]["lr"] == 0.2
    assert runs[("short", "adam(lr=0.05)", 1)].budget == {"fe": 500.0, "seconds": None}
    assert runs[("long", "adam(lr=0.05)", 1)].budget == {"fe": 1e4, "seconds": None}
    assert exp.spec["problems"][0]["budget"] == {"fe": 500.0, "seconds": None}
    clash = text.replace('problems = ["long"]', 'problems = ["long", "short"]')
    with pytest.raises(ExperimentError, match="duplicate optimizer entries on problem 'short'"):
        load_experiment(write(tmp_path, clash, "clash.toml"))
    unknown = text.replace('problems = ["long"]', 'problems = ["lung"]')
    with pytest.raises(ExperimentError, match=r"optimizers\[2\]\.problems.*lung.*short, long"):
        load_experiment(write(tmp_path, unknown, "unknown.toml"))
    tuning = BASE + "[tuning]\nseeds = [100]\n[tuning.grid]\nadam = { lr = [0.1, 0.2] }\n"
    assert "tuning" in load_experiment(write(tmp_path, tuning, "tuning.toml")).spec


def test_shipped_experiments_load_by_name():
    names = list_experiments()
    assert "demo" in names
    for name in names:
        for profile in ("default", "quick"):
            try:
                exp = load_experiment(name, profile)
            except ExperimentError as exc:  # only: an optional extra is not installed
                assert "which is not installed; install the extra: pip install" in str(exc), exc
                continue
            assert len(exp) > 0 and exp.source.endswith(f"{name}.toml")


def test_key_ignores_labels_and_changes_with_content(tmp_path):
    a = load_experiment(write(tmp_path, BASE)).units[0]
    relabelled = load_experiment(
        write(tmp_path, BASE.replace("lr = 0.05", 'lr = 0.05\nlabel = "fast adam"'), "b.toml")
    ).units[0]
    assert relabelled.labels["optimizer"] == "fast adam"
    assert relabelled.key == a.key
    other = load_experiment(write(tmp_path, BASE.replace("seed = 3", "seed = 4"), "c.toml"))
    assert other.units[0].key != a.key
    assert len(a.key) == 16 and int(a.key, 16) >= 0


def test_keys_and_streams_are_stable_across_processes(tmp_path):
    path = write(tmp_path, BASE)
    exp = load_experiment(path)
    code = (
        "import json, sys; from suite.kinds.load import load_experiment; "
        "e = load_experiment(sys.argv[1]); "
        "print(json.dumps([[u.key, u.streams().optimizer.generate_state(2).tolist()] "
        "for u in e.units]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=True
    )
    here = [[u.key, u.streams().optimizer.generate_state(2).tolist()] for u in exp.units]
    assert json.loads(out.stdout) == here


def test_seed_index_pairs_data_and_start_across_optimizers(tmp_path):
    exp = load_experiment(write(tmp_path, BASE))
    by_seed: dict[int, list[Trial]] = {}
    for t in exp.units:
        by_seed.setdefault(t.seed, []).append(t)

    def data_and_x0(t: Trial):
        s = t.streams()
        params = {k: v for k, v in t.task.items() if k != "task"}
        options = {k: v for k, v in t.model.items() if k != "model"}
        p = make_problem(t.task["task"], t.model["model"], seed=s.data, **params, **options)
        return p.dataset.train.X, p.initial_point(np.random.default_rng(s.init))

    ref = {}
    for seed, trials in by_seed.items():
        (X0, x0), (X1, x1) = (data_and_x0(t) for t in trials)
        assert np.array_equal(X0, X1) and np.array_equal(x0, x1)
        s0, s1 = (t.streams().optimizer.generate_state(4) for t in trials)
        assert not np.array_equal(s0, s1)
        ref[seed] = (X0, x0)
    assert not np.array_equal(ref[0][0], ref[1][0])
    assert not np.array_equal(ref[0][1], ref[1][1])


def test_data_stream_does_not_depend_on_model():
    task = {"task": "adding", "seq_len": 5}
    a = seeding.trial_streams(0, task, {"model": "elman"}, 0, {"o": 1})
    b = seeding.trial_streams(0, task, {"model": "tdnn"}, 0, {"o": 2})
    assert np.array_equal(a.data.generate_state(4), b.data.generate_state(4))
    assert not np.array_equal(a.init.generate_state(4), b.init.generate_state(4))


def test_canonical_json_ignores_key_order():
    h = seeding.content_hash
    assert h({"a": 1, "b": [1, 2]}) == h({"b": [1, 2], "a": 1})
    assert h({"a": 1}) != h({"a": 2})


BAD_CASES = [
    # (replace this, with this, expected fragments of the message)
    ("seed = 3", "seed = 3\nbogus = 1", ["bogus", "allowed", "optimizers"]),
    ('task = "adding"', 'task = "addding"', ["problems[0].task", "addding", "adding"]),
    ("hidden = 3", 'hidden = 3\nmodel = "rnn9"', ["problems[0].model", "rnn9", "elman"]),
    ("seq_len = 6", "seq_len = 6\nsequence = 4", ["problems[0]", "sequence", "seq_len"]),
    ("seq_len = 6", "seq_len = 1", ["problems[0]", "seq_len"]),
    ('name = "adam"', 'name = "adamw"', ["optimizers[0].name", "adamw", "sgd"]),
    ("lr = 0.05", "lr = 0.05\nbeta = 2", ["optimizers[0]", "beta", "b1"]),
    ("lr = 0.05", 'lr = "fast"', ["optimizers[0]", "lr"]),
    ("seeds = 2", 'seeds = "2"', ["seeds", "integer"]),
    ("seeds = 2", "seeds = 0", ["seeds", ">= 1"]),
    ("budget = { fe = 1e4 }", "budget = { fe = -1.0 }", ["budget.fe", "positive"]),
    ("budget = { fe = 1e4 }", "budget = { fe = 0 }", ["budget.fe", "positive"]),
    ("budget = { fe = 1e4 }", "budget = { evals = 10 }", ["budget", "evals", "fe, seconds"]),
    ("budget = { fe = 1e4 }", "budget = {}", ["budget", "at least one"]),
    ("budget = { fe = 1e4 }", "", ["budget", "missing"]),
    ("seed = 3", 'seed = 3\nkind = "nonsense"', ["kind", "nonsense", "compare"]),
    ("seed = 3", "seed = 3\ncheckpoints_per_decade = 0", ["checkpoints_per_decade"]),
    ("seed = 3", "seed = -1", ["seed", ">= 0"]),
    ('name = "t"', 'name = "a/b"', ["name", "folder"]),
]


@pytest.mark.parametrize(("old", "new", "fragments"), BAD_CASES)
def test_invalid_files_name_file_key_and_allowed(tmp_path, old, new, fragments):
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_empty_lists_and_duplicates_are_refused(tmp_path):
    text = "optimizers = []\n" + BASE.split("[[optimizers]]")[0]
    with pytest.raises(ExperimentError, match="optimizers: must be a non-empty array"):
        load_experiment(write(tmp_path, text))
    dup = BASE + '[[optimizers]]\nname = "adam"\nlr = 0.05\n'
    with pytest.raises(ExperimentError, match="duplicate"):
        load_experiment(write(tmp_path, dup, "dup.toml"))


def test_profile_errors_name_the_profile(tmp_path):
    path = write(tmp_path, BASE + '[quick]\noptimizers = [{ name = "nope" }]\n')
    load_experiment(path)  # the default profile is fine
    with pytest.raises(ExperimentError, match=r"\[quick\] optimizers\[0\]\.name"):
        load_experiment(path, "quick")
    bad_key = write(tmp_path, BASE + "[quick]\nseedz = 1\n", "k.toml")
    with pytest.raises(ExperimentError, match="quick: unknown key"):
        load_experiment(bad_key)


def test_malformed_toml_and_unknown_names(tmp_path):
    with pytest.raises(ExperimentError, match="malformed TOML"):
        load_experiment(write(tmp_path, "name = [\n"))
    with pytest.raises(ExperimentError, match="demo"):
        load_experiment("no-such-experiment")
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load_experiment(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="profile"):
        load_experiment(write(tmp_path, BASE, "ok.toml"), "fast")


class _Unit:
    def __init__(self, key: str) -> None:
        self.key = key

    def keys(self) -> list[str]:
        return [self.key]

    def run(self) -> list[dict]:
        return [{"key": self.key, "kind": "dummy", "experiment": "x"}]


def _dummy_kind(name: str, expand, keys: tuple[str, ...] = ()) -> Kind:
    return Kind(
        name=name,
        expand=expand,
        keys=keys,
        record_kinds=("dummy",),
        analyse=lambda folder: None,
        report=lambda folder, options: [],
    )


def test_registered_kind_gets_profile_merged_dict(tmp_path):
    seen = {}

    def expand(d: dict, profile: str) -> list:
        seen.update(d=d, profile=profile)
        if d.get("points", 0) < 1:
            raise ExperimentError("points: must be >= 1")
        return [_Unit(f"u{i}") for i in range(d["points"])]

    if "dummy-kind" not in KINDS:
        register_kind(_dummy_kind("dummy-kind", expand, keys=("points",)))
    path = write(tmp_path, 'kind = "dummy-kind"\npoints = 3\n[quick]\npoints = 1\n', "d.toml")
    exp = load_experiment(path, "quick")
    assert len(exp) == 1 and seen["profile"] == "quick"
    assert seen["d"]["name"] == "d" and seen["d"]["seed"] == 0 and "quick" not in seen["d"]
    assert exp.spec["points"] == 1 and exp.spec["kind"] == "dummy-kind"
    bad = write(tmp_path, 'kind = "dummy-kind"\npoints = 0\n', "bad.toml")
    with pytest.raises(ExperimentError, match=r"bad\.toml: points"):
        load_experiment(bad)
    # the kind's keys bound the top level and every profile table, whatever the kind
    stray = write(tmp_path, 'kind = "dummy-kind"\npoints = 1\nseeds = 2\n', "stray.toml")
    with pytest.raises(ExperimentError, match=r"stray\.toml: unknown key\(s\) 'seeds'.*points"):
        load_experiment(stray)
    prof = write(tmp_path, 'kind = "dummy-kind"\npoints = 1\n[full]\nseedz = 2\n', "p.toml")
    with pytest.raises(ExperimentError, match=r"full: unknown key\(s\) 'seedz'.*points"):
        load_experiment(prof)


def test_builtin_kind_is_imported_on_first_lookup():
    code = (
        "import sys; import suite.kinds as k; "
        "assert 'compare' not in k.KINDS and 'suite.kinds.compare' not in sys.modules; "
        "kind = k.get_kind('compare'); "
        "assert 'suite.kinds.compare' in sys.modules and kind.record_kinds == ('trial',); "
        "print(set(k.names()) >= {'compare', 'multistart', 'landscape'})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    with pytest.raises(ValueError, match="unknown experiment kind 'widgets'.*compare"):
        get_kind("widgets")


def test_kind_of_folder_from_spec_else_records(tmp_path):
    if "dummy-folder-kind" not in KINDS:
        register_kind(_dummy_kind("dummy-folder-kind", lambda d, p: [_Unit("a")]))
    store = Store(tmp_path / "a")
    store.write({"key": "k1", "kind": "trial", "experiment": "x"})
    assert [k.name for k in kind_of_folder(tmp_path / "a")] == ["compare"]
    store.write_experiment({"name": "x", "kind": "dummy-folder-kind"})
    assert [k.name for k in kind_of_folder(tmp_path / "a")] == ["dummy-folder-kind"]
    Store(tmp_path / "b").write({"key": "k2", "kind": "no-kind-writes-this", "experiment": "y"})
    assert kind_of_folder(tmp_path / "b") == [] and kind_of_folder(tmp_path / "c") == []


# ------------------------------------------------------------------------------------ tuning

TUNED = (
    BASE.replace('name = "adam"\nlr = 0.05\n', 'name = "adam"\nlr = 0.05\nlabel = "fast [adam]"\n')
    + "[tuning]\nseeds = [100, 101]\n[tuning.grid]\nadam = { lr = [0.001, 0.3] }\n"
)


def test_tuning_stores_its_choices_as_records_and_the_report_regenerates_them(tmp_path):
    from suite.report import write_report
    from suite.report.tables import TUNING_COLUMNS
    from suite.store import load_results
    from suite.tuning import run_tuned

    path = write(tmp_path, TUNED)
    out = tmp_path / "res"
    tune, evaluation = run_tuned(path, out=out, jobs=1, progress=False)
    assert tune.completed == 2 * 2 and evaluation.completed == 2 * 2
    results = load_results(out / "t")
    (record,) = results.records("tuning")
    assert record["entry"] == "fast [adam]" and record["tuning_experiment"] == "t-tuning"
    candidates = record["candidates"]
    assert [c["chosen"] for c in candidates] == [True, False]
    assert sorted(c["grid"]["lr"] for c in candidates) == [0.001, 0.3]
    for c in candidates:  # the configuration is data: name and every hyper-parameter
        assert c["optimizer"]["name"] == "adam" and c["trials"] == 2
        assert c["optimizer"]["params"]["lr"] == c["grid"]["lr"]
        assert set(c["optimizer"]["params"]) >= {"lr", "b1", "b2", "batch_size"}
    assert record["chosen"] == candidates[0]["optimizer"]
    # the tuning run's trials decide: the winner's success rate, then cost, then loss is best
    tuning = load_results(out / "t-tuning").trials
    by_lr = {
        lr: g for lr, g in tuning.groupby(tuning["optimizer_params"].map(json.loads).str["lr"])
    }

    def rank(g):
        cost = g["fe_to_target"].fillna(np.inf).median()
        return (-g["success"].mean(), cost, g["final_train_loss"].median())

    won, lost = (by_lr[c["grid"]["lr"]] for c in candidates)
    assert rank(won) <= rank(lost)
    # the evaluation ran the chosen configuration under the entry's label
    adam = results.trials[results.trials["optimizer"] == "fast [adam]"]
    assert len(adam) == 2
    assert {json.loads(p)["lr"] for p in adam["optimizer_params"]} == {
        record["chosen"]["params"]["lr"]
    }
    # a rerun finds everything stored and replaces the choice record (same key)
    again = run_tuned(path, out=out, jobs=1, progress=False)
    assert [s.completed for s in again] == [0, 0]
    assert [r["key"] for r in load_results(out / "t").records("tuning")] == [record["key"]]

    report = write_report(out / "t", n_boot=20)
    table = (out / "t" / "tables" / "tuning.csv").read_text().splitlines()
    assert table[0] == ",".join(TUNING_COLUMNS) and len(table) == 3
    assert "### Tuning" in report.read_text()
    # a tuned folder without tuning records (written before they existed): the report says so
    (out / "t" / "records" / f"{record['key']}.json").unlink()
    text = write_report(out / "t", n_boot=20).read_text()
    assert "holds no tuning records" in text and "`fast [adam]`" in text


def test_edge_value_extends_a_grid_only_at_its_edges():
    from suite.tuning import edge_value

    assert edge_value([0.01, 0.1, 1.0], 1.0) == pytest.approx(10.0)
    assert edge_value([0.01, 0.1, 1.0], 0.01) == pytest.approx(0.001)
    assert edge_value([0.01, 0.1, 1.0], 0.1) is None
    assert edge_value([8, 16, 32], 8) == 4.0 and edge_value([2, 4], 4) == 8.0
    assert edge_value([-1.0, 0.0, 1.0], 1.0) == 2.0  # arithmetic when not all positive
    assert edge_value(["best1bin", "rand1bin"], "best1bin") is None
    assert edge_value([0.5], 0.5) is None


def test_tuning_extends_the_grid_when_the_choice_sits_at_its_edge(tmp_path):
    from suite.store import load_results
    from suite.tuning import run_tuned

    path = write(tmp_path, TUNED.replace("seeds = [100, 101]", "seeds = [100, 101]\nextend = 1"))
    out = tmp_path / "res"
    summaries = run_tuned(path, out=out, jobs=1, progress=False)
    assert [s.completed for s in summaries] == [4, 2, 4]  # grid, one extension, evaluation
    (record,) = load_results(out / "t").records("tuning")
    lrs = sorted(c["grid"]["lr"] for c in record["candidates"])
    assert len(lrs) == 3 and {0.001, 0.3} < set(lrs)
    new = (set(lrs) - {0.001, 0.3}).pop()
    assert new == pytest.approx(0.001**2 / 0.3) or new == pytest.approx(0.3**2 / 0.001)
    # the report path reads the same rounds from the stored trials, running nothing
    again = run_tuned(path, out=out, jobs=1, progress=False)
    assert [s.completed for s in again] == [0, 0, 0]


def test_resumed_units_counts_only_what_was_stored_before_the_command(tmp_path):
    """The extension round rescans the tuning folder that round 0 of the same command filled;
    those units are not "resumed" (run.json's ``resumed`` line)."""
    from suite.reproduction import resumed_units
    from suite.tuning import run_tuned

    path = write(tmp_path, TUNED.replace("seeds = [100, 101]", "seeds = [100, 101]\nextend = 1"))
    out = tmp_path / "res"
    fresh = run_tuned(path, out=out, jobs=1, progress=False)
    assert [s.skipped for s in fresh] == [0, 4, 0]  # round 1 skips round 0's own units
    assert resumed_units(fresh) == 0
    assert resumed_units(run_tuned(path, out=out, jobs=1, progress=False)) == 10
    # interrupted: one tuning trial and one evaluation trial lost, 8 of 10 stored
    lost = [
        next((out / "t-tuning" / "records").glob("*.json")),
        next((out / "t" / "records").glob("*.json")),
    ]
    for record in lost:
        record.unlink()
    (out / "t-tuning" / "index.jsonl").unlink(missing_ok=True)
    (out / "t" / "index.jsonl").unlink(missing_ok=True)
    resumed = run_tuned(path, out=out, jobs=1, progress=False)
    assert sum(s.completed for s in resumed) == 2
    assert resumed_units(resumed) == 8


def test_tuning_breaks_exact_ties_by_grid_order_not_by_the_order_trials_were_stored():
    import pandas as pd

    from suite.tuning import Candidate, choose

    def cand(gtol: float) -> Candidate:
        opt = {"name": "scipy-bfgs", "params": {"gtol": gtol, "max_iter": None}}
        return Candidate("scipy-bfgs", {"gtol": gtol}, opt, f"scipy-bfgs[gtol={gtol}]")

    cands = [cand(1e-4), cand(1e-6)]

    def trials(order: list[int], losses: tuple[float, float]) -> pd.DataFrame:
        rows = []
        for i in order:  # the order the records were stored in (the executor's)
            for seed in range(3):
                rows.append(
                    {
                        "key": f"{i}-{seed}",
                        "problem": "adding",
                        "optimizer_name": "scipy-bfgs",
                        "optimizer_params": json.dumps(cands[i].optimizer["params"]),
                        "success": False,
                        "fe_to_target": np.nan,
                        "final_train_loss": losses[i],
                        "fe": 1e6,
                        "wall": 1.0 + i,
                    }
                )
        return pd.DataFrame(rows)

    def winner(frame: pd.DataFrame) -> dict:
        choice = choose(frame, cands)
        return choice[choice["chosen"]]["grid"].iloc[0]

    tie = (0.5, 0.5)
    assert winner(trials([1, 0], tie)) == winner(trials([0, 1], tie)) == {"gtol": 1e-4}
    better_second = (0.5, 0.4)  # a real difference still decides, in either order
    assert winner(trials([0, 1], better_second)) == winner(trials([1, 0], better_second))
    assert winner(trials([0, 1], better_second)) == {"gtol": 1e-6}
