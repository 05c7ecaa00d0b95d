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
    proj_size=0,
    generator=None,
):
    """A multi-layer, optionally bidirectional LSTM over a sequence: ``(output, (h_n, c_n))``.

    The functional form of ``torch.nn.LSTM``; ``D = 2`` if ``bidirectional`` else 1.

    **Shapes**: ``R = proj_size`` if ``proj_size > 0`` else ``H``. ``input (T, N, F)``, or
    ``(N, T, F)`` with ``batch_first``, or unbatched ``(T, F)``; ``hx = (h_0, c_0)``, ``h_0``
    ``(D*num_layers, N, R)`` and ``c_0`` ``(D*num_layers, N, H)`` (no N unbatched), or None for
    zeros. ``params`` is PyTorch's flat list (``_flat_weights``): for each layer, for each
    direction, ``w_ih, w_hh, b_ih, b_hh`` (or without the biases), then ``w_hr`` if
    ``proj_size > 0``, so ``[w_ih_l0, w_hh_l0, b_ih_l0, b_hh_l0, (w_hr_l0,) w_ih_l0_reverse, ...,
    w_ih_l1, ...]``; ``w_ih`` is ``(4H, F)`` in layer 0 and ``(4H, D*R)`` above, ``w_hh (4H, R)``,
    biases ``(4H,)``, ``w_hr (R, H)``. ``output`` is ``(T, N, D*R)`` (``(N, T, D*R)`` with
    ``batch_first``): the last layer's h at every step, forward and reverse concatenated on the
    last dim; ``h_n``, ``c_n`` are shaped as ``h_0``, ``c_0``, in the order layer 0 forward,
    layer 0 reverse, layer 1 forward, ...

    **Forward**: per layer and direction, ``input_gates = x @ w_ih^T + b_ih + b_hh`` for all T
    steps in one product, then ``gates_t = input_gates_t + h_{t-1} @ w_hh^T`` and the cell at
    each step. The reverse direction runs the same recurrence on the time-reversed input and
    reverses its output back. Between layers (not after the last), while ``training``,
    ``F.dropout(y, dropout, generator=generator)`` zeroes each element with probability
    ``dropout`` and scales the rest by ``1/(1 - dropout)``. With ``proj_size = P > 0`` the
    cell's ``r_t = o_t * tanh(c_t)`` (size H) is projected, ``h_t = r_t @ w_hr^T`` (size P), and
    that h is what the recurrence, the next layer and ``output`` see (PyTorch's LSTMP).

    **Backward**: backpropagation through time. ``fused=True`` runs each layer and direction
    as one node whose BPTT loop is written by hand (fastest; first order only, a second
    derivative raises NotImplementedError). ``fused=False`` records one product and one fused
    cell per step, differentiable to any order (for gradient penalties). The time reversal
    is an index op, whose gradient is the reversed gradient. The projection's backward is
    ``dr_t = dh_t @ w_hr`` into the cell and ``dw_hr = sum_t dh_t^T r_t``.

    **Why**: hoisting ``x @ w_ih^T`` out of the loop turns T thin products into one large
    one; the reverse direction reuses the forward kernel. See ``docs/kernels/lstm.md``.
    """
    _check_dropout("lstm", dropout)
    _check_proj_size("lstm", proj_size)
    directions = 2 if bidirectional else 1
    params = list(params)
    groups = num_layers * directions  # one (w_ih, w_hh[, b_ih, b_hh][, w_hr]) group per layer and direction
    projected = proj_size > 0
    if num_layers < 1 or len(params) not in ((2 + projected) * groups, (4 + projected) * groups):
        which = "w_ih, w_hh, b_ih, b_hh, w_hr" if projected else "w_ih, w_hh, b_ih, b_hh"
        proj = f"proj_size={proj_size}, " if projected else ""
        raise ValueError(
            f"lstm: got {len(params)} params for num_layers={num_layers}, bidirectional={bidirectional}, "
            f"{proj}expected {(4 + projected) * groups} ({which} per layer and direction) "
            f"or {(2 + projected) * groups} (no biases)"
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
    if projected and params[per_group - 1].ndim != 2:
        raise ShapeError(
            f"lstm: params[{per_group - 1}].shape is {params[per_group - 1].shape}, expected "
            f"(proj_size, hidden_size) = ({proj_size}, hidden_size) (w_hr, last of each layer and direction)"
        )
    hidden = params[per_group - 1].shape[-1] if projected else params[1].shape[-1]  # w_hr (P, H) or w_hh
    if projected and proj_size >= hidden:
        raise ValueError(
            f"lstm: proj_size is {proj_size}, expected less than hidden_size = {hidden} "
            f"(params[{per_group - 1}].shape = {params[per_group - 1].shape} is w_hr, "
            f"(proj_size, hidden_size))"
        )
    out_size = proj_size if projected else hidden
    lead = (groups, batch) if batched else (groups,)
    hints = ("", "")
    if projected:
        dims = "D*num_layers, N" if batched else "D*num_layers"
        hints = (f" = ({dims}, proj_size)", f" = ({dims}, hidden_size)")
    h_0, c_0 = _initial_state(
        "lstm", hx, (*lead, out_size), input, ("hx[0] (h_0)", "hx[1] (c_0)"), (*lead, hidden), hints
    )
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
            layer_params = _group_params(params, group, per_group, layer_input, proj_size, hidden)
            x = layer_input if direction == 0 else _reverse_time(layer_input)
            output, h, c = run_layer(x, h_0[group], c_0[group], *layer_params)
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


def _group_params(params, group, per_group, layer_input, proj_size, hidden):
    """The weights of one layer and direction, checked: ``(w_ih, w_hh, b_ih, b_hh[, w_hr])``.

    ``params[group * per_group :]`` holds ``w_ih, w_hh``, the two biases unless there are
    none, and ``w_hr`` last when ``proj_size > 0``; errors name them by their index in ``params``.
    """
    projected = proj_size > 0
    out_size = proj_size if projected else hidden
    first = group * per_group
    w_ih, w_hh, *biases = params[first : first + per_group]
    w_hr = biases.pop() if projected else None
    names = [f"params[{first + k}]" for k in range(4)]
    names += [f"params[{first + per_group - 1}]"] * projected  # w_hr comes last
    if projected and w_hr.shape != (proj_size, hidden):
        raise ShapeError(
            f"lstm: {names[4]}.shape is {w_hr.shape}, expected (proj_size, hidden_size) = "
            f"{(proj_size, hidden)}"
        )
    _check_weights("lstm", layer_input, w_ih, w_hh, *(biases or [None, None]), *names, w_hr=w_hr)
    if w_hh.shape != (4 * hidden, out_size):
        raise ShapeError(f"lstm: {names[1]}.shape is {w_hh.shape}, expected ({4 * hidden}, {out_size})")
    b_ih, b_hh = biases or (None, None)
    return (w_ih, w_hh, b_ih, b_hh, w_hr) if projected else (w_ih, w_hh, b_ih, b_hh)


def _check_dropout(op, dropout):
    """PyTorch's rule for ``dropout``: a number (not a bool) in [0, 1]; ``op`` names the caller."""
    if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(
            f"{op}: dropout is {dropout!r}, expected a number in [0, 1] (the probability of zeroing "
            f"an element of each layer's output but the last)"
        )


def _check_proj_size(op, proj_size):
    """PyTorch's rule for ``proj_size``: an int (not a bool), 0 (no projection) or positive."""
    if not isinstance(proj_size, numbers.Integral) or isinstance(proj_size, bool):
        raise TypeError(f"{op}: proj_size is {proj_size!r}, expected an int (0 for no projection)")
    if proj_size < 0:
        raise ValueError(
            f"{op}: proj_size is {proj_size}, expected 0 (no projection) or a positive int less than "
            f"hidden_size"
        )


def _reverse_time(x):
    """``x[::-1]`` along dim 0 (time), differentiable: the gradient is reversed the same way."""
    return sh.getitem(x, slice(None, None, -1))


def _layer_per_step(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """The same layer as one product and one fused cell per step (differentiable to any order).

    With a projection ``w_hr`` ``(P, H)``, each step's cell output ``r`` becomes ``h = r @ w_hr^T``.
    """
    steps, batch = x.shape[0], x.shape[1]
    bias = b_ih + b_hh if b_ih is not None else None
    flat = sh.reshape(x, steps * batch, x.shape[2])
    input_gates = sh.reshape(linalg.Linear.apply(flat, w_ih, bias), steps, batch, w_hh.shape[0])
    outputs = []
    for t in range(input_gates.shape[0]):
        gates = input_gates[t] + linalg.MatMul.apply(h, w_hh, False, True)
        h, c = LSTMCellPointwise.apply(gates, c)
        if w_hr is not None:
            h = linalg.MatMul.apply(h, w_hr, False, True)
        outputs.append(h)
    return sh.stack(outputs), h, c
