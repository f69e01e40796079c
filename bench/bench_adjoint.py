"""Would precomputing BPTT's adjoint-independent factors make gradients faster? (issue 14)

Run ``python bench/bench_adjoint.py [--quick]``.  Single-threaded BLAS, float64, side by side
with :func:`_common.paired`.

The shipped backward passes (``suite.models.recurrent._Recurrent._backward``,
``suite.models.gated._Gated._bptt``) walk the steps from last to first and evaluate every factor
of the adjoint equations at the step: act'(h_t) for the Elman net (2 NumPy calls), the gate
derivatives, tanh(c_t), 1 - u, h - n for the LSTM and GRU (``_cell_back``: about 20 calls).
The variant here evaluates the factors that do not depend on the adjoints for all steps at once,
in a few calls over [N, T, rows, B] arrays, so that the recursion costs 2 (Elman) or 7-9 (gated)
calls per step, with the same floating-point operations on every element.  It is checked
bit-identical to the shipped gradient before it is timed.

Printed per model, task and number of rows N: time of the variant / time of the shipped pass
(< 1: the variant is faster).  On the 2-core development machine (2026-12-07): single rows
(N = 1) 0.84-0.86x (LSTM), 0.90-0.91x (GRU), 0.95-0.97x (Elman); N = 16: 0.97-1.26x; N = 128:
1.11-1.32x.  The precomputed [N, T, rows, B] arrays leave the cache, while the shipped loop works
on arrays that stay in it.  Not adopted: the gain is on single-row gated gradients only (about
213 s of a full profile's trial time, so 15-30 s of it), and keeping it would mean a second
backward path per model, chosen by size.
"""

from __future__ import annotations

import _common  # first: one BLAS thread, the repository on sys.path
import numpy as np
from _common import Table, paired

from suite.models import make_model
from suite.models.base import _scratch
from suite.models.elman import Elman
from suite.models.gated import GRU, LSTM
from suite.problem import make_problem

_common.limit_blas_threads()


class PrecomputedElman(Elman):
    def _backward(self, W, V, dH, steps, t_lo, t_hi):
        H = self.hidden
        N, B, n = W.shape[0], V.shape[3], t_hi - t_lo
        WhT = np.ascontiguousarray(W[:, :, :H].transpose(0, 2, 1))
        at = {int(s): j for j, s in enumerate(steps)}
        D = self._dact(V[:, t_lo + 1 : t_hi + 1, :H], out=_scratch("D", (N, n, H, B), self.dtype))
        dW = np.zeros(W.shape, self.dtype)
        dW_t = np.empty(W.shape, self.dtype)
        g = np.zeros((N, H, B), self.dtype)
        dA = np.empty((N, H, B), self.dtype)
        for i in range(n - 1, -1, -1):
            if i < n - 1:
                np.matmul(WhT, dA, out=g)
            j = at.get(t_lo + i)
            if j is not None:
                g += dH[:, j]
            np.multiply(D[:, i], g, out=dA)
            np.matmul(dA, V[:, t_lo + i].transpose(0, 2, 1), out=dW_t)
            dW += dW_t
        return dW


class _PrecomputedGated:
    """``_bptt`` with the factors of ``_back_factors`` and the per-step ``_step_back``."""

    def _bptt(self, E, V, G, C, dH, steps, t_lo, t_hi):
        H = self.hidden
        N, B, n = E.shape[0], V.shape[3], t_hi - t_lo
        EhT = np.ascontiguousarray(E[:, :, :H].transpose(0, 2, 1))
        at = {int(s): j for j, s in enumerate(steps)}
        F = self._back_factors(V, G, C, t_lo, t_hi)
        dE = np.zeros(E.shape, self.dtype)
        dE_t = np.empty(E.shape, self.dtype)
        da = np.empty((N, 4 * H, B), self.dtype)
        g = np.zeros((N, H, B), self.dtype)
        work = [np.empty((N, H, B), self.dtype) for _ in range(3)]
        carry = None
        for i in range(n - 1, -1, -1):
            j = at.get(t_lo + i)
            if j is not None:
                g += dH[:, j]
            direct, carry = self._step_back(F, i, g, carry, da, work)
            np.matmul(da, V[:, t_lo + i].transpose(0, 2, 1), out=dE_t)
            dE += dE_t
            if i > 0:
                np.matmul(EhT, da, out=g)
                if direct is not None:
                    g += direct
        return dE


