"""Tests of the multistart kind and the batched trainer: stopping rules, seeds, units and
expansion."""

from __future__ import annotations

import numpy as np
import pytest

from suite import seeding
from suite.experiment import ExperimentError
from suite.kinds.load import experiment_from_dict
from suite.kinds.multistart import MultiStartChunk, expand_problem_grid
from suite.optimizers.batched import train_batch
from suite.optimizers.batched_method import Method
from suite.problem import problem_from_spec
from suite.seeding import initial_points

CLIFF_TASK = {"task": "cliff", "steps": 50}
CLIFF_MODEL = {"model": "cliff", "dtype": "float64"}


def _problem(task: dict, model: dict):
    """The problem of a study with experiment seed 0 and data seed 0."""
    return problem_from_spec(task, model, seeding.data_stream(0, task, 0))


def _cliff():
    p = _problem(CLIFF_TASK, CLIFF_MODEL)
    return p, initial_points(0, p.task.spec(), p.model, range(12))


def test_batched_training_matches_one_start_at_a_time():
    p, theta0 = _cliff()
    method = Method.make("adam", lr=0.02, max_steps=300, polish_steps=200)
    batch = train_batch(p, theta0, method)
    for i in range(len(theta0)):
        one = train_batch(p, theta0[i : i + 1], method)
        assert one.status[0] == batch.status[i]
        assert one.steps[0] == batch.steps[i]
        np.testing.assert_allclose(one.theta[0], batch.theta[i], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(one.fe[0], batch.fe[i])
    # rows stop individually: different starts take different numbers of steps
    assert len(set(batch.steps.tolist())) > 1


def test_stopping_rules_and_cost_accounting():
    p, theta0 = _cliff()
    p.start()
    res = train_batch(p, theta0, Method.make("adam", lr=0.02, max_steps=2000))
    conv = res.status == "converged"
    assert conv.sum() >= len(theta0) // 2
    ok = (res.grad_norm[conv] <= res.gtol) | (res.loss[conv] <= 1e-12 * p.baseline_loss)
    assert ok.all()
    # each start is charged exactly its own work, and the shares add up to the total
    assert res.fe.sum() == pytest.approx(res.total_fe)
    assert res.total_fe == pytest.approx(p.counters.fe)
    # the trace is a decreasing-in-time record of full losses, one slot per power of two
    row = res.trace_loss[0][~np.isnan(res.trace_loss[0])]
    assert row.size >= 3 and row[-1] <= row[0]


def test_divergence_is_a_status_not_an_exception():
    p = _problem({"task": "adding", "seq_len": 5, "n_train": 8}, {"model": "elman", "hidden": 2})
    theta0 = initial_points(0, p.task.spec(), p.model, range(3))
    res = train_batch(p, theta0, Method.make("sgd", lr=1e6, max_steps=50, polish="none"))
    assert set(res.status) == {"diverged"}


def test_minibatch_method_needs_an_rng_and_is_seeded():
    p = _problem({"task": "adding", "seq_len": 5, "n_train": 16}, {"model": "elman", "hidden": 2})
    theta0 = initial_points(0, p.task.spec(), p.model, range(4))
    m = Method.make("momentum", lr=0.05, batch_size=4, max_steps=40, check_every=10, polish="none")
    with pytest.raises(ValueError, match="rng"):
        train_batch(p, theta0, m)
    a = train_batch(p, theta0, m, np.random.default_rng(5))
    b = train_batch(p, theta0, m, np.random.default_rng(5))
    np.testing.assert_array_equal(a.theta, b.theta)
    assert np.all(a.steps == 40) or np.any(a.status == "converged")


def test_starts_are_the_compare_trial_starts():
    from suite.trial import Trial

    p, theta0 = _cliff()
    trial = Trial("x", CLIFF_TASK, CLIFF_MODEL, {"name": "adam", "params": {}}, {"fe": 1.0}, 3, 0)
    x0 = p.initial_point(np.random.default_rng(trial.streams().init))
    np.testing.assert_array_equal(x0, theta0[3])


def test_method_validation():
    with pytest.raises(ValueError, match="unknown method 'bfgs'.*allowed methods: adam"):
        Method.make("bfgs")
    with pytest.raises(ValueError, match="optimizer 'adam': hyper-parameter lr must be > 0"):
        Method.make("adam", lr=-1.0)
    with pytest.raises(ValueError, match="unknown parameter.*learning_rate.*allowed parameters"):
        Method.from_dict({"name": "adam", "learning_rate": 0.1})
    # the registry's words: momentum (not beta), sgd (not gd); a rule's foreign keys refused
    with pytest.raises(ValueError, match="unknown parameter.*beta"):
        Method.make("momentum", beta=0.5)
    with pytest.raises(ValueError, match="unknown parameter.*b1"):
        Method.make("sgd", b1=0.5)
    with pytest.raises(ValueError, match="parameter polish must be one of 'lbfgs', 'none'"):
        Method.make("adam", polish="newton")
    with pytest.raises(ValueError, match="parameter batch_size must be an integer >= 1"):
        Method.make("adam", batch_size=0)
    assert Method.make("adam", lr=0.1).display() == "adam(lr=0.1)"
    assert Method.make("momentum", momentum=0.5).display() == "momentum(momentum=0.5)"


def test_stored_method_layout_keeps_the_keys_of_stored_studies():
    """The stored spec keeps the layout (and so the record keys) of studies run before the
    registry's names: ``beta`` holds the momentum, every constant is stored."""
    m = Method.make("adam", lr=0.01, max_steps=1000, polish_steps=3000)
    stored = {
        "name": "adam", "lr": 0.01, "beta": 0.9, "b1": 0.9, "b2": 0.999, "eps": 1e-08,
        "clip": None, "batch_size": None, "max_steps": 1000, "gtol_rel": 1e-05,
        "check_every": 50, "polish": "lbfgs", "polish_steps": 3000, "memory": 10,
        "newton_steps": 10, "newton_max_params": 300, "label": "adam(max_steps=1000)",
    }  # fmt: skip
    assert m.spec() == stored  # as in results/optima
    assert Method.from_spec(stored).spec() == stored
    mom = Method.make("momentum", momentum=0.5, nesterov=True)
    assert mom.spec()["beta"] == 0.5 and mom.spec()["nesterov"] is True
    back = Method.from_spec(mom.spec())
    assert back.params == mom.params and back.rule is not None


def test_chunk_unit_records():
    unit = MultiStartChunk(
        experiment="ms",
        task=CLIFF_TASK,
        model=CLIFF_MODEL,
        method=Method.make("adam", lr=0.02, max_steps=300, polish_steps=100).spec(),
        seeds=(4, 5, 6),
    )
    records = unit.run()
    assert [r["key"] for r in records] == unit.keys()
    r = records[0]
    assert r["kind"] == "start" and r["experiment"] == "ms" and r["spec"]["seed"] == 4
    assert r["status"] in ("converged", "max_steps", "diverged") and len(r["theta"]) == 2
    assert {"final_train_loss", "grad_norm", "lambda_min", "lambda_max", "counters"} <= set(r)
    assert r["counters"]["fe"] > 0
    # the same study with other seeds gives other keys; the same seed the same key
    other = MultiStartChunk("ms", CLIFF_TASK, CLIFF_MODEL, unit.method, seeds=(4,))
    assert other.keys() == unit.keys()[:1]
    assert seeding.content_hash(unit.study_content()) == unit.study_key


def _ms(**over):
    d = {
        "name": "ms",
        "kind": "multistart",
        "starts": 10,
        "chunk": 4,
        "tdnn_twin": True,
        "problems": [
            {"task": "adding", "seq_len": [6, 8], "hidden": 3, "spectral_radius": [0.5, 1.5]}
        ],
        "methods": [{"name": "adam", "lr": 0.01}, {"name": "sgd", "lr": 0.1}],
    }
    d.update(over)
    return experiment_from_dict(d)


def test_multistart_expansion():
    exp = _ms()
    # 4 elman problems + 2 twins (one per seq_len), 2 methods, 3 chunks of 10 starts
    assert len(exp.units) == 6 * 2 * 3
    assert len(set(exp.keys())) == 6 * 2 * 10
    twins = {u.model["model"] for u in exp.units}
    assert twins == {"elman", "tdnn"}
    assert all(u.seeds for u in exp.units)
    with pytest.raises(ExperimentError, match="methods"):
        _ms(methods=[{"name": "adam", "speed": 1}])
    with pytest.raises(ExperimentError, match="chunk"):
        _ms(chunk=0)
    with pytest.raises(ExperimentError, match="unknown key"):
        _ms(start=3)


def test_expand_problem_grid():
    grid = expand_problem_grid(
        [{"task": "a", "x": [1, 2], "y": [3, 4], "label": "l"}, {"task": "b"}]
    )
    assert len(grid) == 5 and grid[-1] == {"task": "b"}
    assert {(g["x"], g["y"]) for g in grid[:4]} == {(1, 3), (1, 4), (2, 3), (2, 4)}
    assert all("label" not in g for g in grid[:4])


def test_design_gated_and_data_seed_expansion():
    exp = _ms(
        tdnn_twin=False,
        tdnn_design=True,
        gated=["gru", "lstm"],
        data_seed=[0, 1, 2],
        problems=[{"task": "adding", "seq_len": 8, "hidden": [2, 4]}],
        methods=[{"name": "adam", "lr": 0.01}],
        starts=4,
        chunk=4,
    )
    models = {(u.model["model"], u.model["hidden"], u.model.get("window")) for u in exp.units}
    # windows {2, T/2, T} at the RNN's H, the matched TDNN (window T), matched GRU and LSTM
    for h in (2, 4):
        assert {("tdnn", h, 2), ("tdnn", h, 4), ("tdnn", h, 8), ("elman", h, None)} <= models
    assert {m for m, _, _ in models} == {"elman", "tdnn", "gru", "lstm"}
    assert {u.data_seed for u in exp.units} == {0, 1, 2}
    assert all(u.labels["study"].endswith(f"data {u.data_seed}") for u in exp.units)
    assert len(set(exp.keys())) == len(exp.units) * 4
    with pytest.raises(ExperimentError, match="gated"):
        _ms(gated=["rnn"])
    with pytest.raises(ExperimentError, match="data_seed"):
        _ms(data_seed=[0, -1])
    with pytest.raises(ExperimentError, match="resolve"):
        _ms(resolve={"escape": 1})


def test_resolved_chunk_records_classes_inputs():
    task, model = {"task": "adding", "seq_len": 5, "n_train": 16}, {"model": "elman", "hidden": 2}
    method = Method.make("adam", lr=0.02, max_steps=50, polish_steps=20).spec()
    plain = MultiStartChunk("ms", task, model, method, seeds=(0, 1, 2))
    unit = MultiStartChunk(
        "ms", task, model, method, seeds=(0, 1, 2), resolve={"escape_k": 2, "escape_iters": 10}
    )
    assert "resolve" not in plain.study_content() and unit.keys() != plain.keys()
    records = unit.run()
    for r in records:
        res = r["resolved"]
        assert {"curvature_ok", "diverging", "escape_loss", "trust_iters", "norm_path"} <= set(res)
        assert np.isfinite(r["lambda_min"]) and len(res["norm_path"]) == 4
    # escape-tested rows are those above 1% of the chunk's gap; each has a finite best loss
    losses = np.array([r["final_train_loss"] for r in records])
    tested = np.array([np.isfinite(r["resolved"]["escape_loss"]) for r in records])
    assert not tested[np.argmin(losses)]
