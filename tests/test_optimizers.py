"""Tests of the optimizer layer: registry, update rules, every family's defining behaviour,
and the conformance suite run on every registered optimizer (selected by tags, not names)."""

from __future__ import annotations

import dataclasses
import pickle
import textwrap
from typing import ClassVar

import numpy as np
import pytest

from suite.checks import iter_checks, toy_problem
from suite.optimizers import (
    Optimizer,
    display_name,
    from_spec,
    get_optimizer,
    greater_than,
    load_plugins,
    optimizer_info,
    optimizer_names,
    register_optimizer,
    register_variant,
    spec,
    unregister_optimizer,
    updates,
)
from suite.optimizers.cmaes import default_popsize
from suite.problem import Budget, Diverged, make_problem
from suite.trial import run as run_optimizer

# ------------------------------------------------------------------ conformance, all optimizers

# the ng-* family (nevergrad, optional) has its own tests and conformance table: test_nevergrad.py
CONFORMANCE = [
    (name, check)
    for name in optimizer_names()
    if not name.startswith("ng-")
    for check, _ in iter_checks(name)
]


@pytest.mark.parametrize(("name", "check"), CONFORMANCE, ids=[f"{n}-{c}" for n, c in CONFORMANCE])
def test_conformance(name: str, check: str) -> None:
    dict(iter_checks(name))[check]()


BUILT_INS = {
    "sgd", "momentum", "adam", "tbptt", "cmaes", "sep-cmaes", "ipop-cmaes", "scipy-lbfgsb",
    "scipy-bfgs", "scipy-cg", "scipy-nelder-mead", "scipy-powell", "scipy-de",
    "scipy-dual-annealing", "random-search",
}  # fmt: skip


def test_every_built_in_is_registered_and_checked() -> None:
    assert BUILT_INS <= {n for n, _ in CONFORMANCE}
    for name in BUILT_INS:
        # every built-in runs the checks common to all plus at least one tag-specific check
        assert len(list(iter_checks(name))) >= 9


# --------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread, as in the runner's workers.

    numpy and scipy load two separate OpenBLAS libraries; with 2 threads each, the spinning
    threads of one slow the other's tiny calls (L-BFGS-B's ``setulb``) about 10-fold.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional dependency
        yield
        return
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def adding() -> object:
    return make_problem("adding", seq_len=10, hidden=8, seed=0)


def run(problem, opt: Optimizer, fe: float, seed: int = 0, x0=None) -> tuple[np.ndarray, bool]:
    """Run as a trial does (``x0`` drawn from seed 0 unless given): the result (what
    ``minimize`` returned, else the incumbent) and whether ``minimize`` returned."""
    result = run_optimizer(problem, opt, Budget(fe=fe), seed, x0=x0)
    if result.status == "diverged":
        raise Diverged(result.error)
    return result.best, result.status == "ok"


# ------------------------------------------------------------------------ defining behaviour


@pytest.mark.parametrize(
    ("rule", "extra"), [("sgd", {}), ("momentum", {"momentum": 0.9}), ("adam", {})]
)
def test_tbptt_with_whole_sequence_chunks_is_full_bptt(adding, rule: str, extra: dict) -> None:
    T = adding.dataset.train.X.shape[1]
    x0 = adding.initial_point(np.random.default_rng(1))
    for k in (1, 4):
        tb = get_optimizer("tbptt", h=T, h_prime=T, rule=rule, lr=0.05, max_passes=k, **extra)
        full = get_optimizer(rule, lr=0.05, max_steps=k, gtol=None, **extra)
        a, _ = run(adding, tb, 1e9, x0=x0)
        b, _ = run(adding, full, 1e9, x0=x0)
        assert np.max(np.abs(a - b)) <= 1e-12
        assert np.max(np.abs(a - x0)) > 1e-3  # the steps really moved


