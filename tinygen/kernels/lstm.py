"""The public LSTM functions: ``lstm`` (layers stacked, in one or two directions, dropout between
layers) and ``lstm_cell`` (one step), with the checks of their arguments.

Notation (PyTorch's): sequence length T, batch N, input size F, hidden size H, layers K,
directions D (1, or 2 when ``bidirectional``). This file only drives and checks; each layer
and direction runs one of the layer kernels of ``tinygen/kernels/lstm_layer.py``: the fused
:class:`~tinygen.kernels.lstm_layer.LSTMLayer` node (``fused=True``) or a per-step graph of
products and fused cells (``fused=False``, :func:`~tinygen.kernels.lstm_layer.layer_per_step`);
a step's cell is ``tinygen/kernels/lstm_cell.py``.

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

from tinygen import backend
from tinygen.autograd.tensor import Tensor
from tinygen.errors import DTypeError, ShapeError
from tinygen.kernels.lstm_cell import LSTMCellPointwise
from tinygen.kernels.lstm_layer import LSTMLayer, layer_per_step
from tinygen.ops import linalg
from tinygen.ops import shape as sh
from tinygen.ops.dropout import dropout as apply_dropout  # the argument "dropout" is its p


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
    check_dropout("lstm", dropout)
    check_proj_size("lstm", proj_size)
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
    run_layer = LSTMLayer.apply if fused else layer_per_step
    layer_input, h_n, c_n = input, [], []
    for layer in range(num_layers):
        if layer > 0:
            layer_input = apply_dropout(layer_input, dropout, training, generator)
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


def check_dropout(op, dropout):
    """PyTorch's rule for ``dropout``: a number (not a bool) in [0, 1]; ``op`` names the caller."""
    if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(
            f"{op}: dropout is {dropout!r}, expected a number in [0, 1] (the probability of zeroing "
            f"an element of each layer's output but the last)"
        )


def check_proj_size(op, proj_size):
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


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002  (PyTorch's names)
    """One LSTM step: ``(h, c)`` from ``input`` and ``hx = (h_prev, c_prev)`` (zeros when None).

    **Shapes**: ``input (N, F)`` or ``(F,)``; ``h_prev, c_prev (N, H)`` or ``(H,)``;
    ``w_ih (4H, F)``, ``w_hh (4H, H)``, ``b_ih, b_hh (4H,)``, gates in order i, f, g, o.

    **Forward**: ``gates = input @ w_ih^T + b_ih + h_prev @ w_hh^T + b_hh``, then
    :func:`lstm_cell_pointwise`. **Backward**: the products' and the fused cell's.
    **Why**: PyTorch's ``LSTMCell``, built from two ``linear`` and one fused node.
    """
    if input.ndim not in (1, 2) or w_ih.ndim != 2 or input.shape[-1] != w_ih.shape[1]:
        raise ShapeError(
            f"lstm_cell: input.shape is {input.shape}, expected (N, F) or (F,) with F = w_ih.shape[1], "
            f"w_ih.shape = {w_ih.shape}"
        )
    _check_weights("lstm_cell", input, w_ih, w_hh, b_ih, b_hh, "w_ih", "w_hh", "b_ih", "b_hh")
    hidden = w_hh.shape[1]
    batched = input.ndim == 2
    if not batched:
        input = sh.unsqueeze(input, 0)  # noqa: A001
    state_shape = (input.shape[0], hidden) if batched else (hidden,)
    h_prev, c_prev = _initial_state("lstm_cell", hx, state_shape, input, ("hx[0]", "hx[1]"))
    if not batched:
        h_prev, c_prev = sh.unsqueeze(h_prev, 0), sh.unsqueeze(c_prev, 0)
    gates = linalg.Linear.apply(input, w_ih, b_ih) + linalg.Linear.apply(h_prev, w_hh, b_hh)
    h, c = LSTMCellPointwise.apply(gates, c_prev)
    return (h, c) if batched else (sh.squeeze(h, 0), sh.squeeze(c, 0))


def _initial_state(op, hx, shape, like, names, cell_shape=None, hints=("", "")):
    """``hx = (h, c)`` checked against ``shape`` (``cell_shape`` for c, if given), or zeros when None.

    ``hints`` are appended to the two shape messages (what each dim of the expected shape is).
    """
    shapes = (shape, shape if cell_shape is None else cell_shape)
    if hx is None:
        xp = backend.get_array_module(like.data)
        zeros = Tensor(xp.zeros(shape, dtype=like.dtype))
        return zeros, zeros if cell_shape is None else Tensor(xp.zeros(cell_shape, dtype=like.dtype))
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(f"{op}: hx must be a tuple (h, c) or None, got {type(hx).__name__}")
    for name, state, expected, hint in zip(names, hx, shapes, hints, strict=True):
        if state.shape != expected:
            raise ShapeError(f"{op}: {name}.shape is {state.shape}, expected {expected}{hint}")
        if state.dtype != like.dtype:
            raise DTypeError(f"{op}: {name}.dtype is {state.dtype}, expected input's {like.dtype}")
    return tuple(hx)


def _check_weights(op, input, w_ih, w_hh, b_ih, b_hh, *names, w_hr=None):  # noqa: A002
    """Shapes and dtypes of one layer's weights against its input, naming the argument at fault.

    With a projection ``w_hr`` ``(P, H)`` (its name is ``names[4]``), ``w_hh`` must be ``(4H, P)``.
    """
    if w_hr is None:
        hidden = w_hh.shape[-1] if w_hh.ndim == 2 else None
        if w_hh.ndim != 2 or w_hh.shape[0] != 4 * hidden:
            raise ShapeError(f"{op}: {names[1]}.shape is {w_hh.shape}, expected (4*hidden_size, hidden_size)")
    else:
        if w_hr.ndim != 2:
            raise ShapeError(f"{op}: {names[4]}.shape is {w_hr.shape}, expected (proj_size, hidden_size)")
        hidden = w_hr.shape[1]
        if w_hh.shape != (4 * hidden, w_hr.shape[0]):
            raise ShapeError(
                f"{op}: {names[1]}.shape is {w_hh.shape}, expected (4*hidden_size, proj_size) = "
                f"{(4 * hidden, w_hr.shape[0])} for {names[4]}.shape = {w_hr.shape} (proj_size, hidden_size)"
            )
    expected = {
        names[0]: (w_ih, (4 * hidden, input.shape[-1])),
        names[2]: (b_ih, (4 * hidden,)),
        names[3]: (b_hh, (4 * hidden,)),
    }
    for name, (tensor, shape) in expected.items():
        if tensor is None:
            continue
        if tensor.shape != shape:
            raise ShapeError(
                f"{op}: {name}.shape is {tensor.shape}, expected {shape} for input {input.shape}"
            )
    tensors = (w_ih, w_hh, b_ih, b_hh) if w_hr is None else (w_ih, w_hh, b_ih, b_hh, w_hr)
    for name, tensor in zip(names, tensors, strict=True):
        if tensor is not None and tensor.dtype != input.dtype:
            raise DTypeError(f"{op}: {name}.dtype is {tensor.dtype}, expected input's dtype {input.dtype}")