class PrecomputedLSTM(_PrecomputedGated, LSTM):
    def _back_factors(self, V, G, C, t_lo, t_hi):
        H = self.hidden
        Gs = G[:, t_lo:t_hi]
        N, n, _, B = Gs.shape
        tc = np.tanh(C[:, t_lo + 1 : t_hi + 1], out=_scratch("tc", (N, n, H, B), self.dtype))
        q = np.multiply(tc, tc, out=_scratch("q", (N, n, H, B), self.dtype))
        np.subtract(1.0, q, out=q)  # 1 - tanh(c_t)^2
        d = _scratch("d", (N, n, 4 * H, B), self.dtype)
        np.subtract(1.0, Gs, out=d)
        d *= Gs  # s (1 - s) for i, f, o
        gg = d[:, :, 2 * H : 3 * H]
        np.multiply(Gs[:, :, 2 * H : 3 * H], Gs[:, :, 2 * H : 3 * H], out=gg)
        np.subtract(1.0, gg, out=gg)  # 1 - g^2
        return {"G": Gs, "c_prev": C[:, t_lo:t_hi], "tc": tc, "q": q, "d": d}

    def _step_back(self, F, i, dh, carry, da, work):
        H = self.hidden
        G = F["G"][:, i]
        dct, dc = work[0], work[1]  # the carry (work[1]) is read before dc overwrites it
        np.multiply(dh, G[:, 3 * H :], out=dct)
        dct *= F["q"][:, i]
        if carry is not None:
            dct += carry
        np.multiply(dct, G[:, 2 * H : 3 * H], out=da[:, :H])
        np.multiply(dct, F["c_prev"][:, i], out=da[:, H : 2 * H])
        np.multiply(dct, G[:, :H], out=da[:, 2 * H : 3 * H])
        np.multiply(dh, F["tc"][:, i], out=da[:, 3 * H :])
        da *= F["d"][:, i]
        np.multiply(dct, G[:, H : 2 * H], out=dc)
        return None, dc


class PrecomputedGRU(_PrecomputedGated, GRU):
    def _back_factors(self, V, G, C, t_lo, t_hi):
        H = self.hidden
        Gs = G[:, t_lo:t_hi]
        N, n, _, B = Gs.shape
        d = _scratch("d", (N, n, 2 * H, B), self.dtype)
        np.subtract(1.0, Gs[:, :, : 2 * H], out=d)
        d *= Gs[:, :, : 2 * H]  # s (1 - s) for r, u
        one_u = np.subtract(1.0, Gs[:, :, H : 2 * H], out=_scratch("1-u", (N, n, H, B), self.dtype))
        nn = Gs[:, :, 2 * H : 3 * H]
        q = np.multiply(nn, nn, out=_scratch("q", (N, n, H, B), self.dtype))
        np.subtract(1.0, q, out=q)  # 1 - n^2
        hmn = np.subtract(V[:, t_lo:t_hi, :H], nn, out=_scratch("h-n", (N, n, H, B), self.dtype))
        return {"G": Gs, "d": d, "1-u": one_u, "q": q, "h-n": hmn}

    def _step_back(self, F, i, dh, carry, da, work):
        H = self.hidden
        G = F["G"][:, i]
        dan = da[:, 2 * H : 3 * H]
        np.multiply(dh, F["1-u"][:, i], out=dan)
        dan *= F["q"][:, i]
        np.multiply(dan, G[:, 3 * H :], out=da[:, :H])
        np.multiply(dh, F["h-n"][:, i], out=da[:, H : 2 * H])
        da[:, : 2 * H] *= F["d"][:, i]
        np.multiply(dan, G[:, :H], out=da[:, 3 * H :])
        return np.multiply(dh, G[:, H : 2 * H], out=work[2]), None


def online(model, theta: np.ndarray, split) -> list[bytes]:
    """Every chunk's (loss, weight, gradient) of online BPTT(6; 4) over ``split``, as bytes."""
    state, out = model.online_init(split), []
    while state.t < state.n_steps:
        loss, weight, grad, state = model.online_chunk(theta, split, "mse", state, 6, 4)
        out.append(np.concatenate([[loss, weight], grad]).tobytes())
    return out


VARIANTS = {
    "elman": (PrecomputedElman, 8),
    "lstm": (PrecomputedLSTM, 4),
    "gru": (PrecomputedGRU, 4),
}
TASKS = (("adding", {"seq_len": 20, "n_train": 64}), ("narma10", {}))


def main(argv: list[str] | None = None) -> Table:
    quick, reps = _common.bench_options(__doc__.splitlines()[0], argv, None)
    tab = Table()
    sizes = (1, 16) if quick else (1, 16, 128)
    for name, (cls, H) in VARIANTS.items():
        for task, opts in TASKS:
            split = make_problem(task, model=name, seed=0, hidden=H, **opts).dataset.train
            I, O = split.X.shape[2], split.Y.shape[2]
            shipped, variant = make_model(name, I, O, hidden=H), cls(I, O, hidden=H)
            for N in sizes:
                rng = np.random.default_rng(N)
                th = np.stack([shipped.init(rng) for _ in range(N)])
                a = shipped.loss_and_grad(th, split, "mse")
                b = variant.loss_and_grad(th, split, "mse")
                assert all(map(np.array_equal, a, b)), f"{name} {task} N={N}: not identical"
                if N == 1:  # online BPTT(h; h') chunks go through the same backward pass
                    assert online(shipped, th[0], split) == online(variant, th[0], split)
                calls = max(1, 64 // N)
                _, _, ratio = paired(
                    lambda m=variant, th=th, s=split: m.loss_and_grad(th, s, "mse"),
                    lambda m=shipped, th=th, s=split: m.loss_and_grad(th, s, "mse"),
                    reps,
                    calls,
                    calls,
                )
                tab.add(f"{name} H={H} {task} N={N}: precomputed / shipped", ratio)
    return tab


if __name__ == "__main__":
    main()