def test_tbptt_with_short_chunks_differs_from_full_bptt(adding) -> None:
    x0 = adding.initial_point(np.random.default_rng(1))
    a, _ = run(adding, get_optimizer("tbptt", h=3, lr=0.05, max_passes=3), 1e9, x0=x0)
    b, _ = run(adding, get_optimizer("sgd", lr=0.05, max_steps=3, gtol=None), 1e9, x0=x0)
    assert np.max(np.abs(a - b)) > 1e-6


@pytest.mark.parametrize("name", ["scipy-lbfgsb", "adam"])
def test_gradient_methods_learn_adding(adding, name: str) -> None:
    theta, _ = run(adding, get_optimizer(name), 3e6)
    assert adding.evaluate(theta) < 0.2 * adding.baseline_loss


@pytest.mark.parametrize("seed", range(4))
def test_cmaes_finds_a_cliff_basin(seed: int) -> None:
    problem = make_problem("cliff")
    x0 = problem.initial_point(np.random.default_rng(seed))
    theta, _ = run(problem, get_optimizer("cmaes"), 2e5, seed=seed, x0=x0)
    assert problem.evaluate(x0) > 1e-3  # the start is not already in a basin
    assert problem.evaluate(theta) < 1e-3


def test_cmaes_evaluates_each_generation_in_one_call() -> None:
    problem = toy_problem()
    run(problem, get_optimizer("cmaes"), 2e4)
    c = problem.counters
    assert c.grad_calls == 0
    assert c.evaluations == c.loss_calls * default_popsize(problem.dim)


def test_ipop_doubles_the_population_at_each_restart() -> None:
    problem = toy_problem()
    # loose tolerances make each run stop quickly, so the restarts happen within the budget
    opt = get_optimizer("ipop-cmaes", tolfun=1e-2, tolx=1e-2, max_restarts=3)
    theta, returned = run(problem, opt, 1e6)
    assert returned
    base = default_popsize(problem.dim)
    for i in range(4):
        assert f"run {i} (popsize {base * 2**i})" in problem.stop_reason
    assert problem.evaluate(theta) < 0.5 * problem.evaluate(np.zeros(problem.dim))


def test_scipy_de_is_vectorised() -> None:
    problem = toy_problem()
    run(problem, get_optimizer("scipy-de", popsize=5), 2e4)
    c = problem.counters
    assert c.evaluations >= 5 * problem.dim * c.loss_calls - 1  # one call per generation


@pytest.mark.parametrize("name", optimizer_names())
def test_budget_interrupts_every_optimizer(adding, name: str) -> None:
    result = run_optimizer(adding, get_optimizer(name), Budget(fe=2e4))
    assert result.status == "budget"
    assert result.counters["fe"] <= 2e4 and adding.counters.fe == result.counters["fe"]


def test_own_stopping_rules_are_recorded() -> None:
    problem = toy_problem()
    theta, returned = run(problem, get_optimizer("adam", gtol=1e-2), 1e7)
    assert returned and "gtol" in problem.stop_reason
    theta, returned = run(problem, get_optimizer("sgd", max_steps=3, gtol=None), 1e7)
    assert returned and "max_steps=3" in problem.stop_reason
    assert problem.counters.grad_calls == 3
    theta, returned = run(problem, get_optimizer("scipy-bfgs"), 1e7)
    assert returned and problem.stop_reason.startswith("scipy BFGS:")


def test_minibatches_come_from_the_rng(adding) -> None:
    opt = get_optimizer("adam", batch_size=16)
    a, _ = run(adding, opt, 2e5, seed=1)
    b, _ = run(adding, opt, 2e5, seed=2)
    c, _ = run(adding, opt, 2e5, seed=1)
    assert np.array_equal(a, c) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="batch_size=999 exceeds"):
        run(adding, get_optimizer("sgd", batch_size=999), 1e5)


def test_random_search_uniform_uses_the_bounds() -> None:
    problem = toy_problem(nan_region=True)  # has bounds [-3, 3]^4
    opt = get_optimizer("random-search", distribution="uniform", batch=64, max_batches=2)
    theta, returned = run(problem, opt, 1e6)
    assert returned and np.all(np.abs(theta) <= 3)


