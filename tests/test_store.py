"""The result store: atomic records, the consolidated index, corruption, loading into pandas."""

from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from suite.frames import TRACE_COLUMNS, TRIAL_COLUMNS
from suite.store import (
    INDEX,
    Store,
    StoreWarning,
    decode,
    encode_record,
    load_results,
)


def synthetic_record(i: int, target: float = 0.1, n_checkpoints: int = 6) -> dict:
    """A trial record shaped like run_trial's, with a trace descending from 1 by halves."""
    fe = [10.0 * 2**j for j in range(n_checkpoints)]
    train = [0.5**j for j in range(n_checkpoints)]
    return {
        "key": f"{i:016x}",
        "kind": "trial",
        "experiment": "synth",
        "spec": {
            "task": {"task": "adding", "seq_len": 10},
            "model": {"model": "elman", "hidden": 4},
            "optimizer": {"name": "adam" if i % 2 else "sgd", "params": {"lr": 0.01}},
            "budget": {"fe": 1000.0, "seconds": None},
            "checkpoints_per_decade": 10,
            "seed": i // 2,
            "experiment_seed": 0,
        },
        "labels": {"problem": "adding / elman", "optimizer": "adam" if i % 2 else "sgd"},
        "status": "budget",
        "error": None,
        "final_train_loss": train[-1],
        "final_test_loss": math.inf,
        "target_loss": target,
        "baseline_loss": 1.0,
        "counters": {
            "fe": fe[-1],
            "fwd_steps": 100,
            "bwd_steps": 50,
            "loss_calls": 3,
            "grad_calls": 4,
            "evaluations": 7,
            "nonfinite": 0,
        },
        "time": {"wall": 1.0, "cpu": 0.9, "inside_wall": 0.5},
        "peak_mem_mb": 100.0,
        "trace": {
            "fe": fe,
            "seconds": [0.1 * (j + 1) for j in range(n_checkpoints)],
            "evaluations": list(range(1, n_checkpoints + 1)),
            "train_loss": train,
            "test_loss": [math.nan] + train[1:],
        },
        "theta": [0.1, -0.2, float(i)],
        "provenance": {"rnnbench": "test"},
    }


def index_lines(directory) -> list[str]:
    return (directory / INDEX).read_text().splitlines()


def test_encoding_is_strict_json_and_round_trips():
    record = {"key": "k", "a": [1.0, math.inf, -math.inf, math.nan], "b": {"c": math.nan}}
    text = encode_record(record).decode()

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    parsed = json.loads(text, parse_constant=refuse)
    back = decode(parsed)
    assert back["a"][:3] == [1.0, math.inf, -math.inf] and math.isnan(back["a"][3])
    assert math.isnan(back["b"]["c"])


def test_write_then_load_frames_have_contract_columns(tmp_path):
    with Store(tmp_path) as store:
        for i in range(4):
            store.write(synthetic_record(i, target=0.2))
    res = load_results(tmp_path)
    assert list(res.trials.columns) == list(TRIAL_COLUMNS)
    assert list(res.trace.columns) == list(TRACE_COLUMNS)
    assert len(res.trials) == 4 and len(res.trace) == 4 * 6
    row = res.trials.set_index("key").loc[f"{1:016x}"]
    # trace 1, .5, .25, .125, ...: the first checkpoint <= 0.2 is the 4th (fe = 80)
    assert row["fe_to_target"] == 80.0
    assert row["seconds_to_target"] == pytest.approx(0.4)
    assert bool(row["success"]) is True
    assert row["final_test_loss"] == math.inf
    assert row["optimizer"] == "adam" and row["optimizer_name"] == "adam"
    assert json.loads(row["task_params"]) == {"seq_len": 10}
    assert row["problem"] == "adding / elman"
    assert res.trials["seed"].dtype == np.int64
    assert math.isnan(res.trace["test_loss"].iloc[0])


def test_never_reaching_target_gives_nan(tmp_path):
    Store(tmp_path).write(synthetic_record(0, target=1e-6))
    row = load_results(tmp_path).trials.iloc[0]
    assert not row["success"]
    assert math.isnan(row["fe_to_target"]) and math.isnan(row["seconds_to_target"])


def test_records_of_other_kinds_and_frame(tmp_path):
    store = Store(tmp_path)
    store.write(synthetic_record(0))
    store.write({"key": "ms-1", "kind": "multistart", "experiment": "x", "stats": {"n": 3}})
    res = load_results(tmp_path)
    assert [r["key"] for r in res.records("multistart")] == ["ms-1"]
    assert len(res.records()) == 2
    frame = res.frame("multistart")
    assert frame.loc[0, "stats.n"] == 3
    assert len(res.trials) == 1


def test_records_come_back_complete(tmp_path):
    record = synthetic_record(5)
    record["trace"]["train_loss"][0] = math.inf
    Store(tmp_path).write(record)
    (back,) = load_results(tmp_path).records("trial")
    assert json.dumps(back, sort_keys=True) == json.dumps(record, sort_keys=True)
    assert all(type(v) is int for v in back["trace"]["evaluations"])


