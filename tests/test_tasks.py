"""Tests of the task registry, the shared loss and every registered task.

Common checks loop over ``tasks.names()`` (registered means tested) and branch only on declared
capabilities (``fixed_data``, ``loss``); the task-specific checks compare each task's data with
an independent computation (a slow literal NARMA10 loop, the sunspot CSV read with pandas, a
hand-built parity network, the cliff unit's closed-form bifurcation).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

import tasks
from tasks.base import Split
from tasks.cliff import cliff_fixed_points, cliff_loss_grid
from tasks.mackey_glass import mackey_glass
from tasks.narma10 import narma10

ALL = tasks.names()


def small(name: str) -> tasks.Task:
    """The task with small splits where the task has split sizes (fast tests)."""
    fields = tasks.get(name).params
    sizes = {k: v for k, v in (("n_train", 16), ("n_test", 8)) if k in fields}
    return tasks.get(name, **sizes)


def data(name: str, seed: int = 0) -> tasks.Dataset:
    return small(name).generate(np.random.default_rng(seed))


# ------------------------------------------------------------------------------ registry


def test_registry_lists_the_tasks() -> None:
    assert ALL == sorted(ALL)
    assert {"adding", "parity", "narma10", "mackey_glass", "sunspots", "cliff"} <= set(ALL)


def test_unknown_task_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown task 'nope'") as err:
        tasks.get("nope")
    for name in ALL:
        assert name in str(err.value)


def test_unknown_parameter_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown parameter") as err:
        tasks.get("adding", seq_length=5)
    message = str(err.value)
    assert "seq_length" in message
    for allowed in ("n_train", "n_test", "seq_len"):
        assert allowed in message


@pytest.mark.parametrize(
    ("name", "params", "allowed"),
    [
        ("adding", {"seq_len": -1}, "an integer >= 2"),
        ("adding", {"seq_len": 1}, "an integer >= 2"),
        ("adding", {"n_train": 0}, "an integer >= 1"),
        ("parity", {"seq_len": 2.5}, "an integer >= 1"),
        ("parity", {"mode": "middle"}, "one of 'end', 'running'"),
        ("narma10", {"washout": -3}, "an integer in [0, 1000]"),
        ("narma10", {"seq_len": True}, "an integer in [1, 2000]"),
        ("mackey_glass", {"seq_len": "40"}, "an integer >= 1"),
        ("sunspots", {"test_period": "1980-2008"}, "one of '1921-1955', '1956-1979'"),
        ("cliff", {"steps": 0}, "an integer >= 1"),
    ],
)
def test_bad_value_says_the_allowed_range(name: str, params: dict, allowed: str) -> None:
    (key,) = params
    with pytest.raises(ValueError, match=key) as err:
        tasks.get(name, **params)
    assert allowed in str(err.value)


def test_register_refuses_a_second_task_with_the_same_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        tasks.register("adding")(type(small("narma10")))


@pytest.mark.parametrize("name", ALL)
def test_spec_is_json_and_rebuilds_the_task(name: str) -> None:
    task = tasks.get(name)
    spec = json.loads(json.dumps(task.spec()))
    assert spec["task"] == name == task.name
    rebuilt = tasks.get(spec.pop("task"), **spec)
    assert rebuilt == task and rebuilt.params == task.params
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(task, next(iter(task.params)), 3)


def test_integral_floats_are_accepted_and_stored_as_int() -> None:
    task = tasks.get("adding", seq_len=30.0, n_train=np.int64(5))
    assert task.params["seq_len"] == 30 and type(task.params["seq_len"]) is int
    assert type(task.params["n_train"]) is int


# ----------------------------------------------------------------- every registered task


@pytest.mark.parametrize("name", ALL)
def test_shapes_dtypes_and_masks(name: str) -> None:
    task = small(name)
    ds = task.generate(np.random.default_rng(1))
    assert task.loss in tasks.LOSS_KINDS
    assert task.model is None or isinstance(task.model, str)
    for split in (ds.train, ds.test):
        B, T, n_in = split.X.shape
        assert (n_in, split.Y.shape[2]) == (task.n_in, task.n_out)
        assert split.Y.shape[:2] == split.M.shape == (B, T)
        for arr in (split.X, split.Y, split.M):
            assert arr.dtype == np.float64 and np.all(np.isfinite(arr))
            assert not arr.flags.writeable
        assert set(np.unique(split.M)) <= {0.0, 1.0}
        assert np.all(split.M.sum(axis=1) >= 1), "every sequence scores at least one step"
        if task.loss == "bce":
            assert set(np.unique(split.Y)) <= {0.0, 1.0}
    if "n_train" in task.params:
        assert ds.train.X.shape[0] == task.params["n_train"]
        assert ds.test.X.shape[0] == task.params["n_test"]


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_data_and_other_seeds_differ_unless_fixed(name: str) -> None:
    task = small(name)
    a, b, c = (task.generate(np.random.default_rng(s)) for s in (3, 3, 4))
    for split in ("train", "test"):
        for arr in ("X", "Y", "M"):
            np.testing.assert_array_equal(
                getattr(getattr(a, split), arr), getattr(getattr(b, split), arr)
            )
    assert (a.baseline_loss, a.target_loss) == (b.baseline_loss, b.target_loss)
    same = np.array_equal(a.train.X, c.train.X) and np.array_equal(a.test.Y, c.test.Y)
    assert same == task.fixed_data


@pytest.mark.parametrize("name", ALL)
def test_generate_uses_only_the_given_generator(name: str) -> None:
    task = small(name)
    # the global states are only read (deliberately legacy API: it is what must stay untouched)
    legacy, stdlib = np.random.get_state(), random.getstate()  # noqa: NPY002
    task.generate(np.random.default_rng(0))
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(x, y) for x, y in zip(legacy, after, strict=True))
    assert random.getstate() == stdlib
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        task.generate(0)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL)
def test_baseline_is_the_trivial_predictors_loss_and_target_is_below(name: str) -> None:
    task = small(name)
    for seed in range(3):
        ds = task.generate(np.random.default_rng(seed))
        z = task.trivial_prediction(ds.train)
        assert z.shape == (task.n_out,)  # a constant predictor
        assert ds.baseline_loss == pytest.approx(tasks.loss_value(z, ds.train, task.loss))
        assert 0.0 < ds.target_loss < ds.baseline_loss
        if task.loss == "bce":  # probability 1/2 whatever the data
            assert ds.baseline_loss == pytest.approx(math.log(2.0), rel=1e-12)
        else:  # never better than the best constant, the masked mean
            best = tasks.loss_value(tasks.masked_mean(ds.train), ds.train, "mse")
            assert ds.baseline_loss >= best - 1e-15


# --------------------------------------------------------------------- loss and references


def literal_loss(Z: np.ndarray, split: Split, kind: str) -> float:
    total = weight = 0.0
    B, T, O = split.Y.shape
    for b in range(B):
        for t in range(T):
            for o in range(O):
                z, y = Z[b, t, o], split.Y[b, t, o]
                per = (z - y) ** 2 if kind == "mse" else math.log1p(math.exp(z)) - y * z
                total += split.M[b, t] * per
            weight += split.M[b, t] * O
    return total / weight


def test_loss_value_matches_the_formula() -> None:
    rng = np.random.default_rng(0)
    M = (rng.uniform(size=(3, 5)) < 0.5).astype(float)
    M[0, 0] = 1.0
    split = Split(rng.normal(size=(3, 5, 2)), (rng.uniform(size=(3, 5, 2)) < 0.5) * 1.0, M)
    Z = rng.normal(size=(3, 5, 2)) * 3
    for kind in ("mse", "bce"):
        assert tasks.loss_value(Z, split, kind) == pytest.approx(literal_loss(Z, split, kind))
    big = np.full((3, 5, 2), 800.0)  # log(1 + e^800) overflows naively
    expected = np.einsum("bt,bto->", M, 800.0 * (1 - split.Y)) / (2 * M.sum())
    assert tasks.loss_value(big, split, "bce") == pytest.approx(expected)
    with pytest.raises(ValueError, match="allowed: mse, bce"):
        tasks.loss_value(Z, split, "mae")
    with pytest.raises(ValueError, match="does not match"):
        tasks.loss_value(Z[:, :4], split, "mse")


def test_split_rejects_inconsistent_arrays() -> None:
    with pytest.raises(ValueError, match="shapes disagree"):
        Split(np.zeros((2, 3, 1)), np.zeros((2, 4, 1)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="at least one positive"):
        Split(np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        Split(np.full((2, 3, 1), np.nan), np.zeros((2, 3, 1)), np.ones((2, 3)))


def test_window_fit_recovers_an_exact_linear_law() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6, 12, 1))
    Y = 0.3 + 2.0 * X - 0.5 * np.concatenate([np.zeros((6, 2, 1)), X[:, :-2]], axis=1)
    M = np.zeros((6, 12))
    M[:, 2:] = 1.0
    split = Split(X, Y, M)
    assert tasks.window_fit_mse(split, 3) < 1e-20
    assert tasks.window_fit_mse(split, 2) > 0.1  # the lag-2 term is out of reach
    assert tasks.window_fit_mse(split, 3, ridge=10.0) > 1e-4


# ------------------------------------------------------------------------------- adding


def test_adding_markers_targets_and_baseline() -> None:
    task = tasks.get("adding", n_train=64, n_test=8, seq_len=9)
    ds = task.generate(np.random.default_rng(2))
    X, Y, M = ds.train.X, ds.train.Y, ds.train.M
    marks = X[:, :, 1]
    assert np.all(marks.sum(1) == 2) and set(np.unique(marks)) == {0.0, 1.0}
    assert np.all(marks[:, :4].sum(1) == 1) and np.all(marks[:, 4:].sum(1) == 1)
    assert np.all((X[:, :, 0] >= 0) & (X[:, :, 0] < 1))
    np.testing.assert_allclose(Y[:, -1, 0], (X[:, :, 0] * marks).sum(1))
    assert np.all(M[:, -1] == 1) and M.sum() == 64
    baselines = [
        tasks.get("adding").generate(np.random.default_rng(s)).baseline_loss for s in range(40)
    ]
    assert np.mean(baselines) == pytest.approx(1 / 6, abs=0.01)  # Var(U1 + U2) = 1/6


# ------------------------------------------------------------------------------- parity


def elman_logits(X: np.ndarray, Wx, Wh, b, Wo, c) -> np.ndarray:
    h = np.zeros((X.shape[0], Wh.shape[0]))
    out = []
    for t in range(X.shape[1]):
        h = np.tanh(X[:, t] @ Wx.T + h @ Wh.T + b)
        out.append(h @ Wo.T + c)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("mode", ["end", "running"])
def test_parity_targets_and_a_hand_built_elman_net_reaches_the_target(mode: str) -> None:
    task = tasks.get("parity", mode=mode, n_train=64, n_test=8, seq_len=12)
    ds = task.generate(np.random.default_rng(7))
    bits = ds.train.X[:, :, 0]
    np.testing.assert_array_equal(ds.train.Y[:, :, 0], np.cumsum(bits, axis=1) % 2)
    assert ds.train.M.sum() == (64 if mode == "end" else 64 * 12)
    # units: OR and AND of (previous parity, new bit); parity = OR - AND = (h1 - h2) / 2
    k, k_out = 10.0, 20.0
    Wx = k * np.ones((2, 1))
    Wh = k * np.array([[0.5, -0.5], [0.5, -0.5]])
    b = k * np.array([-0.5, -1.5])
    Wo = k_out * np.array([[0.5, -0.5]])
    Z = elman_logits(ds.train.X, Wx, Wh, b, Wo, np.array([-k_out / 2]))
    assert tasks.loss_value(Z, ds.train, "bce") < 0.01 * ds.target_loss


# ------------------------------------------------------------------------------ narma10


def narma10_literal(u: np.ndarray) -> np.ndarray:
    y = {s: 0.0 for s in range(-20, 1)}
    out = []
    for t in range(len(u)):
        u_lag = u[t - 9] if t >= 9 else 0.0
        window = sum(y[t - i] for i in range(10))
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * window + 1.5 * u_lag * u[t] + 0.1
        out.append(y[t + 1])
    return np.array(out)


def test_narma10_matches_a_literal_implementation() -> None:
    u = np.random.default_rng(0).uniform(0, 0.5, size=(4, 60))
    fast = narma10(u)
    for row in range(4):
        np.testing.assert_allclose(fast[row], narma10_literal(u[row]), rtol=1e-12, atol=1e-15)


def test_narma10_task_data() -> None:
    task = tasks.get("narma10", n_train=32, n_test=8, washout=15, seq_len=25)
    ds = task.generate(np.random.default_rng(1))
    X, Y, M = ds.train.X[:, :, 0], ds.train.Y[:, :, 0], ds.train.M
    assert X.shape == (32, 40)
    assert np.all((X >= 0) & (X <= 0.5))
    np.testing.assert_allclose(Y, narma10(X), rtol=1e-12)
    assert np.all(M[:, :15] == 0) and np.all(M[:, 15:] == 1)
    assert np.all((Y >= 0) & (Y <= 1))


# ------------------------------------------------------------------------- mackey-glass


def test_mackey_glass_series_statistics() -> None:
    x = mackey_glass(np.random.default_rng(0), 8, 800)
    assert 0.85 < x.mean() < 1.0 and 0.18 < x.std() < 0.27  # about 0.93 and 0.22
    assert 0.3 < x.min() and x.max() < 1.45
    assert np.all(np.abs(np.diff(x, axis=1)) < 0.2)  # smooth at one time unit
    gaps = np.abs(x[:, None] - x[None, :])[np.triu_indices(8, 1)]
    assert gaps.mean(axis=1).min() > 0.03 and gaps.max(axis=1).min() > 0.15  # all different


def test_mackey_glass_integration_converges() -> None:
    rng = np.random.default_rng(0)
    kwargs = {"transient": 0.0, "history": (1.2, 1.2)}
    coarse = mackey_glass(rng, 1, 60, **kwargs)
    fine = mackey_glass(rng, 1, 60, dt=0.01, **kwargs)
    err = np.abs(coarse - fine).max()
    assert 1e-7 < err < 1e-4  # second order: about 2.4e-5 at dt = 0.1
    with pytest.raises(ValueError, match="whole numbers"):
        mackey_glass(rng, 1, 10, dt=0.3)


def test_mackey_glass_task_data() -> None:
    task = tasks.get("mackey_glass", n_train=32, n_test=16, washout=5, seq_len=20)
    ds = task.generate(np.random.default_rng(3))
    for split in (ds.train, ds.test):
        np.testing.assert_array_equal(split.X[:, 1:], split.Y[:, :-1])  # one step ahead
        assert np.all(split.M[:, :5] == 0) and np.all(split.M[:, 5:] == 1)
    values = np.concatenate([ds.train.X[:, :, 0], ds.train.Y[:, -1:, 0]], axis=1)
    assert values.mean() == pytest.approx(0.0, abs=1e-12)
    assert values.std() == pytest.approx(1.0, rel=1e-12)
    assert ds.baseline_loss == pytest.approx(1.0, abs=0.15)


# ---------------------------------------------------------------------------- sunspots


def sunspot_series() -> pd.Series:
    path = resources.files("tasks") / "data" / "sunspots.csv"
    with resources.as_file(path) as p:
        frame = pd.read_csv(p)
    return frame.set_index("YEAR")["SUNACTIVITY"].astype(float)


@pytest.mark.parametrize(
    ("period", "first", "last"), [("1921-1955", 1921, 1955), ("1956-1979", 1956, 1979)]
)
@pytest.mark.parametrize(("seq_len", "washout"), [(10, 10), (7, 3)])
def test_sunspots_years_and_splits(
    period: str, first: int, last: int, seq_len: int, washout: int
) -> None:
    s = sunspot_series()
    assert list(s.index) == list(range(1700, 2009))
    x = s / s.loc[1700:1920].max()
    task = tasks.get("sunspots", test_period=period, seq_len=seq_len, washout=washout)
    ds = task.generate(np.random.default_rng(0))
    train_first = 1701 + washout
    for split, a, b in ((ds.train, train_first, 1920), (ds.test, first, last)):
        scored = split.M > 0
        assert scored.sum() == b - a + 1  # every year scored exactly once
        np.testing.assert_allclose(split.Y[scored, 0], x.loc[a:b].to_numpy())
        np.testing.assert_allclose(split.X[scored, 0], x.loc[a - 1 : b - 1].to_numpy())
        assert np.all(split.M[:, :washout] == 0)
        assert split.X.shape[1] == washout + seq_len
        padded = ~scored & (np.arange(split.X.shape[1]) >= washout)
        assert np.all(split.X[padded] == 0) and np.all(split.Y[padded] == 0)
    assert ds.train.X[0, 0, 0] == x.loc[1700]
    assert ds.train.X.max() == 1.0
    assert ds.baseline_loss == pytest.approx(x.loc[train_first:1920].var(ddof=0))
    if washout >= 8:  # target: 0.8 x the train MSE of an affine AR(9) fit on the scored years
        years = np.arange(train_first, 1921)
        A = np.column_stack([np.ones(len(years))] + [x.loc[years - k] for k in range(1, 10)])
        y = x.loc[years].to_numpy()
        coef = np.linalg.lstsq(A, y, rcond=None)[0]
        assert ds.target_loss == pytest.approx(0.8 * np.mean((A @ coef - y) ** 2))


def test_sunspot_split_sizes_with_defaults() -> None:
    ds = tasks.get("sunspots").generate(np.random.default_rng(0))
    assert ds.train.X.shape == (21, 20, 1) and ds.train.M.sum() == 210
    assert ds.test.X.shape == (4, 20, 1) and ds.test.M.sum() == 35


# ------------------------------------------------------------------------------- cliff


def test_cliff_data_baseline_and_reachable_target() -> None:
    task = tasks.get("cliff")
    assert task.model == "cliff"
    ds = task.generate(np.random.default_rng(0))
    assert ds.train is ds.test
    assert ds.train.X.shape == (1, 50, 1) and not ds.train.X.any()
    assert np.all(ds.train.Y == 0.7) and ds.train.M[0, -1] == 1 and ds.train.M.sum() == 1
    assert ds.baseline_loss == pytest.approx(0.04) and ds.target_loss == 1e-4
    assert cliff_loss_grid(1.0, logit(0.7) - 0.7).E < 1e-20


def test_cliff_loss_and_gradient_are_exact() -> None:
    rng = np.random.default_rng(0)
    w, b = rng.uniform(-2, 10, 20), rng.uniform(-8, 2, 20)
    grid = cliff_loss_grid(w, b, steps=30)
    for i in range(3):  # the plain recursion
        x = 0.5
        for _ in range(30):
            x = w[i] * expit(x) + b[i]
        assert grid.E[i] == pytest.approx((expit(x) - 0.7) ** 2, rel=1e-12)
    h = 1e-6
    num_w = (cliff_loss_grid(w + h, b, 30).E - cliff_loss_grid(w - h, b, 30).E) / (2 * h)
    num_b = (cliff_loss_grid(w, b + h, 30).E - cliff_loss_grid(w, b - h, 30).E) / (2 * h)
    np.testing.assert_allclose(grid.dE_dw, num_w, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(grid.dE_db, num_b, rtol=1e-5, atol=1e-9)


def test_cliff_gradient_norm_spans_orders_of_magnitude() -> None:
    w = np.linspace(-2, 10, 241)[:, None]
    b = np.linspace(-8, 2, 201)[None, :]
    grid = cliff_loss_grid(w, b)
    assert grid.E.shape == (241, 201)
    norm = np.hypot(grid.dE_dw, grid.dE_db)
    median, top = np.median(norm), norm.max()
    assert 0.002 < median < 0.03 and top > 10  # measured: 0.0077 and 26.0
    assert top / median > 1e3 and median / norm.min() > 1e2  # cliffs and plateaus


def count_stable(b: float, w: float = 5.0) -> int:
    return len(cliff_fixed_points(w, b))


def bisect_edge(inside: float, outside: float) -> float:
    for _ in range(60):
        mid = 0.5 * (inside + outside)
        inside, outside = (mid, outside) if count_stable(mid) == 2 else (inside, mid)
    return 0.5 * (inside + outside)


def test_cliff_bistability_interval_at_w_5() -> None:
    assert count_stable(-2.5) == 2
    assert count_stable(-3.0) == 1 and count_stable(-2.0) == 1
    low, high = bisect_edge(-2.5, -3.0), bisect_edge(-2.5, -2.0)
    assert (round(low, 2), round(high, 2)) == (-2.66, -2.34)  # about (-2.656, -2.344)
    # closed form: tangency at x = logit((1 +- sqrt(1 - 4/w)) / 2), b = x - w sigmoid(x)
    x_hi, x_lo = (logit((1 + s * math.sqrt(1 - 4 / 5)) / 2) for s in (1, -1))
    assert low == pytest.approx(x_hi - 5 * expit(x_hi), abs=1e-9)
    assert high == pytest.approx(x_lo - 5 * expit(x_lo), abs=1e-9)
    for x in cliff_fixed_points(5.0, -2.5):  # they are stable fixed points
        assert 5 * expit(x) - 2.5 == pytest.approx(x, abs=1e-12)
        assert 5 * expit(x) * (1 - expit(x)) < 1
    assert len(cliff_fixed_points(-8.0, 1.0)) == 0  # one unstable point (a 2-cycle)


def test_sunspots_validation_split_is_held_out_of_train():
    import tasks

    rng = np.random.default_rng(0)
    plain = tasks.get("sunspots").generate(rng)
    assert plain.validation is None
    held = tasks.get("sunspots", validation_years=20).generate(rng)
    assert held.validation is not None
    scored = lambda split: int(split.M.sum())  # noqa: E731
    assert scored(held.validation) == 20
    assert scored(held.train) == scored(plain.train) - 20
    assert np.array_equal(held.test.Y, plain.test.Y)
    # the validation targets are the last 20 train years' (the same scaled values)
    last = plain.train.Y[plain.train.M > 0][-20:]
    assert np.allclose(np.sort(held.validation.Y[held.validation.M > 0]), np.sort(last))
    assert held.target_loss != plain.target_loss  # the AR reference is fitted on train only
    with pytest.raises(ValueError, match="validation_years"):
        tasks.get("sunspots", validation_years=-1)
    # without a validation split the spec (hence every record key) is unchanged
    assert "validation_years" not in tasks.get("sunspots").spec()
    assert tasks.get("sunspots", validation_years=20).spec()["validation_years"] == 20
    spec = tasks.get("sunspots", validation_years=20).spec()
    assert tasks.get(spec.pop("task"), **spec).validation_years == 20