# ---------------------------------------------------------------------------- update rules


def test_clip_by_global_norm_clips_each_row() -> None:
    G = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    clip = updates.clip_by_global_norm(1.0)
    U, _ = clip.update(G, clip.init(G), G)
    np.testing.assert_allclose(U, [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]])
    u, _ = clip.update(G[0], clip.init(G[0]), G[0])
    np.testing.assert_allclose(u, [0.6, 0.8])


@pytest.mark.parametrize(
    "make",
    [
        lambda: updates.sgd(0.1, clip=1.0),
        lambda: updates.momentum(0.1, 0.9, nesterov=True, clip=0.5),
        lambda: updates.adam(0.1, clip=2.0),
    ],
)
def test_batched_rules_equal_row_by_row_rules(make) -> None:
    rng = np.random.default_rng(0)
    P = rng.standard_normal((3, 5))
    tx = make()
    S, Sr = tx.init(P), [tx.init(p) for p in P]
    for _ in range(4):
        G = 2 * rng.standard_normal((3, 5))
        G0 = G.copy()
        U, S = tx.update(G, S, P)
        assert np.array_equal(G, G0)  # pure: inputs untouched
        for i in range(3):
            u, Sr[i] = tx.update(G[i], Sr[i], P[i])
            np.testing.assert_allclose(U[i], u, rtol=0, atol=1e-15)
        P = updates.apply_updates(P, U)


def test_adam_matches_the_paper() -> None:
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.1
    tx = updates.adam(lr, b1, b2, eps)
    theta = np.array([1.0, -2.0])
    state = tx.init(theta)
    m = v = np.zeros(2)
    ref = theta.copy()
    for t in range(1, 6):
        g = np.array([t, -0.5 * t**2])
        u, state = tx.update(g, state, theta)
        theta = theta + u
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        ref = ref - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(theta, ref, rtol=1e-14)


def test_momentum_and_nesterov() -> None:
    g1, g2 = np.array([1.0]), np.array([2.0])
    for nesterov, expected in [(False, 2.0 + 0.5 * 1.0), (True, 2.0 + 0.5 * (2.0 + 0.5))]:
        tx = updates.trace(0.5, nesterov)
        s = tx.init(g1)
        _, s = tx.update(g1, s)
        u, s = tx.update(g2, s)
        assert u[0] == pytest.approx(expected)


def test_make_rule_refuses_unknown_rules() -> None:
    with pytest.raises(ValueError, match="allowed: sgd, momentum, adam"):
        updates.make_rule("rmsprop", 0.1)


# ---------------------------------------------------------------------------------- registry


def test_display_names_and_specs() -> None:
    assert display_name(get_optimizer("adam")) == "adam"
    assert display_name(get_optimizer("adam", lr=0.03)) == "adam(lr=0.03)"
    assert display_name(get_optimizer("adam", lr=0.01, clip=1, b1=0.8)) == "adam(b1=0.8, clip=1.0)"
    assert display_name(get_optimizer("tbptt", h=5, rule="adam")) == "tbptt(h=5, rule=adam)"
    assert display_name(get_optimizer("sep-cmaes")) == "sep-cmaes"
    assert display_name(get_optimizer("sep-cmaes", sigma0=1)) == "sep-cmaes(sigma0=1.0)"
    s = spec(get_optimizer("sep-cmaes", popsize=12))
    assert s["name"] == "sep-cmaes" and s["params"]["diagonal"] is True
    assert s["params"]["popsize"] == 12
    assert from_spec(s) == get_optimizer("sep-cmaes", popsize=12)
    assert pickle.loads(pickle.dumps(get_optimizer("ipop-cmaes"))) == get_optimizer("ipop-cmaes")