def test_damaged_binary_file_falls_back_to_record_files(tmp_path):
    with Store(tmp_path) as store:
        for i in range(3):
            store.write(synthetic_record(i))
    (tmp_path / "trace.f64").write_bytes(b"")
    res = load_results(tmp_path)
    assert len(res.trials) == 3 and len(res.trace) == 18
    (tmp_path / INDEX).unlink()
    Store(tmp_path).sync()  # rebuilds the index and fresh binary files
    assert (tmp_path / "trace.f64").stat().st_size == 3 * 6 * 5 * 8
    assert len(load_results(tmp_path).trace) == 18


def test_bad_key_refused(tmp_path):
    with pytest.raises(ValueError, match="record key"):
        Store(tmp_path).write({"key": "../escape", "kind": "trial"})


def test_corrupt_record_is_reported_and_dropped_then_rewritten(tmp_path):
    store = Store(tmp_path)
    for i in range(3):
        store.write(synthetic_record(i))
    store.close()
    victim = tmp_path / "records" / f"{1:016x}.json"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # truncated JSON
    with pytest.warns(StoreWarning, match="corrupt record"):
        res = load_results(tmp_path)
    assert sorted(res.trials["key"]) == [f"{0:016x}", f"{2:016x}"]
    with pytest.warns(StoreWarning):
        store = Store(tmp_path)
        scan = store.sync()
    assert scan.corrupt == [f"{1:016x}"] and f"{1:016x}" not in store.keys()
    store.write(synthetic_record(1))  # the rerun
    store.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = load_results(tmp_path)
    assert sorted(res.trials["key"]) == [f"{i:016x}" for i in range(3)]


def test_records_missing_from_index_are_found_and_indexed(tmp_path):
    store = Store(tmp_path)
    for i in range(3):
        store.write(synthetic_record(i))
    store.close()
    (tmp_path / INDEX).unlink()  # as if killed after the rename, before the append
    assert len(load_results(tmp_path).trials) == 3
    Store(tmp_path).sync()
    assert len(index_lines(tmp_path)) == 3


def test_cut_index_line_is_ignored_and_following_appends_parse(tmp_path):
    store = Store(tmp_path)
    store.write(synthetic_record(0))
    store.close()
    with open(tmp_path / INDEX, "ab") as f:  # a line cut by a killed writer
        f.write(b'{"key":"00000000000000ff","size":10,"kind":"trial","status":"ok","record":{"ke')
    store = Store(tmp_path)
    store.write(synthetic_record(1))
    store.close()
    res = load_results(tmp_path)
    assert sorted(res.trials["key"]) == [f"{0:016x}", f"{1:016x}"]
    Store(tmp_path).sync()  # compaction drops the cut line
    assert len(index_lines(tmp_path)) == 2


def test_rewrite_keeps_latest_and_compacts(tmp_path):
    store = Store(tmp_path)
    store.write(synthetic_record(0))
    newer = synthetic_record(0)
    newer["status"] = "ok"
    newer["final_train_loss"] = 0.0123
    store.write(newer)
    store.close()
    assert len(index_lines(tmp_path)) == 2
    res = load_results(tmp_path)
    assert len(res.trials) == 1 and res.trials.loc[0, "final_train_loss"] == 0.0123
    Store(tmp_path).sync()
    assert len(index_lines(tmp_path)) == 1
    assert load_results(tmp_path).trials.loc[0, "status"] == "ok"


def test_deleted_record_file_disappears_from_results(tmp_path):
    store = Store(tmp_path)
    for i in range(2):
        store.write(synthetic_record(i))
    store.close()
    (tmp_path / "records" / f"{0:016x}.json").unlink()
    assert list(load_results(tmp_path).trials["key"]) == [f"{1:016x}"]


def test_temporary_files_are_ignored(tmp_path):
    store = Store(tmp_path)
    store.write(synthetic_record(0))
    (tmp_path / "records" / ".tmp-abc.part").write_text('{"key": "x"')
    assert store.scan().entries.keys() == {f"{0:016x}"}


def test_statuses_without_parsing_records(tmp_path):
    store = Store(tmp_path)
    a, b = synthetic_record(0), synthetic_record(1)
    b["status"] = "error"
    store.write(a)
    store.write(b)
    assert Store(tmp_path).statuses() == {a["key"]: "budget", b["key"]: "error"}


def test_experiment_json_round_trip(tmp_path):
    store = Store(tmp_path)
    store.write_experiment({"name": "x", "budget": {"fe": 1e3, "seconds": None}, "v": math.inf})
    assert Store(tmp_path).experiment() == {
        "name": "x",
        "budget": {"fe": 1e3, "seconds": None},
        "v": math.inf,
    }
    assert load_results(tmp_path).experiment["name"] == "x"


