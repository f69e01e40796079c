"""Tests of the gated cells (suite.models.gated: LSTM, GRU) and of the model registry.

References are independent: a per-sequence Python loop written from the documented equations
(one sequence, one step at a time, on the named blocks of ``model.unpack``), central finite
differences of it, and PyTorch's ``nn.LSTM`` / ``nn.GRU`` + ``nn.Linear`` with autograd when
torch is importable.  Truncated and online gradients are checked against finite differences of
*stop-gradient* objectives: loss term s is recomputed from the state (h, c) left at step
start(s) - 1 by a fixed parameter vector, so only the steps inside its window depend on theta.

Weight-layout mapping to PyTorch (one layer, ``batch_first=True``), from ``model.unpack``:
``weight_hh_l0 = W_h`` ([4H, H] LSTM, gate rows i, f, g, o; [3H, H] GRU, rows r, z, n),
``weight_ih_l0 = W_x``, ``bias_ih_l0 = b``, ``bias_hh_l0 = 0`` (LSTM) or ``[0, 0, b_hn]``
(GRU: PyTorch's b_hr, b_hz are merged into our b_r, b_u; b_hn stays inside r * (...));
the read-out ``nn.Linear(H, O)`` gets ``weight = W_o``, ``bias = c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import (
    check_extreme_rows,
    fd_grad,
    online_pass,
    random_split,
    rel_err,
    thetas,
    window_start,
)

import tasks
from suite.models import (
    MODELS,
    Model,
    make_model,
    matched_hidden,
    model_names,
    model_options,
    register_model,
)
from suite.problem import make_problem
from suite.registry import param

GATED = ("lstm", "gru")
B, T, I, O, H = 3, 6, 2, 2, 3
KINDS = ("mse", "bce")


def make(name: str, **extra):
    return make_model(name, I, O, **{"hidden": H, **extra})


def make_split(rng, kind: str, mask: str, b=B, t=T, n_in=I, n_out=O):
    return random_split(rng, kind, mask, b, t, n_in, n_out)


# ----------------------------------------------------------------------------- reference


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


class Ref:
    """Per-sequence reference from the documented equations; state = (h, c) (c unused: GRU)."""

    def __init__(self, model):
        self.model = model

    def blocks(self, theta):
        return {k: np.asarray(v[0]) for k, v in self.model.unpack(theta[None]).items()}

    def cell(self, p, state, x):
        h, c = state
        Hn = self.model.hidden
        if self.model.name == "lstm":
            a = p["W_h"] @ h + p["W_x"] @ x + p["b"]
            i, f, g, o = (
                sig(a[:Hn]),
                sig(a[Hn : 2 * Hn]),
                np.tanh(a[2 * Hn : 3 * Hn]),
                sig(a[3 * Hn :]),
            )
            c = f * c + i * g
            return o * np.tanh(c), c
        Wh, Wx, b = p["W_h"], p["W_x"], p["b"]
        r = sig(Wh[:Hn] @ h + Wx[:Hn] @ x + b[:Hn])
        u = sig(Wh[Hn : 2 * Hn] @ h + Wx[Hn : 2 * Hn] @ x + b[Hn : 2 * Hn])
        n = np.tanh(Wx[2 * Hn :] @ x + b[2 * Hn :] + r * (Wh[2 * Hn :] @ h + p["b_hn"]))
        return (1.0 - u) * n + u * h, c

    def states(self, theta, X):
        """states[b][t + 1] = (h_t, c_t); states[b][0] = zeros."""
        p, Hn = self.blocks(theta), self.model.hidden
        out = []
        for b in range(X.shape[0]):
            seq = [(np.zeros(Hn), np.zeros(Hn))]
            for t in range(X.shape[1]):
                seq.append(self.cell(p, seq[-1], X[b, t]))
            out.append(seq)
        return out

    def outputs(self, theta, X):
        p = self.blocks(theta)
        S = self.states(theta, X)
        return np.array(
            [[p["W_o"] @ S[b][t + 1][0] + p["c"] for t in range(X.shape[1])] for b in range(len(S))]
        )

    def objective(self, theta, theta_fixed, split, kind, start):
        X, Y, M = split.X, split.Y, split.M
        p = self.blocks(theta)
        fixed = self.states(theta_fixed, X)
        total = 0.0
        for b in range(X.shape[0]):
            for s in range(X.shape[1]):
                if M[b, s] == 0:
                    continue
                state = fixed[b][start(s)]
                for t in range(start(s), s + 1):
                    state = self.cell(p, state, X[b, t])
                z = p["W_o"] @ state[0] + p["c"]
                terms = (z - Y[b, s]) ** 2 if kind == "mse" else np.logaddexp(0, z) - Y[b, s] * z
                total += M[b, s] * terms.sum()
        return total / (Y.shape[2] * M.sum())


# ----------------------------------------------------------------------------- layout, forward


@pytest.mark.parametrize("name", GATED)
def test_layout_pack_roundtrip_and_dim(name):
    model = make(name)
    K = H + I + 1
    expected = 4 * H * K + O * (H + 1) if name == "lstm" else 3 * H * K + H + O * (H + 1)
    assert model.dim == expected
    rng = np.random.default_rng(0)
    th = thetas(model, rng, 2)
    blocks = model.unpack(th)
    assert {k: v.shape[1:] for k, v in blocks.items()} == model.block_shapes()
    np.testing.assert_array_equal(model.pack(blocks), th)
    np.testing.assert_array_equal(
        blocks["W_h"][0, 1], th[0, K : K + H]
    )  # row 1 of W = [W_h; W_x; b]
    np.testing.assert_array_equal(model.pack({k: v[0] for k, v in blocks.items()}), th[0])


@pytest.mark.parametrize("name", GATED)
def test_forward_and_hidden_states_match_reference(name):
    rng = np.random.default_rng(1)
    model = make(name)
    split = make_split(rng, "mse", "last")
    th = thetas(model, rng, 2)
    Z = model.forward(th, split.X)
    Hs = model.hidden_states(th, split.X)
    for n in range(2):
        np.testing.assert_allclose(Z[n], Ref(model).outputs(th[n], split.X), rtol=1e-12, atol=1e-14)
        S = Ref(model).states(th[n], split.X)
        ref_h = np.array([[S[b][t + 1][0] for t in range(T)] for b in range(B)])
        np.testing.assert_allclose(Hs[n], ref_h, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("mask", ["partial", "last"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", GATED)
def test_gradient_matches_finite_differences(name, kind, mask):
    rng = np.random.default_rng(2)
    model = make(name)
    split = make_split(rng, kind, mask)
    th = thetas(model, rng, 2)
    L, G = model.loss_and_grad(th, split, kind)
    ref = Ref(model)
    for n in range(2):
        obj = ref.objective(th[n], th[n], split, kind, window_start(None))
        assert L[n] == pytest.approx(obj, rel=1e-12)
        g_fd = fd_grad(lambda t: model.loss(t[None], split, kind)[0], th[n])
        assert rel_err(G[n], g_fd) < 1e-6


@pytest.mark.parametrize("name", GATED)
@pytest.mark.parametrize(
    "task, params",
    [
        ("adding", {"seq_len": 8, "n_train": 4}),
        ("parity", {"seq_len": 6, "n_train": 4}),
        ("narma10", {"seq_len": 8, "washout": 3, "n_train": 3}),
    ],
)
def test_gradient_on_task_data(name, task, params):
    task_obj = tasks.get(task, **params)
    split = task_obj.generate(np.random.default_rng(3)).train
    model = make_model(name, task_obj.n_in, task_obj.n_out, hidden=3)
    rng = np.random.default_rng(4)
    th = thetas(model, rng, 1)
    L, G = model.loss_and_grad(th, split, task_obj.loss)
    g_fd = fd_grad(lambda t: model.loss(t[None], split, task_obj.loss)[0], th[0])
    assert rel_err(G[0], g_fd) < 1e-6
    for k in (2, 100):
        _, Gk = model.loss_and_grad(th, split, task_obj.loss, truncate=k)
        g_ref = fd_grad(
            lambda t, k=k: Ref(model).objective(t, th[0], split, task_obj.loss, window_start(k)),
            th[0],
        )
        assert rel_err(Gk[0], g_ref) < 1e-6


@pytest.mark.parametrize("name", GATED)
@pytest.mark.parametrize("k", [1, 2, 3, T - 1])
def test_truncated_gradient_matches_stop_gradient_reference(name, k):
    rng = np.random.default_rng(5)
    model = make(name)
    split = make_split(rng, "mse", "partial")
    th = thetas(model, rng, 1)
    _, G = model.loss_and_grad(th, split, "mse", truncate=k)
    ref = Ref(model)
    g_ref = fd_grad(lambda t: ref.objective(t, th[0], split, "mse", window_start(k)), th[0])
    assert rel_err(G[0], g_ref) < 1e-6
    _, G_full = model.loss_and_grad(th, split, "mse")
    if k < 3:  # a short window must really cut something
        assert rel_err(G[0], G_full[0]) > 1e-3


@pytest.mark.parametrize("name", GATED)
def test_truncate_at_least_T_is_full_gradient(name):
    rng = np.random.default_rng(6)
    model = make(name)
    split = make_split(rng, "bce", "last")
    th = thetas(model, rng, 2)
    L, G = model.loss_and_grad(th, split, "bce")
    for k in (T, T + 5):
        Lk, Gk = model.loss_and_grad(th, split, "bce", truncate=k)
        np.testing.assert_array_equal(Lk, L)
        np.testing.assert_array_equal(Gk, G)


@pytest.mark.parametrize("name", GATED)
def test_batched_rows_agree_with_single_rows(name):
    rng = np.random.default_rng(7)
    model = make(name)
    split = make_split(rng, "mse", "partial")
    th = thetas(model, rng, 5)
    for k in (None, 2):
        L, G = model.loss_and_grad(th, split, "mse", truncate=k)
        np.testing.assert_allclose(model.loss(th, split, "mse"), L, rtol=1e-13)
        for n in range(len(th)):
            L1, G1 = model.loss_and_grad(th[n : n + 1], split, "mse", truncate=k)
            np.testing.assert_allclose(L1[0], L[n], rtol=1e-13)
            np.testing.assert_allclose(G1[0], G[n], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", GATED)
def test_float32_agrees_with_float64(name):
    rng = np.random.default_rng(8)
    m64, m32 = make(name), make(name, dtype="float32")
    split = make_split(rng, "mse", "partial")
    th = thetas(m64, rng, 3)
    for k in (None, 2):
        L64, G64 = m64.loss_and_grad(th, split, "mse", truncate=k)
        L32, G32 = m32.loss_and_grad(th, split, "mse", truncate=k)
        assert L32.dtype == G32.dtype == np.float64
        np.testing.assert_allclose(L32, L64, rtol=1e-5)
        assert rel_err(G32, G64) < 1e-4
    np.testing.assert_allclose(m32.loss(th, split, "mse"), L64, rtol=1e-5)


@pytest.mark.parametrize("name", GATED)
def test_extreme_rows_are_non_finite_without_warnings_and_do_not_leak(name):
    rng = np.random.default_rng(9)
    model = make(name)
    split = make_split(rng, "mse", "partial")
    check_extreme_rows(model, split, rng)
    assert model.loss_and_grad(np.zeros((0, model.dim)), split, "mse")[1].shape == (0, model.dim)


# ----------------------------------------------------------------------------- online BPTT(h; h')


@pytest.mark.parametrize("name", GATED)
def test_online_single_chunk_is_full_bptt_and_sliding_window_is_truncated(name):
    rng = np.random.default_rng(10)
    model = make(name)
    split = make_split(rng, "mse", "partial")
    th = thetas(model, rng, 1)
    L, G = model.loss_and_grad(th, split, "mse")
    ((loss, weight, g, fwd, bwd),) = online_pass(model, th[0], split, "mse", T, T)
    assert loss == pytest.approx(L[0], rel=1e-12) and weight == split.M.sum()
    np.testing.assert_allclose(g, G[0], rtol=1e-12, atol=1e-15)
    assert fwd == B * T and bwd == model.backward_steps(split)
    for h in (1, 2, 4):
        chunks = online_pass(model, th[0], split, "mse", h, 1)
        g_sum = sum(c[2] for c in chunks)
        _, Gh = model.loss_and_grad(th, split, "mse", truncate=h)
        np.testing.assert_allclose(g_sum, Gh[0], rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("name", GATED)
def test_online_general_chunks_match_reference(name):
    """BPTT(4; 2) with a fixed theta: chunk [t0, t1) back-propagates its terms to t1 - 4."""
    rng = np.random.default_rng(11)
    model = make(name)
    split = make_split(rng, "mse", "partial")
    th = thetas(model, rng, 1)[0]
    h, hp = 4, 2
    g_sum = sum(c[2] for c in online_pass(model, th, split, "mse", h, hp))

    def start(s):
        t1 = min(T, (s // hp + 1) * hp)
        return max(0, t1 - h)

    ref = Ref(model)
    g_ref = fd_grad(lambda t: ref.objective(t, th, split, "mse", start), th)
    assert rel_err(g_sum, g_ref) < 1e-6


# ----------------------------------------------------------------------------- PyTorch


def torch_loss_and_grad(model, theta, split, kind):
    """Masked mean loss and its gradient through nn.LSTM / nn.GRU + nn.Linear (autograd)."""
    torch = pytest.importorskip("torch")
    p = {k: torch.tensor(v[0]) for k, v in model.unpack(theta[None]).items()}
    Hn = model.hidden
    cls = torch.nn.LSTM if model.name == "lstm" else torch.nn.GRU
    rnn = cls(model.n_in, Hn, batch_first=True).double()
    lin = torch.nn.Linear(Hn, model.n_out).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(p["W_h"])
        rnn.weight_ih_l0.copy_(p["W_x"])
        rnn.bias_ih_l0.copy_(p["b"])
        rnn.bias_hh_l0.zero_()
        if model.name == "gru":
            rnn.bias_hh_l0[2 * Hn :] = p["b_hn"]
        lin.weight.copy_(p["W_o"])
        lin.bias.copy_(p["c"])
    X, Y, M = (torch.tensor(np.asarray(a, dtype=np.float64)) for a in (split.X, split.Y, split.M))
    Z = lin(rnn(X)[0])
    if kind == "mse":
        terms = (Z - Y) ** 2
    else:
        terms = torch.nn.functional.softplus(Z) - Y * Z
    loss = (terms * M[..., None]).sum() / (model.n_out * M.sum())
    loss.backward()
    # b = b_ih + b_hh on the merged gates, so dL/db = dL/db_ih = dL/db_hh there
    merged = slice(None) if model.name == "lstm" else slice(0, 2 * Hn)
    assert torch.allclose(rnn.bias_ih_l0.grad[merged], rnn.bias_hh_l0.grad[merged])
    grads = {
        "W_h": rnn.weight_hh_l0.grad,
        "W_x": rnn.weight_ih_l0.grad,
        "b": rnn.bias_ih_l0.grad,
        "W_o": lin.weight.grad,
        "c": lin.bias.grad,
    }
    if model.name == "gru":
        grads["b_hn"] = rnn.bias_hh_l0.grad[2 * Hn :]
    return float(loss.detach()), model.pack({k: v.numpy() for k, v in grads.items()})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", GATED)
def test_loss_and_gradient_match_pytorch(name, kind):
    pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    model = make(name)
    split = make_split(rng, kind, "partial", t=9)
    th = thetas(model, rng, 1)
    L, G = model.loss_and_grad(th, split, kind)
    L_t, G_t = torch_loss_and_grad(model, th[0], split, kind)
    assert L[0] == pytest.approx(L_t, rel=1e-12)
    np.testing.assert_allclose(G[0], G_t, rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------- init, costs, API


def test_init_is_the_stated_distribution():
    rng = np.random.default_rng(13)
    for name in GATED:
        model = make_model(name, 2, 1, hidden=16)
        th = model.init(rng)
        blocks = {k: v[0] for k, v in model.unpack(th[None]).items()}
        bound = 1 / math.sqrt(16)
        cell = np.concatenate([blocks["W_h"].ravel(), blocks["W_x"].ravel(), blocks["b"]])
        if name == "lstm":
            np.testing.assert_array_equal(blocks["b"][16:32], 1.0)  # forget gate
            cell = np.concatenate([blocks["W_h"].ravel(), blocks["W_x"].ravel()])
        else:
            cell = np.concatenate([cell, blocks["b_hn"]])
        assert np.abs(cell).max() <= bound and np.abs(cell).max() > 0.9 * bound
        assert abs(cell.std() - bound / math.sqrt(3)) < 0.1 * bound
        np.testing.assert_array_equal(blocks["c"], 0.0)
        assert abs(blocks["W_o"].std() - 1 / math.sqrt(16)) < 0.5 / math.sqrt(16)
        np.testing.assert_array_equal(
            model.init(np.random.default_rng(1)), model.init(np.random.default_rng(1))
        )


@pytest.mark.parametrize("name", GATED)
def test_step_counts_are_elman_cell_steps(name):
    elman = make_model("elman", I, O, hidden=H)
    model = make(name)
    rng = np.random.default_rng(14)
    split = make_split(rng, "mse", "partial", t=12)
    assert model.forward_steps(split) == elman.forward_steps(split)
    for k in (None, 1, 3, 20):
        assert model.backward_steps(split, truncate=k) == elman.backward_steps(split, truncate=k)
    assert model.step_cost == {"lstm": 4.0, "gru": 3.0}[name] and elman.step_cost == 1.0


def test_matched_hidden_is_nearest_parameter_count():
    for name in ("lstm", "gru", "elman"):
        for He, n_in, n_out in ((8, 2, 1), (16, 1, 1), (32, 3, 2), (1, 1, 1)):
            target = make_model("elman", n_in, n_out, hidden=He).dim
            got = matched_hidden(name, He, n_in, n_out)
            gaps = {
                h: abs(make_model(name, n_in, n_out, hidden=h).dim - target) for h in range(1, 60)
            }
            best = min(gaps.values())
            assert gaps[got] == best and got == min(h for h, g in gaps.items() if g == best)
    assert matched_hidden("elman", 8, 2, 1) == 8
    with pytest.raises(ValueError, match="window"):
        matched_hidden("tdnn", 8, 2, 1, window=0)


def test_make_problem_and_options_with_gated_models():
    p = make_problem("adding", model="lstm", hidden=4, seq_len=10, n_train=8)
    assert p.model.name == "lstm" and p.model.spec() == {
        "model": "lstm",
        "hidden": 4,
        "dtype": "float64",
    }
    x0 = p.model.init(np.random.default_rng(0))
    L, G = p.model.loss_and_grad(x0[None], p.dataset.train, p.task.loss)
    assert np.isfinite(L).all() and G.shape == (1, p.model.dim)
    assert {"hidden", "window", "spectral_radius", "dtype"} <= model_options()
    assert {"cliff", "elman", "gru", "lstm", "tdnn"} <= set(model_names())
    with pytest.raises(ValueError, match="parameter hidden must be an integer >= 1"):
        make_model("gru", 1, 1, hidden=0)
    with pytest.raises(ValueError, match="unknown parameter.*spectral_radius.*allowed parameters"):
        make_model("lstm", 1, 1, spectral_radius=0.5)


def test_register_model_plugin_round_trip():
    @register_model("test-constant")
    class Constant(Model):
        @dataclass(frozen=True)
        class Options:
            level: float = param(0.0, low=-10.0, high=10.0)

        def __init__(self, n_in, n_out, level=0.0):
            self.n_in, self.n_out, self.dim = n_in, n_out, 1
            self.dtype, self.options = np.dtype("float64"), {"level": level}

    try:
        assert "test-constant" in model_names() and "level" in model_options()
        model = make_model("test-constant", 1, 1, level=2)
        assert model.spec() == {"model": "test-constant", "level": 2.0}
        with pytest.raises(ValueError, match=r"level must be a finite number in \[-10.0, 10.0\]"):
            make_model("test-constant", 1, 1, level=11)
        register_model("test-constant")(Constant)  # the same class again: a no-op
        with pytest.raises(ValueError, match="already registered"):
            register_model("test-constant")(type("Other", (Constant,), {}))
        with pytest.raises(TypeError, match="Model subclass"):
            register_model("test-bad")(int)
    finally:
        MODELS.unregister("test-constant")
    assert "test-constant" not in model_names()