def test_optimizer_info() -> None:
    info = optimizer_info("adam")
    assert info["family"] == "gradient" and info["tags"] == ["gradient", "stochastic"]
    assert info["defaults"]["lr"] == 0.01 and "Kingma" in info["summary"]
    assert info["constraints"]["lr"] == "> 0"
    assert optimizer_info("sep-cmaes")["family"] == "cmaes"
    assert optimizer_info("sep-cmaes")["defaults"]["diagonal"] is True


def test_bad_hyper_parameters_are_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) learning_rate .*lr=0.01"):
        get_optimizer("adam", learning_rate=0.1)
    with pytest.raises(ValueError, match="lr must be a finite number, got 'fast'"):
        get_optimizer("adam", lr="fast")
    with pytest.raises(ValueError, match="lr must be > 0, got -0.1"):
        get_optimizer("adam", lr=-0.1)
    with pytest.raises(ValueError, match="batch_size must be an int or None, got 2.5"):
        get_optimizer("sgd", batch_size=2.5)
    with pytest.raises(ValueError, match="h must be an int, got True"):
        get_optimizer("tbptt", h=True)
    with pytest.raises(ValueError, match="rule must be one of 'sgd', 'momentum', 'adam'"):
        get_optimizer("tbptt", rule="rmsprop")
    with pytest.raises(ValueError, match="h_prime=8 must be <= h=4"):
        get_optimizer("tbptt", h=4, h_prime=8)
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'; allowed optimizers: adam"):
        get_optimizer("adamw")
    with pytest.raises(ValueError, match="lr must be > 0"):
        type(get_optimizer("adam"))(lr=0.0)  # direct construction is checked too
    assert get_optimizer("adam", lr=1).lr == 1.0 and isinstance(
        get_optimizer("adam", lr=1).lr, float
    )
    assert get_optimizer("sgd", batch_size=np.int64(8)).batch_size == 8


@dataclasses.dataclass(frozen=True)
class _Dummy(Optimizer):
    """A dummy for registry tests."""

    step: float = 0.1
    tags: ClassVar[frozenset[str]] = frozenset({"deterministic"})
    constraints: ClassVar[dict] = {"step": greater_than(0)}

    def minimize(self, problem, x0, rng):
        return np.array(x0, dtype=float)


def test_registration_rules() -> None:
    register_optimizer("test-dummy")(_Dummy)
    try:
        register_optimizer("test-dummy")(_Dummy)  # the same class again: a no-op
        with pytest.raises(ValueError, match="'adam' is already registered"):
            register_optimizer("adam")(_Dummy)
        with pytest.raises(ValueError, match="already registered as 'test-dummy'"):
            register_optimizer("test-dummy-2")(_Dummy)
        variant = register_variant("test-dummy-big", _Dummy, step=2.0)
        try:
            assert get_optimizer("test-dummy-big").step == 2.0
            assert display_name(variant(step=1.0)) == "test-dummy-big(step=1.0)"
            assert optimizer_info("test-dummy-big")["family"] == "test-dummy"
        finally:
            unregister_optimizer("test-dummy-big")
        with pytest.raises(ValueError, match="unknown hyper-parameter"):
            register_variant("test-dummy-bad", _Dummy, steps=2.0)
        with pytest.raises(ValueError, match="step must be > 0"):
            register_variant("test-dummy-bad", _Dummy, step=-1.0)
        assert "test-dummy-bad" not in optimizer_names()
    finally:
        unregister_optimizer("test-dummy")
    with pytest.raises(ValueError, match="not allowed"):
        register_optimizer("Bad Name")
    with pytest.raises(TypeError, match="subclass of Optimizer"):
        register_optimizer("test-x")(object)


