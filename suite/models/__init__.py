"""The models of the benchmark: Elman RNN, its time-delay twin (TDNN), Pascanu's cliff unit and
the gated cells LSTM and GRU (``suite.models.gated``), in a registry that plugins can extend.

Every model maps a *batch* of flat parameter vectors ``theta[N, P]`` and a split
(``X[B, T, I]``, ``Y[B, T, O]``, mask ``M[B, T]``) to losses ``L[N]`` and gradients
``G[N, P]`` in one vectorised pass: no Python loop over parameter sets (N) or sequences (B),
only over time.  Forward pass and back-propagation through time (BPTT) sit side by side.

Models
------
``elman``  h_t = tanh(W_h h_{t-1} + W_x x_t + b),  h_{-1} = 0,  z_t = W_o h_t + c
           (Elman 1990).  Written as one matrix acting on the augmented vector
           v_t = [h_{t-1}; x_t; 1]:  a_t = W v_t,  W = [W_h | W_x | b]  (H x (H + I + 1)).
``cliff``  x_t = w sigmoid(x_{t-1}) + b,  x_0 = 0.5,  z_t = sigmoid(x_t); theta = (w, b)
           (Pascanu, Mikolov & Bengio 2013, section 2.3).  The same recurrence as ``elman``
           with H = 1, no input, a logistic activation and no read-out: the hidden "activation"
           is h_t = sigmoid(x_{t+1}), so a_t = w h_{t-1} + b, h_{-1} = sigmoid(0.5), z_t = h_t.
           The inputs X are ignored (only their shape B, T is used).
``tdnn``   z_t = W_o tanh(W_x [x_t; x_{t-1}; ...; x_{t-w+1}] + b) + c, zeros before t = 0
           (Waibel et al. 1989): the feed-forward twin of ``elman`` seeing a window of w inputs.
           It is evaluated only at the steps that carry loss.
``lstm``, ``gru``  gated cells on the same augmented vector v_t, same read-out as ``elman``;
           equations, layouts, initialisation and cost in ``suite.models.gated``.

Flat parameter layouts (row-major blocks, in this order)
---------------------------------------------------------
``elman``  W[H, H + I + 1] (row j = W_h[j, :], W_x[j, :], b[j]),  W_o[O, H],  c[O];
           P = H (H + I + 1) + O (H + 1).  A hidden unit's incoming weights are contiguous.
``cliff``  (w, b);  P = 2.
``tdnn``   W[H, w I + 1] (row j = W_x[j, :], b[j]; column block l I ... (l + 1) I - 1 of W_x
           multiplies x_{t-l}),  W_o[O, H],  c[O];  P = H (w I + 1) + O (H + 1).
``model.unpack(theta)`` returns these blocks by name as views with a leading N axis and
``model.pack(blocks)`` is its inverse.

Loss
----
L = sum_{b,t} M[b,t] sum_o l(Z[b,t,o], Y[b,t,o]) / (O sum_{b,t} M[b,t]),
l = (z - y)^2 ("mse") or l = log(1 + e^z) - y z ("bce", binary cross-entropy on logits).

Truncation
----------
``truncate=k``: the gradient of each loss term flows back at most k steps: the term at step s
reaches the pre-activations a_s, ..., a_{s-k+1} (not below 0); the forward states are the
untruncated ones (stop-gradient on h_{s-k}).  k = 1 keeps only the local step.  When
k > (last loss step) no term is cut and the standard O(T) BPTT is used, so ``k >= T`` is exactly
the full gradient.  Otherwise the window gradient is computed lag by lag, all loss terms in
parallel: lag j moves every live term's adjoint one step back (cost sum_s min(k, s + 1)).

Online truncated BPTT (Williams & Peng 1990, BPTT(h; h'))
---------------------------------------------------------
``online_chunk`` runs h' steps forward from the carried state with the current theta, then
back-propagates the loss terms of those steps through the last h steps, ending at the
chunk's end t1: a term at step s reaches steps max(0, t1 - h) ... s.  States of steps before
the chunk come from the history (computed under the earlier thetas); the backward Jacobians
use the current theta, as in Williams & Peng.  With a fixed theta, one pass with h' = 1 sums to
the ``truncate=h`` gradient and one chunk with h >= T, h' = T is the full gradient.

Cost accounting
---------------
A "cell step" is one step of one sequence.  Recurrent models run the forward pass up to the
last step s_last whose mask is non-zero in some sequence: ``forward_steps = B (s_last + 1)``
(= B T whenever the last step carries loss).  Full BPTT runs back from s_last to 0:
``backward_steps = B (s_last + 1)``; the window-k gradient costs ``B sum_{s in S} min(k, s + 1)``
where S is the set of steps whose mask is non-zero in some sequence.  The TDNN evaluates one
window per sequence and loss step, ``B |S|`` forward and backward, whatever ``truncate`` is.

Precision and speed
-------------------
``dtype="float32"`` computes in float32 and returns float64 losses and gradients (the loss
reduction itself is done in float64).  A step is one batched GEMM ``W @ v`` over the N axis
plus NumPy's SIMD ``np.tanh``; the loss-only path keeps just the running state.
``bench/bench_models.py`` measures the speed.

Registry
--------
``MODELS`` maps names to classes; ``register_model(name)`` registers a plugin model (see its
docstring), ``make_model(name, n_in, n_out, **options)`` builds one with its declared options
checked, ``model_names()`` and ``model_options()`` list the names and the option names, and
``matched_hidden(model, elman_hidden, n_in, n_out)`` gives a parameter-matched hidden size.
Modules: ``base`` (contract, shared helpers, registry), ``recurrent`` (the Elman/cliff core),
``elman``, ``cliff``, ``tdnn``, ``gated`` (LSTM, GRU).

Example
-------
>>> from types import SimpleNamespace
>>> model = make_model("elman", n_in=2, n_out=1, hidden=4)
>>> theta = np.stack([model.init(np.random.default_rng(s)) for s in range(3)])  # [N, P]
>>> split = SimpleNamespace(X=np.ones((5, 10, 2)), Y=np.ones((5, 10, 1)), M=np.ones((5, 10)))
>>> L, G = model.loss_and_grad(theta, split, "mse", truncate=3)
>>> L.shape, G.shape
((3,), (3, 33))

References
----------
J. L. Elman (1990), "Finding structure in time", Cognitive Science 14(2).
R. J. Williams & J. Peng (1990), "An efficient gradient-based algorithm for on-line training of
recurrent network trajectories", Neural Computation 2(4).
A. Waibel et al. (1989), "Phoneme recognition using time-delay neural networks", IEEE TASSP 37(3).
R. Pascanu, T. Mikolov & Y. Bengio (2013), "On the difficulty of training recurrent neural
networks", ICML.
"""

from suite.models.base import (
    DTYPES,
    LOSS_KINDS,
    MODELS,
    Model,
    OnlineState,
    make_model,
    matched_hidden,
    model_names,
    model_options,
    register_model,
)
from suite.models.cliff import Cliff
from suite.models.elman import Elman
from suite.models.gated import GRU, LSTM
from suite.models.tdnn import TDNN, matched_tdnn_hidden

__all__ = [
    "DTYPES",
    "GRU",
    "LOSS_KINDS",
    "LSTM",
    "MODELS",
    "TDNN",
    "Cliff",
    "Elman",
    "Model",
    "OnlineState",
    "make_model",
    "matched_hidden",
    "matched_tdnn_hidden",
    "model_names",
    "model_options",
    "register_model",
]
