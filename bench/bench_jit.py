"""Would a JIT (numba) make the Elman forward pass and BPTT faster than our NumPy code? (issue 14)

Run ``python bench/bench_jit.py [--quick]`` in an environment with numba (it is not a project
dependency: without it the script prints one line and exits 0).  Single-threaded (one BLAS
thread, no ``parallel=True``), adding-task data, float64, ratios measured side by side with
:func:`_common.paired` after one warm-up call each; the first call of every numba kernel (its
compile time) is reported separately and excluded from the timings.

For each shape (H, T, B, N) it compares

a. ``model.loss(theta, split, "mse")`` against an ``@njit`` kernel doing the same forward pass
   (loop over n and t, an explicit [H, K] x [K, B] product, scalar tanh) and the masked MSE;
b. ``model.loss_and_grad(theta, split, "mse")`` (full BPTT) against an ``@njit`` kernel
   returning the loss and the gradient in the same flat layout
   ``[W (H x K, row j = W_h[j], W_x[j], b[j]), W_o (O x H), c (O)]``;

each with two compilations of the same Python kernel: "strict" (IEEE semantics, numba's
default) and "reassoc" (``fastmath={"reassoc", "contract"}``: lets LLVM vectorise the
reductions and fuse multiply-adds; results may differ in the last bits).  A ratio is time of
ours / time of numba (> 1: numba is faster).  The gradients are checked against ours (max
|difference| / max |gradient| per row, must be < 1e-10) and the losses compared bit for bit.

d. the tanh alone over N B T H elements of the largest shape: NumPy's SIMD ``np.tanh`` against
   an ``@njit`` loop of ``math.tanh`` (libm; vectorised only when numba has Intel SVML).
"""

from __future__ import annotations

import math
import os
import time

import _common  # first: one BLAS thread, the repository on sys.path
import numpy as np
from _common import Table, paired

try:
    import numba
    from numba import njit
except ImportError:
    numba = None

_common.limit_blas_threads()

SHAPES = ((8, 20, 128, 1), (8, 20, 128, 17), (2, 10, 64, 144), (16, 50, 32, 256))  # H, T, B, N
REASSOC = {"reassoc", "contract"}
MIN_SECONDS = 0.004  # each timed measurement repeats a call until it lasts about this long


# ----------------------------------------------------------------------------- kernels
# theta[N, P] in the flat Elman layout; XC[t, i, b] the inputs as columns; YC[j, o, b] and
# MC[j, b] the targets and mask at the loss steps steps[j]; norm = O * sum(M).


def _loss_kernel(theta, XC, YC, MC, steps, H, O, h_init, norm):
    N = theta.shape[0]
    I, B = XC.shape[1], XC.shape[2]
    K = H + I + 1
    last = steps[-1] + 1
    v = np.empty((K, B))
    a = np.empty((H, B))
    z = np.empty(B)
    out = np.empty(N)
    for n in range(N):
        th = theta[n]
        v[:H] = h_init
        v[H + I] = 1.0
        s = 0.0
        j = 0
        for t in range(last):
            v[H : H + I] = XC[t]
            for r in range(H):  # a = W v
                w = th[r * K]
                for b in range(B):
                    a[r, b] = w * v[0, b]
                for k in range(1, K):
                    w = th[r * K + k]
                    for b in range(B):
                        a[r, b] += w * v[k, b]
            for r in range(H):
                for b in range(B):
                    v[r, b] = math.tanh(a[r, b])
            if t == steps[j]:  # z = W_o h + c, masked squared error
                for o in range(O):
                    base = H * K + o * H
                    for b in range(B):
                        z[b] = th[base] * v[0, b]
                    for r in range(1, H):
                        w = th[base + r]
                        for b in range(B):
                            z[b] += w * v[r, b]
                    c = th[H * K + O * H + o]
                    for b in range(B):
                        d = z[b] + c - YC[j, o, b]
                        s += d * d * MC[j, b]
                j += 1
        out[n] = s / norm
    return out