def test_malformed_classes_are_refused() -> None:
    class NoDataclass(Optimizer):
        lr: float = 0.1

    with pytest.raises(TypeError, match=r"decorate the class with @dataclass\(frozen=True\)"):
        register_optimizer("test-nodc")(NoDataclass)

    @dataclasses.dataclass(frozen=True)
    class NoDefault(Optimizer):
        sizes: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="needs a default value"):
        register_optimizer("test-nodefault")(NoDefault)

    @dataclasses.dataclass(frozen=True)
    class BadType(Optimizer):
        sizes: tuple = ()

    with pytest.raises(TypeError, match="sizes: type <class 'tuple'> is not allowed"):
        register_optimizer("test-badtype")(BadType)

    @dataclasses.dataclass(frozen=True)
    class BadTags(Optimizer):
        tags: ClassVar[frozenset[str]] = frozenset({"gradient", "fast"})

    with pytest.raises(ValueError, match="tags must be a frozenset of"):
        register_optimizer("test-badtags")(BadTags)
    assert not [n for n in optimizer_names() if n.startswith("test-")]


def test_plugins_load_from_a_path_idempotently(tmp_path, monkeypatch) -> None:
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            '''
            from dataclasses import dataclass
            import numpy as np
            from suite.optimizers import Optimizer, register_optimizer

            @register_optimizer("test-path-plugin")
            @dataclass(frozen=True)
            class Stay(Optimizer):
                """Return the start."""
                tags = frozenset({"deterministic"})

                def minimize(self, problem, x0, rng):
                    return np.array(x0, dtype=float)
            '''
        )
    )
    try:
        (module,) = load_plugins([str(plugin)])
        assert "test-path-plugin" in optimizer_names()
        assert load_plugins([plugin]) == [module]  # same stable module: no duplicate error
        opt = get_optimizer("test-path-plugin")
        assert pickle.loads(pickle.dumps(opt)) == opt
    finally:
        unregister_optimizer("test-path-plugin")
    with pytest.raises(ValueError, match="does not exist"):
        load_plugins([str(tmp_path / "missing.py")])
    with pytest.raises(ValueError, match="plugin module 'no_such_module_xyz' not found"):
        load_plugins(["no_such_module_xyz"])


def test_entry_points_are_loaded(tmp_path, monkeypatch) -> None:
    import importlib.metadata

    import suite.optimizers.registry as registry

    (tmp_path / "rnnbench_test_ep_plugin.py").write_text(
        textwrap.dedent(
            '''
            from dataclasses import dataclass
            import numpy as np
            from suite.optimizers import Optimizer, register_optimizer

            @register_optimizer("test-entry-point")
            @dataclass(frozen=True)
            class Stay(Optimizer):
                """Return the start."""
                tags = frozenset({"deterministic"})

                def minimize(self, problem, x0, rng):
                    return np.array(x0, dtype=float)
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [
        importlib.metadata.EntryPoint(
            name="stay", value="rnnbench_test_ep_plugin", group=registry.ENTRY_POINT_GROUP
        )
    ]
    monkeypatch.setattr(
        registry.importlib.metadata,
        "entry_points",
        lambda group: eps if group == registry.ENTRY_POINT_GROUP else [],
    )
    try:
        assert registry.load_entry_points() == ["stay"]
        assert "test-entry-point" in optimizer_names()
    finally:
        unregister_optimizer("test-entry-point")
    eps[0] = importlib.metadata.EntryPoint(
        name="broken", value="no_such_module_xyz", group=registry.ENTRY_POINT_GROUP
    )
    with pytest.raises(ImportError, match="entry point 'broken'"):
        registry.load_entry_points()


def test_truncated_gradients_reach_the_problem(adding) -> None:
    x0 = adding.initial_point(np.random.default_rng(2))
    T = adding.dataset.train.X.shape[1]
    exact, _ = run(adding, get_optimizer("sgd", max_steps=3, gtol=None), 1e9, x0=x0)
    window_T, _ = run(adding, get_optimizer("sgd", max_steps=3, gtol=None, truncate=T), 1e9, x0=x0)
    short, _ = run(adding, get_optimizer("sgd", max_steps=3, gtol=None, truncate=2), 1e9, x0=x0)
    assert np.max(np.abs(exact - window_T)) <= 1e-12
    assert np.max(np.abs(exact - short)) > 1e-6
