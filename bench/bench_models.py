"""Speed of suite.models, as ratios measured side by side in one run.

Run ``python bench/bench_models.py [--quick]``.  Every figure is the median of repeated
``time.perf_counter`` measurements, single-threaded (BLAS and PyTorch limited to one thread).
Data come from the ``tasks`` package (adding problem, cliff) when it is importable, else from
synthetic arrays of the same shapes.  PyTorch rows are skipped when ``import torch`` fails.

1. cliff, batched loss of N = 1000 rows vs 1000 single-row calls (T = 50, B = 1): >= 50x.
2. elman loss on adding-shaped data (H = 16, T = 50, B = 32, N = 256) vs the "tanh floor"
   (np.tanh over N B T H preallocated elements, same dtype): <= 1.3x; and vs the same batched
   forward in PyTorch (torch.bmm + torch.tanh per step, no autograd).
3. batched BPTT over N = 128 starts vs one start at a time, speed-up per start: >= 1.5x.
4. one BPTT step (N = 1, H = 32, T = 50, B = 32) vs PyTorch nn.RNN + Linear + autograd: <= 0.35x.
5. (time of loss_and_grad - time of loss) / time of loss: the backward/forward cost ratio
   behind the Problem's BWD_FE = 2 constant.
"""

from __future__ import annotations

from types import SimpleNamespace

import _common  # first: one BLAS thread, the repository on sys.path
import numpy as np
from _common import Table, paired

from suite.models import make_model

_common.limit_blas_threads()

torch = _common.optional_torch()


