"""Tests of suite.models against slow, independent per-sequence reference implementations.

The references are written from the documented equations with explicit Python loops over
sequences and steps.  Truncated and online (Williams & Peng) gradients are checked against
central finite differences of *stop-gradient* objectives: loss term s is recomputed from a
detached state, so only the steps inside its window depend on the parameters.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

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

from suite.models import make_model, matched_tdnn_hidden

B, T, I, O, H, WINDOW = 3, 6, 2, 2, 3, 3
KINDS = ("mse", "bce")
TRUNCATIONS = (None, 1, 2, 3, T - 1, T, T + 5)
OPTIONS = {"elman": {"hidden": H}, "tdnn": {"hidden": H, "window": WINDOW}, "cliff": {}}
MODEL_NAMES = ("cliff", "elman", "tdnn")  # the models with a reference below (gated: test_gated)


def n_out_of(name: str) -> int:
    return 1 if name == "cliff" else O


def make(name: str, **extra):
    return make_model(name, I, n_out_of(name), **{**OPTIONS[name], **extra})


def make_split(rng: np.random.Generator, n_out: int, kind: str, mask: str, b=B, t=T):
    return random_split(rng, kind, mask, b, t, I, n_out)


# ----------------------------------------------------------------------------- references


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def term(z: float, y: float, kind: str) -> float:
    return (z - y) ** 2 if kind == "mse" else math.log1p(math.exp(z)) - y * z


class Ref:
    """Per-sequence reference of one model from its documented equations and flat layout."""

    def __init__(self, model):
        self.model = model

    def blocks(self, theta):
        return {k: np.asarray(v[0]) for k, v in self.model.unpack(theta[None]).items()}

    # recurrent models: a state, a cell and a read-out (cliff in Pascanu's own variables)
    def state0(self):
        return np.zeros(self.model.hidden) if self.model.name == "elman" else 0.5

    def cell(self, p, state, x):
        if self.model.name == "elman":
            return np.tanh(p["W_h"] @ state + p["W_x"] @ x + p["b"])
        return float(p["w"]) * sigmoid(state) + float(p["b"])  # x_t = w sigmoid(x_{t-1}) + b

    def readout(self, p, state):
        if self.model.name == "elman":
            return p["W_o"] @ state + p["c"]
        return np.array([sigmoid(state)])

    def states(self, theta, X):
        """states[b][t + 1] = state after step t; states[b][0] = initial state."""
        p = self.blocks(theta)
        out = []
        for b in range(X.shape[0]):
            seq = [self.state0()]
            for t in range(X.shape[1]):
                seq.append(self.cell(p, seq[-1], X[b, t]))
            out.append(seq)
        return out

    def tdnn_output(self, p, X, b, s):
        w = self.model.window
        u = np.concatenate([X[b, s - l] if s - l >= 0 else np.zeros(I) for l in range(w)])
        return p["W_o"] @ np.tanh(p["W_x"] @ u + p["b"]) + p["c"]

    def outputs(self, theta, X):
        """Z[B, T, O] at every step."""
        p = self.blocks(theta)
        Bx, Tx = X.shape[:2]
        if self.model.name == "tdnn":
            return np.array([[self.tdnn_output(p, X, b, s) for s in range(Tx)] for b in range(Bx)])
        S = self.states(theta, X)
        return np.array([[self.readout(p, S[b][s + 1]) for s in range(Tx)] for b in range(Bx)])

    def objective(self, theta, theta_fixed, split, kind, start):
        """Loss where term s runs steps start(s) .. s with theta from the detached state left
        by theta_fixed before start(s) (the read-out also uses theta)."""
        X, Y, M = split.X, split.Y, split.M
        p = self.blocks(theta)
        fixed = None if self.model.name == "tdnn" else self.states(theta_fixed, X)
        total = 0.0
        for b in range(X.shape[0]):
            for s in range(X.shape[1]):
                if M[b, s] == 0:
                    continue
                if fixed is None:
                    z = self.tdnn_output(p, X, b, s)
                else:
                    state = fixed[b][start(s)]
                    for t in range(start(s), s + 1):
                        state = self.cell(p, state, X[b, t])
                    z = self.readout(p, state)
                total += M[b, s] * sum(term(z[o], Y[b, s, o], kind) for o in range(len(z)))
        return total / (Y.shape[2] * M.sum())


# ----------------------------------------------------------------------------- layout, forward


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_documented_layout_and_pack_roundtrip(name):
    model = make(name)
    theta = np.arange(model.dim, dtype=float)[None] + np.array([[0.0], [1000.0]])
    blocks = model.unpack(theta)
    for v in blocks.values():
        assert np.shares_memory(v, theta) and v.shape[0] == 2
    if name == "elman":
        K = H + I + 1  # row j of W = [W_h[j], W_x[j], b[j]]
        assert blocks["W_h"][0, 1, 2] == 1 * K + 2
        assert blocks["W_x"][0, 2, 1] == 2 * K + H + 1
        assert blocks["b"][0, 1] == 1 * K + H + I
        assert blocks["W_o"][0, 1, 0] == H * K + H and blocks["c"][1, 0] == 1000 + H * K + O * H
        assert model.dim == H * (H + I + 1) + O * (H + 1)
    elif name == "tdnn":
        K = WINDOW * I + 1
        assert blocks["W_x"][0, 1, 3] == K + 3 and blocks["b"][0, 2] == 2 * K + K - 1
        assert blocks["W_o"][0, 0, 2] == H * K + 2 and blocks["c"][0, 1] == model.dim - 1
    else:
        assert blocks["w"][0] == 0 and blocks["b"][1] == 1001
    np.testing.assert_array_equal(model.pack(blocks), theta)
    one = {k: v[1] for k, v in blocks.items()}
    np.testing.assert_array_equal(model.pack(one), theta[1])
    with pytest.raises(ValueError, match="blocks"):
        model.pack({k: v for k, v in list(blocks.items())[1:]})


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_matches_reference(name):
    rng = np.random.default_rng(1)
    model, ref = make(name), None
    ref = Ref(model)
    th = thetas(model, rng, 3)
    X = rng.normal(size=(B, T, I))
    Z = model.forward(th, X)
    assert Z.shape == (3, B, T, model.n_out) and Z.dtype == np.float64
    for n in range(3):
        np.testing.assert_allclose(Z[n], ref.outputs(th[n], X), rtol=0, atol=1e-12)


def test_elman_hidden_states_match_reference():
    rng = np.random.default_rng(2)
    model = make("elman")
    th = thetas(model, rng, 2)
    X = rng.normal(size=(B, T, I))
    Hs = model.hidden_states(th, X)
    assert Hs.shape == (2, B, T, H)
    for n in range(2):
        S = Ref(model).states(th[n], X)
        np.testing.assert_allclose(Hs[n], [S[b][1:] for b in range(B)], rtol=0, atol=1e-13)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("mask", ["partial", "last"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradient_matches_truncated_reference(name, kind, mask):
    """Loss equals the reference; every truncation's gradient equals central finite
    differences of the stop-gradient reference objective (rel. error < 1e-6)."""
    rng = np.random.default_rng(sum(map(ord, name + kind + mask)))
    model = make(name)
    ref = Ref(model)
    split = make_split(rng, model.n_out, kind, mask)
    th = thetas(model, rng, 2)
    full = ref.objective(th[0], th[0], split, kind, window_start(None))
    np.testing.assert_allclose(model.loss(th, split, kind)[0], full, rtol=1e-12)
    for k in TRUNCATIONS:
        L, G = model.loss_and_grad(th, split, kind, truncate=k)
        assert L.shape == (2,) and G.shape == (2, model.dim) and G.dtype == np.float64
        for n in range(2):
            f = lambda x, n=n, k=k: ref.objective(x, th[n], split, kind, window_start(k))  # noqa: E731
            np.testing.assert_allclose(L[n], f(th[n]), rtol=1e-12)
            assert rel_err(G[n], fd_grad(f, th[n])) < 1e-6, (k, n)


@pytest.mark.parametrize("name", ["elman", "cliff"])
def test_truncation_changes_recurrent_gradient(name):
    """Guards the reference test against vacuity: windows shorter than the sequence give a
    different gradient, windows reaching step 0 give exactly the full one."""
    rng = np.random.default_rng(3)
    model = make(name)
    split = make_split(rng, model.n_out, "mse", "last")
    th = thetas(model, rng, 2)
    _, full = model.loss_and_grad(th, split, "mse")
    for k in (1, 2, T - 1):
        assert rel_err(model.loss_and_grad(th, split, "mse", truncate=k)[1], full) > 1e-6
    for k in (T, T + 5):
        np.testing.assert_array_equal(model.loss_and_grad(th, split, "mse", truncate=k)[1], full)


def test_cliff_k1_gradient_is_hand_derived_local_term():
    """For k = 1 only the last cell counts: with z_s = sigmoid(x_{s+1}), x_{s+1} = w
    sigmoid(x_s) + b, dL/dw = sum_s dz_s sigmoid'(x_{s+1}) sigmoid(x_s), dL/db likewise."""
    rng = np.random.default_rng(4)
    model = make("cliff")
    split = make_split(rng, 1, "mse", "partial")
    th = np.array([[5.0, -2.5], [-1.0, 1.5]])
    _, G = model.loss_and_grad(th, split, "mse", truncate=1)
    for n, (w, b) in enumerate(th):
        x = [0.5]
        for _ in range(T):
            x.append(w * sigmoid(x[-1]) + b)
        gw = gb = 0.0
        for bb in range(B):
            for s in range(T):
                z = sigmoid(x[s + 1])
                dz = split.M[bb, s] * 2 * (z - split.Y[bb, s, 0]) / split.M.sum()
                gw += dz * z * (1 - z) * sigmoid(x[s])
                gb += dz * z * (1 - z)
        np.testing.assert_allclose(G[n], [gw, gb], rtol=1e-12)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_batched_rows_agree_with_single_rows(name):
    rng = np.random.default_rng(5)
    model = make(name)
    split = make_split(rng, model.n_out, "bce", "partial")
    th = thetas(model, rng, 4)
    for k in (None, 2):
        L, G = model.loss_and_grad(th, split, "bce", truncate=k)
        for n in range(4):
            L1, G1 = model.loss_and_grad(th[n : n + 1], split, "bce", truncate=k)
            np.testing.assert_allclose(L1[0], L[n], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(G1[0], G[n], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.loss(th, split, "bce"), L, rtol=1e-12)
    assert model.loss(th, split, "bce").shape == (4,)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_float32_agrees_with_float64(name):
    rng = np.random.default_rng(6)
    m64, m32 = make(name), make(name, dtype="float32")
    assert m32.dtype == np.float32 and m32.spec()["dtype"] == "float32"
    split = make_split(rng, m64.n_out, "mse", "partial", b=8, t=20)
    th = thetas(m64, rng, 3)
    L64, G64 = m64.loss_and_grad(th, split, "mse")
    L32, G32 = m32.loss_and_grad(th, split, "mse")
    assert L32.dtype == np.float64 and G32.dtype == np.float64
    assert np.max(np.abs(L32 / L64 - 1)) < 1e-5
    assert 0 < rel_err(G32, G64) < 1e-4  # float32 really computes in float32
    np.testing.assert_allclose(m32.loss(th, split, "mse"), L64, rtol=1e-5)
    assert m32.forward(th, split.X).dtype == np.float64


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_extreme_rows_are_non_finite_without_warnings_and_do_not_leak(name):
    rng = np.random.default_rng(17)
    model = make(name)
    split = make_split(rng, model.n_out, "mse", "partial")
    check_extreme_rows(model, split, rng)
    empty = np.zeros((0, model.dim))
    assert model.loss(empty, split, "mse").shape == (0,)
    assert model.loss_and_grad(empty, split, "mse", truncate=2)[1].shape == (0, model.dim)


# ----------------------------------------------------------------------------- online BPTT(h; h')


@pytest.mark.parametrize("mask", ["partial", "last"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_online_single_chunk_is_full_bptt(name, mask):
    rng = np.random.default_rng(7)
    model = make(name)
    split = make_split(rng, model.n_out, "mse", mask)
    th = thetas(model, rng, 1)
    L, G = model.loss_and_grad(th, split, "mse")
    chunks = online_pass(model, th[0], split, "mse", h=T + 3, h_prime=T)
    assert len(chunks) == 1
    loss, weight, g, fwd, bwd = chunks[0]
    np.testing.assert_allclose(loss, L[0], rtol=1e-12)
    np.testing.assert_allclose(g, G[0], rtol=1e-12, atol=1e-15)
    assert weight == split.M.sum()
    assert bwd == model.backward_steps(split)
    if name != "tdnn":
        assert fwd == B * T


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("h", [1, 2, 3, T + 2])
def test_online_sliding_window_sums_to_truncated_gradient(name, h):
    """Fixed theta, h' = 1: the chunk gradients sum to loss_and_grad(truncate=h) and the
    weighted chunk losses average to the full loss."""
    rng = np.random.default_rng(8)
    model = make(name)
    split = make_split(rng, model.n_out, "bce", "partial")
    th = thetas(model, rng, 1)
    L, G = model.loss_and_grad(th, split, "bce", truncate=h)
    chunks = online_pass(model, th[0], split, "bce", h=h, h_prime=1)
    assert len(chunks) == T
    np.testing.assert_allclose(sum(c[2] for c in chunks), G[0], rtol=1e-12, atol=1e-15)
    mean = sum(c[0] * c[1] for c in chunks) / sum(c[1] for c in chunks)
    np.testing.assert_allclose(mean, L[0], rtol=1e-12)
    if name != "tdnn":
        # each loss step s is one chunk: min(h, s + 1) steps back (for h < T as truncate=h)
        loss_steps = np.flatnonzero(split.M.any(axis=0))
        assert sum(c[4] for c in chunks) == B * np.minimum(h, loss_steps + 1).sum()
        if h < T - 1:
            assert sum(c[4] for c in chunks) == model.backward_steps(split, truncate=h)
        assert sum(c[3] for c in chunks) == B * T


@pytest.mark.parametrize("name", ["elman", "cliff", "tdnn"])
def test_online_general_chunks_match_reference(name):
    """BPTT(4; 2), fixed theta: a term at step s of the chunk ending at t1 reaches back to
    max(0, t1 - h) (finite differences of the stop-gradient reference)."""
    rng = np.random.default_rng(9)
    model = make(name)
    split = make_split(rng, model.n_out, "mse", "partial")
    th = thetas(model, rng, 1)[0]
    h, hp = 4, 2
    chunks = online_pass(model, th, split, "mse", h, hp)
    g = sum(c[2] for c in chunks)

    def start(s):
        return max(0, min(T, (s // hp + 1) * hp) - h)

    ref = Ref(model)
    g_ref = fd_grad(lambda x: ref.objective(x, th, split, "mse", start), th)
    assert rel_err(g, g_ref) < 1e-6
    if name != "tdnn":  # backward cost: from the last loss step of each chunk to t1 - h
        M = split.M
        expect = 0
        for t0 in range(0, T, hp):
            loss_steps = [s for s in range(t0, t0 + hp) if M[:, s].any()]
            if loss_steps:
                expect += B * (loss_steps[-1] + 1 - max(0, t0 + hp - h))
        assert sum(c[4] for c in chunks) == expect


def test_online_uses_history_of_earlier_parameters():
    """Theta changes between chunks: the chunk starts from the state carried from the earlier
    theta and back-propagates with the current weights through the *stored* states (Williams
    & Peng).  Reference: finite differences of the tangent surrogate
    h^_t = h_t + act'(h_t) (W(theta) [h^_{t-1}; x_t; 1] - W(theta_b) [h_{t-1}; x_t; 1]),
    whose derivative at theta_b uses exactly those Jacobians."""
    rng = np.random.default_rng(10)
    model = make("elman")
    ref = Ref(model)
    split = make_split(rng, O, "mse", "partial")
    split.M[:, 3] = 1.0
    ta, tb = thetas(model, rng, 2)
    h, hp = 5, 3
    state = model.online_init(split)
    model.online_chunk(ta, split, "mse", state, h, hp)  # steps 0..2 under theta_a
    loss, weight, g, state = model.online_chunk(tb, split, "mse", state, h, hp)  # 3..5
    assert state.done and state.last_bwd_steps == B * (4 + 1 - (6 - h))
    X, Y, M = split.X, split.Y, split.M
    # stored states: theta_a for steps 0..2, then theta_b from the carried state
    pa, pb = ref.blocks(ta), ref.blocks(tb)
    stored = []
    for b in range(B):
        seq = [np.zeros(H)]
        for t in range(T):
            seq.append(ref.cell(pa if t < 3 else pb, seq[-1], X[b, t]))
        stored.append(seq)

    def surrogate(theta):
        p = ref.blocks(theta)
        total = 0.0
        for b in range(B):
            for s in range(3, T):
                if M[b, s] == 0:
                    continue
                hh = stored[b][1]  # window starts at t1 - h = 1: h_0 detached
                for t in range(1, s + 1):
                    hs, hprev = stored[b][t + 1], stored[b][t]
                    a_new = p["W_h"] @ hh + p["W_x"] @ X[b, t] + p["b"]
                    a_old = pb["W_h"] @ hprev + pb["W_x"] @ X[b, t] + pb["b"]
                    hh = hs + (1 - hs**2) * (a_new - a_old)
                z = p["W_o"] @ hh + p["c"]
                total += M[b, s] * sum((z[o] - Y[b, s, o]) ** 2 for o in range(O))
        return total / (O * M.sum())

    assert rel_err(g, fd_grad(surrogate, tb)) < 1e-6
    chunk_M = M[:, 3:].sum()
    np.testing.assert_allclose(loss * weight / M.sum(), surrogate(tb), rtol=1e-12)
    assert weight == chunk_M
    # the history matters: with theta_b in both chunks the second chunk's gradient differs
    state = model.online_init(split)
    model.online_chunk(tb, split, "mse", state, h, hp)
    g_b = model.online_chunk(tb, split, "mse", state, h, hp)[2]
    assert rel_err(g, g_b) > 1e-6


def test_online_skips_chunks_without_loss_and_validates():
    rng = np.random.default_rng(11)
    model = make("elman")
    split = make_split(rng, O, "mse", "last")
    th = thetas(model, rng, 1)[0]
    chunks = online_pass(model, th, split, "mse", h=3, h_prime=2)
    assert [c[4] for c in chunks] == [0, 0, B * 3] and [c[3] for c in chunks] == [B * 2] * 3
    assert chunks[0][:2] == (0.0, 0.0) and not chunks[0][2].any()
    state = model.online_init(split)
    with pytest.raises(ValueError, match="h >= h'"):
        model.online_chunk(th, split, "mse", state, 1, 2)
    with pytest.raises(ValueError, match="theta"):
        model.online_chunk(th[None], split, "mse", state, 2, 1)
    with pytest.raises(ValueError, match="B, T"):
        model.online_chunk(th, make_split(rng, O, "mse", "last", t=T + 1), "mse", state, 2, 1)
    for _ in range(T):
        model.online_chunk(th, split, "mse", state, 2, 1)
    with pytest.raises(ValueError, match="done"):
        model.online_chunk(th, split, "mse", state, 2, 1)


# ----------------------------------------------------------------------------- cost counts


def test_step_counts_follow_the_documented_rule():
    model_r, model_t = make("elman"), make("tdnn")
    M = np.zeros((B, T))
    M[0, 1] = M[2, 3] = M[1, 4] = 1.0  # S = {1, 3, 4}, last loss step 4
    split = SimpleNamespace(X=np.zeros((B, T, I)), Y=np.zeros((B, T, O)), M=M)
    assert model_r.forward_steps(split) == B * 5
    assert model_r.backward_steps(split) == B * 5
    assert model_r.backward_steps(split, truncate=1) == B * 3
    assert model_r.backward_steps(split, truncate=2) == B * (2 + 2 + 2)
    assert model_r.backward_steps(split, truncate=4) == B * (2 + 4 + 4)
    assert model_r.backward_steps(split, truncate=5) == B * 5  # window reaches 0: full BPTT
    assert model_t.forward_steps(split) == model_t.backward_steps(split, truncate=2) == B * 3
    M[:, -1] = 1.0
    assert make("cliff").forward_steps(SimpleNamespace(X=split.X, Y=split.Y[..., :1], M=M)) == B * T
    # brute-force count of (sequence, loss step, lag) triples for a random mask
    rng = np.random.default_rng(12)
    M2 = (rng.random((B, 20)) < 0.3).astype(float)
    M2[0, 10] = 1.0
    sp = SimpleNamespace(X=np.zeros((B, 20, I)), Y=np.zeros((B, 20, O)), M=M2)
    S = [s for s in range(20) if M2[:, s].any()]
    for k in (1, 3, 7):
        pairs = sum(1 for s in S for lag in range(k) if lag <= s)
        expected = B * pairs if k <= max(S) else B * (max(S) + 1)
        assert model_r.backward_steps(sp, truncate=k) == expected


# ----------------------------------------------------------------------------- init, options


@pytest.mark.parametrize("radius", [0.0, 0.5, 0.9, 1.3])
def test_elman_init_spectral_radius_and_scales(radius):
    model = make_model("elman", 2, 1, hidden=30, spectral_radius=radius)
    theta = model.init(np.random.default_rng(13))
    assert theta.shape == (model.dim,) and theta.dtype == np.float64
    p = {k: v[0] for k, v in model.unpack(theta[None]).items()}
    np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(p["W_h"]))), radius, atol=1e-12)
    assert not p["b"].any() and not p["c"].any()
    assert 0.5 < np.std(p["W_x"]) * math.sqrt(2) < 1.5
    assert 0.5 < np.std(p["W_o"]) * math.sqrt(30) < 1.5
    again = model.init(np.random.default_rng(13))
    np.testing.assert_array_equal(theta, again)
    assert make("elman").spec() == {
        "model": "elman",
        "hidden": H,
        "spectral_radius": 0.9,
        "dtype": "float64",
    }


def test_cliff_and_tdnn_init():
    rng = np.random.default_rng(14)
    cliff = make("cliff")
    pts = np.array([cliff.init(rng) for _ in range(500)])
    assert (pts[:, 0] >= -2).all() and (pts[:, 0] <= 10).all() and np.ptp(pts[:, 0]) > 10
    assert (pts[:, 1] >= -8).all() and (pts[:, 1] <= 2).all() and np.ptp(pts[:, 1]) > 8
    tdnn = make_model("tdnn", 2, 1, hidden=40, window=5)
    p = {k: v[0] for k, v in tdnn.unpack(tdnn.init(rng)[None]).items()}
    assert not p["b"].any() and 0.7 < np.std(p["W_x"]) * math.sqrt(10) < 1.3


def test_matched_tdnn_hidden_minimises_parameter_gap():
    for He, n_in, n_out, w in [(8, 2, 1, 10), (16, 1, 1, 5), (4, 3, 2, 2), (1, 1, 1, 50)]:
        P_e = make_model("elman", n_in, n_out, hidden=He).dim
        gaps = {
            Ht: abs(make_model("tdnn", n_in, n_out, hidden=Ht, window=w).dim - P_e)
            for Ht in range(1, 200)
        }
        got = matched_tdnn_hidden(He, n_in, n_out, w)
        assert gaps[got] == min(gaps.values())
    with pytest.raises(ValueError, match="window"):
        matched_tdnn_hidden(8, 2, 1, 0)


def test_bad_names_options_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="allowed models: cliff, elman, gru, lstm, tdnn"):
        make_model("lstm2", 1, 1)
    with pytest.raises(ValueError, match=r"allowed parameters: hidden .*spectral_radius .*dtype"):
        make_model("elman", 1, 1, window=3)
    bad = [
        ("elman", {"hidden": 0}, "hidden"),
        ("elman", {"hidden": 2.5}, "hidden"),
        ("elman", {"hidden": True}, "hidden"),
        ("elman", {"spectral_radius": -1.0}, "spectral_radius"),
        ("elman", {"spectral_radius": float("nan")}, "spectral_radius"),
        ("elman", {"dtype": "float16"}, "float64"),
        ("tdnn", {"window": 0}, "window"),
        ("cliff", {"hidden": 3}, "allowed"),
    ]
    for name, opts, msg in bad:
        with pytest.raises(ValueError, match=msg):
            make_model(name, 1, 1, **opts)
    with pytest.raises(ValueError, match="n_out must be 1"):
        make_model("cliff", 0, 2)
    model = make("elman")
    rng = np.random.default_rng(15)
    split = make_split(rng, O, "mse", "partial")
    th = thetas(model, rng, 1)
    with pytest.raises(ValueError, match="loss kind"):
        model.loss(th, split, "xent")
    with pytest.raises(ValueError, match="truncate"):
        model.loss_and_grad(th, split, "mse", truncate=0)
    with pytest.raises(ValueError, match=r"theta must have shape \[N,"):
        model.loss(th[0], split, "mse")
    with pytest.raises(ValueError, match="split shapes"):
        model.loss(th, SimpleNamespace(X=split.X, Y=split.Y[..., :1], M=split.M), "mse")
    with pytest.raises(ValueError, match="X must have shape"):
        model.forward(th, split.X[..., :1])
    with pytest.raises(ValueError, match="zero everywhere"):
        model.loss(th, SimpleNamespace(X=split.X, Y=split.Y, M=0 * split.M), "mse")


# ----------------------------------------------------------------------------- tasks package


def test_cliff_matches_tasks_forward_mode_grid():
    """Independent cross-check: tasks.cliff's forward-mode loss and gradient on a grid."""
    cliff_task = pytest.importorskip("tasks.cliff")
    import tasks

    data = tasks.get("cliff").generate(np.random.default_rng(0))
    w, b = np.meshgrid(np.linspace(-2, 10, 13), np.linspace(-8, 2, 11))
    theta = np.stack([w.ravel(), b.ravel()], axis=1)
    L, G = make_model("cliff", 1, 1).loss_and_grad(theta, data.train, "mse")
    grid = cliff_task.cliff_loss_grid(theta[:, 0], theta[:, 1], steps=50)
    np.testing.assert_allclose(L, grid.E, rtol=1e-10, atol=1e-300)
    scale = np.abs(G).max(axis=1, keepdims=True)
    np.testing.assert_allclose(G / scale, np.stack([grid.dE_dw, grid.dE_db], 1) / scale, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_loss_matches_tasks_loss_value(kind):
    base = pytest.importorskip("tasks.base")
    rng = np.random.default_rng(16)
    model = make("elman")
    raw = make_split(rng, O, kind, "partial")
    split = base.Split(raw.X, raw.Y, raw.M)
    th = thetas(model, rng, 3)
    Z = model.forward(th, split.X)
    expect = [base.loss_value(Z[n], split, kind) for n in range(3)]
    np.testing.assert_allclose(model.loss(th, split, kind), expect, rtol=1e-12)