def _grad_kernel(theta, XC, YC, MC, steps, H, O, h_init, norm):
    N, P = theta.shape
    I, B = XC.shape[1], XC.shape[2]
    K = H + I + 1
    last = steps[-1] + 1
    m = steps.shape[0]
    V = np.empty((last + 1, K, B))  # V[t] = [h_{t-1}; x_t; 1]
    dZ = np.empty((m, O, B))
    g = np.empty((H, B))  # dL/dh_t
    dA = np.empty((H, B))
    loss = np.empty(N)
    G = np.zeros((N, P))
    for n in range(N):
        th = theta[n]
        gr = G[n]
        V[0, :H] = h_init
        for t in range(last):
            V[t, H : H + I] = XC[t]
            V[t, H + I] = 1.0
        for t in range(last):  # forward: h_t = tanh(W v_t) into V[t + 1, :H]
            for r in range(H):
                w = th[r * K]
                for b in range(B):
                    dA[r, b] = w * V[t, 0, b]
                for k in range(1, K):
                    w = th[r * K + k]
                    for b in range(B):
                        dA[r, b] += w * V[t, k, b]
            for r in range(H):
                for b in range(B):
                    V[t + 1, r, b] = math.tanh(dA[r, b])
        s = 0.0
        for j in range(m):  # read-out and loss at the loss steps; dW_o, dc
            hs = V[steps[j] + 1]
            for o in range(O):
                base = H * K + o * H
                c = th[H * K + O * H + o]
                for b in range(B):
                    zb = th[base] * hs[0, b]
                    for r in range(1, H):
                        zb += th[base + r] * hs[r, b]
                    d = zb + c - YC[j, o, b]
                    s += d * d * MC[j, b]
                    dZ[j, o, b] = 2.0 * MC[j, b] * d / norm
                for r in range(H):
                    acc = 0.0
                    for b in range(B):
                        acc += dZ[j, o, b] * hs[r, b]
                    gr[base + r] += acc
                acc = 0.0
                for b in range(B):
                    acc += dZ[j, o, b]
                gr[H * K + O * H + o] += acc
        loss[n] = s / norm
        j = m - 1
        for t in range(last - 1, -1, -1):  # BPTT: dA_t = (1 - h_t^2) (dH_t + W_h^T dA_{t+1})
            if t < last - 1:
                for r in range(H):
                    for b in range(B):
                        g[r, b] = 0.0
                for q in range(H):
                    for r in range(H):
                        w = th[q * K + r]
                        for b in range(B):
                            g[r, b] += w * dA[q, b]
            else:
                g[:] = 0.0
            if j >= 0 and steps[j] == t:
                for o in range(O):
                    base = H * K + o * H
                    for r in range(H):
                        w = th[base + r]
                        for b in range(B):
                            g[r, b] += w * dZ[j, o, b]
                j -= 1
            for r in range(H):
                for b in range(B):
                    h = V[t + 1, r, b]
                    dA[r, b] = (1.0 - h * h) * g[r, b]
            for r in range(H):  # dW += dA_t v_t^T
                for k in range(K):
                    acc = 0.0
                    for b in range(B):
                        acc += dA[r, b] * V[t, k, b]
                    gr[r * K + k] += acc
    return loss, G


def _tanh_loop(a, out):
    for i in range(a.size):
        out[i] = math.tanh(a[i])


# ----------------------------------------------------------------------------- harness


def adding_split(T: int, B: int, rng: np.random.Generator):
    import tasks

    return tasks.get("adding", seq_len=T, n_train=B).generate(rng).train


def check_layout(model, th: np.ndarray) -> None:
    """The kernels' flat indexing agrees with ``model.unpack``."""
    H, I, O = model.hidden, model.n_in, model.n_out
    K = H + I + 1
    u, row = model.unpack(th[:1]), th[0]
    assert np.array_equal(u["W_h"][0], row[: H * K].reshape(H, K)[:, :H])
    assert np.array_equal(u["W_x"][0], row[: H * K].reshape(H, K)[:, H : H + I])
    assert np.array_equal(u["b"][0], row[: H * K].reshape(H, K)[:, H + I])
    assert np.array_equal(u["W_o"][0], row[H * K : H * K + O * H].reshape(O, H))
    assert np.array_equal(u["c"][0], row[H * K + O * H :])


def numba_call(kernel, model, split):
    """A closure computing the kernel's result for theta[N, P] on ``split``: the per-call data
    preparation (inputs as columns, targets and mask at the loss steps) is included, as in
    ours."""
    H, O, h_init = model.hidden, model.n_out, float(model.h_init)

    def call(theta):
        X = np.asarray(split.X, dtype=np.float64)
        Y = np.asarray(split.Y, dtype=np.float64)
        M = np.asarray(split.M, dtype=np.float64)
        steps = np.flatnonzero(M.any(axis=0))
        XC = np.ascontiguousarray(X[:, : steps[-1] + 1].transpose(1, 2, 0))
        YC = np.ascontiguousarray(Y[:, steps].transpose(1, 2, 0))
        MC = np.ascontiguousarray(M[:, steps].T)
        norm = float(O * M.sum())
        return kernel(np.ascontiguousarray(theta), XC, YC, MC, steps, H, O, h_init, norm)

    return call