def test_family_and_tags_come_from_the_record_else_the_registry(tmp_path):
    plugin = synthetic_record(0)  # a plugin optimizer this process has not loaded
    plugin["spec"]["optimizer"]["name"] = "my-unloaded-plugin"
    plugin["optimizer"] = {"family": "plugins", "tags": ["stochastic", "population"]}
    old = synthetic_record(1)  # adam, written before records carried family and tags
    unknown = synthetic_record(2)
    unknown["spec"]["optimizer"]["name"] = "gone-plugin"
    with Store(tmp_path) as store:
        for record in (plugin, old, unknown):
            store.write(record)
    trials = load_results(tmp_path).trials.set_index("optimizer_name")
    assert trials.loc["my-unloaded-plugin", "family"] == "plugins"
    assert trials.loc["my-unloaded-plugin", "tags"] == "population,stochastic"
    assert trials.loc["adam", "family"] == "gradient"
    assert trials.loc["adam", "tags"] == "gradient,stochastic"
    assert trials.loc["gone-plugin", "family"] == "" and trials.loc["gone-plugin", "tags"] == ""


def test_load_missing_folder_raises(tmp_path):
    with pytest.raises(ValueError, match="no results folder"):
        load_results(tmp_path / "nope")


def test_empty_folder_gives_empty_frames(tmp_path):
    res = load_results(tmp_path)
    assert list(res.trials.columns) == list(TRIAL_COLUMNS) and res.trials.empty
    assert list(res.trace.columns) == list(TRACE_COLUMNS) and res.trace.empty


def test_many_records_load_consistently(tmp_path):
    n = 300
    with Store(tmp_path) as store:
        for i in range(n):
            store.write(synthetic_record(i))
    assert len(os.listdir(tmp_path / "records")) == n
    res = load_results(tmp_path)
    assert res.trials["key"].is_unique and len(res.trials) == n
    per_key = res.trace.groupby("key").size()
    assert (per_key == 6).all()
    assert isinstance(res.trials, pd.DataFrame)


# ------------------------------------------------------------- columnar frames (issue 15)
def parsed_frames(directory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frames a full parse of the index gives (no frames.npz)."""
    from suite.frames import trial_frames

    return trial_frames(Store(directory)._parts("trial"))


def assert_loads_as_parsed(directory) -> None:
    trials, trace = parsed_frames(directory)
    res = load_results(directory)
    pd.testing.assert_frame_equal(res.trials, trials)
    pd.testing.assert_frame_equal(res.trace, trace)


def count_parses(monkeypatch) -> list[int]:
    """Patch the parse of the store's Results so that each call records how many records it
    parsed."""
    import suite.store as store_module

    calls: list[int] = []
    original = store_module.trial_frames

    def counting(parts):
        parts = list(parts)
        calls.append(len(parts))
        return original(parts)

    monkeypatch.setattr(store_module, "trial_frames", counting)
    return calls


def test_columnar_frames_are_reused_and_equal_to_a_parse(tmp_path, monkeypatch):
    from suite.columnar import FRAMES

    with Store(tmp_path) as s:
        for i in range(20):
            s.write(synthetic_record(i, n_checkpoints=3 + i % 4))
    calls = count_parses(monkeypatch)
    assert_loads_as_parsed(tmp_path)
    assert (tmp_path / FRAMES).exists() and calls[-1] == 20
    # plain arrays only: loading without pickle works, and no member is an object array
    with np.load(tmp_path / FRAMES, allow_pickle=False) as z:
        assert all(z[name].dtype != object for name in z.files)
    calls.clear()
    assert_loads_as_parsed(tmp_path)
    assert calls == []  # nothing parsed
    # a resumed run adds records, a rerun replaces one, one file is deleted: only the new and
    # changed records are parsed, and the frames are still those of a full parse
    with Store(tmp_path) as s:
        for i in range(20, 25):
            s.write(synthetic_record(i))
        s.write({**synthetic_record(3), "final_train_loss": 0.01, "status": "ok"})
    (tmp_path / "records" / f"{7:016x}.json").unlink()
    calls.clear()
    assert_loads_as_parsed(tmp_path)
    assert calls == [6]
    res = load_results(tmp_path)
    assert len(res.trials) == 24 and res.trials.set_index("key").loc[f"{3:016x}", "status"] == "ok"


def test_columnar_frames_of_a_folder_that_cannot_be_written(tmp_path):
    from suite.columnar import FRAMES

    with Store(tmp_path) as s:
        for i in range(4):
            s.write(synthetic_record(i))
    os.chmod(tmp_path, 0o555)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("running as a user who can write anyway (root)")
        assert_loads_as_parsed(tmp_path)
        assert not (tmp_path / FRAMES).exists()
    finally:
        os.chmod(tmp_path, 0o755)


def test_damaged_columnar_frames_fall_back_to_the_index(tmp_path):
    from suite.columnar import FRAMES

    with Store(tmp_path) as s:
        for i in range(6):
            s.write(synthetic_record(i))
    assert len(load_results(tmp_path).trials) == 6
    (tmp_path / FRAMES).write_bytes(b"PK\x03\x04 not a zip")
    assert_loads_as_parsed(tmp_path)
