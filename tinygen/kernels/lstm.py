"""The sequence LSTM: layers stacked, in one or two directions, with dropout between layers.

Notation (PyTorch's): sequence length T, batch N, input size F, hidden size H, layers K,
directions D (1, or 2 when ``bidirectional``). This file only drives; each layer and
direction runs one of the layer kernels of ``tinygen/kernels/lstm_cell.py``: the fused
:class:`~tinygen.kernels.lstm_cell.LSTMLayer` node (``fused=True``) or a per-step graph of
products and fused cells (``fused=False``).

**Forward**, layer k (``x^0`` = the input, ``rev`` reverses the time axis)::

    fwd_k, hf, cf = layer(x^k,      h_0[D k],     c_0[D k],     params of (k, forward))
    rev_k, hr, cr = layer(rev(x^k), h_0[D k + 1], c_0[D k + 1], params of (k, reverse))
    y^k     = cat([fwd_k, rev(rev_k)], dim=-1)                   (T, N, D H)
    x^{k+1} = dropout(y^k, p)          (training only; never after the last layer)

The reverse direction is the forward recurrence run on the time-reversed sequence, so at
step t it has read ``x_T .. x_t``; reversing its output lines ``rev(rev_k)[t]`` up with
``fwd_k[t]``. ``output = y^{K-1}``; ``h_n``, ``c_n`` stack the final states in the order
``(layer 0 forward, layer 0 reverse, layer 1 forward, ...)``, PyTorch's.

**Backward**: ``rev`` is a permutation, so its adjoint is the same permutation: the reverse
direction's gradients are the layer's gradients with ``rev`` applied to ``doutput`` going in
and to ``dx`` coming out. Dropout's gradient is its mask times ``1/(1 - p)``; ``cat`` splits
the gradient of ``y^k`` between the directions. All three are existing differentiable ops.

**Why**: a bidirectional layer is two ordinary layers and two index flips, so the hand-written
BPTT of ``LSTMLayer`` serves both directions unchanged. Derivations: ``docs/kernels/lstm.md``.
"""

import numbers

import tinygen.nn.functional as F  # dropout; that module also re-exports lstm: looked up at call time
from tinygen.errors import ShapeError
from tinygen.kernels.lstm_cell import LSTMCellPointwise, LSTMLayer, _check_weights, _initial_state
from tinygen.ops import linalg
from tinygen.ops import shape as sh


