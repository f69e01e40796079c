"""Speed of the gated cells (suite.models.gated: LSTM, GRU), as ratios measured side by side.

Run ``python bench/bench_gated.py [--quick]``.  Same method as ``bench_models.py`` (median of
alternating ``time.perf_counter`` measurements, one BLAS / PyTorch thread, adding-problem data).
PyTorch rows are skipped when ``import torch`` fails.

1. one BPTT step (N = 1, H = 32, T = 50, B = 32) vs PyTorch nn.LSTM / nn.GRU + Linear +
   autograd (same shapes, same loss on the last step).
2. batched population loss (N = 256, H = 16, T = 50, B = 32) vs the "nonlinearity floor": the
   cell's nonlinearities alone, as np.tanh on a preallocated array of the same number of
   elements (LSTM: 4 gates + tanh(c_t) = 5 N B T H; GRU: 2 gates + n_t = 3 N B T H; the cells
   compute sigmoid(x) = (1 + tanh(x / 2)) / 2); and vs the same nonlinearities with scipy's
   expit for the sigmoids (the floor of a straightforward implementation).
3. the same loss, gated / Elman of the same H: the measured cost of one cell step relative to
   an Elman step (the docstring's ~4x / ~3x flop estimate; the counters count plain cell steps).
"""

from __future__ import annotations

import _common  # first: one BLAS thread, the repository on sys.path
import numpy as np
from _common import Table, paired
from bench_models import adding_split, bptt_vs_torch, thetas
from scipy.special import expit

from suite.models import make_model

_common.limit_blas_threads()

torch = _common.optional_torch()

GATED = ("lstm", "gru")
N_SIGMOID = {"lstm": 3, "gru": 2}  # N B T H blocks through a sigmoid per forward pass
N_TANH = {"lstm": 2, "gru": 1}  # ... and through tanh


def bench_vs_torch(tab: Table, reps: int) -> None:
    if torch is None:
        tab.note("1. skipped: PyTorch is not importable")
        return
    H, T, B = 32, 50, 32
    rng = np.random.default_rng(3)
    split = adding_split(T, B, rng)
    for name in GATED:
        for dtype in ("float64", "float32"):
            model = make_model(name, 2, 1, hidden=H, dtype=dtype)
            th = thetas(model, 1, rng)
            cls = torch.nn.LSTM if name == "lstm" else torch.nn.GRU
            rnn = cls(2, H, batch_first=True)
            t_ours, t_torch, ratio = bptt_vs_torch(model, th, split, rnn, dtype, reps)
            tab.add(f"1. one BPTT step H=32 {name} / PyTorch nn.{name.upper()} ({dtype})", ratio)
            tab.note(f"   ours {t_ours * 1e3:.2f} ms, PyTorch {t_torch * 1e3:.2f} ms")


def bench_forward_floor(tab: Table, reps: int) -> None:
    N, H, T, B = 256, 16, 50, 32
    rng = np.random.default_rng(1)
    split = adding_split(T, B, rng)
    for name in GATED:
        for dtype in ("float64", "float32"):
            model = make_model(name, 2, 1, hidden=H, dtype=dtype)
            th = thetas(model, N, rng)
            S = rng.normal(size=N_SIGMOID[name] * N * B * T * H).astype(dtype)
            Tn = rng.normal(size=N_TANH[name] * N * B * T * H).astype(dtype)
            A = np.concatenate([S, Tn])
            out, out_s, out_t = np.empty_like(A), np.empty_like(S), np.empty_like(Tn)

            def tanh_floor(A=A, out=out):
                np.tanh(A, out=out)

            def expit_floor(S=S, Tn=Tn, out_s=out_s, out_t=out_t):
                expit(S, out=out_s)
                np.tanh(Tn, out=out_t)

            def loss(m=model, th=th):
                return m.loss(th, split, "mse")

            t_loss, t_floor, ratio = paired(loss, tanh_floor, reps)
            tab.add(f"2. {name} loss N=256 / tanh floor ({dtype})", ratio)
            tab.note(f"   loss {t_loss * 1e3:.2f} ms, floor {t_floor * 1e3:.2f} ms")
            _, t_expit, ratio = paired(loss, expit_floor, reps)
            tab.add(f"2. {name} loss N=256 / expit+tanh floor ({dtype})", ratio)
            tab.note(f"   expit+tanh floor {t_expit * 1e3:.2f} ms")


def bench_vs_elman(tab: Table, reps: int) -> None:
    N, H, T, B = 256, 16, 50, 32
    rng = np.random.default_rng(2)
    split = adding_split(T, B, rng)
    for dtype in ("float64", "float32"):
        elman = make_model("elman", 2, 1, hidden=H, dtype=dtype)
        th_e = thetas(elman, N, rng)
        for name in GATED:
            model = make_model(name, 2, 1, hidden=H, dtype=dtype)
            th = thetas(model, N, rng)
            _, _, ratio = paired(
                lambda m=model, th=th: m.loss(th, split, "mse"),
                lambda e=elman, th_e=th_e: e.loss(th_e, split, "mse"),
                reps,
            )
            tab.add(f"3. {name} / elman loss, H=16 N=256 (step_cost {model.step_cost:g})", ratio)


def main(argv: list[str] | None = None) -> Table:
    quick, reps = _common.bench_options(__doc__.splitlines()[0], argv, torch)
    tab = Table()
    bench_vs_torch(tab, reps)
    bench_forward_floor(tab, reps)
    bench_vs_elman(tab, reps)
    return tab


if __name__ == "__main__":
    main()
