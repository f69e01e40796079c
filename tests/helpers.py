"""Helpers shared by several test modules (imported as ``helpers``: pytest puts tests/ on
sys.path). Not a test module: nothing here is collected."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from suite.models import OnlineState
from suite.store import load_results


def adding_problem(hidden: int) -> str:
    """A ``[[problems]]`` TOML table: the adding task, 5 steps, 16 train and 16 test sequences,
    a ``hidden``-unit model; quick enough for end-to-end tests."""
    return (
        f'[[problems]]\ntask = "adding"\nseq_len = 5\nhidden = {hidden}\n'
        "n_train = 16\nn_test = 16\n"
    )


def normalised_records(directory: Path) -> dict:
    """Trial records by key without what may differ between executors (times, memory,
    provenance, the trace's seconds)."""
    out = {}
    for r in load_results(directory).records("trial"):
        r = dict(r)
        for name in ("time", "peak_mem_mb", "provenance"):
            r.pop(name)
        r["trace"] = {k: v for k, v in r["trace"].items() if k != "seconds"}
        out[r["key"]] = r
    return out


# ----------------------------------------------------------------------------- model tests


def random_split(
    rng: np.random.Generator, kind: str, mask: str, b: int, t: int, n_in: int, n_out: int
):
    """Random data X[b, t, n_in], Y[b, t, n_out] (0/1 for ``kind`` "bce") and a mask M[b, t]:
    "partial", random 0/1 with no loss at the last step (so a recurrent pass stops early);
    "last", only the last step counts (adding-problem shape)."""
    X = rng.normal(size=(b, t, n_in))
    Y = rng.normal(size=(b, t, n_out))
    if kind == "bce":
        Y = (Y > 0).astype(float)
    if mask == "partial":
        M = (rng.random((b, t)) < 0.5).astype(float)
        M[:, -1] = 0.0
        M[0, 0] = M[1, t - 2] = 1.0
    else:
        M = np.zeros((b, t))
        M[:, -1] = 1.0
    return SimpleNamespace(X=X, Y=Y, M=M)


def thetas(model, rng: np.random.Generator, n: int) -> np.ndarray:
    """n parameter rows: the model's init plus noise (so biases are non-zero)."""
    return np.stack([model.init(rng) + 0.3 * rng.normal(size=model.dim) for _ in range(n)])


def fd_grad(f, theta: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite-difference gradient of the scalar function ``f`` at ``theta``."""
    g = np.zeros_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = eps
        g[i] = (f(theta + e) - f(theta - e)) / (2 * eps)
    return g


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| relative to max |b|."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def window_start(k):
    """The first step of loss term s's backward window under truncation ``k`` (None: 0)."""
    return (lambda s: 0) if k is None else (lambda s: max(0, s - k + 1))


def check_extreme_rows(model, split, rng: np.random.Generator) -> None:
    """A row of 1e200 and a row of NaN next to a good row: no warning is raised, the NaN row's
    loss is NaN and its gradient non-finite, and the good row's loss and gradient are those it
    has alone (nothing leaks between rows)."""
    good = thetas(model, rng, 1)
    th = np.concatenate([good, np.full((1, model.dim), 1e200), np.full((1, model.dim), np.nan)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L, G = model.loss_and_grad(th, split, "mse")
        L_t = model.loss(th, split, "mse")
    assert np.isnan(L[2]) and np.isnan(L_t[2]) and not np.isfinite(G[2]).any()
    L1, G1 = model.loss_and_grad(good, split, "mse")
    np.testing.assert_allclose(L[0], L1[0], rtol=1e-12)
    np.testing.assert_allclose(G[0], G1[0], rtol=1e-12, atol=1e-15)


def online_pass(model, theta, split, kind, h, h_prime):
    """One online BPTT(h; h') pass over ``split`` with ``theta[P]``: per chunk (mean loss,
    weight, gradient, forward steps, backward steps)."""
    state = model.online_init(split)
    assert isinstance(state, OnlineState) and not state.done
    out = []
    while not state.done:
        loss, weight, g, state = model.online_chunk(theta, split, kind, state, h, h_prime)
        out.append((loss, weight, g, state.last_fwd_steps, state.last_bwd_steps))
    return out