def lstm(
    input,  # noqa: A002  (PyTorch's names)
    hx,
    params,
    num_layers=1,
    batch_first=False,
    fused=True,
    *,
    dropout=0.0,
    training=True,
    bidirectional=False,
    generator=None,
):
    """A multi-layer, optionally bidirectional LSTM over a sequence: ``(output, (h_n, c_n))``.

    The functional form of ``torch.nn.LSTM``; ``D = 2`` if ``bidirectional`` else 1.

    **Shapes**: ``input (T, N, F)``, or ``(N, T, F)`` with ``batch_first``, or unbatched
    ``(T, F)``; ``hx = (h_0, c_0)``, each ``(D*num_layers, N, H)`` (``(D*num_layers, H)``
    unbatched), or None for zeros. ``params`` is PyTorch's flat list (``_flat_weights``):
    for each layer, for each direction, ``w_ih, w_hh, b_ih, b_hh`` (or without the biases),
    so ``[w_ih_l0, w_hh_l0, b_ih_l0, b_hh_l0, w_ih_l0_reverse, ..., w_ih_l1, ...]``; ``w_ih``
    is ``(4H, F)`` in layer 0 and ``(4H, D*H)`` above, ``w_hh (4H, H)``, biases ``(4H,)``.
    ``output`` is ``(T, N, D*H)`` (``(N, T, D*H)`` with ``batch_first``): the last layer's h at
    every step, forward and reverse concatenated on the last dim; ``h_n``, ``c_n`` are shaped
    as ``h_0``, in the order layer 0 forward, layer 0 reverse, layer 1 forward, ...

    **Forward**: per layer and direction, ``input_gates = x @ w_ih^T + b_ih + b_hh`` for all T
    steps in one product, then ``gates_t = input_gates_t + h_{t-1} @ w_hh^T`` and the cell at
    each step. The reverse direction runs the same recurrence on the time-reversed input and
    reverses its output back. Between layers (not after the last), while ``training``,
    ``F.dropout(y, dropout, generator=generator)`` zeroes each element with probability
    ``dropout`` and scales the rest by ``1/(1 - dropout)``.

    **Backward**: backpropagation through time. ``fused=True`` runs each layer and direction
    as one node whose BPTT loop is written by hand (fastest; first order only, a second
    derivative raises NotImplementedError). ``fused=False`` records one product and one fused
    cell per step, differentiable to any order (for gradient penalties). The time reversal
    is an index op, whose gradient is the reversed gradient.

    **Why**: hoisting ``x @ w_ih^T`` out of the loop turns T thin products into one large
    one; the reverse direction reuses the forward kernel. See ``docs/kernels/lstm.md``.
    """
    _check_dropout("lstm", dropout)
    directions = 2 if bidirectional else 1
    params = list(params)
    groups = num_layers * directions  # one (w_ih, w_hh[, b_ih, b_hh]) group per layer and direction
    if num_layers < 1 or len(params) not in (2 * groups, 4 * groups):
        raise ValueError(
            f"lstm: got {len(params)} params for num_layers={num_layers}, bidirectional={bidirectional}, "
            f"expected {4 * groups} (w_ih, w_hh, b_ih, b_hh per layer and direction) or {2 * groups} "
            f"(no biases)"
        )
    per_group = len(params) // groups
    if input.ndim not in (2, 3):
        raise ShapeError(f"lstm: input.shape is {input.shape}, expected (T, N, F), (N, T, F) or (T, F)")
    batched = input.ndim == 3
    if not batched:
        input = sh.unsqueeze(input, 1)  # noqa: A001
    elif batch_first:
        input = sh.transpose(input, 0, 1)  # noqa: A001
    if params[0].ndim != 2 or input.shape[-1] != params[0].shape[1]:
        raise ShapeError(
            f"lstm: input.shape is {tuple(input.shape)}, expected last dim = params[0].shape[1] "
            f"(input size), with params[0].shape = {params[0].shape}"
        )
    batch = input.shape[1]
    hidden = params[1].shape[-1]
    state_shape = (groups, batch, hidden) if batched else (groups, hidden)
    h_0, c_0 = _initial_state("lstm", hx, state_shape, input, ("hx[0] (h_0)", "hx[1] (c_0)"))
    if not batched:
        h_0, c_0 = sh.unsqueeze(h_0, 1), sh.unsqueeze(c_0, 1)
    run_layer = LSTMLayer.apply if fused else _layer_per_step
    layer_input, h_n, c_n = input, [], []
    for layer in range(num_layers):
        if layer > 0:
            layer_input = F.dropout(layer_input, dropout, training, generator)
        outputs = []
        for direction in range(directions):
            group = layer * directions + direction
            w_ih, w_hh, *biases = params[group * per_group : (group + 1) * per_group]
            names = [f"params[{group * per_group + k}]" for k in range(4)]
            _check_weights("lstm", layer_input, w_ih, w_hh, *(biases or [None, None]), *names)
            if w_hh.shape[1] != hidden:
                raise ShapeError(f"lstm: {names[1]}.shape is {w_hh.shape}, expected ({4 * hidden}, {hidden})")
            b_ih, b_hh = biases or (None, None)
            x = layer_input if direction == 0 else _reverse_time(layer_input)
            output, h, c = run_layer(x, h_0[group], c_0[group], w_ih, w_hh, b_ih, b_hh)
            outputs.append(output if direction == 0 else _reverse_time(output))
            h_n.append(h)
            c_n.append(c)
        layer_input = outputs[0] if directions == 1 else sh.cat(outputs, dim=2)
    output, h_n, c_n = layer_input, sh.stack(h_n), sh.stack(c_n)
    if not batched:
        return sh.squeeze(output, 1), (sh.squeeze(h_n, 1), sh.squeeze(c_n, 1))
    if batch_first:
        output = sh.transpose(output, 0, 1)
    return output, (h_n, c_n)


def _check_dropout(op, dropout):
    """PyTorch's rule for ``dropout``: a number (not a bool) in [0, 1]; ``op`` names the caller."""
    if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(
            f"{op}: dropout is {dropout!r}, expected a number in [0, 1] (the probability of zeroing "
            f"an element of each layer's output but the last)"
        )


def _reverse_time(x):
    """``x[::-1]`` along dim 0 (time), differentiable: the gradient is reversed the same way."""
    return sh.getitem(x, slice(None, None, -1))


def _layer_per_step(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """The same layer as one product and one fused cell per step (differentiable to any order)."""
    steps, batch = x.shape[0], x.shape[1]
    bias = b_ih + b_hh if b_ih is not None else None
    flat = sh.reshape(x, steps * batch, x.shape[2])
    input_gates = sh.reshape(linalg.Linear.apply(flat, w_ih, bias), steps, batch, 4 * w_hh.shape[1])
    outputs = []
    for t in range(input_gates.shape[0]):
        gates = input_gates[t] + linalg.MatMul.apply(h, w_hh, False, True)
        h, c = LSTMCellPointwise.apply(gates, c)
        outputs.append(h)
    return sh.stack(outputs), h, c