def repeats_for(fn, floor: float = MIN_SECONDS) -> int:
    t0 = time.perf_counter()
    fn()
    return max(1, math.ceil(floor / max(time.perf_counter() - t0, 1e-7)))


def rel_grad_diff(G: np.ndarray, Gref: np.ndarray) -> float:
    """max over rows of max |G - Gref| / max |Gref|."""
    scale = np.abs(Gref).max(axis=1)
    return float((np.abs(G - Gref).max(axis=1) / scale).max())


def main(argv: list[str] | None = None) -> Table | None:
    if numba is None:
        print("numba not installed: bench_jit.py skipped (numba is not a project dependency)")
        return None
    from suite.models import make_model

    quick, reps = _common.bench_options(__doc__.splitlines()[0], argv, None)
    svml = numba.config.USING_SVML
    print(f"numba {numba.__version__} (SVML {svml}), load average at start {os.getloadavg()}")
    tab = Table()

    kernels = {}  # (kind, variant) -> compiled kernel
    rng = np.random.default_rng(0)
    model = make_model("elman", 2, 1, hidden=4)
    th = np.stack([model.init(rng) for _ in range(2)])
    split = adding_split(6, 4, rng)
    check_layout(model, th)
    for kind, py in (("loss", _loss_kernel), ("grad", _grad_kernel)):
        for variant, fastmath in (("strict", False), ("reassoc", REASSOC)):
            fn = njit(fastmath=fastmath, cache=False)(py)
            t0 = time.perf_counter()
            numba_call(fn, model, split)(th)
            kernels[kind, variant] = fn
            tab.note(
                f"compile (first call) {kind:<4} {variant:<7}: {time.perf_counter() - t0:.2f} s"
            )

    for H, T, B, N in SHAPES:
        rng = np.random.default_rng(H * 1000 + N)
        split = adding_split(T, B, rng)
        model = make_model("elman", 2, 1, hidden=H)
        th = np.stack([model.init(rng) for _ in range(N)])
        th += 0.1 * rng.normal(size=th.shape)  # non-zero biases and c: every block is exercised
        shape = f"H={H:<2} T={T:<2} B={B:<3} N={N:<3}"
        L_ours = model.loss(th, split, "mse")
        LG_ours, G_ours = model.loss_and_grad(th, split, "mse")
        for variant in ("strict", "reassoc"):
            loss_nb = numba_call(kernels["loss", variant], model, split)
            grad_nb = numba_call(kernels["grad", variant], model, split)
            L = loss_nb(th)
            LG, G = grad_nb(th)
            dl = max(np.abs(L - L_ours).max(), np.abs(LG - LG_ours).max())
            same = np.array_equal(L, L_ours) and np.array_equal(LG, LG_ours)
            dg = rel_grad_diff(G, G_ours)
            assert dg < 1e-10, f"numba gradient differs from ours: {dg:.3g}"
            assert np.abs(L - L_ours).max() <= 1e-12 * max(1.0, np.abs(L_ours).max())
            for label, ours, theirs in (
                ("a. loss", lambda m=model, th=th, s=split: m.loss(th, s, "mse"), loss_nb),
                (
                    "b. loss_and_grad",
                    lambda m=model, th=th, s=split: m.loss_and_grad(th, s, "mse"),
                    grad_nb,
                ),
            ):
                t_o, t_n, ratio = paired(
                    ours,
                    lambda f=theirs, th=th: f(th),
                    reps,
                    repeats_for(ours),
                    repeats_for(lambda f=theirs, th=th: f(th)),
                )
                tab.add(f"{label} ours/numba-{variant:<7} {shape}", ratio)
                tab.note(f"   ours {t_o * 1e3:8.3f} ms, numba {t_n * 1e3:8.3f} ms")
            tab.note(
                f"c. max |loss diff| {dl:.3g}, bit-identical {same}, grad max rel diff {dg:.3g}"
            )
    H, T, B, N = SHAPES[-1]
    A = np.random.default_rng(5).normal(size=N * B * T * H)
    out = np.empty_like(A)
    tanh_nb = njit(cache=False)(_tanh_loop)
    tanh_nb(A[:10], out[:10])
    t_np, t_nb, ratio = paired(
        lambda: np.tanh(A, out=out), lambda: tanh_nb(A, out), max(3, reps // 3)
    )
    tab.add(f"d. tanh alone, np.tanh / numba math.tanh loop, {A.size} elements", ratio)
    tab.note(f"   np.tanh {t_np * 1e3:8.3f} ms, numba {t_nb * 1e3:8.3f} ms")
    print(f"load average at end {os.getloadavg()}")
    return tab


if __name__ == "__main__":
    main()