def adding_split(T: int, B: int, rng: np.random.Generator):
    try:
        import tasks

        return tasks.get("adding", seq_len=T, n_train=B).generate(rng).train
    except ImportError:
        X = np.stack([rng.uniform(size=(B, T)), np.zeros((B, T))], axis=2)
        X[:, [3, T // 2 + 3], 1] = 1.0
        M = np.zeros((B, T))
        M[:, -1] = 1.0
        return SimpleNamespace(X=X, Y=np.ones((B, T, 1)), M=M)


def cliff_split(T: int):
    try:
        import tasks

        return tasks.get("cliff", steps=T).generate(np.random.default_rng(0)).train
    except ImportError:
        M = np.zeros((1, T))
        M[0, -1] = 1.0
        return SimpleNamespace(X=np.zeros((1, T, 1)), Y=np.full((1, T, 1), 0.7), M=M)


def thetas(model, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([model.init(rng) for _ in range(n)])


# ----------------------------------------------------------------------------- benchmarks


def bench_cliff_batch(tab: Table, reps: int, quick: bool) -> None:
    rng = np.random.default_rng(0)
    split, model = cliff_split(50), make_model("cliff", 1, 1)
    th = thetas(model, 1000, rng)
    n_loop = 200 if quick else 1000
    rows = [th[i : i + 1] for i in range(n_loop)]

    def loop():
        for r in rows:
            model.loss(r, split, "mse")

    _, _, ratio = paired(loop, lambda: model.loss(th, split, "mse"), max(3, reps // 3))
    ratio *= 1000 / n_loop
    tab.add("1. cliff loss: 1000 single-row calls / one N=1000 call", ratio, ">= 50", ratio >= 50)


def torch_batched_forward(W, Wo, c, X):
    """The Elman forward of N parameter sets in PyTorch: h = tanh(W_h h + W_x x + b)."""
    N, H, K = W.shape
    I = X.shape[2]
    WhT = W[:, :, :H].transpose(1, 2).contiguous()
    U = torch.einsum("bti,nhi->tnbh", X, W[:, :, H : H + I]) + W[:, None, :, H + I]
    h = torch.zeros(N, X.shape[0], H, dtype=X.dtype)
    for t in range(X.shape[1]):
        h = torch.tanh(torch.baddbmm(U[t], h, WhT))
    return torch.bmm(h, Wo.transpose(1, 2)) + c[:, None, :]


def bench_forward_floor(tab: Table, reps: int) -> None:
    N, H, T, B = 256, 16, 50, 32
    rng = np.random.default_rng(1)
    split = adding_split(T, B, rng)
    for dtype in ("float64", "float32"):
        model = make_model("elman", 2, 1, hidden=H, dtype=dtype)
        th = thetas(model, N, rng)
        A = rng.normal(size=N * B * T * H).astype(dtype)
        out = np.empty_like(A)

        def loss(m=model, th=th):
            return m.loss(th, split, "mse")

        t_loss, t_floor, ratio = paired(loss, lambda A=A, out=out: np.tanh(A, out=out), reps)
        tab.add(f"2. elman loss N=256 / tanh floor ({dtype})", ratio, "<= 1.3", ratio <= 1.3)
        tab.note(f"   loss {t_loss * 1e3:.2f} ms, floor {t_floor * 1e3:.2f} ms")
        if torch is None:
            continue
        tdt = getattr(torch, dtype)
        K = H + 3
        W = torch.tensor(th[:, : H * K].reshape(N, H, K), dtype=tdt)
        Wo = torch.tensor(th[:, H * K : H * K + H].reshape(N, 1, H), dtype=tdt)
        c = torch.tensor(th[:, -1:], dtype=tdt)
        X = torch.tensor(np.asarray(split.X), dtype=tdt)
        with torch.no_grad():
            z = torch_batched_forward(W, Wo, c, X)[:, :, 0].double().numpy()
            assert np.allclose(z, model.forward(th, split.X)[:, :, -1, 0], atol=1e-3)
            _, _, ratio = paired(
                loss, lambda W=W, Wo=Wo, c=c, X=X: torch_batched_forward(W, Wo, c, X), reps
            )
        tab.add(f"2. elman loss N=256 / PyTorch batched forward ({dtype})", ratio)


def bench_multistart(tab: Table, reps: int, quick: bool) -> None:
    N, H, T, B = 128, 16, 50, 32
    rng = np.random.default_rng(2)
    split = adding_split(T, B, rng)
    for dtype in ("float64", "float32"):
        model = make_model("elman", 2, 1, hidden=H, dtype=dtype)
        th = thetas(model, N, rng)
        n_one = 16 if quick else N
        rows = [th[i : i + 1] for i in range(n_one)]

        def one_at_a_time(m=model, rows=rows):
            for r in rows:
                m.loss_and_grad(r, split, "mse")

        def batched(m=model, th=th):
            m.loss_and_grad(th, split, "mse")

        _, _, ratio = paired(one_at_a_time, batched, max(3, reps // 3))
        ratio *= N / n_one
        tab.add(
            f"3. BPTT per start: one at a time / batched N=128 ({dtype})",
            ratio,
            ">= 1.5",
            ratio >= 1.5,
        )


def bptt_vs_torch(model, th: np.ndarray, split, rnn, dtype: str, reps: int):
    """One BPTT step of ``model`` at ``th`` (``loss_and_grad``, squared error of the last step)
    against the PyTorch ``rnn`` (``batch_first``) + ``nn.Linear`` read-out, forward and autograd
    backward on the same data and loss, both in ``dtype``; 5 calls per measurement. Returns
    :func:`_common.paired`'s (time of ours, time of PyTorch, median ratio)."""
    tdt = getattr(torch, dtype)
    rnn = rnn.to(tdt)
    head = torch.nn.Linear(model.hidden, 1).to(tdt)
    X = torch.tensor(np.asarray(split.X), dtype=tdt)
    Y = torch.tensor(np.asarray(split.Y)[:, -1, :], dtype=tdt)

    def torch_step():
        rnn.zero_grad()
        head.zero_grad()
        out, _ = rnn(X)
        loss = ((head(out[:, -1]) - Y) ** 2).mean()
        loss.backward()
        return loss

    def ours():
        return model.loss_and_grad(th, split, "mse")

    return paired(ours, torch_step, reps, na=5, nb=5)


def bench_vs_torch_rnn(tab: Table, reps: int) -> None:
    if torch is None:
        tab.note("4. skipped: PyTorch is not importable")
        return
    H, T, B = 32, 50, 32
    rng = np.random.default_rng(3)
    split = adding_split(T, B, rng)
    for dtype in ("float64", "float32"):
        model = make_model("elman", 2, 1, hidden=H, dtype=dtype)
        th = thetas(model, 1, rng)
        rnn = torch.nn.RNN(2, H, batch_first=True, nonlinearity="tanh")
        t_ours, t_torch, ratio = bptt_vs_torch(model, th, split, rnn, dtype, reps)
        name = f"4. one BPTT step H=32 / PyTorch nn.RNN + autograd ({dtype})"
        tab.add(name, ratio, "<= 0.35", ratio <= 0.35)
        tab.note(f"   ours {t_ours * 1e3:.2f} ms, PyTorch {t_torch * 1e3:.2f} ms")


def bench_backward_ratio(tab: Table, reps: int) -> None:
    H, T, B = 16, 50, 32
    rng = np.random.default_rng(4)
    split = adding_split(T, B, rng)
    for N in (1, 256):
        for dtype in ("float64", "float32"):
            model = make_model("elman", 2, 1, hidden=H, dtype=dtype)
            th = thetas(model, N, rng)
            n = 40 if N == 1 else 1

            def grad(m=model, th=th):
                return m.loss_and_grad(th, split, "mse")

            def loss(m=model, th=th):
                return m.loss(th, split, "mse")

            _, _, ratio = paired(grad, loss, reps, n, n)
            name = f"5. (loss_and_grad - loss) / loss, elman H=16 N={N} ({dtype})"
            tab.add(name, ratio - 1.0, "~ 2")


def main(argv: list[str] | None = None) -> Table:
    quick, reps = _common.bench_options(__doc__.splitlines()[0], argv, torch)
    tab = Table()
    bench_cliff_batch(tab, reps, quick)
    bench_forward_floor(tab, reps)
    bench_multistart(tab, reps, quick)
    bench_vs_torch_rnn(tab, reps)
    bench_backward_ratio(tab, reps)
    return tab


if __name__ == "__main__":
    main()
